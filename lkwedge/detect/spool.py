"""Closed episodes of a scan in bounded memory.

A scan keeps every closed episode for its report: 10M lines make 4 351 of them, ~2.5 KB each as
objects. At most `HOLD` stay objects (most logs of 1M lines have fewer: nothing is spilled); past that,
the oldest are pickled to an anonymous temporary file and read back one at a time when used, so a
scan's peak memory does not grow with the length of its log. Pickle rather than msgpack or JSON
because it gives back exactly what went in (time zones with their names, enums, tuples), so an answer
never depends on whether an episode was spilled.

An episode is spilled only once it is settled: a ghost watch may still turn an episode closed as
recovered into a ghost, so a watched episode stays an object until its watch ends. A temporary file
that cannot be written (a full or read-only disk) is not an error: the episodes then stay in memory.
"""

from __future__ import annotations

import os
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import BinaryIO, overload

import msgspec

from lkwedge.detect.episodes import Episode

HOLD = 512  # closed episodes a scan keeps as objects before it spills the oldest (1M lines: ~450)


class Header(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """What ordering, counting and incidents need of an episode, kept when the rest is spilled."""

    line: int
    file: str
    key: str
    start: datetime | None
    verdict: str

    @classmethod
    def of(cls, episode: Episode) -> Header:
        return cls(episode.line, episode.file, episode.key, episode.start, episode.verdict)


class Spilled(Header, frozen=True, gc=False, array_like=True):
    """A spilled episode: its header, and where its bytes are in the spool file."""

    offset: int
    size: int


Entry = Episode | Spilled
Packed = tuple[Header, bytes]  # an episode pickled by another process, with its header
Settled = Callable[[Episode], bool]


class EpisodeSpool:
    """One per scan: the order episodes closed in, and the file the oldest settled ones go to."""

    def __init__(self, hold: int | None = None) -> None:
        self.hold = HOLD if hold is None else hold
        self._held: deque[tuple[list[Entry], int, Settled]] = deque()  # closing order
        self._file: BinaryIO | None = None
        self._end = 0
        self._unwritable = False

    def append(self, entries: list[Entry], episode: Episode, settled: Settled) -> None:
        """Add a closed episode to ``entries`` (one input's list); spill the oldest held ones while more
        than `hold` are held and the oldest is settled."""
        entries.append(episode)
        self._held.append((entries, len(entries) - 1, settled))
        while len(self._held) > self.hold and not self._unwritable:
            owner, index, is_settled = self._held[0]
            held = owner[index]
            assert isinstance(held, Episode)
            if not is_settled(held):
                return  # tried again when the next episode closes
            spilled = self._store(*pack(held))
            if spilled is None:
                return
            self._held.popleft()
            owner[index] = spilled

    def append_packed(self, entries: list[Entry], packed: Packed) -> None:
        """A settled episode that another process pickled (`pack`): its bytes go to disk as they are
        once `hold` episodes are held, so the parent of a multi-file scan does not pickle them again."""
        if len(self._held) >= self.hold and not self._unwritable:
            spilled = self._store(*packed)
            if spilled is not None:
                entries.append(spilled)
                return
        self.append(entries, _unpack(packed[1]), _settled)

    def _store(self, header: Header, data: bytes) -> Spilled | None:
        view = memoryview(data)
        try:
            if self._file is None:
                import tempfile  # on the first spill: most scans never spill

                # no name, so nothing is left behind; closed when the spool (and every list reading
                # from it) is gone, quietly, as a library user's results may live in a long process
                self._file = tempfile.TemporaryFile(prefix="lkwedge-episodes-", buffering=0)  # noqa: SIM115
                weakref.finalize(self, self._file.close)
            fd, written = self._file.fileno(), 0
            while written < len(view):  # unbuffered, so what is on disk is exactly what was counted
                written += os.pwrite(fd, view[written:], self._end + written)
        except OSError:
            self._unwritable = True
            return None
        spilled = Spilled(header.line, header.file, header.key, header.start, header.verdict,
                          self._end, len(view))
        self._end += len(view)
        return spilled

    def load(self, entry: Entry) -> Episode:
        if isinstance(entry, Episode):
            return entry
        assert self._file is not None
        return _unpack(os.pread(self._file.fileno(), entry.size, entry.offset))


def pack(episode: Episode) -> Packed:
    import pickle  # only when something is spilled or sent between processes (3 ms at start-up)

    return Header.of(episode), pickle.dumps(episode, protocol=pickle.HIGHEST_PROTOCOL)


def _unpack(data: bytes) -> Episode:
    import pickle

    episode: Episode = pickle.loads(data)
    return episode


def _settled(_: Episode) -> bool:
    return True


class EpisodeList(Sequence[Episode]):
    """Episodes in report order, some of them spilled: each is read back when it is used (a copy each
    time, so mutating one changes nothing; nothing downstream of a scan does)."""

    __slots__ = ("_entries", "_spool")

    def __init__(self, entries: list[Entry], spool: EpisodeSpool) -> None:
        self._entries = entries
        self._spool = spool

    def __len__(self) -> int:
        return len(self._entries)

    @overload
    def __getitem__(self, index: int) -> Episode: ...
    @overload
    def __getitem__(self, index: slice) -> EpisodeList: ...
    def __getitem__(self, index: int | slice) -> Episode | EpisodeList:
        if isinstance(index, slice):
            return EpisodeList(self._entries[index], self._spool)
        return self._spool.load(self._entries[index])

    def __iter__(self) -> Iterator[Episode]:
        load = self._spool.load
        for entry in self._entries:
            yield load(entry)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[type[list[Episode]], tuple[list[Episode]]]:
        """Pickled (to another process: `report`'s background scan) as the plain list it stands for."""
        return list, (list(self),)

    def where(self, keep: Callable[[Episode], bool]) -> EpisodeList:
        load = self._spool.load
        return EpisodeList([entry for entry in self._entries if keep(load(entry))], self._spool)

    def __repr__(self) -> str:
        return f"EpisodeList({len(self)} episodes)"


def in_order(entries: list[Entry], spool: EpisodeSpool) -> Sequence[Episode]:
    """A plain list when nothing was spilled (most scans), else an `EpisodeList`."""
    if all(isinstance(entry, Episode) for entry in entries):
        return entries  # type: ignore[return-value]
    return EpisodeList(entries, spool)


def headers(episodes: Sequence[Episode]) -> Sequence[Episode | Header]:
    """The episodes, with a spilled one's `Header` in its place (line, file, key, start, verdict): for
    a pass that needs only those, without reading anything back."""
    return episodes._entries if isinstance(episodes, EpisodeList) else episodes


def where(episodes: Sequence[Episode], keep: Callable[[Episode], bool]) -> Sequence[Episode]:
    """The episodes ``keep`` accepts, without reading spilled ones into memory all at once."""
    if isinstance(episodes, EpisodeList):
        return episodes.where(keep)
    return [ep for ep in episodes if keep(ep)]

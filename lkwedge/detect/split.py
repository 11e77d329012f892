"""Both cores on one big file: a forked child prefilters the file's second part while this process
reads the first.

Only one-record-per-line input is split (its blocks can be prefiltered without any stream state:
`lkwedge.detect.prefilter.block_facts`), only a plain regular file (a gzip stream cannot be entered in
the middle) and only where enough is left to repay the fork. The child starts at a line start, frames
and prefilters exactly as this process would, and spools its `BlockFacts` to a temporary file, frame by
frame; the parent, having read up to that line, examines the child's candidates in order as the frames
come. Any cut gives the same answer, and if the child fails for any reason the parent reads on by itself
from the end of the last frame the child finished. Both read the file through the descriptor the parent
opened (the child with pread), so a file rotated away mid-scan is still the one read.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO

from lkwedge.detect.prefilter import BlockFacts

MIN_SPLIT = 8 << 20  # bytes left to read: below this the fork and the hand-over save too little
#: the parent also examines every candidate (the child's as they arrive), so it prefilters less than a
#: third: measured best for env_logger, mixed and agents JSON alike (0.28-0.33; at 0.15 the parent sat
#: idle for a third of the run waiting for the child's frames)
PARENT_SHARE = 0.30
PROBE = 64 << 10


def possible(path: str | None, gzipped: bool, position: int, size: int | None) -> bool:
    return (path is not None and not gzipped and size is not None and size - position >= MIN_SPLIT
            and hasattr(os, "fork") and fork_safe())


def fork_safe() -> bool:
    """No thread but lkwedge's own daemon threads (watch's console and sink workers). The child only
    reads the file, runs the prefilter and writes to its pipe: it takes no lock such a thread could
    hold (it never prints, imports or logs), and it leaves by ``os._exit``."""
    main = threading.main_thread()
    return threading.current_thread() is main and all(
        thread is main or (thread.daemon and thread.name.startswith("lkwedge-"))
        for thread in threading.enumerate())


def next_line_start(fd: int, offset: int) -> int | None:
    """The first line start at or after ``offset`` (just after a newline) in the file open as ``fd``,
    or None if none follows. Read with pread: the descriptor's offset is the caller's."""
    position = offset - 1
    while chunk := os.pread(fd, PROBE, position):
        newline = chunk.find(b"\n")
        if newline >= 0:
            return position + newline + 1
        position += len(chunk)
    return None


def pread_chunks(fd: int, start: int, size: int) -> Iterator[bytes]:
    """The file open as ``fd`` from ``start`` to its end, ``size`` bytes at a time, without moving the
    descriptor's offset (a forked child shares it with its parent). The file is the one the parent
    opened even if its path has since been renamed, replaced or deleted (log rotation)."""
    offset = start
    while data := os.pread(fd, size, offset):
        offset += len(data)
        yield data


class Child:
    """A forked process prefiltering ``path`` from ``start`` to its end into an unnamed temporary file,
    one marshalled `BlockFacts` per few MiB of input: memory stays flat however big the part is (an
    agents log's activity lines would not fit), and the child never waits for the parent. A byte on a
    pipe announces each finished frame, so the parent examines a frame as soon as it is spooled."""

    def __init__(self, pid: int, spool: BinaryIO, ready: int, start: int) -> None:
        self.pid = pid
        self.start = start
        #: after `frames`: None if the child read to the end, else the line start where the caller reads
        #: on by itself (the end of the last frame the child finished)
        self.resume_at: int | None = None
        self._spool = spool
        self._ready = ready

    def frames(self) -> Iterator[BlockFacts]:
        """The child's findings in order, each as soon as the child has spooled it. If the child fails,
        the frames it finished are still good and `resume_at` says where they end."""
        fd, offset, resume = self._spool.fileno(), 0, self.start
        while os.read(self._ready, 1):  # b"": the child has exited
            size = int.from_bytes(os.pread(fd, 8, offset), "little")
            # one read per frame (marshal.load on a file reads it object by object: 10x slower);
            # pread leaves the file offset the child writes at alone
            lines, candidates, unparsed, tail, resume = marshal.loads(os.pread(fd, size, offset + 8))
            offset += 8 + size
            yield BlockFacts(lines, candidates, unparsed, tail)
        try:
            _, status = os.waitpid(self.pid, 0)
        except OSError:
            status = -1
        failed = status == -1 or not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0
        self.resume_at = resume if failed else None
        self._close()

    def abandon(self) -> None:
        with contextlib.suppress(OSError):
            os.kill(self.pid, 9)  # SIGKILL (the signal module costs a millisecond to import)
            os.waitpid(self.pid, 0)
        self._close()

    def _close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._ready)
        self._spool.close()


#: what the child hands over: the facts of whole lines, and the offset of the line start after them
Emit = Callable[[BlockFacts, int], None]


def fork(fd: int, position: int, size: int, prefilter_from: Callable[[int, Emit], None]) -> Child | None:
    """Start a child on the part of the file open as ``fd`` after the parent's share of what is left
    after ``position``; ``prefilter_from(start, emit)`` is what the child runs (reading ``fd`` with
    `pread_chunks`). None: not worth it or not possible."""
    try:
        start = next_line_start(fd, position + int((size - position) * PARENT_SHARE))
    except OSError:
        return None
    if start is None or size - start < MIN_SPLIT // 4:
        return None
    import tempfile  # here, not at start-up (shutil, random...: 5 ms every run would pay)

    try:
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the Child, which closes it
        ready, announce = os.pipe()
    except OSError:
        return None
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.close(ready)

            def emit(facts: BlockFacts, resume_at: int) -> None:
                frame = marshal.dumps((facts.lines, facts.candidates, facts.unparsed, facts.tail, resume_at))
                spool.write(len(frame).to_bytes(8, "little") + frame)
                spool.flush()
                os.write(announce, b".")

            prefilter_from(start, emit)
            code = 0
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(announce)  # the child's end: end of file on ``ready`` then means the child has exited
    return Child(pid, spool, ready, start)

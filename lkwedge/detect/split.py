"""Both cores on one big file: a forked child prefilters the file's second part while this process
reads the first.

Only one-record-per-line input is split (its blocks can be prefiltered without any stream state:
`lkwedge.detect.prefilter.block_facts`), only a plain regular file (a gzip stream cannot be entered in
the middle) and only where enough is left to repay the fork. The child starts at a line start, frames
and prefilters exactly as this process would, and spools its `BlockFacts` to a temporary file; the
parent, having read up to that line, examines the child's candidates in order. Any cut gives the same
answer, and if the child fails for any reason the parent reads the second part itself.
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
PARENT_SHARE = 0.45  # the parent also examines every candidate; the child also spools its facts
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


def next_line_start(path: str, offset: int) -> int | None:
    """The first line start at or after ``offset`` (just after a newline), or None if none follows."""
    with open(path, "rb") as fh:
        fh.seek(offset - 1)
        position = offset - 1
        while chunk := fh.read(PROBE):
            newline = chunk.find(b"\n")
            if newline >= 0:
                return position + newline + 1
            position += len(chunk)
    return None


class Child:
    """A forked process prefiltering ``path`` from ``start`` to its end into an unnamed temporary file,
    one marshalled `BlockFacts` per few MiB of input: memory stays flat however big the part is (an
    agents log's activity lines would not fit), and the child never waits for the parent."""

    def __init__(self, pid: int, spool: BinaryIO, start: int) -> None:
        self.pid = pid
        self.start = start
        self._spool = spool

    def facts(self) -> Iterator[BlockFacts] | None:
        """The child's findings in order, or None if it failed (the caller then reads the part itself).
        Nothing is read before the child is known to have finished well."""
        try:
            _, status = os.waitpid(self.pid, 0)
        except OSError:
            status = -1
        if status == -1 or not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            self._spool.close()
            return None
        return self._frames()

    def _frames(self) -> Iterator[BlockFacts]:
        with self._spool as spool:
            spool.seek(0)
            while size := int.from_bytes(spool.read(8), "little"):
                # one read per frame: marshal.load on a file reads it object by object (10x slower)
                lines, candidates, unparsed, tail = marshal.loads(spool.read(size))
                yield BlockFacts(lines, candidates, unparsed, tail)

    def abandon(self) -> None:
        with contextlib.suppress(OSError):
            os.kill(self.pid, 9)  # SIGKILL (the signal module costs a millisecond to import)
            os.waitpid(self.pid, 0)
        self._spool.close()


def fork(path: str, position: int, size: int,
         prefilter_from: Callable[[int, Callable[[BlockFacts], None]], None]) -> Child | None:
    """Start a child on the part of ``path`` after the parent's share of what is left after
    ``position``; ``prefilter_from(start, emit)`` is what the child runs. None: not worth it or not
    possible."""
    start = next_line_start(path, position + int((size - position) * PARENT_SHARE))
    if start is None or size - start < MIN_SPLIT // 4:
        return None
    import tempfile  # here, not at start-up (shutil, random...: 5 ms every run would pay)

    try:
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the Child, which closes it
    except OSError:
        return None
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            def emit(facts: BlockFacts) -> None:
                frame = marshal.dumps((facts.lines, facts.candidates, facts.unparsed, facts.tail))
                spool.write(len(frame).to_bytes(8, "little") + frame)

            prefilter_from(start, emit)
            spool.flush()
            code = 0
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    return Child(pid, spool, start)

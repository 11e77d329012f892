"""Live line sources for `lkwedge watch`: stdin, files and globs followed the way `tail -F` does.

Reader threads push batches of `LineEvent`s and `Notice`s onto one bounded, thread-safe queue; the
consumer calls `Follower.get()` / `get_batch()` (or iterates).  The bounded queue gives back-pressure,
so replaying a huge file with `from_start=True` never holds the whole file in memory.

Decisions a caller relies on:
- `arrival` is `time.monotonic()` at the moment the chunk holding the line was read.  The watch loop
  only needs differences (arrival - log time, now - arrival), and the monotonic clock cannot jump
  when NTP steps the wall clock mid-episode.
- Line numbers are per *source* (the path as given or as matched by a glob; "<stdin>" for stdin) and
  continue across rotation and truncation: a rotated/truncated file is the continuation of the same
  stream, so an episode that spans a rotation keeps increasing line numbers.  Until the first rotation
  they are the file's physical line numbers (when following from the end the skipped lines are
  counted), so `sed -n Np FILE` finds them.
- Lines are cut by `lkwedge.read.framing.LineFramer`, exactly as `scan` cuts them (gzip by magic,
  CRLF, U+FFFD for bad UTF-8, a line over max_line skipped and counted).  A partial last line is held
  until its "\\n" arrives; it is emitted anyway at end of input (`once`, stdin EOF), or when its file is
  rotated away or truncated.
- With `lookback`, a file followed from its end is started that many seconds of log time before its
  last line, so a wedge already in progress is seen at once; those lines "arrived" at the file's mtime.
- Inputs are judged as `scan` judges them: a named pipe (FIFO) is read as it comes until its writers
  close it; a directory, another non-regular file or an unreadable file is an "error" notice naming it,
  and that source ends (it is listed in `Follower.failed`).  A missing path is waited for (tail -F).
"""

from __future__ import annotations

import glob
import os
import queue
import select
import stat
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from lkwedge.errors import InputError
from lkwedge.read.framing import DEFAULT_MAX_LINE, Gunzip, LineFramer, is_gzip

STDIN_NAME = "<stdin>"
CHUNK = 1 << 16
_FINGERPRINT = 64           # bytes at offset 0 compared to notice truncate-and-rewrite past our offset
_READS_PER_TURN = 64        # chunks read before re-checking stop / yielding (keeps stop() responsive)


class LineEvent(NamedTuple):
    source: str
    lineno: int
    text: str
    arrival: float          # time.monotonic() when read


class Notice(NamedTuple):
    """Something happened to a source.  kind: "opened" | "missing" | "deleted" | "rotated" |
    "truncated" | "error" | "eof" ("eof": this source is finished and will deliver nothing more)."""

    source: str
    kind: str
    detail: str
    arrival: float


Item = LineEvent | Notice


def _has_magic(path: str) -> bool:
    return glob.has_magic(path)


class _Emitter:
    """Cuts bytes into numbered lines for one source (with `lkwedge.read.framing`, exactly as scan
    does) and pushes batches to the shared queue. A source that starts with gzip's magic is
    gunzipped on the fly."""

    def __init__(self, follower: Follower, source: str) -> None:
        self.f = follower
        self.source = source
        self.lineno = 0
        self.framer = LineFramer(follower.max_line)
        self.gunzip: Gunzip | None = None
        self.sniffed = False

    def feed(self, data: bytes, now: float) -> None:
        if not self.sniffed and data:
            self.sniffed = True
            if is_gzip(data):
                self.gunzip = Gunzip()
        if self.gunzip is not None:
            try:
                data = self.gunzip.feed(data)
            except InputError as e:
                self.notice("error", str(e))
                self.gunzip, data = None, b""
        self._push_lines(self.framer.feed(data), now)

    def flush(self, now: float) -> None:
        """Emit a held partial line as a complete one (end of input, rotation, truncation)."""
        self._push_lines(self.framer.finish(), now)
        self.sniffed, self.gunzip = False, None  # a rotated or truncated file starts afresh

    def _push_lines(self, lines: list[str], now: float) -> None:
        if not lines:
            return
        n = self.lineno
        src = self.source
        batch: list[Item] = [LineEvent(src, n + i, text, now) for i, text in enumerate(lines, 1)]
        self.lineno = n + len(lines)
        self.f._put(batch)

    def notice(self, kind: str, detail: str = "") -> None:
        self.f._put([Notice(self.source, kind, detail, time.monotonic())])


class _StdinReader:
    """stdin, or a named pipe (FIFO) given as a path: read as it comes until its writers close it."""

    def __init__(self, follower: Follower, fd: int, name: str = STDIN_NAME) -> None:
        self.f = follower
        self.fd = fd
        self.em = _Emitter(follower, name)

    def run(self) -> None:
        try:
            self.read_until_eof()
        finally:
            self.em.notice("eof")

    def read_until_eof(self) -> None:
        stop = self.f._stop
        try:
            while not stop.is_set():
                try:
                    ready, _, _ = select.select([self.fd], [], [], self.f.poll_interval)
                except (OSError, ValueError):
                    ready = [self.fd]   # not selectable (odd fd type): fall back to a blocking read
                if not ready:
                    continue
                try:
                    data = os.read(self.fd, CHUNK)
                except BlockingIOError:
                    continue            # a FIFO opened non-blocking with no data yet
                if not data:
                    break
                self.em.feed(data, time.monotonic())
        except OSError as e:
            what = "stdin" if self.em.source == STDIN_NAME else "the pipe"
            self.f._failed(self.em.source)
            self.em.notice("error", f"cannot read {what}: {e.strerror or e}")
        finally:
            # The pipe is over (or we were stopped): the held partial line is final.
            self.em.flush(time.monotonic())


class _FileTail:
    """One path followed like `tail -F`: by name, surviving rename+recreate, copytruncate, deletion."""

    def __init__(self, follower: Follower, path: str, *, from_start: bool) -> None:
        self.f = follower
        self.path = path
        self.from_start = from_start        # for the first open only; later files are read whole
        self.em = _Emitter(follower, path)
        self.fd: int | None = None
        self.ident: tuple[int, int] | None = None
        self.offset = 0
        self.fp = b""
        self.said: set[str] = set()         # notices already given for the current condition
        self.done = False                   # ended for good (an input error, or a FIFO that closed)

    # -- helpers -------------------------------------------------------------------------------------
    def _say_once(self, kind: str, detail: str = "") -> None:
        if kind not in self.said:
            self.said.add(kind)
            self.em.notice(kind, detail)

    def _fail(self, detail: str) -> bool:
        """An input `scan` would refuse (unreadable, a directory): say so once and end this source."""
        self.done = True
        self.f._failed(self.path)
        self._say_once("error", detail)
        return False

    def _open(self) -> bool:
        try:
            # O_NONBLOCK: opening a FIFO must not wait for its writer (it changes nothing for files).
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            self.from_start = True      # when it appears it is new: read it whole, as tail -F does
            self._say_once("missing", "waiting for it to appear")
            return False
        except PermissionError:
            return self._fail("cannot read: permission denied")
        except OSError as e:
            return self._fail(f"cannot read: {e.strerror or e}")
        try:
            st = os.fstat(fd)
        except OSError:
            os.close(fd)
            return False
        if stat.S_ISFIFO(st.st_mode):
            # A named pipe is read as it comes, like stdin, until its writers close it (as scan does).
            self.em.notice("opened", "reading the pipe")
            pipe = _StdinReader(self.f, fd, self.path)
            pipe.em = self.em
            try:
                pipe.read_until_eof()
            finally:
                os.close(fd)
            self.done = True
            return False
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return self._fail("not a regular file" + (" (a directory)" if stat.S_ISDIR(st.st_mode) else ""))
        self.fd, self.ident, self.offset = fd, (st.st_dev, st.st_ino), 0
        self.fp = os.pread(fd, _FINGERPRINT, 0)
        self.said.clear()
        if self.f._already_read(self.ident, self.fp):
            # Rotation shuffled an already-followed file under our name (agent.log -> agent.log.1
            # while both match "*.log*"): its lines were delivered under its old name.
            self.offset = st.st_size
            self.em.notice("opened", "already followed under another name; following its new lines only")
        else:
            if not self.from_start:
                self._skip_to_end(st.st_size)
                if self.f.lookback > 0:
                    self._back_up(st.st_size, st.st_mtime)
            self.em.notice("opened", f"following from line {self.em.lineno + 1}")
        self.from_start = True
        self.f._claim(self.ident, self.fp)
        return True

    def _skip_to_end(self, size: int) -> None:
        """Start after the last complete line, counting the skipped lines so numbers stay physical."""
        assert self.fd is not None
        count = 0
        last_nl = -1
        pos = 0
        while pos < size and not self.f._stop.is_set():
            chunk = os.pread(self.fd, min(1 << 20, size - pos), pos)
            if not chunk:
                break
            count += chunk.count(b"\n")
            i = chunk.rfind(b"\n")
            if i >= 0:
                last_nl = pos + i
            pos += len(chunk)
        self.offset = last_nl + 1
        self.em.lineno += count

    def _back_up(self, size: int, mtime: float) -> None:
        """--lookback: move the start back to the first line within `lookback` seconds of log time of
        the last line, and deliver those lines now, stamped as arriving at the file's mtime."""
        assert self.fd is not None
        end = self.offset
        start = lookback_start(self.fd, end, self.f.lookback)
        if start >= end:
            return
        block = os.pread(self.fd, end - start, start)
        self.em.lineno -= block.count(b"\n")
        self.offset = end
        arrival = time.monotonic() - max(0.0, time.time() - mtime)
        self.em.feed(block, arrival)

    def _read_available(self, limit: int | None) -> bool:
        """Read up to `limit` chunks; True when it stopped at EOF."""
        assert self.fd is not None
        n = 0
        while limit is None or n < limit:
            data = os.pread(self.fd, CHUNK, self.offset)
            if not data:
                return True
            if len(self.fp) == self.offset < _FINGERPRINT:
                # The fingerprint grows from the very bytes delivered, not from a later read: a file
                # opened empty and then truncated and refilled past our offset before the next poll
                # is still told by its first bytes.
                self.fp = (self.fp + data)[:_FINGERPRINT]
                self.f._claim(self.ident, self.fp)
            self.offset += len(data)
            self.em.feed(data, time.monotonic())
            n += 1
        return False

    def _close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    # -- main loop -----------------------------------------------------------------------------------
    def step(self) -> bool:
        """One polling turn.  Returns True when there may be more to do right away."""
        if self.fd is None and not self._open():
            return False
        if not self._read_available(_READS_PER_TURN):
            return True
        if self.f.once:
            return False
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            # Renamed away or deleted.  Keep the old descriptor: a writer may still append to the
            # renamed file until it reopens, and those lines belong to this stream.
            self._say_once("deleted", "name is gone; waiting for it to be recreated")
            return False
        except OSError:
            return False
        if (st.st_dev, st.st_ino) != self.ident:
            # Rotation (rename + recreate, or delete + recreate): finish the old file, then switch.
            self._read_available(None)
            self.em.flush(time.monotonic())
            self._close()
            self.em.notice("rotated", "reopened the new file; reading it from its start")
            self.said.clear()
            return self._open()
        if st.st_size < self.offset or self._rewritten():
            self.em.flush(time.monotonic())
            self.offset = 0
            self.fp = b""
            self.em.notice("truncated", "file shrank below the read position; reading it from its start")
            return True
        if len(self.fp) < _FINGERPRINT and st.st_size > len(self.fp) and self.fd is not None:
            self.fp = os.pread(self.fd, _FINGERPRINT, 0)
            self.f._claim(self.ident, self.fp)
        return False

    def _rewritten(self) -> bool:
        """Truncated and refilled past our offset before we polled: the first bytes changed."""
        if not self.fp or self.fd is None:
            return False
        return os.pread(self.fd, len(self.fp), 0) != self.fp

    def run(self) -> None:
        stop = self.f._stop
        try:
            while not stop.is_set():
                more = self.step()
                if self.done or (self.f.once and not more):
                    break
                if not more:
                    stop.wait(self.f.poll_interval)
        except OSError as e:
            self.f._failed(self.path)
            self.em.notice("error", f"read failed: {e.strerror or e}")
        finally:
            if self.f.once:
                self.em.flush(time.monotonic())
            self._close()
            self.em.notice("eof")


LOOKBACK_MAX_BYTES = 64 << 20


def lookback_start(fd: int, end: int, seconds: float) -> int:
    """The offset of the first line whose log time is within `seconds` of the last timed line before
    `end` (lines without a time go with the lines around them); at most LOOKBACK_MAX_BYTES back."""
    from lkwedge.read.clock import StreamClock
    from lkwedge.read.formats import parse_line

    clock = StreamClock()
    floor = max(0, end - LOOKBACK_MAX_BYTES)
    newest = None
    pos = end
    start = end
    carry = b""
    while pos > floor:
        size = min(1 << 20, pos - floor)
        pos -= size
        data = os.pread(fd, size, pos) + carry
        cut = data.find(b"\n") if pos > floor else -1
        head, body = (data[:cut + 1], data[cut + 1:]) if cut >= 0 else (b"", data)
        offset = pos + len(head)
        lines = body.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        ends = []
        for line in lines:
            ends.append(offset)
            offset += len(line) + 1
        for line_start, line in zip(reversed(ends), reversed(lines), strict=True):
            when = clock.resolve(parse_line(line.decode("utf-8", "replace")).stamp(), peek=True)
            if when is None:
                start = line_start
                continue
            if newest is None:
                newest = when
            if (newest - when).total_seconds() > seconds:
                return start
            start = line_start
        carry = head
    return start


def _stdin_fileno() -> int:
    try:
        return sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return 0


class Follower:
    """Follow stdin, files and glob patterns; deliver their lines through one queue.

    paths: "-" = stdin; a path with glob magic (*, ?, [) is re-expanded every `glob_interval` s; any
    other path is followed by name even if it does not exist yet.  No paths = stdin.
    from_start: read files that exist at start-up from their beginning (default: from their end).
    Files that appear later (new glob matches, a missing path created, rotation) are read whole.
    once: stop each source at its end instead of following it (for `--once`).
    stdin_fd: the descriptor to use for "-" (default 0).
    """

    def __init__(
        self,
        paths: Sequence[str] = (),
        *,
        from_start: bool = False,
        once: bool = False,
        poll_interval: float = 0.1,
        glob_interval: float = 1.0,
        stdin_fd: int | None = None,
        max_batches: int = 256,
        max_line: int = DEFAULT_MAX_LINE,
        lookback: float = 0.0,
    ) -> None:
        self.paths = list(paths) or ["-"]
        self.from_start = from_start
        self.once = once
        self.poll_interval = poll_interval
        self.glob_interval = glob_interval
        self.stdin_fd = stdin_fd
        self.max_line = max_line
        self.lookback = lookback
        self._q: queue.Queue[list[Item]] = queue.Queue(maxsize=max_batches)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._followed: set[str] = set()
        # (st_dev, st_ino) -> first bytes, of every file we have read: recognises a rotated copy of a
        # file we follow even after we closed it, without trusting a reused inode number alone.
        self._claimed: dict[tuple[int, int], bytes] = {}
        self._live = 0                       # reader threads that have not delivered "eof" yet
        self._pending: list[Item] = []
        self._started = False
        self._globbing = False
        self.failed: list[str] = []          # sources that ended on an input error (named to the user)

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> Follower:
        if self._started:
            return self
        self._started = True
        patterns = []
        seen_stdin = False
        for p in self.paths:
            if p == "-":
                if not seen_stdin:
                    seen_stdin = True
                    fd = self.stdin_fd if self.stdin_fd is not None else _stdin_fileno()
                    self._spawn(_StdinReader(self, fd).run, "stdin")
            elif _has_magic(p):
                patterns.append(p)
            else:
                self._add_file(p, from_start=self.from_start)
        if patterns:
            for pat in patterns:
                if not glob.glob(pat):
                    self._put([Notice(pat, "missing", "no file matches yet", time.monotonic())])
            for path in self._expand(patterns):
                self._add_file(path, from_start=self.from_start)
            if not self.once:
                self._globbing = True  # new matches may appear at any time: never finished
                self._spawn(lambda: self._glob_loop(patterns), "glob", counted=False)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop all readers (they stop within one poll interval) and wait for them, bounded."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in list(self._threads):
            t.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Follower:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def finished(self) -> bool:
        """True once every source has delivered "eof" and everything queued was consumed.  Followed
        files never end on their own; stdin ends at EOF; with once=True every source ends."""
        with self._lock:
            live = self._live
        return live == 0 and not self._globbing and not self._pending and self._q.empty()

    # -- consumption ---------------------------------------------------------------------------------
    def get_batch(self, timeout: float | None = None) -> list[Item]:
        """Everything one reader delivered in one go (may be many lines); [] on timeout."""
        if self._pending:
            batch, self._pending = self._pending, []
            return batch
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return []

    def get(self, timeout: float | None = None) -> Item | None:
        """The next line or notice, or None after `timeout` seconds without one."""
        if not self._pending:
            self._pending = self.get_batch(timeout)
            if not self._pending:
                return None
        return self._pending.pop(0) if len(self._pending) < 64 else self._pop_many()

    def _pop_many(self) -> Item:
        # Avoid O(n^2) list.pop(0) on big batches: reverse once, pop from the end.
        self._pending.reverse()
        item = self._pending.pop()
        self._pending.reverse()
        return item

    def backlog(self) -> int:
        """Batches delivered but not consumed yet (0: the consumer has everything read so far)."""
        return len(self._pending) + self._q.qsize()

    def __iter__(self) -> Iterator[Item]:
        """Yield items until every source is finished (use with once=True, or call stop())."""
        while True:
            batch = self.get_batch(timeout=self.poll_interval)
            yield from batch
            if not batch and self.finished:
                return

    # -- internals -----------------------------------------------------------------------------------
    def _put(self, batch: list[Item]) -> None:
        if not batch:
            return
        for item in batch:
            if isinstance(item, Notice) and item.kind == "eof":
                with self._lock:
                    self._live -= 1
        while True:
            try:
                self._q.put(batch, timeout=0.1)
                return
            except queue.Full:
                if self._stop.is_set():
                    return

    def _spawn(self, target: object, name: str, *, counted: bool = True) -> None:
        if counted:
            with self._lock:
                self._live += 1
        t = threading.Thread(target=target, name=f"lkwedge-follow-{name}", daemon=True)  # type: ignore[arg-type]
        self._threads.append(t)
        t.start()

    def _add_file(self, path: str, *, from_start: bool) -> None:
        key = os.path.normpath(path)
        if key in self._followed:
            return
        self._followed.add(key)
        tail = _FileTail(self, path, from_start=from_start)
        self._spawn(tail.run, path)

    def _failed(self, source: str) -> None:
        with self._lock:
            self.failed.append(source)

    def _claim(self, ident: tuple[int, int] | None, fp: bytes) -> None:
        if ident is not None and fp:
            with self._lock:
                self._claimed[ident] = fp

    def _already_read(self, ident: tuple[int, int] | None, fp: bytes) -> bool:
        with self._lock:
            known = self._claimed.get(ident) if ident is not None else None
        n = min(len(known or b""), len(fp))
        return n > 0 and known is not None and known[:n] == fp[:n]

    def _expand(self, patterns: list[str]) -> list[str]:
        out: list[str] = []
        for pat in patterns:
            for path in sorted(glob.glob(pat)):
                if os.path.normpath(path) in self._followed or not os.path.isfile(path):
                    continue
                try:
                    with open(path, "rb") as fh:
                        st = os.fstat(fh.fileno())
                        fp = fh.read(_FINGERPRINT)
                except OSError:
                    out.append(path)    # let its tail report the error
                    continue
                # A file we already follow under another name is a rotated copy (agent.log ->
                # agent.log.1 matched by "*.log*"): reading it again would duplicate its lines.
                if self._already_read((st.st_dev, st.st_ino), fp):
                    self._followed.add(os.path.normpath(path))
                    continue
                out.append(path)
        return out

    def _glob_loop(self, patterns: list[str]) -> None:
        while not self._stop.wait(self.glob_interval):
            for path in self._expand(patterns):
                # Appeared after start-up: read it whole, as tail -F does for a new file.
                self._add_file(path, from_start=True)

"""A closed stdout pipe (`lkwedge scan many.log | head -1`) ends output quietly, never the command.

`guard_stdout()` puts a thin wrapper around sys.stdout: the first write or flush that finds the reader
gone points descriptor 1 at /dev/null (so nothing later, not even the interpreter's final flush, fails
on it) and every later write is dropped.  The command keeps going and exits with the code its results
call for (0 when no stall), without a traceback or "Broken pipe" message.  `watch` registers a
callback to stop watching, as a filter whose reader went away does.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO


class PipeSafeStdout:
    """Delegates to the real stream; swallows BrokenPipeError (see the module docstring)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.broken = False
        self.error: OSError | None = None       # a write error other than a closed pipe
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def on_broken(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)
        if self.broken:
            callback()

    def _gone(self) -> None:
        with self._lock:
            if self.broken:
                return
            self.broken = True
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self._stream.fileno())
                os.close(devnull)
        for cb in self._callbacks:
            with contextlib.suppress(Exception):
                cb()

    def write(self, text: str) -> int:
        if self.broken:
            return len(text)
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._gone()
        except OSError as e:
            self._failed(e)
        return len(text)

    def flush(self) -> None:
        if self.broken:
            return
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._gone()
        except OSError as e:
            self._failed(e)

    def _failed(self, e: OSError) -> None:
        """Any other write error (a full disk): the results did not get out.  One line and exit 2 from
        the main thread; from another thread (watch's console) the command checks `error` at exit."""
        first = self.error is None
        self.error = e
        self._gone()
        if first:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(f"lkwedge: error: cannot write the output: {e.strerror or e}\n")
                sys.stderr.flush()
        if threading.current_thread() is threading.main_thread():
            raise SystemExit(2)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guard_stdout() -> PipeSafeStdout:
    """Install the wrapper once (idempotent) and return it. A stdout closed before we started (`>&-`:
    Python then has none) is treated like a reader that left: the output is dropped, the code kept."""
    current = sys.stdout
    if isinstance(current, PipeSafeStdout):
        return current
    if current is None:
        current = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - stdout for the process's life
    wrapped = PipeSafeStdout(current)
    sys.stdout = wrapped  # type: ignore[assignment]
    return wrapped


def watch_reader(out: PipeSafeStdout, interval: float = 0.5) -> None:
    """For long-running commands: notice the reader of a stdout pipe leaving even while we have nothing
    to write (poll reports POLLERR on a pipe whose read end is closed)."""
    import select
    import stat

    try:
        fd = out.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return
    except (OSError, ValueError):
        return

    def loop() -> None:
        poller = select.poll()
        poller.register(fd, select.POLLERR)
        while not out.broken:
            try:
                events = poller.poll(interval * 1000)
            except OSError:
                return
            if any(ev & (select.POLLERR | select.POLLHUP) for _, ev in events):
                out._gone()
                return

    threading.Thread(target=loop, name="lkwedge-stdout-reader", daemon=True).start()

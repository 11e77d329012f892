"""Run a scan in a forked child while this process does something else (``report`` imports pandas,
about 0.4 s, while the logs are read on the other core).

The child runs the very function the parent would have run and sends back its result (or the
exception it raised) pickled through a pipe; the parent gets exactly what it would have computed. If
the child dies without an answer, the parent runs the function itself. Without ``os.fork`` (Windows)
the function simply runs when its result is asked for.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
from collections.abc import Callable
from typing import Generic, TypeVar

from lkwedge.detect.split import fork_safe

T = TypeVar("T")


class Pending(Generic[T]):
    def __init__(self, work: Callable[[], T]) -> None:
        self._work = work
        self._pid: int | None = None
        self._reader: int | None = None
        if hasattr(os, "fork") and fork_safe():
            self._start()

    def _start(self) -> None:
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                os.close(reader)
                try:
                    answer: tuple[bool, object] = (True, self._work())
                except Exception as exc:
                    answer = (False, exc)
                payload = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(writer, "wb") as pipe:
                    pipe.write(payload)
                code = 0
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(writer)
        self._pid, self._reader = pid, reader

    def cancel(self) -> None:
        """Stop the child if its result was never asked for (the parent failed or was interrupted)."""
        if self._pid is not None:
            with contextlib.suppress(OSError):
                os.kill(self._pid, signal.SIGKILL)
                os.waitpid(self._pid, 0)
        if self._reader is not None:
            with contextlib.suppress(OSError):
                os.close(self._reader)
        self._pid = self._reader = None

    def result(self) -> T:
        """The work's result (raising what it raised)."""
        if self._pid is None or self._reader is None:
            return self._work()
        with os.fdopen(self._reader, "rb") as pipe:
            payload = pipe.read()
        _, status = os.waitpid(self._pid, 0)
        self._pid = self._reader = None
        try:
            ok, value = pickle.loads(payload) if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 \
                else (None, None)
        except (pickle.UnpicklingError, EOFError, AttributeError, ValueError):
            ok = None
        if ok is None:  # the child died without an answer: do the work here
            return self._work()
        if not ok:
            raise value  # type: ignore[misc]
        return value  # type: ignore[return-value]

"""Leave without tearing the interpreter down: `lkwedge`'s console script ends here.

Python's own shutdown frees every module and object one by one: 11-12 ms after a 1M-line scan, about
8 % of the whole run (benchmarks/RESULTS.md). Nothing lkwedge still holds at that point needs it: each
output file is closed where it is written, the split child has been waited for and the spool is an
unnamed file. So, when no other thread is left to join, the exit handlers run (logging, weakref
finalizers, a coverage tool's save...), both standard streams are flushed, and the process ends with
``os._exit``. Anything unusual (another thread still alive, a non-integer exit code, a failing flush)
takes Python's normal exit instead, which gives the same result more slowly; a standard stream that
was closed at start (None) is skipped.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Callable


def run_and_exit(command: Callable[[], object]) -> None:
    """Run ``command`` (a click entry point in standalone mode) and leave with its exit code."""
    try:
        command()
        code: object = 0
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code
    leave(code)


def leave(code: object) -> None:
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if not isinstance(code, int) or run_exit_handlers is None or threading.active_count() > 1:
        raise SystemExit(code)
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        if stream is None:  # started with that descriptor closed (`2>&-`): nothing to flush
            continue
        try:
            stream.flush()
        except SystemExit as exc:  # lkwedge's pipe-safe stdout: the results could not be written
            code = exc.code if isinstance(exc.code, int) else 2
        except Exception:  # anything else: as the interpreter's own exit would report it (e.g. 120)
            raise SystemExit(code) from None
    os._exit(code)

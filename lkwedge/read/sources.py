"""Saved inputs for `scan`, `check` and `report`: which files (or stdin), checked before any is read.

Reading them is `lkwedge.read.framing`; live following (tail -F) is `lkwedge.live.follow`.
"""

from __future__ import annotations

import os
import stat

import msgspec

from lkwedge.errors import InputError

STDIN_NAME = "<stdin>"


class Input(msgspec.Struct, frozen=True):
    name: str  # as the user gave it; "<stdin>" for "-"
    path: str | None
    mtime: float | None
    size: int | None  # bytes on disk (compressed size for .gz), for progress


def describe(path: str) -> Input:
    if path == "-":
        return Input(STDIN_NAME, None, None, None)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISFIFO(st.st_mode)):  # a named pipe is a fine input
        raise InputError(f"not a regular file: {path}")
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read {path}: permission denied")
    return Input(path, path, st.st_mtime, st.st_size)

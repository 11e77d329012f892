"""Saved inputs for `scan`, `check` and `report`: files, gzip files and stdin, read as text.

Live following (tail -F semantics) lives in `lkwedge.live.follow`.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

from lkwedge.errors import InputError

STDIN_NAME = "<stdin>"


@dataclass(frozen=True, slots=True)
class Input:
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


@contextmanager
def open_text(source: Input) -> Iterator[TextIO]:
    """Open an input as UTF-8 text; undecodable bytes become U+FFFD rather than errors."""
    if source.path is None:
        stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace", newline="")
        try:
            yield stream
        finally:
            stream.detach()
        return
    try:
        raw = open(source.path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError(f"cannot read {source.path}: {exc.strerror}") from None
    try:
        magic = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        binary = gzip.GzipFile(fileobj=raw) if magic == b"\x1f\x8b" else raw
        with io.TextIOWrapper(binary, encoding="utf-8", errors="replace", newline="") as text:
            yield text
    except (gzip.BadGzipFile, EOFError) as exc:
        raise InputError(f"cannot read {source.path}: damaged gzip data ({exc})") from None
    finally:
        raw.close()


def position(stream: TextIO) -> int | None:
    """Bytes consumed from disk so far (for progress bars), when knowable."""
    buffer = getattr(stream, "buffer", None)
    raw = getattr(buffer, "fileobj", buffer)  # GzipFile keeps the underlying file in .fileobj
    try:
        return raw.tell() if raw is not None else None
    except (OSError, ValueError):
        return None

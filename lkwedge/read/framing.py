"""Framing: bytes → physical lines, the same for every way a log arrives.

Every input (a file, a .gz, stdin, a followed file) is read as bytes and cut into lines here, so a
file, the same file gzipped, piped, or written to a pipe in odd-sized pieces gives the same lines:

- gzip is recognised by its magic bytes, never by the file name (``cat x.gz | lkwedge scan`` works);
- lines end at ``\\n``; a ``\\r`` before it is dropped (CRLF); bytes that are not UTF-8 become U+FFFD
  (NUL runs that copytruncate leaves are the parser's business: the record after them still counts);
- a line longer than ``max_line`` is skipped in one pass, without copying it whole, and delivered as
  the ``TOO_LONG`` placeholder so line numbers stay right and the skip is counted.

Multi-line records (Rich console wrapping, CRI partial lines, a log UI's display-time line) are
assembled one stage later, in `lkwedge.read.assemble`, because telling them apart needs the formats.
"""

from __future__ import annotations

import gzip
import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from lkwedge.errors import InputError

DEFAULT_MAX_LINE = 1 << 20
CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
#: stands for a line longer than max_line (keeps line numbers right; counted as unparsed "too long")
TOO_LONG = "\x00\x00lkwedge: line too long\x00\x00"


class LineFramer:
    """Cuts a byte stream into complete lines; keeps the unfinished last line until its newline."""

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.max_line = max_line
        self._carry = b""
        self._skipping = False  # inside a line longer than max_line: drop bytes until its "\n"

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line held back."""
        return len(self._carry)

    def feed(self, data: bytes) -> list[str]:
        lines: list[str] = []
        if self._skipping:
            nl = data.find(b"\n")
            if nl < 0:
                return lines
            lines.append(TOO_LONG)
            data = data[nl + 1:]
            self._skipping = False
        buf = self._carry + data if self._carry else data
        cut = buf.rfind(b"\n")
        if cut < 0:
            self._hold(buf)
            return lines
        lines.extend(self._decode(buf[:cut]))
        self._hold(buf[cut + 1:])
        return lines

    def finish(self) -> list[str]:
        """End of input: the unfinished last line, if any, is a line too."""
        if self._skipping:
            self._skipping = False
            return [TOO_LONG]
        if not self._carry:
            return []
        rest, self._carry = self._carry, b""
        return self._decode(rest)

    def _hold(self, rest: bytes) -> None:
        if len(rest) > self.max_line:
            self._carry, self._skipping = b"", True
        else:
            self._carry = rest

    def _decode(self, block: bytes) -> list[str]:
        text = block.decode("utf-8", "replace")
        if "\r" in text:
            text = text.replace("\r\n", "\n")
            if text.endswith("\r"):
                text = text[:-1]
        lines = text.split("\n")
        if len(text) > self.max_line:  # only then can one of them be too long
            lines = [TOO_LONG if len(line) > self.max_line else line for line in lines]
        return lines


def is_gzip(head: bytes) -> bool:
    return head[:2] == GZIP_MAGIC


@contextmanager
def open_binary(path: str | None, label: str) -> Iterator[BinaryIO]:
    """A file (``path``) or stdin (``None``) as bytes, gunzipped when it starts with gzip's magic."""
    if path is None:
        raw: BinaryIO = sys.stdin.buffer
        owned = False
    else:
        try:
            raw = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise InputError(f"cannot read {label}: {exc.strerror}") from None
        owned = True
    try:
        peek = getattr(raw, "peek", None)
        head = peek(2)[:2] if peek is not None else b""
        yield gzip.GzipFile(fileobj=raw) if is_gzip(head) else raw  # type: ignore[misc]
    finally:
        if owned:
            raw.close()


def read_chunks(binary: BinaryIO, label: str, size: int = CHUNK) -> Iterator[bytes]:
    """Blocks of bytes until end of input; a damaged gzip stream is an input error, not a traceback."""
    try:
        while True:
            data = binary.read(size)
            if not data:
                return
            yield data
    except (gzip.BadGzipFile, EOFError, OSError, io.UnsupportedOperation) as exc:
        raise InputError(f"cannot read {label}: {_why(exc)}") from None


def _why(exc: BaseException) -> str:
    if isinstance(exc, gzip.BadGzipFile | EOFError):
        return f"damaged gzip data ({exc})"
    return getattr(exc, "strerror", None) or str(exc)


class Gunzip:
    """Incremental gunzip for a stream that starts with gzip's magic (stdin, a followed .gz file);
    concatenated members (``cat a.gz b.gz``) are read one after another."""

    def __init__(self) -> None:
        import zlib

        self._zlib = zlib
        self._d = zlib.decompressobj(wbits=31)

    def feed(self, data: bytes) -> bytes:
        out = []
        while data:
            try:
                out.append(self._d.decompress(data))
            except self._zlib.error as exc:
                raise InputError(f"damaged gzip data ({exc})") from None
            data = self._d.unused_data
            if data or self._d.eof:
                self._d = self._zlib.decompressobj(wbits=31)
        return b"".join(out)

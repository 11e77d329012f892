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


TOO_LONG_LINE = TOO_LONG.encode() + b"\n"


class LineFramer:
    """Cuts a byte stream into blocks of complete lines; keeps the unfinished last line until its newline.

    Blocks are what the fast reader works on (bytes, never split into lines); `feed`/`finish` give the
    same lines decoded, for readers that want them one by one.
    """

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.max_line = max_line
        self._carry = b""
        self._skipping = False  # inside a line longer than max_line: drop bytes until its "\n"

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line held back."""
        return len(self._carry)

    def feed_block(self, data: bytes) -> bytes:
        """The complete lines that ``data`` finishes, each ending in ``\\n`` (one new bytes object)."""
        return b"".join(buf[start:end] for buf, start, end in self.feed_spans(data))

    def feed_spans(self, data: bytes) -> list[tuple[bytes, int, int]]:
        """The complete lines that ``data`` finishes, as (buffer, start, end) spans of whole lines each
        ending in ``\\n``, mostly ``data`` itself (nothing copied); a line longer than max_line becomes
        `TOO_LONG_LINE`. Linear: a long line is never copied or searched twice."""
        out: list[tuple[bytes, int, int]] = []
        start = 0
        if self._skipping:
            nl = data.find(b"\n")
            if nl < 0:
                return out
            out.append((TOO_LONG_LINE, 0, len(TOO_LONG_LINE)))
            start = nl + 1
            self._skipping = False
        cut = data.rfind(b"\n", start)
        if cut < 0:
            size = len(self._carry) + len(data) - start
            self._hold(self._carry + data[start:] if size <= self.max_line else None)
            return out
        if self._carry:
            first = data.find(b"\n", start)
            line = TOO_LONG_LINE if len(self._carry) + first - start > self.max_line \
                else self._carry + data[start:first + 1]
            out.append((line, 0, len(line)))
            start, self._carry = first + 1, b""
        if cut + 1 - start > self.max_line:  # only then can a line inside it be too long
            body = self._cut_long(data[start:cut + 1])
            out.append((body, 0, len(body)))
        elif cut + 1 > start:
            out.append((data, start, cut + 1))
        rest = len(data) - cut - 1
        self._hold(data[cut + 1:] if rest <= self.max_line else None)
        return out

    def finish_block(self) -> bytes:
        """End of input: the unfinished last line, if any, is a line too."""
        if self._skipping:
            self._skipping = False
            return TOO_LONG_LINE
        rest, self._carry = self._carry, b""
        return rest + b"\n" if rest else b""

    def feed(self, data: bytes) -> list[str]:
        return split_lines(self.feed_block(data))

    def finish(self) -> list[str]:
        return split_lines(self.finish_block())

    def _hold(self, rest: bytes | None) -> None:
        if rest is None:
            self._carry, self._skipping = b"", True
        else:
            self._carry = rest

    def _cut_long(self, body: bytes) -> bytes:
        lines = body.split(b"\n")
        return b"\n".join(TOO_LONG.encode() if len(line) > self.max_line else line for line in lines)


def split_lines(block: bytes) -> list[str]:
    """A block of complete lines as text lines (CRLF ends dropped, bad UTF-8 as U+FFFD)."""
    if not block:
        return []
    text = block.decode("utf-8", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    lines.pop()  # the block ends with "\n"
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
        if is_gzip(head):
            import gzip  # only for gzip input (start-up)

            yield gzip.GzipFile(fileobj=raw)  # type: ignore[misc]
        else:
            yield raw
    finally:
        if owned:
            raw.close()


def read_chunks(binary: BinaryIO, label: str, size: int = CHUNK) -> Iterator[bytes]:
    """Blocks of bytes until end of input; a damaged gzip stream is an input error, not a traceback."""
    while data := read_some(binary, label, size):
        yield data


def read_some(binary: BinaryIO, label: str, size: int) -> bytes:
    """Up to ``size`` bytes (b"" at the end); a damaged gzip stream is an input error, not a traceback."""
    try:
        return binary.read(size)
    except (EOFError, OSError, io.UnsupportedOperation) as exc:  # gzip.BadGzipFile is an OSError
        raise InputError(f"cannot read {label}: {_why(exc)}") from None


def read_lines(path: str | None, label: str, max_line: int = DEFAULT_MAX_LINE) -> Iterator[str]:
    """An input's lines, framed exactly as `scan` frames them (for tools that want every line)."""
    framer = LineFramer(max_line)
    with open_binary(path, label) as binary:
        for data in read_chunks(binary, label):
            yield from framer.feed(data)
    yield from framer.finish()


def _why(exc: BaseException) -> str:
    if isinstance(exc, EOFError) or is_gzip_file(exc, "BadGzipFile"):
        return f"damaged gzip data ({exc})"
    return getattr(exc, "strerror", None) or str(exc)


def is_gzip_file(thing: object, kind: str = "GzipFile") -> bool:
    """Whether ``thing`` is a ``gzip.GzipFile`` (or another ``gzip`` class), without importing gzip:
    it cannot be one unless a gzip input was opened."""
    gzip = sys.modules.get("gzip")
    return gzip is not None and isinstance(thing, getattr(gzip, kind))


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

"""The prefilter: which lines of a block of bytes deserve a close look, in a few passes of C code.

One pass of a compiled multi-literal matcher (Aho-Corasick, `ahocorasick-rs`, which searches GB/s and
releases the GIL) finds every pattern literal in the block; the lines holding one are candidates.
A second automaton (or, where most lines start with a letter, a count of the compose prefixes seen in
the first lines, else a regular expression) finds the lines whose start fits none of the known record
shapes: those are the only ones that may be unparsed.
Everything else is counted (StringZilla's SIMD count: 1.5x ``bytes.count``). Lines are never split
out of the block, and only candidate lines are ever decoded.

`block_facts` does all of that for one block without any state of the stream, so it can run anywhere
(`lkwedge.detect.split` runs it in a child process); `Detector` then examines the candidates in order.
"""

from __future__ import annotations

import ahocorasick_rs
import msgspec
import stringzilla

from lkwedge import lazyre
from lkwedge.detect.patterns import PatternSet
from lkwedge.read.formats import unparsed_reason
from lkwedge.read.framing import TOO_LONG

TAIL_LINES = 64  # the end of a one-record-per-line input is searched this far back for its last time
TOO_LONG_BYTES = TOO_LONG.encode()

#: a compose-style wrapper ("svc  | "); not \s: a wrapper never spans two lines
_WRAPPER_SHAPE = rb"[A-Za-z][\w.-]*[ \t]+\| "
#: a line start that fits a known shape: a bracket, JSON, digit, indentation, escape, CR or a blank line,
#: or a known letter-first wrapper (compose, journald "Jan 30 18:24:43", Cloud Logging, basicConfig)
_KNOWN_START = (rb"[\[{0-9 \t\r\x1b\n]"
                rb"|" + _WRAPPER_SHAPE +
                rb"|[A-Z][a-z]{2} +\d{1,2} \d\d:"
                rb"|(?:DEFAULT|DEBUG|INFO|NOTICE|WARNING|ERROR|CRITICAL|ALERT|EMERGENCY) \d{4}-"
                rb"|(?:CRITICAL|ERROR|WARNING|INFO|DEBUG):[\w.]+:")
# "\n" first, so the regex engine jumps from newline to newline instead of trying every position
_ODD_AFTER_NEWLINE = lazyre.compile_bytes(rb"\n(?!" + _KNOWN_START + rb")")
_KNOWN_AT_START = lazyre.compile_bytes(_KNOWN_START)
#: bytes that start a known shape on their own (the first alternative of _KNOWN_START)
_KNOWN_FIRST_BYTES = frozenset(b"[{0123456789 \t\r\x1b\n")
#: a sample with more lines than this share starting with another byte (letter-first wrappers) is read
#: with the regex: the automaton would report nearly every line
ODD_SHARE_FOR_REGEX = 0.02
#: the wrappers of `wrapper_prefixes`, by the very shape _KNOWN_START knows: a line starting with one fits
_WRAPPER = lazyre.compile_bytes(_WRAPPER_SHAPE)
MAX_WRAPPERS = 3
_JOB_ID = lazyre.compile_bytes(rb'"job_id": ?"([^"\\]*)"')


class Prefilter:
    def __init__(self, patterns: PatternSet) -> None:
        literals = list(patterns.literals)
        # A search is its SIMD prefilter's speed whatever the automaton behind it; the contiguous NFA is
        # the quickest to build (0.09 ms against 0.5 ms for the default DFA: every run pays it).
        self._automaton = ahocorasick_rs.BytesAhoCorasick(
            [literal.encode() for literal in literals], matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_FIRST,
            implementation=ahocorasick_rs.Implementation.ContiguousNFA)
        roles: dict[str, set[str]] = {}
        for pattern in patterns.patterns:
            roles.setdefault(pattern.literal, set()).add(pattern.role)
        self._activity_only = [roles[literal] == {"activity"} for literal in literals]
        # a newline followed by a byte that cannot start a known shape: a second automaton, as fast as
        # the first and, like it, searching without the GIL (the regex takes about twice as long). The two
        # stay apart: one automaton holding both loses its SIMD prefilter (Teddy takes at most 64
        # patterns) and was 1.7x slower.
        self._odd_automaton = ahocorasick_rs.BytesAhoCorasick(
            [b"\n" + bytes([c]) for c in range(256) if c not in _KNOWN_FIRST_BYTES],
            matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_FIRST)

    def odd_line_starts(self, buf: bytes, start: int, end: int, by_automaton: bool,
                        wrappers: tuple[bytes, ...] = (), lines: int = -1) -> list[int]:
        """Offsets of the lines of ``buf[start:end]`` (whole lines, each ending in a newline) whose start
        fits no known record shape: the only lines that may be unparsed without being examined. Every
        way gives the same list; the automaton is faster unless most lines start with a letter. Then
        ``wrappers`` (`wrapper_prefixes`, each after its newline) may settle it by counting: when all
        ``lines`` (the block's newline count) but the first start with one of them, only the first
        line can be odd (a SIMD count per wrapper, 5x faster than the regex); otherwise the regex."""
        found = [] if _KNOWN_AT_START.match(buf, start, end) else [start]
        if wrappers and lines >= 0 and \
                sum(stringzilla.count(buf, wrapper, start, end) for wrapper in wrappers) == lines - 1:
            return found
        if not by_automaton:  # the block's last newline starts no line
            found.extend(m.end() for m in _ODD_AFTER_NEWLINE.finditer(buf, start, end) if m.end() < end)
            return found
        known = _KNOWN_AT_START.match
        view = memoryview(buf)[start:end]
        found.extend(start + at + 1 for _, at, _ in self._odd_automaton.find_matches_as_indexes(view)
                     if not known(buf, start + at + 1, end))
        return found

    def candidates(self, buf: bytes, start: int, end: int) -> list[list]:  # type: ignore[type-arg]
        """The lines of ``buf[start:end]`` (whole lines) holding a pattern literal, in order, one entry
        per line: ``[line start, line end (its newline), only activity literals, literal indexes]``."""
        found: list[list] = []  # type: ignore[type-arg]
        line_end = -1  # the newline ending the last candidate line: a match before it is on that line
        activity_only = self._activity_only
        view = memoryview(buf)[start:end]  # searched in place: the automaton takes any buffer
        for index, begin, _end in self._automaton.find_matches_as_indexes(view):
            at = start + begin
            if at < line_end:
                last = found[-1]
                last[2] = last[2] and activity_only[index]
                last[3].add(index)
                continue
            line_start = buf.rfind(b"\n", start, at) + 1 or start
            line_end = buf.index(b"\n", at)
            found.append([line_start, line_end, activity_only[index], {index}])
        return found


def wrapper_prefixes(sample: list[str]) -> tuple[bytes, ...]:
    """The letter-first wrapper prefixes (compose ``svc    | ``) that start the lines of ``sample``,
    each after a newline, if there are at most MAX_WRAPPERS of them (each costs a count per block)."""
    found = {m.group(0) for text in sample if (m := _WRAPPER.match(text.encode("utf-8", "replace")))}
    return tuple(sorted(b"\n" + prefix for prefix in found)) if len(found) <= MAX_WRAPPERS else ()


def odd_by_automaton(sample: list[str]) -> bool:
    """Whether a stream whose first lines are ``sample`` is searched for odd line starts by the
    automaton (few lines start with a letter) or by the regex (letter-first wrappers on most lines)."""
    odd = sum(1 for text in sample if text and ord(text[0]) not in _KNOWN_FIRST_BYTES)
    return odd <= ODD_SHARE_FOR_REGEX * max(1, len(sample))


def job_id(line: bytes) -> str | None:
    """The agents JSON ``job_id`` of a raw line, found without parsing it."""
    m = _JOB_ID.search(line)
    return m.group(1).decode("utf-8", "replace") if m else None


class BlockFacts(msgspec.Struct):
    """What a run of whole lines of one-record-per-line input holds, found without any stream state."""

    lines: int
    #: (line offset from the first line, raw line, only activity literals on it, literal indexes)
    candidates: list[tuple[int, bytes, bool, set[int] | None]]
    unparsed: dict[str, int]  # reasons of the lines that are not candidates and fit no known shape
    tail: list[bytes]  # the last TAIL_LINES raw lines (or all, if fewer), oldest first

    def extend(self, later: BlockFacts) -> None:
        """Append the facts of the lines that follow these."""
        base = self.lines
        self.candidates.extend((base + at, raw, activity, found)
                               for at, raw, activity, found in later.candidates)
        for reason, count in later.unparsed.items():
            self.unparsed[reason] = self.unparsed.get(reason, 0) + count
        self.tail = (self.tail + later.tail)[-TAIL_LINES:]
        self.lines += later.lines


def block_facts(prefilter: Prefilter, buf: bytes, start: int, end: int, by_automaton: bool,
                anchor: int = -1, wrappers: tuple[bytes, ...] = ()) -> BlockFacts:
    """The facts of ``buf[start:end]`` (whole lines, each ending in a newline). ``anchor``: the index of
    a line to examine whatever it holds (the stream's first dated line), or -1. ``by_automaton`` and
    ``wrappers``: how odd line starts are looked for (`Prefilter.odd_line_starts`)."""
    candidates = prefilter.candidates(buf, start, end)
    anchor_at = _line_start(buf, start, end, anchor) if anchor >= 0 else -1
    if anchor_at >= 0 and all(c[0] != anchor_at for c in candidates):
        candidates.append([anchor_at, buf.index(b"\n", anchor_at), False, None])
        candidates.sort(key=lambda c: c[0])
    found: list[tuple[int, bytes, bool, set[int] | None]] = []
    at, position = 0, start
    count = stringzilla.count
    for line_start, line_end, activity_only, literals in candidates:
        at += count(buf, b"\n", position, line_start)
        position = line_start
        found.append((at, buf[line_start:line_end], activity_only, literals))
    lines = at + count(buf, b"\n", position, end)
    unparsed: dict[str, int] = {}
    odd = prefilter.odd_line_starts(buf, start, end, by_automaton, wrappers, lines)
    if odd:
        examined = {c[0] for c in candidates}
        for line_start in odd:
            if line_start not in examined:
                line = buf[line_start:buf.index(b"\n", line_start)]
                reason = "too long" if line == TOO_LONG_BYTES else unparsed_reason(line_text(line))
                if reason is not None:
                    unparsed[reason] = unparsed.get(reason, 0) + 1
    return BlockFacts(lines, found, unparsed, _last_lines(buf, start, end))


def line_text(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return text[:-1] if text.endswith("\r") else text


def _line_start(buf: bytes, start: int, end: int, index: int) -> int:
    """Offset of line ``index`` (0-based) of ``buf[start:end]``, or -1 past its end."""
    position = start
    for _ in range(index):
        position = buf.find(b"\n", position, end) + 1
        if position <= 0 or position >= end:
            return -1
    return position


def _last_lines(buf: bytes, start: int, end: int) -> list[bytes]:
    """The last TAIL_LINES lines of ``buf[start:end]`` (oldest first), split in C from a window at the
    end that grows until it holds them all (its first piece may be cut, so it is left out)."""
    window = 16 << 10
    while True:
        begin = max(start, end - window)
        lines = buf[begin:end - 1].split(b"\n")
        if begin == start or len(lines) > TAIL_LINES:
            return lines[-TAIL_LINES:]
        window *= 4

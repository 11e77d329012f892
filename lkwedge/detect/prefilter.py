"""The prefilter: which lines of a block of bytes deserve a close look, in a few passes of C code.

One pass of a compiled multi-literal matcher (Aho-Corasick, `ahocorasick-rs`, which searches GB/s and
releases the GIL) finds every pattern literal in the block; the lines holding one are candidates.
One regular-expression pass finds the lines whose start fits none of the known record shapes: those
are the only ones that may be unparsed. Everything else is counted with ``bytes.count``. Lines are
never split out of the block, and only candidate lines are ever decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ahocorasick_rs

from lkwedge.detect.patterns import PatternSet

#: a line start that fits a known shape: a bracket, JSON, digit, indentation, escape, CR or a blank line,
#: or a known letter-first wrapper (compose "svc  | ", journald "Jan 30 18:24:43", Cloud Logging, basicConfig)
_KNOWN_START = (rb"[\[{0-9 \t\r\x1b\n]"
                rb"|[A-Za-z][\w.-]*\s+\| "
                rb"|[A-Z][a-z]{2} +\d{1,2} \d\d:"
                rb"|(?:DEFAULT|DEBUG|INFO|NOTICE|WARNING|ERROR|CRITICAL|ALERT|EMERGENCY) \d{4}-"
                rb"|(?:CRITICAL|ERROR|WARNING|INFO|DEBUG):[\w.]+:")
# "\n" first, so the regex engine jumps from newline to newline instead of trying every position
_ODD_AFTER_NEWLINE = re.compile(rb"\n(?!" + _KNOWN_START + rb")")
_KNOWN_AT_START = re.compile(_KNOWN_START)
_JOB_ID = re.compile(rb'"job_id": ?"([^"\\]*)"')


@dataclass(slots=True)
class Candidate:
    start: int  # offset of the line in the block
    activity_only: bool  # every literal on the line belongs to activity patterns only
    literals: set[int] | None = None  # indexes into PatternSet.literals seen on the line (None: unknown)


class Prefilter:
    def __init__(self, patterns: PatternSet) -> None:
        literals = list(patterns.literals)
        self._automaton = ahocorasick_rs.BytesAhoCorasick(
            [literal.encode() for literal in literals], matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_FIRST)
        roles = {literal: {p.role for p in patterns.patterns if p.literal == literal} for literal in literals}
        self._activity_only = [roles[literal] == {"activity"} for literal in literals]

    def candidates(self, buf: bytes, start: int, end: int) -> list[Candidate]:
        """The lines of ``buf[start:end]`` (whole lines) holding a pattern literal, in order, one entry
        per line, as offsets into ``buf``."""
        found: list[Candidate] = []
        last_start = -1
        activity_only = self._activity_only
        view = memoryview(buf)[start:end]  # searched in place: the automaton takes any buffer
        for index, begin, _end in self._automaton.find_matches_as_indexes(view):
            newline = buf.rfind(b"\n", start, start + begin)
            line_start = newline + 1 if newline >= 0 else start
            if line_start == last_start:
                last = found[-1]
                last.activity_only = last.activity_only and activity_only[index]
                last.literals.add(index)  # type: ignore[union-attr]
                continue
            found.append(Candidate(line_start, activity_only[index], {index}))
            last_start = line_start
        return found


def odd_line_starts(buf: bytes, start: int, end: int) -> list[int]:
    """Offsets of the lines of ``buf[start:end]`` (whole lines, each ending in a newline) whose start
    fits no known record shape: the only lines that may be unparsed without being examined."""
    found = [] if _KNOWN_AT_START.match(buf, start, end) else [start]
    found.extend(m.end() for m in _ODD_AFTER_NEWLINE.finditer(buf, start, end - 1))
    return found


def job_id(line: bytes) -> str | None:
    """The agents JSON ``job_id`` of a raw line, found without parsing it."""
    m = _JOB_ID.search(line)
    return m.group(1).decode("utf-8", "replace") if m else None

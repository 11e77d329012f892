"""Multi-line records: physical lines → records, for inputs whose records can span lines.

- Rich console rows (livekit-agents dev mode) wrap long messages onto indented continuation lines and
  print the record's extras JSON on the next line(s); a row is held until the next row starts.
- Kubernetes CRI splits a long record into ``P`` (partial) lines ended by an ``F`` line.
- A log UI's copy puts a display-time line above each record; it becomes that record's wrapper time.

One-record-per-line inputs never come here (see `lkwedge.detect.engine`): every line is a record.
"""

from __future__ import annotations

from collections import Counter

import msgspec

from lkwedge.read.formats import Record, apply_extra_line, parse_line, split_forwarded

MAX_HELD_JSON = 4096


class Assembled(msgspec.Struct):
    line: int  # first physical line of the record
    text: str
    record: Record


class Assembler(msgspec.Struct):
    unparsed: Counter[str] = msgspec.field(default_factory=Counter)
    _held: Assembled | None = None  # a Rich row that may continue on the next lines
    _held_json: str | None = None  # its extras JSON, wrapped over several lines
    _partial: str | None = None  # CRI "P" pieces so far
    _partial_line: int = 0
    _display: Record | None = None  # a display-time line waiting for its record

    def push(self, lineno: int, text: str) -> list[Assembled]:
        out: list[Assembled] = []
        if self._partial is not None or " P " in text[:48]:
            joined = self._join_cri_partial(lineno, text, out)
            if joined is None:
                return out
            lineno, text = joined
        record = parse_line(text)
        if record.display_time_only:
            self._display = record
            return out
        if (record.continuation or self._held_json is not None) and self._continue_held(record):
            return out
        if not record.parsed:
            self.unparsed[record.reason or "unknown format"] += 1
        out.extend(self.flush())
        self._attach_display_time(record)
        if record.rich:  # Rich rows may wrap onto the following lines: hold until we know
            self._held = Assembled(lineno, text, record)
            return out
        out.append(Assembled(lineno, text, record))
        return out

    def flush(self) -> list[Assembled]:
        """Release a held Rich row (the next row started, the input ended, or a live input went quiet)."""
        if self._held is None:
            return []
        held, self._held, self._held_json = self._held, None, None
        return [held]

    def finish(self) -> list[Assembled]:
        out = self.flush()
        if self._partial is not None:
            text, self._partial = self._partial, None
            record = parse_line(text)
            if not record.parsed:
                self.unparsed[record.reason or "unknown format"] += 1
            out.append(Assembled(self._partial_line, text, record))
        return out

    def _attach_display_time(self, record: Record) -> None:
        display, self._display = self._display, None
        if display is None:
            return
        if not record.has_time():
            record.take_time(display, from_wrapper=True)
        elif record.time is not None and record.time.tzinfo is not None:
            # the viewer's zone-less time beside the record's own: the clock learns the offset
            if display.time is not None and display.time.tzinfo is None:
                record.wrapper_time_of_day = display.time.time()
            elif display.time_of_day is not None:
                record.wrapper_time_of_day = display.time_of_day

    def _join_cri_partial(self, lineno: int, text: str, out: list[Assembled]) -> tuple[int, str] | None:
        """Kubernetes CRI: "<time> stdout P <piece>" lines continue until a "F" line."""
        record_is_partial = " stdout P " in text[:48] or " stderr P " in text[:48]
        _head, sep, piece = text.partition(" P " if record_is_partial else " F ")
        if self._partial is None:
            if not record_is_partial:
                return lineno, text
            self._partial, self._partial_line = text, lineno  # keep the prefix of the first piece
            return None
        if not sep:  # not CRI after all: release what we have and go on
            joined, self._partial = self._partial, None
            record = parse_line(joined)
            if not record.parsed:
                self.unparsed[record.reason or "unknown format"] += 1
            out.append(Assembled(self._partial_line, joined, record))
            return lineno, text
        self._partial += piece
        if record_is_partial:
            return None
        joined, self._partial = self._partial, None
        return self._partial_line, joined.replace(" stdout P ", " stdout F ", 1).replace(
            " stderr P ", " stderr F ", 1)

    def _continue_held(self, record: Record) -> bool:
        held = self._held
        if held is None:
            return False
        piece = record.message if record.continuation else record.message.strip()
        if self._held_json is not None:
            self._held_json += piece
            if apply_extra_line(held.record, self._held_json) or len(self._held_json) > MAX_HELD_JSON:
                self._held_json = None
            return True
        if piece.startswith("{"):
            if not apply_extra_line(held.record, piece):
                self._held_json = piece
            return True
        if not record.continuation:
            return False
        held.record.message = f"{held.record.message.rstrip()} {piece}"
        split_forwarded(held.record)  # a wrapped "target:line:module - msg" is only complete now
        held.text = f"{held.text.rstrip()} {piece}"
        return True

"""Clock: a record's time, as one rule for every format.

A record's time is its own zoned stamp when it has one. A naive stamp (no zone) is read in ``--tz``
(default UTC). A wrapper's zone-less time (the journald prefix in the host's local time, a log UI's
display-time line in the viewer's zone) never moves the clock of records that carry their own time:
the wrapper's offset is learned from records that carry both, and applied to wrapper-only records.
Time-only lines take their date from the stream (the latest accepted time, else ``--date``, the file's
modification time, or today); a time more than 12 h before the clock is the next day (midnight
rollover). A journald date without a year takes the year that puts it nearest the clock.

The stream clock is the latest *plausible* time seen: it never moves back (an earlier time is
counted as out of order), and a time more than ``max_jump`` away from it, forward or back, is held:
it moves the clock only when the next timed record agrees with it (a process that was really
silent for hours); otherwise it was a glitch (a typo in a year), counted in ``clock_jumps`` and
ignored. No time arithmetic here can raise: an impossible date is a record without a time.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from lkwedge.errors import InputError

UTC = dt.UTC
HALF_DAY = dt.timedelta(hours=12)
HALF_YEAR = dt.timedelta(days=183)
DEFAULT_MAX_JUMP = 3600.0
MIN_TIME = dt.datetime(1971, 1, 1, tzinfo=UTC)
MAX_TIME = dt.datetime(9000, 1, 1, tzinfo=UTC)


def parse_tz(text: str) -> dt.tzinfo:
    """``UTC``, ``+02:00``/``-0530`` or an IANA name such as ``Europe/Berlin``."""
    value = text.strip()
    if value.upper() in ("UTC", "Z", "GMT"):
        return UTC
    if value[:1] in "+-":
        digits = value[1:].replace(":", "")
        if digits.isdigit() and len(digits) in (2, 4):
            hours, minutes = int(digits[:2]), int(digits[2:] or 0)
            if hours <= 14 and minutes < 60:
                sign = -1 if value[0] == "-" else 1
                return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
        raise InputError(f"bad --tz offset {text!r} (use +HH:MM, -HHMM, UTC or a zone name)")
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # only for a zone name (start-up)

    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"unknown time zone {text!r} (use UTC, +HH:MM or a zone name like Europe/Berlin)") \
            from None


class Stamp(msgspec.Struct):
    """A time as the line printed it, before the clock resolves it."""

    when: dt.datetime | None = None  # date and time; naive when the line gave no zone
    time_of_day: dt.time | None = None  # time only (date from context), or with month_day
    month_day: tuple[int, int] | None = None  # journald short: month and day, no year
    from_wrapper: bool = False  # a wrapper's (host or viewer) zone-less time, not the record's own
    wrapper_time_of_day: dt.time | None = None  # a wrapper's local time beside the record's own time


class ClockStats(msgspec.Struct):
    out_of_order: int = 0
    clock_jumps: int = 0
    bad_times: int = 0
    naive: int = 0
    zoned: int = 0
    wrapper_offset: dt.timedelta | None = None


class StreamClock(msgspec.Struct):
    """One input's clock (see the module docstring)."""

    tz: dt.tzinfo = UTC
    base_date: dt.date | None = None  # --date
    mtime: float | None = None
    max_jump: float = DEFAULT_MAX_JUMP
    now: dt.datetime | None = None
    pending_jump: dt.datetime | None = None
    stats: ClockStats = msgspec.field(default_factory=ClockStats)
    date_source: str | None = None  # set when a time-only line first needed a date from outside the log
    _peeking: bool = False

    # -- resolving ---------------------------------------------------------------------------------

    def resolve(self, stamp: Stamp | None, peek: bool = False) -> dt.datetime | None:
        """The stamp as an aware UTC time (or None), without moving the clock. ``peek``: change
        nothing at all (no counts, no learned offset, no date note)."""
        if stamp is None:
            return None
        self._peeking = peek
        try:
            return self._resolve(stamp)
        except (OverflowError, ValueError, OSError):
            if not peek:
                self.stats.bad_times += 1
            return None

    def _resolve(self, stamp: Stamp) -> dt.datetime | None:
        when = stamp.when
        if when is not None:
            if when.tzinfo is not None:
                if stamp.wrapper_time_of_day is not None and not self._peeking:
                    self._learn_offset(when, stamp.wrapper_time_of_day)
                self.stats.zoned += not self._peeking
                return _checked(when.astimezone(UTC))
            return _checked(self._localize(when, stamp.from_wrapper))
        tod = stamp.time_of_day
        if tod is None:
            return None
        if stamp.month_day is not None:
            return _checked(self._with_year(stamp.month_day, tod, stamp.from_wrapper))
        base = self._base_date(stamp.from_wrapper)
        when = self._localize(dt.datetime.combine(base, tod), stamp.from_wrapper)
        if self.now is not None and when < self.now - HALF_DAY:
            when += dt.timedelta(days=1)  # midnight rollover
        return _checked(when)

    def _localize(self, naive: dt.datetime, from_wrapper: bool) -> dt.datetime:
        self.stats.naive += not self._peeking
        offset = self.stats.wrapper_offset if from_wrapper else None
        if offset is not None:
            return (naive - offset).replace(tzinfo=UTC)
        return naive.replace(tzinfo=self.tz).astimezone(UTC)

    def _learn_offset(self, own: dt.datetime, wrapper: dt.time) -> None:
        own_utc = own.astimezone(UTC)
        minutes = (wrapper.hour * 60 + wrapper.minute) - (own_utc.hour * 60 + own_utc.minute)
        minutes = (minutes + 720) % 1440 - 720  # to [-12 h, +12 h)
        self.stats.wrapper_offset = dt.timedelta(minutes=round(minutes / 15) * 15)

    def _local_now(self, from_wrapper: bool) -> dt.datetime | None:
        if self.now is None:
            return None
        offset = self.stats.wrapper_offset if from_wrapper else None
        if offset is not None:
            return (self.now + offset).replace(tzinfo=None)
        return self.now.astimezone(self.tz).replace(tzinfo=None)

    def _base_date(self, from_wrapper: bool) -> dt.date:
        local_now = self._local_now(from_wrapper)
        if local_now is not None:
            return local_now.date()
        return self._outside_date()

    def _outside_date(self) -> dt.date:
        if self.base_date is not None:
            source, base = "--date", self.base_date
        elif self.mtime is not None:
            base = dt.datetime.fromtimestamp(self.mtime, self.tz).date()
            source = "the file's modification time"
        else:
            base, source = dt.datetime.now(self.tz).date(), "today's date"
        if self.date_source is None and not self._peeking:
            self.date_source = f"{base.isoformat()} from {source}"
        return base

    def _with_year(self, month_day: tuple[int, int], tod: dt.time, from_wrapper: bool) -> dt.datetime:
        """journald's short format has no year: take the one that puts the date nearest the clock
        (Dec 31 → Jan 1 moves to the next year); a Feb 29 only exists in a leap year."""
        local_now = self._local_now(from_wrapper)
        anchor = local_now or dt.datetime.combine(self._outside_date(), dt.time(23, 59, 59))
        month, day = month_day
        best: dt.datetime | None = None
        for year in (anchor.year, anchor.year - 1, anchor.year + 1, *range(anchor.year - 4, anchor.year + 5)):
            try:
                candidate = dt.datetime(year, month, day, tod.hour, tod.minute, tod.second, tod.microsecond)
            except ValueError:
                continue
            if local_now is None and candidate > anchor + dt.timedelta(days=1):
                continue  # the first line of a file cannot be after its last write
            if best is None or abs(candidate - anchor) < abs(best - anchor):
                best = candidate
            if abs(candidate - anchor) <= HALF_YEAR:
                break
        if best is None:
            raise ValueError(f"no such date: month {month} day {day}")
        return self._localize(best, from_wrapper)

    # -- the clock ---------------------------------------------------------------------------------

    def accept(self, when: dt.datetime | None) -> tuple[dt.datetime | None, bool]:
        """Offer a resolved time to the clock. Returns (the time the record keeps, whether it was a
        rejected jump). A plausible time is kept even when out of order; the clock never moves back."""
        if when is None:
            return None, False
        if self.now is None:
            self.now = when
            return when, False
        if abs((when - self.now).total_seconds()) > self.max_jump:
            pending = self.pending_jump
            if pending is not None and abs((when - pending).total_seconds()) <= self.max_jump:
                self.pending_jump = None  # two records agree: the jump was real (a long silence)
                self.now = max(pending, when)
                return when, False
            if pending is not None:
                self.stats.clock_jumps += 1  # the previous outlier had no company: a glitch
            self.pending_jump = when
            return None, True
        if self.pending_jump is not None:
            self.pending_jump = None
            self.stats.clock_jumps += 1
        if when < self.now:
            self.stats.out_of_order += 1
        else:
            self.now = when
        return when, False

    def close(self) -> None:
        """End of input: an outlier nothing confirmed was a glitch."""
        if self.pending_jump is not None:
            self.pending_jump = None
            self.stats.clock_jumps += 1

    def mixed_zones(self) -> str | None:
        offset = self.stats.wrapper_offset
        if offset:
            minutes = int(offset.total_seconds() // 60)
            hours, rest = divmod(abs(minutes), 60)
            return (f"wrapper times are UTC{'-' if minutes < 0 else '+'}{hours:02d}:{rest:02d} "
                    "(learned from records that carry their own zoned time)")
        if self.stats.naive and self.stats.zoned:
            return "zoned and zone-less times mixed; zone-less ones read as " + _tz_name(self.tz)
        return None


def _checked(when: dt.datetime) -> dt.datetime:
    if not MIN_TIME <= when <= MAX_TIME:
        raise ValueError("time out of range")
    return when


def _tz_name(tz: dt.tzinfo) -> str:
    return "UTC" if tz is UTC else str(tz)

"""Which LiveKit SDK wrote this log: python `livekit` (rtc) / livekit-ffi version ranges from evidence.

Evidence, all from lines the detector already examines (never the hot path):
- the Rust source line the Python forwarder writes into each message (``target:LINE:module - msg``),
  looked up in the line table of ``patterns/fingerprints*.toml`` (one row per release band);
- the attempt base (0-based up to ffi 0.12.57, 1-based from 0.12.58);
- ``initializing ffi server v…`` (the exact ffi version);
- wording that exists only in some versions (``[[vocab]]`` rows of the same files).
Every ``patterns/fingerprints*.toml`` is loaded, so a new release band is a data change.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from lkwedge.detect.patterns import builtin_pack_dir
from lkwedge.errors import InputError

Version = tuple[int, ...]
LOW: Version = (0,)
HIGH: Version = (999,)

#: pattern id -> column of the line table
PATTERN_COLUMN = {
    "session-close": "close", "resume-attempt": "resume_attempt", "resume-failed": "resume_failed",
    "restart-attempt": "restart_attempt", "restart-failed": "restart_failed", "give-up": "give_up",
    "recovered": "recovered", "room-disconnected": "room_disconnected", "pc-state-failed": "pc_failed",
}
COLUMNS = tuple(dict.fromkeys(PATTERN_COLUMN.values()))
# "livekit::rtc_engine:474:livekit::rtc_engine - " (Rich may cut the module path: "livekit::r…")
_FORWARDED_LINE = re.compile(r"\b(livekit[\w:]*):(\d{2,5}):[\w:…]* - ")
_FFI_INIT = re.compile(r"initializing ffi server v(\d+(?:\.\d+)+)")
#: the first release where the engine always emits Disconnected after giving up (rust-sdks #1096)
FFI_DISCONNECT_FIX: Version = (0, 12, 59)
RTC_DISCONNECT_FIX: Version = (1, 1, 9)


def parse_version(text: str) -> Version:
    try:
        return tuple(int(part) for part in text.strip().lstrip("v").split("."))
    except ValueError:
        raise InputError(f"bad version {text!r} in a fingerprint table") from None


def parse_range(text: str) -> tuple[Version, Version]:
    """``"1.0.23-1.0.25"``, ``"1.1.8"`` or ``">=0.12.71"`` → inclusive (low, high)."""
    text = text.strip()
    if text.startswith(">="):
        return parse_version(text[2:]), HIGH
    low, _, high = text.partition("-")
    return parse_version(low), parse_version(high or low)


def show(value: Version) -> str:
    return ".".join(map(str, value))


def show_range(low: Version, high: Version) -> str:
    if high == HIGH:
        return f">={show(low)}"
    if low == LOW:
        return f"<={show(high)}"
    return show(low) if low == high else f"{show(low)}-{show(high)}"


@dataclass(frozen=True, slots=True)
class Band:
    rtc: tuple[Version, Version]
    ffi: tuple[Version, Version]
    lines: dict[str, frozenset[int]]


@dataclass(frozen=True, slots=True)
class VocabRule:
    regex: re.Pattern[str]
    ffi: tuple[Version, Version]
    note: str


@dataclass(frozen=True, slots=True)
class Table:
    bands: tuple[Band, ...]
    vocab: tuple[VocabRule, ...]


def _line_set(values: object, where: str) -> frozenset[int]:
    if not isinstance(values, list):
        raise InputError(f"{where}: expected a list of line numbers")
    found: set[int] = set()
    for value in values:
        if isinstance(value, int):
            found.add(value)
        elif isinstance(value, str) and "-" in value:
            low, high = (int(x) for x in value.split("-", 1))
            found.update(range(low, high + 1))
        else:
            raise InputError(f"{where}: bad line number {value!r}")
    return frozenset(found)


def load_table(paths: Iterable[Path]) -> Table:
    bands: list[Band] = []
    vocab: list[VocabRule] = []
    for path in paths:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
            raise InputError(f"cannot read fingerprint table {path}: {exc}") from None
        for i, row in enumerate(data.get("band", [])):
            where = f"{path.name} band {i + 1}"
            try:
                lines = {col: _line_set(row[col], f"{where} {col}") for col in COLUMNS if col in row}
                bands.append(Band(parse_range(row["rtc"]), parse_range(row["ffi"]), lines))
            except (KeyError, ValueError) as exc:
                raise InputError(f"{where}: {exc}") from None
        for i, row in enumerate(data.get("vocab", [])):
            try:
                rule = VocabRule(re.compile(row["regex"]), parse_range(row["ffi"]), str(row.get("note", "")))
                vocab.append(rule)
            except (KeyError, re.error) as exc:
                raise InputError(f"{path.name} vocab {i + 1}: {exc}") from None
    return Table(tuple(bands), tuple(vocab))


@cache
def builtin_table() -> Table:
    return load_table(sorted(builtin_pack_dir().glob("fingerprints*.toml")))


@dataclass(slots=True)
class SdkGuess:
    """What the evidence so far says; ``None`` bounds mean "no evidence"."""

    rtc: tuple[Version, Version] | None
    ffi: tuple[Version, Version] | None
    basis: list[str]
    conflicts: list[str] = field(default_factory=list)

    @property
    def known(self) -> bool:
        return self.rtc is not None or self.ffi is not None

    def label(self) -> str:
        if not self.known:
            return "SDK version unknown"
        ffi = "livekit-ffi ?" if self.ffi is None else f"livekit-ffi {show_range(*self.ffi)}"
        return ffi if self.rtc is None else f"{ffi} (python livekit {show_range(*self.rtc)})"

    def disconnects_after_give_up(self) -> bool | None:
        """True: the SDK closes the room after ``failed to reconnect``; False: the room stays Reconnecting
        forever (ffi < 0.12.59); None: the evidence does not say."""
        if self.ffi is not None and self.ffi[0] >= FFI_DISCONNECT_FIX:
            return True
        if self.rtc is not None and self.rtc[0] >= RTC_DISCONNECT_FIX:
            return True
        if self.ffi is not None and self.ffi[1] < FFI_DISCONNECT_FIX:
            return False
        if self.rtc is not None and self.rtc[1] < RTC_DISCONNECT_FIX:
            return False
        return None

    def ffi_at_most(self, version: Version) -> bool:
        """The log is certainly from livekit-ffi <= version (or the rtc wheel that ships it)."""
        return self.ffi is not None and self.ffi[1] <= version

    def to_dict(self) -> dict[str, object] | None:
        if not self.known:
            return None
        return {"label": self.label(),
                "rtc": None if self.rtc is None else show_range(*self.rtc),
                "ffi": None if self.ffi is None else show_range(*self.ffi),
                "basis": list(self.basis), **({"conflicts": list(self.conflicts)} if self.conflicts else {})}


def _intersect(a: tuple[Version, Version], b: tuple[Version, Version]) -> tuple[Version, Version] | None:
    low, high = max(a[0], b[0]), min(a[1], b[1])
    return (low, high) if low <= high else None


def _hull(ranges: Iterable[tuple[Version, Version]]) -> tuple[Version, Version] | None:
    ranges = list(ranges)
    if not ranges:
        return None
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


class Fingerprinter:
    """Accumulates version evidence for one stream. Fed matched lines only."""

    def __init__(self, table: Table | None = None) -> None:
        self.table = table or builtin_table()
        self.bands: list[Band] | None = None  # None: no line-number evidence yet
        self.ffi: tuple[Version, Version] | None = None
        self.basis: list[str] = []
        self.conflicts: list[str] = []
        self._seen: set[str] = set()

    def observe(self, pattern_id: str, message: str, text: str, groups: dict[str, str],
                first_attempt: bool = False) -> None:
        column = PATTERN_COLUMN.get(pattern_id)
        if column is not None:
            m = _FORWARDED_LINE.search(text)
            if m:
                self._line(column, int(m.group(2)))
        if pattern_id in ("resume-attempt", "restart-attempt") and "n" in groups:
            n = int(groups["n"])
            if n == 0:
                self._constrain((LOW, (0, 12, 57)), "attempts are 0-based (ffi <= 0.12.57)")
            elif n >= 10 or (first_attempt and n == 1):
                self._constrain(((0, 12, 58), HIGH), "attempts are 1-based (ffi >= 0.12.58)")
        m = _FFI_INIT.search(message)
        if m:
            exact = parse_version(m.group(1))
            self._constrain((exact, exact), f"initializing ffi server v{m.group(1)}")
        for rule in self.table.vocab:
            if rule.regex.search(message):
                self._constrain(rule.ffi, rule.note)

    def _line(self, column: str, line: int) -> None:
        key = f"{column}:{line}"
        if key in self._seen:
            return
        self._seen.add(key)
        pool = self.bands if self.bands is not None else list(self.table.bands)
        matching = [b for b in pool if line in b.lines.get(column, ())]
        if not matching:
            known = any(line in b.lines.get(column, ()) for b in self.table.bands)
            self.conflicts.append(f"line :{line}: of {column} "
                                  + ("contradicts earlier lines" if known else "is not in the table"))
            return
        self.bands = matching
        self.basis.append(f":{line}: {column.replace('_', ' ')}")

    def _constrain(self, rng: tuple[Version, Version], why: str) -> None:
        if why in self._seen:
            return
        self._seen.add(why)
        new = rng if self.ffi is None else _intersect(self.ffi, rng)
        if new is None:
            self.conflicts.append(f"{why} contradicts earlier evidence")
            return
        self.ffi = new
        self.basis.append(why)

    def guess(self) -> SdkGuess:
        ffi = self.ffi
        bands = self.bands
        if bands is not None:
            band_ffi = _hull(b.ffi for b in bands)
            assert band_ffi is not None
            ffi = band_ffi if ffi is None else (_intersect(ffi, band_ffi) or ffi)
        elif ffi is not None:
            bands = [b for b in self.table.bands if _intersect(b.ffi, ffi) is not None]
            if not bands:
                return SdkGuess(None, ffi, list(self.basis), list(self.conflicts))
        if bands is None:
            return SdkGuess(None, None, list(self.basis), list(self.conflicts))
        if ffi is not None:
            bands = [b for b in bands if _intersect(b.ffi, ffi) is not None] or bands
        rtc = _hull(b.rtc for b in bands)
        if self.bands is None and rtc is not None and ffi is not None and ffi[1] == HIGH:
            rtc = (rtc[0], HIGH)  # newer than the table's last row is possible
        return SdkGuess(rtc, ffi, list(self.basis), list(self.conflicts))

"""The summary of a scan, as one typed object from the engine to every output.

`lkwedge.detect.engine.summarize` builds it from the inputs' stats; filters recount it, incidents are
counted into it, and the outputs read its fields. `Summary.to_dict()` is the one place its JSON is made
(`summary` in `scan --format json`, `report --json`...), key for key what it has always been.
"""

from __future__ import annotations

import msgspec

from lkwedge.verdicts import Verdict

#: the order of the verdict counts in the JSON summary
SUMMARY_VERDICTS = (Verdict.RECOVERED, Verdict.DISCONNECTED, Verdict.STALLED, Verdict.UNRESOLVED,
                    Verdict.GHOST)


class ReadError(msgspec.Struct, frozen=True):
    """An input that failed part-way: its lines up to ``lines`` were analysed."""

    file: str
    lines: int
    error: str

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "lines": self.lines, "error": self.error}


class Summary(msgspec.Struct):
    files: int = 0
    lines: int = 0
    unparsed_reasons: dict[str, int] = {}
    verdicts: dict[Verdict, int] = msgspec.field(default_factory=lambda: dict.fromkeys(SUMMARY_VERDICTS, 0))
    open: int = 0                 # episodes still open (watch)
    window_s: float = 20.0
    out_of_order: int = 0
    clock_jumps: int = 0
    bad_times: int = 0
    duplicates: int = 0
    unrecognised_inputs: list[str] = []
    notes: list[str] = []
    sdk: dict[str, dict[str, object] | None] = {}   # input -> its SDK guess
    read_errors: list[ReadError] = []
    filtered_out: int | None = None   # episodes a filter left out (None: no filter)
    incidents: int | None = None      # incidents among the episodes (None: not looked for)

    @property
    def unparsed(self) -> int:
        return sum(self.unparsed_reasons.values())

    @property
    def records(self) -> int:
        return self.lines - self.unparsed

    @property
    def episodes(self) -> int:
        return sum(self.verdicts.values())

    def count(self, verdict: Verdict) -> int:
        return self.verdicts.get(verdict, 0)

    @property
    def wedged(self) -> bool:
        """A stalled episode or a ghost room: scan, watch and the library's users fail on it (exit 1)."""
        return bool(self.count(Verdict.STALLED) or self.count(Verdict.GHOST))

    def to_dict(self) -> dict[str, object]:
        found: dict[str, object] = {
            "files": self.files, "lines": self.lines, "records": self.records, "unparsed": self.unparsed,
            "unparsed_reasons": dict(sorted(self.unparsed_reasons.items())), "episodes": self.episodes,
            **{str(verdict): count for verdict, count in self.verdicts.items()},
            "open": self.open, "window_s": self.window_s, "out_of_order": self.out_of_order,
            "clock_jumps": self.clock_jumps, "bad_times": self.bad_times, "duplicates": self.duplicates,
            "unrecognised_inputs": list(self.unrecognised_inputs), "notes": list(self.notes), "sdk": self.sdk,
        }
        # only when they apply, so the JSON of an unfiltered scan of readable inputs stays as it was
        if self.read_errors:
            found["read_errors"] = [error.to_dict() for error in self.read_errors]
        if self.filtered_out is not None:
            found["filtered_out"] = self.filtered_out
        if self.incidents is not None:
            found["incidents"] = self.incidents
        return found

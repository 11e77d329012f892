"""Postmortem tables: the episodes of a scan as a typed pandas DataFrame, a summary, and exports.

The worst-jobs/rooms tables and the time-of-day histogram count episodes *not recovered* (stalled,
unresolved, disconnected, ghost). An *incident* is a group of episodes of different jobs in one log that
started together (`lkwedge.detect.incidents`). Times are UTC (log time).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from lkwedge.detect.engine import ScanResult
from lkwedge.detect.episodes import Episode
from lkwedge.detect.incidents import Incident, incident_of
from lkwedge.detect.summary import Summary
from lkwedge.errors import InputError
from lkwedge.output.present import look, plural, seconds, shown_path
from lkwedge.output.render import sdk_lines
from lkwedge.safe import printable
from lkwedge.verdicts import severity

VERDICTS = ["recovered", "disconnected", "stalled", "unresolved", "ghost"]
COLUMNS = ["start", "end", "silence_s", "outcome", "verdict", "key", "job", "room", "file", "line",
           "attempts", "log_left_s", "note", "confidence", "sdk", "advice"]
WORST_N = 5


def episodes_frame(episodes: Iterable[Episode]) -> pd.DataFrame:
    """One row per episode, in scan order, with stable dtypes even when there are no episodes."""
    rows = [{
        "start": ep.start, "end": ep.end, "silence_s": ep.silence_s, "outcome": ep.outcome,
        "verdict": ep.verdict, "key": ep.key, "job": ep.job, "room": ep.room, "file": ep.file,
        "line": ep.line, "attempts": ep.attempts, "log_left_s": ep.log_left_s, "note": ep.note,
        "confidence": ep.confidence, "sdk": (ep.sdk or {}).get("label"), "advice": ep.advice or None,
    } for ep in episodes]
    df = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("start", "end"):
        df[col] = pd.to_datetime(df[col], utc=True).astype("datetime64[ns, UTC]")
    for col in ("silence_s", "log_left_s"):
        df[col] = pd.to_numeric(df[col]).astype("float64")
    for col in ("line", "attempts"):
        df[col] = df[col].astype("Int64")
    # Unknown future verdicts (e.g. "ghost") are kept, after the known ones.
    extra = sorted(set(df["verdict"].dropna()) - set(VERDICTS))
    df["verdict"] = pd.Categorical(df["verdict"], categories=VERDICTS + extra)
    for col in ("outcome", "key", "job", "room", "file", "note", "confidence", "sdk", "advice"):
        df[col] = df[col].astype("string")
    return df


def _percentile(series: pd.Series, q: float) -> float | None:
    values = series.dropna()
    return None if values.empty else float(values.quantile(q))


@dataclass(frozen=True, slots=True)
class Worst:
    """One row of a worst-jobs (rooms, streams) table: episodes not recovered of that job."""

    column: str                 # "job" | "room" | "key"
    name: str
    not_recovered: int
    stalled: int
    ghosts: int
    max_silence_s: float | None

    def to_dict(self) -> dict[str, object]:
        return {self.column: self.name, "not_recovered": self.not_recovered, "stalled": self.stalled,
                "ghosts": self.ghosts, "max_silence_s": self.max_silence_s}


@dataclass(frozen=True, slots=True)
class Silences:
    """The longest silence per episode, over the episodes with times."""

    p50: float | None
    p95: float | None
    max: float | None
    known: int

    def to_dict(self) -> dict[str, object]:
        return {"p50": self.p50, "p95": self.p95, "max": self.max, "known": self.known}


@dataclass(slots=True)
class ReportSummary:
    """What the terminal summary, the HTML page and ``--json`` show; `to_dict` is ``--json``'s summary."""

    episodes: int
    verdicts: dict[str, int]
    not_recovered: int
    silence: Silences
    worst_jobs: list[Worst]
    worst_rooms: list[Worst]
    worst_keys: list[Worst]
    not_recovered_by_hour_utc: list[int]
    not_recovered_without_time: int
    first: str | None           # ISO 8601 start of the first and the last episode (log time)
    last: str | None
    incidents: list[Incident] | None = None   # None: not looked for
    headline: str = ""
    sdk: dict[str, dict[str, object] | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        found: dict[str, object] = {
            "episodes": self.episodes, "verdicts": self.verdicts, "not_recovered": self.not_recovered,
            "silence_s": self.silence.to_dict(), "worst_jobs": [w.to_dict() for w in self.worst_jobs],
            "worst_rooms": [w.to_dict() for w in self.worst_rooms],
            "worst_keys": [w.to_dict() for w in self.worst_keys],
            "not_recovered_by_hour_utc": self.not_recovered_by_hour_utc,
            "not_recovered_without_time": self.not_recovered_without_time,
            "first": self.first, "last": self.last,
        }
        if self.incidents is not None:
            found["incidents"] = [inc.to_dict() for inc in self.incidents]
            found["headline"] = self.headline
        found["sdk"] = self.sdk
        return found


def _worst(incidents: pd.DataFrame, column: str) -> list[Worst]:
    known = incidents.dropna(subset=[column])
    if known.empty:
        return []
    grouped = known.groupby(column, observed=True).agg(
        not_recovered=("verdict", "size"),
        stalled=("verdict", lambda v: int((v == "stalled").sum())),
        ghosts=("verdict", lambda v: int((v == "ghost").sum())),
        max_silence_s=("silence_s", "max"),
    )
    grouped["wedged"] = grouped["stalled"] + grouped["ghosts"]  # ghosts rank like stalls
    grouped = grouped.sort_values(["wedged", "not_recovered", "max_silence_s"], ascending=False)
    grouped = grouped.head(WORST_N)
    return [Worst(column, str(name), int(row.not_recovered), int(row.stalled), int(row.ghosts),
                  None if pd.isna(row.max_silence_s) else float(row.max_silence_s))
            for name, row in grouped.iterrows()]


def summarize(df: pd.DataFrame) -> ReportSummary:
    """The numbers for the terminal summary, the HTML page and ``--json``."""
    counts = {str(k): int(v) for k, v in df["verdict"].value_counts(sort=False).items()}
    not_recovered = df[df["verdict"] != "recovered"]
    hours = not_recovered["start"].dropna().dt.hour
    return ReportSummary(
        episodes=len(df),
        verdicts=counts,
        not_recovered=len(not_recovered),
        silence=Silences(p50=_percentile(df["silence_s"], 0.50), p95=_percentile(df["silence_s"], 0.95),
                         max=_percentile(df["silence_s"], 1.0), known=int(df["silence_s"].notna().sum())),
        worst_jobs=_worst(not_recovered, "job"),
        worst_rooms=_worst(not_recovered, "room"),
        worst_keys=_worst(not_recovered, "key"),
        not_recovered_by_hour_utc=[int((hours == h).sum()) for h in range(24)],
        not_recovered_without_time=int(not_recovered["start"].isna().sum()),
        first=None if df["start"].dropna().empty else df["start"].min().isoformat(),
        last=None if df["start"].dropna().empty else df["start"].max().isoformat(),
    )


def _secs(value: float | None) -> str:
    return seconds(value, unknown="–")


def _table(title: str, **kwargs: Any) -> Table:
    # light rules: the tables also land in files and postmortem documents (`report > rep.txt`)
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, **kwargs)


def worst_episode(episodes: Iterable[Episode]) -> Episode | None:
    """The episode a postmortem starts with: the worst verdict, then the longest silence."""
    def rank(ep: Episode) -> tuple[int, float]:
        return (severity(ep.verdict), -(ep.silence_s or 0.0))
    return min(episodes, key=rank, default=None)


def headline(episodes: Iterable[Episode], incidents: list[Incident]) -> str:
    """One sentence for the top of a report: the worst episode (job, room, silence), the incidents."""
    worst = worst_episode(episodes)
    if worst is None:
        return "No reconnect episodes."
    who = [f"job {worst.job}" if worst.job else worst.key]
    if worst.room:
        who.append(f"room {worst.room}")
    where = f"{shown_path(worst.file)}:{worst.line}"
    text = (f"Worst: {worst.verdict} {' in '.join(who)}, silent {seconds(worst.silence_s)} ({where}). "
            f"{plural(len(incidents), 'incident')} (jobs hit together)")
    if incidents:
        big = max(incidents, key=lambda inc: (len(inc.keys), -inc.start.timestamp()))
        text += f"; the largest, {big.id}, hit {plural(len(big.keys), 'job')} within {seconds(big.spread_s)}"
    return printable(text + ".", 600)


def render_summary(summary: ReportSummary, scan_summary: Summary,
                   episodes: list[Episode] | None = None, incidents: list[Incident] | None = None) -> Group:
    """Rich renderables for the terminal. Names (jobs, rooms, keys) come from logs, so they go in as Text,
    never as markup."""
    head = Text()
    head.append("lkwedge report", style="bold")
    head.append(f": {plural(summary.episodes, 'reconnect episode')} in "
                f"{plural(scan_summary.lines, 'line')}")
    for line in sdk_lines(scan_summary):
        head.append("\n" + line)
    if summary.first and summary.last:
        first, last = (pd.Timestamp(t).strftime("%Y-%m-%d %H:%M:%SZ") for t in (summary.first, summary.last))
        head.append(f"\nepisodes start between {first} and {last} (log time)")
    parts: list[Any] = [head]
    if episodes is not None:
        parts.append(Text(headline(episodes, incidents or []), style="bold"))

    verdicts = _table("Episodes per verdict")
    verdicts.add_column("verdict")
    verdicts.add_column("episodes", justify="right")
    for name, count in summary.verdicts.items():
        verdicts.add_row(Text(name, style=look(name).rich), str(count))
    silence = summary.silence
    stats = _table("Longest silence per episode")
    for col in ("p50", "p95", "max", "episodes with times"):
        stats.add_column(col, justify="right")
    stats.add_row(_secs(silence.p50), _secs(silence.p95), _secs(silence.max), str(silence.known))
    parts += [verdicts, stats]

    worst = [("job", "Worst jobs", summary.worst_jobs), ("room", "Worst rooms", summary.worst_rooms)]
    if not summary.worst_jobs:  # logs without job ids: the streams (pid, service, file) are what is left
        worst.append(("key", "Worst streams", summary.worst_keys))
    for column, title, rows in worst:
        if not rows:
            continue
        table = _table(f"{title} (episodes not recovered)")
        table.add_column(column)
        for col in ("not recovered", "stalled", "ghosts", "max silence"):
            table.add_column(col, justify="right")
        for row in rows:
            table.add_row(Text(printable(row.name)), str(row.not_recovered), str(row.stalled),
                          str(row.ghosts), _secs(row.max_silence_s))
        parts.append(table)

    by_hour = summary.not_recovered_by_hour_utc
    if any(by_hour):
        peak = max(by_hour)
        hist = Table(title="Episodes not recovered, by hour of day (UTC, log time)", title_justify="left",
                     show_header=False, box=None, padding=(0, 1))
        hist.add_column(justify="right")
        hist.add_column(justify="right")
        hist.add_column()
        busy = [hour for hour, n in enumerate(by_hour) if n]
        for hour in range(busy[0], busy[-1] + 1):  # the quiet hours around the incidents say nothing
            n = by_hour[hour]
            bar = "█" * max(1, round(30 * n / peak)) if n else ""
            hist.add_row(f"{hour:02d}:00", str(n), Text(bar, style="red"))
        parts.append(hist)
    if summary.not_recovered_without_time:
        parts.append(Text(f"{plural(summary.not_recovered_without_time, 'episode')} not recovered "
                          "without a log time (not in the histogram)"))
    if incidents:
        table = _table("Incidents (episodes of different jobs in one log starting together)")
        for col in ("incident", "start (log time)", "jobs", "within", "worst", "file"):
            table.add_column(col)
        for inc in incidents:
            table.add_row(inc.id, inc.start.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], str(len(inc.keys)),
                          seconds(inc.spread_s), Text(inc.verdict, style=look(inc.verdict).rich),
                          Text(printable(shown_path(inc.file))))
        parts.append(table)
    for note in scan_summary.notes:
        parts.append(Text(f"note: {printable(str(note))}", style="dim"))
    return Group(*parts)


def print_summary(summary: ReportSummary, scan_summary: Summary,
                  console: Console | None = None, episodes: list[Episode] | None = None,
                  incidents: list[Incident] | None = None) -> None:
    (console or Console()).print(render_summary(summary, scan_summary, episodes, incidents))


def parquet_available() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def require_parquet() -> None:
    if not parquet_available():
        raise InputError("--parquet needs pyarrow, which is not installed: pip install 'lkwedge[parquet]'")


def _frame_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    # to_json does the NaN/NA/NaT -> null and datetime -> ISO work; round-trip it into Python objects.
    return json.loads(df.to_json(orient="records", date_format="iso", date_unit="ms"))


FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value: str) -> str:
    """A text cell a spreadsheet will show, not run: control characters (ESC, CR, LF...) escaped as
    \\xNN, and a leading =, +, -, @ (the start of a formula, e.g. `=HYPERLINK(...)` in a room name)
    defused with a leading apostrophe, as OWASP advises."""
    shown = printable(value)
    return "'" + shown if shown.startswith(FORMULA_START) else shown


def csv_safe(df: pd.DataFrame) -> pd.DataFrame:
    """The episode table with every text column made safe for CSV (numbers and times untouched)."""
    out = df.copy()
    for col in ("outcome", "key", "job", "room", "file", "note", "verdict", "incident"):
        if col in out:
            out[col] = out[col].astype("string").map(csv_cell, na_action="ignore")
    return out


def export(df: pd.DataFrame, summary: ReportSummary, *, csv: str | None = None, parquet: str | None = None,
           json_path: str | None = None) -> None:
    """Write the requested files. Raises InputError (one line) when a path cannot be written."""
    try:
        if csv:
            csv_safe(df).to_csv(csv, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
        if parquet:
            require_parquet()
            df.to_parquet(parquet, index=False)
        if json_path:
            payload = {"summary": summary.to_dict(), "episodes": _frame_records(df)}
            Path(json_path).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {exc.filename or 'output'}: {exc.strerror or exc}") from None


def build(result: ScanResult, incidents: list[Incident] | None = None) -> tuple[pd.DataFrame, ReportSummary]:
    df = episodes_frame(result.episodes)
    summary = summarize(df)
    if incidents is not None:
        ids = incident_of(incidents)
        df["incident"] = pd.Series([ids.get(ep.id) for ep in result.episodes], dtype="string")
        summary.incidents = incidents
        summary.headline = headline(result.episodes, incidents)
    summary.sdk = result.summary.sdk  # per input: python livekit / livekit-ffi range
    return df, summary

"""Postmortem tables: the episodes of a scan as a typed pandas DataFrame, a summary, and exports.

An *incident* is an episode whose verdict is not ``recovered`` (stalled, unresolved, disconnected): the
worst-jobs/rooms tables and the time-of-day histogram count incidents. Times are UTC (log time).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from lkwedge.detect.engine import ScanResult
from lkwedge.detect.episodes import Episode
from lkwedge.errors import InputError
from lkwedge.output.check import plural
from lkwedge.output.render import sdk_lines
from lkwedge.safe import printable

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


def _worst(incidents: pd.DataFrame, column: str) -> list[dict[str, Any]]:
    known = incidents.dropna(subset=[column])
    if known.empty:
        return []
    grouped = known.groupby(column, observed=True).agg(
        incidents=("verdict", "size"),
        stalled=("verdict", lambda v: int((v == "stalled").sum())),
        ghosts=("verdict", lambda v: int((v == "ghost").sum())),
        max_silence_s=("silence_s", "max"),
    )
    grouped["wedged"] = grouped["stalled"] + grouped["ghosts"]  # ghosts rank like stalls
    grouped = grouped.sort_values(["wedged", "incidents", "max_silence_s"], ascending=False).head(WORST_N)
    return [{column: str(name), "incidents": int(row.incidents), "stalled": int(row.stalled),
             "ghosts": int(row.ghosts),
             "max_silence_s": None if pd.isna(row.max_silence_s) else float(row.max_silence_s)}
            for name, row in grouped.iterrows()]


def summarize(df: pd.DataFrame) -> dict[str, Any]:
    """JSON-ready numbers for the terminal summary, the HTML page and ``--json``."""
    counts = {str(k): int(v) for k, v in df["verdict"].value_counts(sort=False).items()}
    incidents = df[df["verdict"] != "recovered"]
    hours = incidents["start"].dropna().dt.hour
    return {
        "episodes": len(df),
        "verdicts": counts,
        "incidents": len(incidents),
        "silence_s": {
            "p50": _percentile(df["silence_s"], 0.50),
            "p95": _percentile(df["silence_s"], 0.95),
            "max": _percentile(df["silence_s"], 1.0),
            "known": int(df["silence_s"].notna().sum()),
        },
        "worst_jobs": _worst(incidents, "job"),
        "worst_rooms": _worst(incidents, "room"),
        "worst_keys": _worst(incidents, "key"),
        "incidents_by_hour_utc": [int((hours == h).sum()) for h in range(24)],
        "incidents_without_time": int(incidents["start"].isna().sum()),
        "first": None if df["start"].dropna().empty else df["start"].min().isoformat(),
        "last": None if df["start"].dropna().empty else df["start"].max().isoformat(),
    }


def _secs(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


def render_summary(summary: dict[str, Any], scan_summary: dict[str, Any]) -> Group:
    """Rich renderables for the terminal. Names (jobs, rooms, keys) come from logs, so they go in as Text,
    never as markup."""
    head = Text()
    head.append("lkwedge report", style="bold")
    lines = scan_summary.get("lines", "?")
    head.append(f": {plural(summary['episodes'], 'reconnect episode')} in {lines} lines")
    for line in sdk_lines(scan_summary):
        head.append("\n" + line)
    if summary["first"]:
        first, last = (pd.Timestamp(summary[k]).strftime("%Y-%m-%d %H:%M:%SZ") for k in ("first", "last"))
        head.append(f"\nepisodes start between {first} and {last} (log time)")
    parts: list[Any] = [head]

    verdicts = Table(title="Episodes per verdict", title_justify="left")
    verdicts.add_column("verdict")
    verdicts.add_column("episodes", justify="right")
    styles = {"recovered": "green", "disconnected": "yellow", "stalled": "bold red", "unresolved": "magenta",
              "ghost": "bold magenta"}
    for name, count in summary["verdicts"].items():
        verdicts.add_row(Text(name, style=styles.get(name, "")), str(count))
    silence = summary["silence_s"]
    stats = Table(title="Longest silence per episode", title_justify="left")
    for col in ("p50", "p95", "max", "episodes with times"):
        stats.add_column(col, justify="right")
    stats.add_row(_secs(silence["p50"]), _secs(silence["p95"]), _secs(silence["max"]), str(silence["known"]))
    parts += [verdicts, stats]

    worst = [("job", "Worst jobs"), ("room", "Worst rooms")]
    if not summary["worst_jobs"]:  # logs without job ids: the streams (pid, service, file) are what is left
        worst.append(("key", "Worst streams"))
    for column, title in worst:
        rows = summary[f"worst_{column}s"]
        if not rows:
            continue
        table = Table(title=f"{title} (incidents = episodes not recovered)", title_justify="left")
        table.add_column(column)
        for col in ("incidents", "stalled", "ghosts", "max silence"):
            table.add_column(col, justify="right")
        for row in rows:
            table.add_row(Text(printable(row[column])), str(row["incidents"]), str(row["stalled"]),
                          str(row["ghosts"]), _secs(row["max_silence_s"]))
        parts.append(table)

    by_hour = summary["incidents_by_hour_utc"]
    if any(by_hour):
        peak = max(by_hour)
        hist = Table(title="Incidents by hour of day (UTC, log time)", title_justify="left",
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
    if summary["incidents_without_time"]:
        parts.append(Text(f"{summary['incidents_without_time']} incidents have no log time "
                          "(not in the histogram)"))
    for note in scan_summary.get("notes", []) or []:
        parts.append(Text(f"note: {printable(str(note))}", style="dim"))
    return Group(*parts)


def print_summary(summary: dict[str, Any], scan_summary: dict[str, Any],
                  console: Console | None = None) -> None:
    (console or Console()).print(render_summary(summary, scan_summary))


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
    for col in ("outcome", "key", "job", "room", "file", "note", "verdict"):
        if col in out:
            out[col] = out[col].astype("string").map(csv_cell, na_action="ignore")
    return out


def export(df: pd.DataFrame, summary: dict[str, Any], *, csv: str | None = None, parquet: str | None = None,
           json_path: str | None = None) -> None:
    """Write the requested files. Raises InputError (one line) when a path cannot be written."""
    try:
        if csv:
            csv_safe(df).to_csv(csv, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
        if parquet:
            require_parquet()
            df.to_parquet(parquet, index=False)
        if json_path:
            payload = {"summary": summary, "episodes": _frame_records(df)}
            Path(json_path).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {exc.filename or 'output'}: {exc.strerror or exc}") from None


def build(result: ScanResult) -> tuple[pd.DataFrame, dict[str, Any]]:
    df = episodes_frame(result.episodes)
    summary = summarize(df)
    summary["sdk"] = result.summary.get("sdk", {})  # per input: python livekit / livekit-ffi range
    return df, summary

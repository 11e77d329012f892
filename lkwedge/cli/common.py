"""Options and error handling shared by the commands that read logs."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click
import msgspec

from lkwedge.detect import spool
from lkwedge.detect.engine import ScanOptions, ScanResult
from lkwedge.detect.episodes import Episode
from lkwedge.detect.incidents import DEFAULT_GAP, Incident, find_incidents
from lkwedge.detect.summary import Summary
from lkwedge.durations import DURATION
from lkwedge.errors import InputError
from lkwedge.output.render import LineConsole, PlainConsole, colour_possible
from lkwedge.read.clock import DEFAULT_MAX_JUMP, parse_tz
from lkwedge.read.framing import DEFAULT_MAX_LINE
from lkwedge.read.sources import describe
from lkwedge.safe import printable
from lkwedge.verdicts import Verdict

T = TypeVar("T")
if TYPE_CHECKING:
    from rich.console import Console

F = TypeVar("F", bound=Callable[..., object])


def _keep_ghost_window(ctx: click.Context, _param: click.Parameter, value: float) -> float:
    # --ghost-window reaches ScanOptions through the context (see scan_options_from), so commands
    # need no extra parameter for it
    if value <= 0:
        raise click.BadParameter("must be more than 0", param_hint="--ghost-window")
    ctx.meta["lkwedge.ghost_window"] = value
    return value


def input_options(command: F) -> F:
    """How logs are read: the same options for scan, watch, check and report."""
    options = [
        click.option("--window", type=DURATION, default=20.0, show_default="20s",
                     help="Log time without progress after which an episode is stalled."),
        click.option("--ghost-window", type=DURATION, default=10.0, show_default="10s",
                     expose_value=False, callback=_keep_ghost_window,
                     help="Log time without media activity after a reconnect claims success that makes "
                          "a ghost room."),
        click.option("--date", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
                     help="Date for time-only lines when no dated line precedes them."),
        click.option("--tz", default="UTC", show_default=True, metavar="ZONE",
                     help="Zone of timestamps printed without one (UTC, +02:00, Europe/Berlin)."),
        click.option("--max-jump", type=DURATION, default=3600.0, show_default="1h",
                     help="A time this far from the log's clock, with no later line agreeing, is a glitch: "
                          "counted, never moving the clock."),
        click.option("--max-line", type=click.IntRange(min=1024), default=DEFAULT_MAX_LINE, show_default=True,
                     help="Lines longer than this many bytes are skipped and counted."),
        click.option("--patterns", type=click.Path(path_type=Path), multiple=True,
                     help="An extra pattern pack (TOML); its patterns win over built-ins."),
        click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                     default=None, expose_value=False,
                     help="Read settings from this TOML file instead of searching for lkwedge.toml."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def jobs_option(command: F) -> F:
    """--jobs: how many processes read files at once (scan, check, report)."""
    return click.option("--jobs", "-j", "workers", type=click.IntRange(min=1), default=os.cpu_count() or 1,
                        show_default="all cores",
                        help="Read this many files at once (one process each; one big file is shared "
                             "by two); output keeps input order.",
                        )(command)


def scan_options_from(window: float, date: object, patterns: tuple[Path, ...], tz: str = "UTC",
                      max_jump: float = DEFAULT_MAX_JUMP, max_line: int = DEFAULT_MAX_LINE) -> ScanOptions:
    day = date.date() if isinstance(date, dt.datetime) else None
    if window <= 0:
        raise click.BadParameter("must be more than 0", param_hint="--window")
    if max_jump <= window:
        raise click.BadParameter("must be more than --window", param_hint="--max-jump")
    try:
        zone = parse_tz(tz)
    except InputError as exc:
        raise click.BadParameter(str(exc), param_hint="--tz") from None
    options = ScanOptions(window=window, date=day, extra_patterns=list(patterns), tz=zone, max_jump=max_jump,
                          max_line=max_line)
    ctx = click.get_current_context(silent=True)
    if ctx is not None and "lkwedge.ghost_window" in ctx.meta:
        options.ghost_window = ctx.meta["lkwedge.ghost_window"]
    return options


def paths_or_stdin(paths: tuple[str, ...]) -> tuple[str, ...]:
    """No PATH given: read stdin when it is a pipe or a file (as grep and rg do), else say what is missing."""
    if paths:
        return paths
    if sys.stdin is None or sys.stdin.isatty():
        raise click.UsageError("no input: give PATHS (or -) or pipe logs into stdin")
    return ("-",)


def run_guarded(action: Callable[[], T]) -> T:
    """Run, turning a user's input error into one line on stderr and exit code 2."""
    try:
        return action()
    except InputError as exc:
        click.echo(f"lkwedge: error: {printable(exc, 1000)}", err=True)   # file names are untrusted
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("lkwedge: interrupted", err=True)
        sys.exit(130)



# -- conventions shared by the commands (issue 12) ---------------------------------------------------

def output_options(command: F) -> F:
    """-q/--quiet and --color, the same on every command that prints."""
    command = click.option("-q", "--quiet", is_flag=True,
                           help="Print only the results (episode lines, failures): no summary, notes or "
                                "progress.")(command)
    command = click.option("--color", "color", type=click.Choice(["auto", "always", "never"]),
                           default="auto", show_default=True,
                           help="Colour: auto = on a terminal (NO_COLOR, FORCE_COLOR honoured).")(command)
    return command


def make_console(color: str = "auto", stderr: bool = False) -> Console:
    """A Rich console for untrusted text (no markup, no highlighting) honouring --color; with auto, rich
    itself honours NO_COLOR and FORCE_COLOR."""
    from rich.console import Console

    kwargs: dict[str, object] = {}
    if color == "always":
        kwargs["force_terminal"] = True
    elif color == "never":
        kwargs["no_color"] = True
        kwargs["color_system"] = None
    return Console(stderr=stderr, highlight=False, markup=False, emoji=False, **kwargs)  # type: ignore[arg-type]


def line_console(color: str = "auto", stderr: bool = False) -> LineConsole:
    """For line-oriented output: a plain writer where no colour can be drawn (piped, --color never),
    which keeps rich out of the process; else a Rich console."""
    return make_console(color, stderr) if colour_possible(color, stderr) else PlainConsole(stderr)


def readable_inputs(paths: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
    """Drop the inputs that cannot be read, each reported on stderr (as grep and rg do); the rest are
    analysed and the command exits 2 at the end. Returns (readable paths, whether any was dropped)."""
    good: list[str] = []
    for path in paths:
        try:
            describe(path)
        except InputError as exc:
            click.echo(f"lkwedge: error: {printable(exc, 1000)}", err=True)
            continue
        good.append(path)
    if not good:
        sys.exit(2)
    return tuple(good), len(good) < len(paths)


def report_read_errors(summary: Summary) -> bool:
    """One stderr line per input that failed part-way (its episodes up to the failure are kept); whether
    there was any (the command then exits 2 at the end, as for a file that could not be opened)."""
    for error in summary.read_errors:
        click.echo(f"lkwedge: error: {printable(error.error, 1000)} (after line {error.lines}; the lines "
                   "before it were analysed)", err=True)
    return bool(summary.read_errors)


def _select_options() -> list[Callable[[F], F]]:
    return [
        click.option("--job", "jobs", multiple=True, metavar="AJ_ID",
                     help="Only this agent job (repeatable)."),
        click.option("--room", "rooms", multiple=True, metavar="ROOM",
                     help="Only this room, by name or sid (repeatable)."),
    ]


def select_options(command: F) -> F:
    """--job/--room: which jobs and rooms count (watch; scan, check and report have them in
    `filter_options`)."""
    for option in reversed(_select_options()):
        command = option(command)
    return command


def filter_options(command: F) -> F:
    """--verdict/--job/--room/--since/--until: narrow the episodes judged and shown (scan, check, report)."""
    options = [
        click.option("--verdict", "verdicts", type=click.Choice([str(v) for v in Verdict]), multiple=True,
                     help="Only episodes with this verdict (repeatable)."),
        *_select_options(),
        click.option("--since", default=None, metavar="TIME",
                     help="Only episodes starting at or after this log time (ISO 8601; no zone = --tz)."),
        click.option("--until", default=None, metavar="TIME",
                     help="Only episodes starting before this log time (ISO 8601; no zone = --tz)."),
        click.option("--incident-gap", type=DURATION, default=2.0, show_default="2s",
                     help="Episodes of different jobs in one log starting this close together are one "
                          "incident (a network blip or server migration hits every job at once)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


class EpisodeFilter(msgspec.Struct, frozen=True):
    verdicts: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ()
    rooms: tuple[str, ...] = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    incident_gap: float = DEFAULT_GAP

    @property
    def active(self) -> bool:
        return bool(self.verdicts or self.jobs or self.rooms or self.since or self.until)

    def keep(self, ep: Episode) -> bool:
        if self.verdicts and ep.verdict not in self.verdicts:
            return False
        if self.jobs and ep.job not in self.jobs:
            return False
        if self.rooms and ep.room not in self.rooms and ep.room_id not in self.rooms:
            return False
        if self.since or self.until:
            if ep.start is None:
                return False
            if self.since and ep.start < self.since:
                return False
            if self.until and ep.start >= self.until:
                return False
        return True

    def apply(self, result: ScanResult) -> ScanResult:
        """Keep the matching episodes; the summary's counts are recounted over them (so the sentence, the
        exit code and `grep -c` agree), the lines and unparsed counts stay those of the whole input."""
        if not self.active:
            return result
        kept = spool.where(result.episodes, self.keep)
        counts = Counter(ep.verdict for ep in spool.headers(kept))  # nothing read back from disk
        summary = msgspec.structs.replace(
            result.summary, verdicts={v: counts[v] for v in result.summary.verdicts},
            filtered_out=len(result.episodes) - len(kept))
        return ScanResult(kept, summary)


def _log_time(value: str | None, zone: dt.tzinfo, flag: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"not a time: {printable(value, 100)} (e.g. 2025-06-01T12:00:00 or "
                                 "2025-06-01 12:00:00+02:00)", param_hint=flag) from None
    return when if when.tzinfo else when.replace(tzinfo=zone)


def episode_filter(verdicts: tuple[str, ...], jobs: tuple[str, ...], rooms: tuple[str, ...],
                   since: str | None, until: str | None, zone: dt.tzinfo,
                   incident_gap: float = DEFAULT_GAP) -> EpisodeFilter:
    start, end = _log_time(since, zone, "--since"), _log_time(until, zone, "--until")
    if start and end and end <= start:
        raise click.BadParameter("must be after --since", param_hint="--until")
    if incident_gap < 0:
        raise click.BadParameter("must not be negative", param_hint="--incident-gap")
    return EpisodeFilter(tuple(verdicts), tuple(jobs), tuple(rooms), start, end, incident_gap)


def analyse(result: ScanResult, keep: EpisodeFilter) -> tuple[ScanResult, list[Incident]]:
    """The episodes the user asked for, and the incidents among them (counted in the summary)."""
    result = keep.apply(result)
    incidents = find_incidents(result.episodes, keep.incident_gap)
    result.summary.incidents = len(incidents)
    return result, incidents


def check_writable(path: str | None, flag: str, what: str = "") -> None:
    """Fail fast: an output path that cannot be written is reported before any work starts (not after
    a long scan). Nothing is created here; the file is written when the results are ready."""
    if path is None or path == "-":
        return
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    problem = None
    if target.is_dir():
        problem = "is a directory"
    elif not parent.is_dir():
        problem = "its directory does not exist"
    elif target.exists() and not os.access(target, os.W_OK):
        problem = "permission denied"
    elif not target.exists() and not os.access(parent, os.W_OK | os.X_OK):
        problem = "its directory is not writable"
    if problem:
        what = f"{what} to " if what else ""
        raise InputError(f"{flag}: cannot write {what}{printable(path, 300)}: {problem}")

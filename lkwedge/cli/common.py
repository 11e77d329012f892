"""Options and error handling shared by the commands that read logs."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from lkwedge.detect.engine import ScanOptions
from lkwedge.durations import DURATION
from lkwedge.errors import InputError
from lkwedge.read.clock import DEFAULT_MAX_JUMP, parse_tz
from lkwedge.read.framing import DEFAULT_MAX_LINE
from lkwedge.safe import printable

T = TypeVar("T")
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
        click.option("--ghost-window", type=DURATION, default="10s", show_default=True,
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
    return click.option("--jobs", "-j", type=click.IntRange(min=1), default=os.cpu_count() or 1,
                        show_default="all cores",
                        help="Read this many files at once (one process each); output keeps input order.",
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


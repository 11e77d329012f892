"""Options and error handling shared by the commands that read logs."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from lkwedge.detect.engine import ScanOptions
from lkwedge.durations import DURATION
from lkwedge.errors import InputError
from lkwedge.safe import printable

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])


def input_options(command: F) -> F:
    """--window, --date and --patterns, the same for scan, watch, check and report."""
    command = click.option("--patterns", type=click.Path(path_type=Path), multiple=True,
                           help="An extra pattern pack (TOML); its patterns win over built-ins.")(command)
    command = click.option("--date", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
                           help="Date for time-only lines when no dated line precedes them.")(command)
    command = click.option("--window", type=DURATION, default="20s", show_default=True,
                           help="Log time without progress after which an episode is stalled.")(command)
    return command


def scan_options_from(window: float, date: object, patterns: tuple[Path, ...]) -> ScanOptions:
    day = date.date() if isinstance(date, dt.datetime) else None
    if window <= 0:
        raise click.BadParameter("must be more than 0", param_hint="--window")
    return ScanOptions(window=window, date=day, extra_patterns=list(patterns))


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


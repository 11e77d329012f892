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
    """--window, --ghost-window, --date and --patterns, the same for scan, watch, check and report."""
    command = click.option("--ghost-window", type=DURATION, default="10s", show_default=True,
                           expose_value=False, callback=_keep_ghost_window,
                           help="Log time without media activity after a reconnect claims success "
                                "(or a give-up without teardown on an old SDK) that makes a ghost room."
                           )(command)
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
    options = ScanOptions(window=window, date=day, extra_patterns=list(patterns))
    ctx = click.get_current_context(silent=True)
    if ctx is not None and "lkwedge.ghost_window" in ctx.meta:
        options.ghost_window = ctx.meta["lkwedge.ghost_window"]
    return options


def run_guarded(action: Callable[[], T]) -> T:
    """Run, turning a user's input error into one line on stderr and exit code 2."""
    try:
        return action()
    except InputError as exc:
        click.echo(f"lkwedge: error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("lkwedge: interrupted", err=True)
        sys.exit(130)


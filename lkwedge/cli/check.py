"""`lkwedge check`: pass/fail for CI over saved logs, with JUnit XML and GitHub annotations."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from lkwedge.cli import main
from lkwedge.cli.common import input_options, run_guarded, scan_options_from
from lkwedge.config import FAIL_ON_CHOICES, Config, load_config, pick
from lkwedge.detect.engine import ScanOptions, scan
from lkwedge.durations import DURATION
from lkwedge.errors import InputError
from lkwedge.output.check import CheckOptions, github_annotation, plural, run_checks
from lkwedge.output.junit import write_junit
from lkwedge.output.render import sdk_lines
from lkwedge.safe import printable

config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Settings file (lkwedge.toml or a pyproject.toml with [tool.lkwedge]). "
         "Default: searched from the current directory up to the repository root.")


def resolved_scan_options(ctx: click.Context, config: Config, window: float, date: Any,
                          patterns: tuple[Path, ...]) -> ScanOptions:
    """--window/--date/--patterns after the config file: a flag on the command line wins."""
    if ctx.get_parameter_source("window") in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP):
        window = config.get("window", window)
    pattern_paths = tuple(patterns) or tuple(Path(p) for p in config.get("patterns", []))
    options = scan_options_from(window, date, pattern_paths)
    if date is None:
        options.date = config.get("date")
    return options


def _github_path(file: str) -> str:
    """GitHub matches annotation paths relative to the workspace; relativize absolute paths inside it."""
    workspace = os.environ.get("GITHUB_WORKSPACE")
    if workspace and os.path.isabs(file):
        try:
            return Path(file).resolve().relative_to(Path(workspace).resolve()).as_posix()
        except ValueError:
            return file
    return file


@main.command("check")
@click.argument("paths", nargs=-1, required=True)
@click.option("--max-stalls", type=click.IntRange(min=0), default=None,
              help="Fail when more episodes than this stalled.  [default: 0]")
@click.option("--max-ghosts", type=click.IntRange(min=0), default=None,
              help="Fail when more episodes than this are ghost rooms.  [default: 0]")
@click.option("--max-silence", type=DURATION, default=None,
              help="Fail on any episode silent longer than this (e.g. 20s).  [default: no limit]")
@click.option("--fail-on", type=click.Choice(FAIL_ON_CHOICES), multiple=True,
              help="Fail on any episode with this verdict (repeatable).  [default: none]")
@click.option("--expect-recovered", type=click.IntRange(min=0), default=None,
              help="Fail unless at least this many episodes recovered (chaos tests).")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), default=None,
              help="Write JUnit XML here: one testcase per file, one failure per failing episode.")
@click.option("--github/--no-github", default=None,
              help="Print ::error annotations for GitHub Actions (marks the log line in the PR view).")
@input_options
@config_option
@click.pass_context
def check_command(ctx: click.Context, paths: tuple[str, ...], max_stalls: int | None, max_ghosts: int | None,
                  max_silence: float | None, fail_on: tuple[str, ...], expect_recovered: int | None,
                  junit_path: str | None, github: bool | None, window: float, date: Any,
                  patterns: tuple[Path, ...], config_path: Path | None) -> None:
    """Pass or fail a CI build on its saved LiveKit logs.

    Exit 0 when every assertion holds, 1 when one failed (one line each), 2 on a usage or input error.
    Settings can live in lkwedge.toml or [tool.lkwedge] in pyproject.toml; flags override them.

    \b
      lkwedge check logs/*.log
      lkwedge check logs/*.log --max-silence 20s --fail-on unresolved --junit lkwedge.xml --github
      lkwedge check chaos.log --expect-recovered 2 --max-stalls 0
    """
    config = run_guarded(lambda: load_config(config_path))
    options = CheckOptions(
        max_stalls=pick(max_stalls, config, "max_stalls", 0),
        max_silence=pick(max_silence, config, "max_silence", None),
        fail_on=pick(fail_on, config, "fail_on", ()),
        expect_recovered=pick(expect_recovered, config, "expect_recovered", None),
        max_ghosts=pick(max_ghosts, config, "max_ghosts", 0),
    )
    junit_out = pick(junit_path, config, "junit", None)
    annotate = pick(github, config, "github", False)
    scan_opts = resolved_scan_options(ctx, config, window, date, patterns)

    result = run_guarded(lambda: scan(paths, scan_opts))
    outcome = run_checks(result, options)

    s = result.summary
    counts = ", ".join(f"{s.get(v, 0)} {v}" for v in ("recovered", "disconnected", "stalled", "ghost",
                                                     "unresolved"))
    click.echo(f"lkwedge check: {plural(s.get('episodes', 0), 'episode')} in {plural(len(paths), 'file')}: "
               f"{counts}")
    for line in sdk_lines(s):
        click.echo(line)
    for line in outcome.assertions:
        click.echo(f"FAIL {line}")
    for failure in outcome.episode_failures:
        if annotate:
            assert failure.episode is not None
            click.echo(github_annotation(failure, _github_path(failure.episode.file)))
        else:
            click.echo(f"  {failure.message}")
    if annotate:
        for failure in outcome.failures:
            if failure.episode is None:
                click.echo(github_annotation(failure))

    if junit_out:
        names = ["<stdin>" if p == "-" else p for p in paths]

        def write() -> None:
            try:
                write_junit(junit_out, names, result, outcome.failures)
            except OSError as exc:
                raise InputError(f"cannot write JUnit XML to {printable(str(junit_out))}: "
                                 f"{exc.strerror or exc}") from None

        run_guarded(write)

    if outcome.passed:
        click.echo("lkwedge check: passed")
        sys.exit(0)
    click.echo(f"lkwedge check: FAILED ({plural(len(outcome.assertions), 'assertion')}, "
               f"{plural(len(outcome.episode_failures), 'failing episode')})")
    sys.exit(1)

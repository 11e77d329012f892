"""`lkwedge check`: pass/fail for CI over saved logs, with JUnit XML and GitHub annotations."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from lkwedge.cli import main
from lkwedge.cli.common import (
    analyse,
    check_writable,
    episode_filter,
    filter_options,
    input_options,
    jobs_option,
    line_console,
    output_options,
    paths_or_stdin,
    readable_inputs,
    report_read_errors,
    run_guarded,
    scan_options_from,
)
from lkwedge.config import FAIL_ON_CHOICES
from lkwedge.detect.engine import scan
from lkwedge.durations import DURATION
from lkwedge.errors import InputError
from lkwedge.output.check import CheckOptions, github_annotation, plural, run_checks
from lkwedge.output.junit import write_junit
from lkwedge.output.present import summary_sentence
from lkwedge.output.render import sdk_lines
from lkwedge.safe import printable

#: exit code when an input had no recognisable line (no timestamp, no LiveKit target): a CI job pointed
#: at the wrong file must not go green. 70 is taken (internal error).
EXIT_NO_INPUT = 3


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
@click.argument("paths", nargs=-1)
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
@click.option("--allow-empty", is_flag=True,
              help="Pass an input in which no line was recognised (default: exit 3).")
@input_options
@jobs_option
@filter_options
@output_options
def check_command(paths: tuple[str, ...], max_stalls: int | None, max_ghosts: int | None,
                  max_silence: float | None,
                  fail_on: tuple[str, ...], expect_recovered: int | None, junit_path: str | None,
                  github: bool | None, allow_empty: bool, window: float, date: Any,
                  patterns: tuple[Path, ...], tz: str, max_jump: float, max_line: int,
                  verdicts: tuple[str, ...], jobs: tuple[str, ...], rooms: tuple[str, ...], since: str | None,
                  until: str | None, incident_gap: float, quiet: bool, color: str,
                  workers: int) -> None:
    """Pass or fail a CI build on its saved LiveKit logs.

    Exit 0 when every assertion holds, 1 when one failed (one line each), 2 on a usage or input error
    (unreadable files are reported, the rest checked), 3 when an input had no recognisable line (no
    timestamp, no LiveKit target: the wrong file, or logging switched off) unless --allow-empty.
    Settings can live in lkwedge.toml or [tool.lkwedge] in pyproject.toml; flags override them.

    \b
      lkwedge check logs/*.log
      lkwedge check logs/*.log --max-silence 20s --fail-on unresolved --junit lkwedge.xml --github
      lkwedge check chaos.log --expect-recovered 2 --max-stalls 0
    """
    paths = paths_or_stdin(paths)
    options = CheckOptions(max_stalls=0 if max_stalls is None else max_stalls, max_silence=max_silence,
                           fail_on=tuple(fail_on), expect_recovered=expect_recovered,
                           max_ghosts=0 if max_ghosts is None else max_ghosts)
    junit_out = junit_path
    annotate = bool(github)
    scan_opts = scan_options_from(window, date, patterns, tz, max_jump, max_line)
    keep = episode_filter(verdicts, jobs, rooms, since, until, scan_opts.tz, incident_gap)
    run_guarded(lambda: check_writable(junit_out, "--junit", "JUnit XML"))   # before the scan, not after
    paths, some_unreadable = readable_inputs(paths)

    result, _ = analyse(run_guarded(lambda: scan(paths, scan_opts, jobs=workers)), keep)
    some_unreadable = report_read_errors(result.summary) or some_unreadable
    outcome = run_checks(result, options)
    unrecognised = [] if allow_empty else list(result.summary.unrecognised_inputs)

    out = line_console(color)
    if not quiet:
        out.print("lkwedge check: " + summary_sentence(result.summary), soft_wrap=True)
    for name in unrecognised:
        out.print(f"FAIL no-input: {printable(name, 300)}: no line recognised (no timestamp, no LiveKit "
                  "target; --allow-empty to accept)", soft_wrap=True)
    if not quiet:
        for line in sdk_lines(result.summary):
            out.print(line, soft_wrap=True)
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

    if some_unreadable:
        sys.exit(2)
    if outcome.passed and not unrecognised:
        if not quiet:
            click.echo("lkwedge check: passed")
        sys.exit(0)
    if outcome.passed:
        click.echo(f"lkwedge check: FAILED ({plural(len(unrecognised), 'input')} with no recognisable line)")
        sys.exit(EXIT_NO_INPUT)
    click.echo(f"lkwedge check: FAILED ({plural(len(outcome.assertions), 'assertion')}, "
               f"{plural(len(outcome.episode_failures), 'failing episode')})")
    sys.exit(1)

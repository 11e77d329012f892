"""`lkwedge scan`: explain every reconnect episode in saved logs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lkwedge.cli import main
from lkwedge.cli.common import (
    analyse,
    episode_filter,
    filter_options,
    input_options,
    jobs_option,
    line_console,
    make_console,
    output_options,
    paths_or_stdin,
    readable_inputs,
    report_read_errors,
    run_guarded,
    scan_options_from,
)
from lkwedge.detect.engine import scan
from lkwedge.output.render import write_json, write_jsonl, write_plain, write_table


@main.command("scan")
@click.argument("paths", nargs=-1)
@input_options
@jobs_option
@filter_options
@output_options
@click.option("--format", "fmt", type=click.Choice(["text", "json", "jsonl"]), default="text",
              show_default=True,
              help="text: a table on a terminal; piped, one line per episode (the summary on stderr).")
def scan_command(paths: tuple[str, ...], window: float, date: object, patterns: tuple[Path, ...], tz: str,
                 max_jump: float, max_line: int, verdicts: tuple[str, ...], jobs: tuple[str, ...],
                 rooms: tuple[str, ...], since: str | None, until: str | None, incident_gap: float,
                 quiet: bool, color: str, fmt: str,
                 workers: int) -> None:
    """Explain every reconnect episode in saved logs (files, .gz, or - for stdin; stdin when piped).

    Exit 0 when no episode stalled or is a ghost room, 1 when one did, 2 on a usage or input error (a
    file that cannot be read is reported and the others are still scanned; exit 2 at the end).

    \b
      lkwedge scan agent.log other.log.gz
      kubectl logs agent-0 | lkwedge scan
      lkwedge scan logs/*.log | grep -c stalled
      lkwedge scan --format json logs/*.log | jq .summary
    """
    paths = paths_or_stdin(paths)
    options = scan_options_from(window, date, patterns, tz, max_jump, max_line)
    keep = episode_filter(verdicts, jobs, rooms, since, until, options.tz, incident_gap)
    paths, some_unreadable = readable_inputs(paths)
    result, incidents = analyse(run_guarded(lambda: scan(paths, options, jobs=workers)), keep)
    some_unreadable = report_read_errors(result.summary) or some_unreadable
    if fmt == "json":
        write_json(result, sys.stdout, incidents)
    elif fmt == "jsonl":
        write_jsonl(result, sys.stdout, incidents)
    elif sys.stdout.isatty():
        write_table(result, make_console(color), quiet, incidents)
    else:
        write_plain(result, line_console(color), None if quiet else line_console(color, stderr=True),
                    incidents)
    if some_unreadable:
        sys.exit(2)
    sys.exit(1 if result.summary.wedged else 0)

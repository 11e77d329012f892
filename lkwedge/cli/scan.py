"""`lkwedge scan`: explain every reconnect episode in saved logs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lkwedge.cli import main
from lkwedge.cli.common import (
    input_options,
    jobs_option,
    paths_or_stdin,
    run_guarded,
    scan_options_from,
)
from lkwedge.detect.engine import scan
from lkwedge.output.render import write_json, write_jsonl, write_plain, write_table


@main.command("scan")
@click.argument("paths", nargs=-1)
@input_options
@jobs_option
@click.option("--format", "fmt", type=click.Choice(["text", "json", "jsonl"]), default="text",
              show_default=True, help="text: a table on a terminal, one line per episode otherwise.")
def scan_command(paths: tuple[str, ...], window: float, date: object, patterns: tuple[Path, ...], tz: str,
                 max_jump: float, max_line: int, fmt: str, jobs: int) -> None:
    """Explain every reconnect episode in saved logs (files, .gz, or - for stdin).

    Exit 0 when no episode stalled or is a ghost room, 1 when one did, 2 on a usage or input error.

    \b
      lkwedge scan agent.log other.log.gz
      cat agent.log | lkwedge scan -
      lkwedge scan --format json logs/*.log | jq .summary
    """
    paths = paths_or_stdin(paths)
    options = scan_options_from(window, date, patterns, tz, max_jump, max_line)
    result = run_guarded(lambda: scan(paths, options, jobs=jobs))
    if fmt == "json":
        write_json(result, sys.stdout)
    elif fmt == "jsonl":
        write_jsonl(result, sys.stdout)
    elif sys.stdout.isatty():
        from rich.console import Console

        write_table(result, Console(highlight=False))
    else:
        write_plain(result, sys.stdout)
    sys.exit(1 if result.summary["stalled"] or result.summary.get("ghost") else 0)

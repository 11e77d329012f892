"""`lkwedge report`: a postmortem summary of saved logs, with CSV/Parquet/JSON/HTML exports."""

from __future__ import annotations

import sys
from collections.abc import Callable
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
    make_console,
    output_options,
    paths_or_stdin,
    readable_inputs,
    report_read_errors,
    run_guarded,
    scan_options_from,
)
from lkwedge.detect.background import Pending
from lkwedge.detect.engine import ScanOptions, ScanResult, scan
from lkwedge.errors import InputError
from lkwedge.safe import printable


def _scan_with_progress(paths: tuple[str, ...], options: ScanOptions, quiet: bool = False,
                        workers: int = 1) -> ScanResult:
    """A progress bar on stderr only when a person is watching it (a TTY); never in pipes or CI logs."""
    if not _progress_shown(quiet):
        return scan(paths, options, jobs=workers)
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("scanning"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), transient=True)
    task = progress.add_task("scan", total=None)

    def on_progress(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total or None)

    with progress:
        return scan(paths, options, on_progress=on_progress, jobs=workers)


def _progress_shown(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def _write(path: str, what: str, action: Callable[[], Any]) -> None:
    try:
        action()
    except OSError as exc:
        raise InputError(f"cannot write {what} to {printable(path)}: {exc.strerror or exc}") from None


@main.command("report")
@click.argument("paths", nargs=-1)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Write one row per episode as CSV.")
@click.option("--parquet", "parquet_path", type=click.Path(dir_okay=False), default=None,
              help="Write the episode table as Parquet (needs pyarrow: pip install 'lkwedge[parquet]').")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write {summary, episodes} as JSON.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Write a self-contained HTML report (no network): summary, timelines, sortable table.")
@input_options
@jobs_option
@filter_options
@output_options
def report_command(paths: tuple[str, ...], csv_path: str | None, parquet_path: str | None,
                   json_path: str | None, html_path: str | None, window: float, date: Any,
                   patterns: tuple[Path, ...], tz: str, max_jump: float, max_line: int,
                   verdicts: tuple[str, ...], jobs: tuple[str, ...], rooms: tuple[str, ...],
                   since: str | None, until: str | None, incident_gap: float, quiet: bool,
                   color: str, workers: int) -> None:
    """Summarize reconnect episodes for a postmortem: verdicts, silences, worst jobs and rooms, time of day.

    Prints the summary (a headline: the worst episode and the incidents); exports the episode table on
    request. Exit 0, or 2 on a usage or input error (judging pass/fail is `lkwedge check`'s job).

    \b
      lkwedge report logs/*.log
      lkwedge report agent.log.gz --csv episodes.csv --html report.html
    """
    paths = paths_or_stdin(paths)
    options = scan_options_from(window, date, patterns, tz, max_jump, max_line)
    keep = episode_filter(verdicts, jobs, rooms, since, until, options.tz, incident_gap)
    for path, flag in ((csv_path, "--csv"), (parquet_path, "--parquet"), (json_path, "--json"),
                       (html_path, "--html")):
        run_guarded(lambda path=path, flag=flag: check_writable(path, flag))
    if parquet_path:
        from lkwedge.output.report import require_parquet

        run_guarded(require_parquet)  # before a long scan, not after it
    paths, some_unreadable = readable_inputs(paths)
    # Without a progress bar to draw, the logs are read by a child process while this one imports
    # pandas (about 0.4 s): the report costs little more than the scan.
    pending = None if _progress_shown(quiet) or "-" in paths else \
        Pending(lambda: scan(paths, options, jobs=workers))
    try:
        from lkwedge.output.report import build, export, print_summary
        from lkwedge.output.report_html import render_html

        if pending is not None:
            scanned = run_guarded(pending.result)
        else:
            scanned = run_guarded(lambda: _scan_with_progress(paths, options, quiet, workers))
    finally:
        if pending is not None:
            pending.cancel()
    result, incidents = analyse(scanned, keep)
    some_unreadable = report_read_errors(result.summary) or some_unreadable
    df, summary = build(result, incidents)

    run_guarded(lambda: export(df, summary, csv=csv_path, parquet=parquet_path, json_path=json_path))
    if html_path:
        sources = ["<stdin>" if p == "-" else p for p in paths]
        page = render_html(result.episodes, summary, result.summary, sources=sources)
        run_guarded(lambda: _write(html_path, "the HTML report",
                                   lambda: Path(html_path).write_text(page, encoding="utf-8")))
    if not quiet:
        console = make_console(color)
        if not sys.stdout.isatty():
            console.width = 1000     # in a file or a pipe nothing is hard-wrapped at 80 columns
        print_summary(summary, result.summary, console, result.episodes, incidents)
    if some_unreadable:
        sys.exit(2)

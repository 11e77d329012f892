"""`lkwedge watch`: live detection on stdin, files and globs, with alerts."""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lkwedge.act.targets import EvictionTarget, TargetOptions, derive_target
from lkwedge.cli import main
from lkwedge.cli.common import (
    EpisodeFilter,
    analyse,
    check_writable,
    input_options,
    make_console,
    output_options,
    paths_or_stdin,
    run_guarded,
    scan_options_from,
    select_options,
)
from lkwedge.cli.fleet import check_fleet_options, fleet_options, start_fleet
from lkwedge.cli.pipes import PipeSafeStdout, watch_reader
from lkwedge.detect.engine import ScanResult
from lkwedge.durations import DURATION
from lkwedge.errors import InputError
from lkwedge.live.sinks import CommandSink, Fanout, JsonlSink, Sink, WebhookSink
from lkwedge.live.view import LiveView, PlainView, View, summary_lines
from lkwedge.live.watch import EpisodeHook, Watcher, WatchOptions
from lkwedge.output.present import plural
from lkwedge.output.render import write_json, write_jsonl
from lkwedge.read.sources import describe
from lkwedge.safe import printable

if TYPE_CHECKING:
    from lkwedge.act.evict import EvictionResult, Evictor  # imports livekit-api: only with --evict
    from lkwedge.detect.episodes import Episode
    from lkwedge.live.events import LiveEvent
    from lkwedge.live.metrics import WatchMetrics

EVICT_OPTIONS = ("evict_room", "identity", "identity_template", "max_evictions", "revoke_token", "audit",
                 "url", "missing_ok")


def _evict_options(command: Any) -> Any:
    """--evict and friends (lkwedge.act.evict): evict on alert, release when the episode ends."""
    opts = [
        click.option("--evict", is_flag=True,
                     help="Remove the wedged participant (RoomService.RemoveParticipant) on alert. "
                          "Credentials: LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET."),
        click.option("--dry-run", is_flag=True,
                     help="Show the eviction call that would be made; make none (implies --evict)."),
        click.option("--evict-room", default=None,
                     help="Room to evict from (default: from the logs; --room selects episodes)."),
        click.option("--identity", default=None,
                     help="Participant identity to evict (default: from the logs)."),
        click.option("--identity-template", default=None, metavar="TEMPLATE",
                     help="Identity from episode fields {job_id} {room} {room_id} {pid} "
                          "[default: agent-{job_id}]."),
        click.option("--max-evictions", type=click.IntRange(min=0), default=5, show_default=True,
                     help="Evictions per minute; beyond it, alert instead of evicting."),
        click.option("--revoke-token", is_flag=True,
                     help="Also set revoke_token_ts so the evicted identity cannot rejoin with its token."),
        click.option("--audit", type=click.Path(dir_okay=False), default=None,
                     help="Append one JSON line per eviction attempt to this file."),
        click.option("--url", default=None,
                     help="LiveKit server URL for --evict, e.g. http://localhost:7880 "
                          "[default: $LIVEKIT_URL]."),
        click.option("--missing-ok", is_flag=True,
                     help="With --evict: \"room not found\" counts as already gone (default: an error)."),
    ]
    for opt in reversed(opts):
        command = opt(command)
    return command


@main.command("watch")
@click.argument("paths", nargs=-1)
@input_options
@click.option("--max-lag", type=DURATION, default=10.0, show_default="10s",
              help="Most delivery lag (buffering) forgiven before wall-clock silence counts as log time.")
@click.option("--from-start", is_flag=True, help="Read files from their beginning (default: from their end).")
@click.option("--once", is_flag=True,
              help="Stop at end of input (implies --from-start); judge what is pending on log time.")
@click.option("--lookback", type=DURATION, default=None,
              help="When following a file from its end, first read back this much log time, so a wedge "
                   "already in progress is reported at once.  [default: 2 x --window]")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "jsonl"]), default="text",
              show_default=True,
              help="The final report: json/jsonl print the same episodes and summary as scan, on stdout "
                   "(alert lines then go to stderr).")
@click.option("--jsonl", "jsonl", metavar="PATH|-", default=None,
              help="Append one JSON object per alert/resolution to PATH (- = stdout).")
@click.option("--on-alert", "on_alert", metavar="CMD", default=None,
              help="Run CMD (split like a shell would, but never run by one) per alert/resolution, "
                   "with the episode as JSON on stdin and LKWEDGE_* variables.")
@click.option("--webhook", metavar="URL", default=None,
              help="POST each alert/resolution as JSON with a Slack-compatible 'text' field.")
@select_options
@_evict_options
@fleet_options
@output_options
def watch_command(paths: tuple[str, ...], window: float, date: object, patterns: tuple[Path, ...], tz: str,
                  max_jump: float, max_line: int, max_lag: float, from_start: bool, once: bool,
                  lookback: float | None, fmt: str, jsonl: str | None, on_alert: str | None,
                  webhook: str | None, metrics: str | None, alertmanager: tuple[str, ...],
                  alertmanager_resend: float, alert_label: tuple[str, ...], quiet: bool, color: str,
                  jobs: tuple[str, ...], rooms: tuple[str, ...], **evict_kwargs: Any) -> None:
    """Watch live logs and alert the moment a reconnect stalls.

    PATHS are files or glob patterns (quoted, re-expanded as files appear), or - for stdin; with no
    PATHS, stdin is read when it is a pipe. Files are followed like `tail -F` (rotation, truncation,
    files that appear later). A stall is proved on log time, or while the log is silent on the wall
    clock corrected for the delivery lag seen on that input (at most --max-lag).

    Ctrl-C (or SIGTERM) prints a summary of every episode, the still-open ones included.
    Exit 0 when no episode stalled, 1 when one did, 2 on a usage or input error.

    \b
      tail -F agent.log | lkwedge watch
      lkwedge watch '/var/log/agent/*.log' --jsonl alerts.jsonl --on-alert './page-oncall.sh'
      lkwedge watch --once --from-start saved.log
      lkwedge watch agent.log --job AJ_5cQwZ8mLr3Tx --room hotel-frontdesk-118
    """
    options = scan_options_from(window, date, patterns, tz, max_jump, max_line)
    keep = EpisodeFilter(jobs=tuple(jobs), rooms=tuple(rooms))   # which episodes alert, are evicted, shown
    if fmt != "text" and jsonl == "-":
        raise click.UsageError("--format json/jsonl and --jsonl - would both write to stdout; pick one")
    paths = paths_or_stdin(paths)
    if max_lag < 0:
        raise click.BadParameter("must not be negative", param_hint="--max-lag")
    argv: list[str] | None = None
    if on_alert is not None:
        try:
            argv = shlex.split(on_alert)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--on-alert") from None
        if not argv:
            raise click.BadParameter("empty command", param_hint="--on-alert")
        run_guarded(lambda: _check_executable(argv[0]))      # now, not when the first real alert fires
    if jsonl is not None:
        run_guarded(lambda: check_writable(jsonl, "--jsonl"))
    if evict_kwargs["audit"] is not None:
        run_guarded(lambda: check_writable(evict_kwargs["audit"], "--audit"))
    if not (evict_kwargs["evict"] or evict_kwargs["dry_run"]):
        ctx = click.get_current_context()
        given = [name for name in EVICT_OPTIONS
                 if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE]
        if given:
            raise click.UsageError(f"--{given[0].replace('_', '-')} needs --evict (or --dry-run)")
    fleet = check_fleet_options(metrics, alertmanager, alertmanager_resend, alert_label)
    if once:
        for p in paths:
            if p == "-":
                continue
            if glob.has_magic(p):
                if not glob.glob(p):
                    raise click.UsageError(f"no file matches {printable(p, 300)}")
            else:
                run_guarded(lambda p=p: describe(p))      # exactly scan's checks and messages (exit 2)

    err = sys.stderr
    to_stdout_json = jsonl == "-" or fmt != "text"
    view: View
    if not to_stdout_json and sys.stdout.isatty():
        view = LiveView(make_console(color), err)
    else:
        # JSON lines own stdout when --jsonl -: the human lines go to stderr then.
        view = PlainView(err if to_stdout_json else sys.stdout, err)
    view.quiet = quiet

    def build() -> tuple[Watcher, Fanout]:
        sinks: list[Sink] = []
        if jsonl is not None:
            try:
                sinks.append(JsonlSink(jsonl, view.error))
            except OSError as e:
                raise InputError(f"cannot write {jsonl}: {e.strerror or e}") from None
        if argv is not None:
            sinks.append(CommandSink(argv, view.error, on_output=view.info))
        if webhook is not None:
            try:
                sinks.append(WebhookSink(webhook, view.error))
            except ValueError as e:
                raise InputError(f"--webhook: {e}") from None
        hooks: list[EpisodeHook] = []
        watch_metrics = start_fleet(fleet, evict_kwargs, view, hooks)
        if evict_kwargs["evict"] or evict_kwargs["dry_run"]:
            hooks.append(_make_evictor(evict_kwargs, view, watch_metrics))
        fan = Fanout(sinks, view.error)
        wopts = WatchOptions(scan=options, max_lag=max_lag, from_start=from_start, once=once,
                             lookback=lookback, keep_closed=None if fmt != "text" else 200,
                             select=keep.keep if keep.active else None)
        return Watcher(paths, wopts, fan, view, hooks, on_error=view.error), fan

    try:
        watcher, fan = run_guarded(build)
    except BaseException:
        view.close()
        raise

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def on_signal(signum: int, frame: object) -> None:
        watcher.stop()

    for sig in previous:
        signal.signal(sig, on_signal)
    if isinstance(sys.stdout, PipeSafeStdout) and not once:
        # `watch | head -1`: our reader left; stop like a filter.  (--once finishes its input: its exit
        # code must be the verdict on all of it.)
        sys.stdout.on_broken(watcher.stop)
        watch_reader(sys.stdout)
    what = "stdin" if paths == ("-",) else plural(len(paths), "input")
    view.info(f"watching {what} (window {window:g}s, max lag {max_lag:g}s)"
              f"{'' if once else '; Ctrl-C for a summary'}")
    try:
        code = watcher.run()
    finally:
        # Our handlers stay in place while the sinks drain (bounded), so a second Ctrl-C is harmless.
        # The console closes last: what the sinks report while draining must still be shown.
        fan.close(timeout=3.0)
        for hook in watcher.hooks:
            close = getattr(hook, "close", None)
            if callable(close):
                close()
        view.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if fmt != "text":
        # the same JSON as scan's, incidents included (at the default --incident-gap)
        result, incidents = analyse(ScanResult(watcher.detector.episodes(), watcher.detector.summary()),
                                    keep)
        (write_json if fmt == "json" else write_jsonl)(result, sys.stdout, incidents)
        sys.stdout.flush()
        sys.exit(code)
    out = err if to_stdout_json else sys.stdout
    if watcher.interrupted:
        out.write("lkwedge: stopped; episodes so far:\n")
    if quiet:
        pass
    elif not (watcher.input_failed and not watcher.detector.summary().lines):   # nothing read: as scan
        for line in summary_lines(watcher, view.evictions):
            out.write(line + "\n")
    out.flush()
    if isinstance(sys.stdout, PipeSafeStdout) and sys.stdout.error is not None:
        code = 2                                # the alerts could not be written (e.g. a full disk)
    sys.exit(code)


def _check_executable(program: str) -> None:
    if shutil.which(program) is None:
        what = "not an executable file" if os.sep in program else "not found on PATH"
        raise InputError(f"--on-alert: {printable(program, 300)}: {what}")


class _EvictHook:
    """Watch → Evictor: one eviction per alerted episode; the dedupe entry is released when it closes."""

    def __init__(self, evictor: Evictor, options: TargetOptions) -> None:
        self.evictor = evictor
        self.options = options
        self.submitted: dict[str, EvictionTarget] = {}

    def on_alert(self, event: LiveEvent) -> None:
        target = derive_target(event.episode, self.options)
        self.submitted[event.id] = target
        self.evictor.submit(event.episode, target)

    def on_closed(self, episode: Episode, resolved: LiveEvent | None) -> None:
        target = self.submitted.pop(episode.id, None)
        if target is not None:
            self.evictor.release_target(target)

    def close(self) -> None:
        self.evictor.close(timeout=5.0)


def _make_evictor(kwargs: dict[str, Any], view: View, metrics: WatchMetrics | None = None) -> EpisodeHook:
    from lkwedge.act.evict import Evictor
    from lkwedge.act.targets import DEFAULT_IDENTITY_TEMPLATE

    options = TargetOptions(room=kwargs["evict_room"], identity=kwargs["identity"],
                            identity_template=kwargs["identity_template"] or DEFAULT_IDENTITY_TEMPLATE)

    def on_result(result: EvictionResult) -> None:  # on the evictor's thread; summary() is terminal-safe
        if metrics is not None:
            metrics.on_eviction(result.result)
        view.eviction(result.episode, result.result, f"EVICT {result.summary()}", result.ok)

    evictor = Evictor(kwargs["url"], dry_run=kwargs["dry_run"], missing_ok=kwargs["missing_ok"],
                      revoke_token=kwargs["revoke_token"],
                      max_per_minute=kwargs["max_evictions"], audit=kwargs["audit"], on_result=on_result)
    return _EvictHook(evictor, options)

"""Alert sinks for `lkwedge watch`: JSON lines, a command, a webhook, and a plain console line.

Every sink has `emit(event)` and `close(timeout)`: the event is a `LiveEvent` (lkwedge.live.events), an
"alert" (an episode crossed the window) or a "resolved" (an alerted episode ended), with a snapshot of
its `Episode`; a dict is made only where JSON or the environment is written.
`emit` never blocks: each sink has its own bounded queue and worker thread(s) (lkwedge.live.workqueue),
so one slow sink never delays detection, the console or another sink.  It never raises for a delivery
failure: failures go to the sink's `on_error(message)` callback, naming the episode.  `close(timeout)`
delivers what is queued until the deadline and names every event it could not deliver.  Retries
follow the one shared policy (lkwedge.retry).  Episode fields come from untrusted log text: they are
passed as JSON / environment values, never through a shell.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, Protocol

from lkwedge.detect.episodes import Episode
from lkwedge.live.events import LiveEvent, iso_wall, rounded
from lkwedge.live.workqueue import Job, WorkQueue
from lkwedge.output.present import seconds
from lkwedge.retry import SYSTEM_CLOCK, Clock, Failure, GaveUp, RetryPolicy, deliver, retryable_status
from lkwedge.safe import printable
from lkwedge.verdicts import Verdict

ErrorCallback = Callable[[str], None]


def _stderr_error(msg: str) -> None:
    print(f"lkwedge: {msg}", file=sys.stderr, flush=True)


class Sink(Protocol):
    def emit(self, event: LiveEvent) -> None: ...
    def close(self, timeout: float = 5.0) -> None: ...


# -- text helpers ------------------------------------------------------------------------------------

def _fmt_s(v: object) -> str:
    return seconds(float(v)) if isinstance(v, int | float) else "?"


def _trigger_text(episode: Episode) -> str:
    for ev in episode.evidence:
        if ev.role in ("trigger", "attempt"):
            return ev.text
    return ""


def format_console(event: LiveEvent, *, text_limit: int = 160) -> str:
    """One plain line per event, e.g.
    `2026-05-01T10:00:25.101Z ALERT stalled agent.log:1234 [job:AJ_x room=demo] no progress for 20.0s
    since 10:00:05Z: <trigger line>`.  Every field taken from the log is escaped."""
    episode = event.episode
    where = f"{episode.file}:{episode.line}"
    tags = [episode.key or ""]
    if episode.room:
        tags.append(f"room={episode.room}")
    tag = printable(" ".join(t for t in tags if t), 120)
    since = f" since {printable(episode.start.isoformat(), 40)}" if episode.start else ""
    if event.kind == "alert":
        silence = _fmt_s(rounded(episode.silence_s))
        head = f"ALERT stalled {printable(where, 200)} [{tag}] no progress for {silence}{since}"
        trig = _trigger_text(episode)
        tail = f": {printable(trig, text_limit)}" if trig else ""
        if episode.verdict == Verdict.GHOST:  # the note names the claim and the evidence lines
            note = printable(episode.note or "ghost room", 300)
            head = f"ALERT ghost {printable(where, 200)} [{tag}] {note}"
            tail = ""
    else:
        outcome = episode.outcome or episode.verdict or "ended"
        head = (f"RESOLVED {printable(where, 200)} [{tag}] {printable(outcome, 40)} after an outage of "
                f"{_fmt_s(event.outage)}")
        tail = ""
    return f"{iso_wall(event.wall_time)} {head}{tail}"


def _slack_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _redact_url(url: str) -> str:
    """Webhook URLs carry their secret in the path or query (Slack, Discord...): never print it."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{f':{parts.port}' if parts.port else ''}/…"


# -- JSON lines ---------------------------------------------------------------------------------------

class JsonlSink:
    """One JSON object per event, appended to `path` ("-" = stdout) and flushed at once, in event
    order, by one worker thread (a stalled reader of stdout never blocks detection)."""

    def __init__(self, path: str, on_error: ErrorCallback = _stderr_error, *, max_queue: int = 4096) -> None:
        self.on_error = on_error
        self._own = path != "-"
        self._fh: IO[str] = open(path, "a", encoding="utf-8") if self._own else sys.stdout  # noqa: SIM115
        self._broken = False
        self._q = WorkQueue("--jsonl", self._write, on_error, workers=1, max_queue=max_queue)

    def emit(self, event: LiveEvent) -> None:
        # One key for every event: one worker writes them in the order they happened.
        self._q.put(Job(event, lane=""))

    def _write(self, job: Job) -> None:
        if self._broken:
            return
        line = json.dumps(job.event.to_dict(), ensure_ascii=False, default=str)
        try:
            self._fh.write(line + "\n")
            self._fh.flush()
        except (OSError, ValueError) as e:
            self._broken = True         # e.g. stdout closed by `| head`: say so once, stop writing
            self.on_error(f"cannot write JSON lines: {printable(e, 200)}")

    def close(self, timeout: float = 5.0) -> None:
        self._q.close(timeout)
        if self._own and not self._fh.closed:
            with contextlib.suppress(OSError):
                self._fh.close()


# -- command ------------------------------------------------------------------------------------------

def command_env(event: LiveEvent) -> dict[str, str]:
    def val(v: object) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v).replace("\x00", "")   # an env value cannot hold NUL

    episode = event.episode
    return {
        "LKWEDGE_EVENT": event.kind,
        "LKWEDGE_VERDICT": val(episode.verdict),
        "LKWEDGE_FILE": val(episode.file),
        "LKWEDGE_LINE": val(episode.line),
        "LKWEDGE_KEY": val(episode.key),
        "LKWEDGE_JOB": val(episode.job),
        "LKWEDGE_ROOM": val(episode.room),
        "LKWEDGE_SILENCE_S": val(rounded(episode.silence_s)),
        "LKWEDGE_START": val(None if episode.start is None else episode.start.isoformat()),
    }


#: The only variables an --on-alert command inherits (plus LKWEDGE_*): never LIVEKIT_API_SECRET & co.
CHILD_ENV_KEEP = ("PATH", "LANG")
OUTPUT_CAP = 16 << 10       # bytes of a command's output shown per run; the rest is read and dropped


def child_env(base: Mapping[str, str], event: LiveEvent) -> dict[str, str]:
    """A minimal environment: PATH, LANG and the user's own LKWEDGE_* variables, then the event's."""
    env = {k: base[k] for k in CHILD_ENV_KEEP if k in base}
    env.setdefault("PATH", os.defpath)
    env.update({k: v for k, v in base.items() if k.startswith("LKWEDGE_")})
    env.update(command_env(event))
    return env


class CommandSink:
    """Run `argv` (no shell) per event with the event record as JSON on stdin and LKWEDGE_* env vars.

    Runs come off a bounded queue (`max_pending`), at most `max_concurrent` at a time; one episode's
    events run in order.  A run is killed (its whole process group) after `timeout` s.  The child gets
    a minimal environment (`child_env`): LiveKit credentials never reach it.  Its stdout and stderr are
    read as they come, shown escaped (`on_output`, one line each, at most OUTPUT_CAP bytes per run) and
    the rest drained and counted, so a flooding command neither fills our stderr nor blocks on a pipe.
    """

    def __init__(self, argv: Sequence[str], on_error: ErrorCallback = _stderr_error, *,
                 max_concurrent: int = 4, max_pending: int = 1024, timeout: float = 60.0,
                 on_output: ErrorCallback | None = None, output_cap: int = OUTPUT_CAP) -> None:
        if not argv:
            raise ValueError("empty command")
        self.argv = list(argv)
        self.name = printable(self.argv[0], 100)
        self.on_error = on_error
        self.on_output = on_output if on_output is not None else _stderr_error
        self.timeout = timeout
        self.output_cap = output_cap
        self._lock = threading.Lock()
        self._killed: list[str] = []
        self._q = WorkQueue("--on-alert", self._run, on_error, workers=max_concurrent, max_queue=max_pending)

    def emit(self, event: LiveEvent) -> None:
        self._q.put(Job(event))

    def _run(self, job: Job) -> None:
        payload = json.dumps(job.event.to_dict(), ensure_ascii=False, default=str).encode()
        env = child_env(os.environ, job.event)
        try:
            proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
        except OSError as e:
            self.on_error(f"--on-alert: cannot run {self.name}: {printable(e.strerror or e, 200)}")
            return
        threading.Thread(target=_feed, args=(proc, payload), name="lkwedge-on-alert-stdin",
                         daemon=True).start()
        deadline = time.monotonic() + self.timeout
        outcome = self._drain(proc, deadline)
        if outcome == "running":
            outcome = self._wait(proc, deadline)
        if outcome != "exited":
            self._kill(proc)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            if outcome == "timeout":
                self.on_error(f"--on-alert: {self.name} did not finish within {self.timeout:g}s; killed "
                              f"({job.describe()})")
            else:
                with self._lock:
                    self._killed.append(job.describe())
            return
        if proc.returncode != 0:
            how = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
                   else f"exited with status {proc.returncode}")
            self.on_error(f"--on-alert: {self.name} {how} ({job.describe()})")

    def _drain(self, proc: subprocess.Popen[bytes], deadline: float) -> str:
        """Read the child's output until EOF; "running" at EOF, or "timeout" / "stopped"."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        shown = dropped = 0
        partial = b""
        try:
            while True:
                if self._q.stopping.is_set():
                    return "stopped"
                left = deadline - time.monotonic()
                if left <= 0:
                    return "timeout"
                ready, _, _ = select.select([fd], [], [], min(left, 0.2))
                if not ready:
                    continue
                data = os.read(fd, 1 << 16)
                if not data:
                    return "running"
                if shown >= self.output_cap:
                    dropped += len(data)
                    continue
                take = data[: self.output_cap - shown]
                dropped += len(data) - len(take)
                shown += len(take)
                lines = (partial + take).split(b"\n")
                partial = lines.pop()
                for line in lines:
                    self._show(line)
        finally:
            if partial:
                self._show(partial)
            if dropped:
                self.on_output(f"--on-alert {self.name}: {dropped} more byte(s) of output not shown")
            proc.stdout.close()

    def _show(self, line: bytes) -> None:
        self.on_output(f"--on-alert {self.name}: {printable(line.decode('utf-8', 'replace'), 500)}")

    def _wait(self, proc: subprocess.Popen[bytes], deadline: float) -> str:
        while proc.poll() is None:
            if self._q.stopping.is_set():
                return "stopped"
            if time.monotonic() >= deadline:
                return "timeout"
            time.sleep(0.05)
        return "exited"

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)

    def close(self, timeout: float = 5.0) -> None:
        """Wait up to `timeout` s for queued and running commands, then kill what is left (and say so)."""
        self._q.close(timeout)
        with self._lock:
            killed, self._killed = self._killed, []
        if killed:
            self.on_error(f"--on-alert: killed {len(killed)} command(s) still running at exit "
                          f"({', '.join(killed[:5])}{', ...' if len(killed) > 5 else ''})")


def _feed(proc: subprocess.Popen[bytes], payload: bytes) -> None:
    """Write the event to the child's stdin; a child that does not read it is not our problem."""
    assert proc.stdin is not None
    with contextlib.suppress(OSError, ValueError):
        proc.stdin.write(payload)
    with contextlib.suppress(OSError, ValueError):
        proc.stdin.close()


# -- webhook ------------------------------------------------------------------------------------------

class WebhookSink:
    """POST each event as JSON {"text": <Slack-compatible summary>, "event", "wall_time", "episode"}.

    Deliveries come off a bounded queue on up to `workers` threads: different episodes are sent
    concurrently, one episode's events in order.  Retries follow the shared policy (lkwedge.retry):
    5xx, 429, 408 and connection errors/timeouts are retried with jittered exponential back-off
    (`backoff`, 2*backoff, ... capped at `max_backoff`) for at most `tries` attempts within `deadline`
    s; other 4xx are reported at once.  The URL is never printed in full (it usually embeds a secret).
    """

    def __init__(self, url: str, on_error: ErrorCallback = _stderr_error, *, tries: int = 4,
                 backoff: float = 0.5, max_backoff: float = 8.0, timeout: float = 5.0,
                 max_queue: int = 1024, workers: int = 8, deadline: float = 60.0,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook URL must be http:// or https:// with a host")
        self.url = url
        self.on_error = on_error
        self.timeout = timeout
        self.policy = RetryPolicy(first_delay=backoff, max_delay=max_backoff, deadline=deadline,
                                  max_tries=max(1, tries), clock=clock)
        self._q = WorkQueue(f"webhook {_redact_url(url)}", self._deliver, on_error, workers=workers,
                            max_queue=max_queue)

    def emit(self, event: LiveEvent) -> None:
        self._q.put(Job(event))

    @staticmethod
    def body(event: LiveEvent) -> dict[str, Any]:
        """The JSON posted: a Slack-compatible ``text``, the event, and the episode as scan's JSON has it."""
        return {"text": _slack_escape(format_console(event)), "event": event.kind,
                "wall_time": iso_wall(event.wall_time), "episode": event.episode_dict()}

    def _post(self, data: bytes, timeout: float) -> None:
        import urllib.error  # here, not at start-up: about 25 ms that a watch without webhooks never needs
        import urllib.request

        req = urllib.request.Request(self.url, data=data, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "lkwedge-watch"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                resp.read(1 << 16)
        except urllib.error.HTTPError as e:
            raise Failure(f"HTTP {e.code}", retry=retryable_status(e.code), status=e.code) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise Failure(f"connection failed: {printable(reason, 200)}", retry=True) from None

    def _deliver(self, job: Job) -> None:
        data = json.dumps(self.body(job.event), ensure_ascii=False, default=str).encode()
        try:
            deliver(lambda att: self._post(data, max(0.5, min(self.timeout, att.remaining()))),
                    self.policy, self._q.stopping)
        except GaveUp as g:
            why = " (gave up: shutting down)" if g.why == "stopped" else ""
            self.on_error(f"{self._q.name}: {job.describe()} not delivered after {g.tries} attempt(s): "
                          f"{g.last.message}{why}")

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued for at most `timeout` s; then name every event not delivered."""
        self._q.close(timeout)


# -- fan-out ------------------------------------------------------------------------------------------

class Fanout:
    """Send each event to several sinks; one sink's exception never stops the others."""

    def __init__(self, sinks: Sequence[Sink], on_error: ErrorCallback = _stderr_error) -> None:
        self.sinks = list(sinks)
        self.on_error = on_error

    def emit(self, event: LiveEvent) -> None:
        for s in self.sinks:
            try:
                s.emit(event)
            except Exception as e:      # a sink bug must not kill detection
                self.on_error(f"{type(s).__name__}: {e}")

    def close(self, timeout: float = 5.0) -> None:
        """Close every sink at the same time (each drains its own queue within `timeout`)."""
        def close_one(sink: Sink) -> None:
            try:
                sink.close(timeout)
            except Exception as e:
                self.on_error(f"{type(sink).__name__}: {e}")

        threads = [threading.Thread(target=close_one, args=(s,), name="lkwedge-close", daemon=True)
                   for s in self.sinks]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout + 10.0)

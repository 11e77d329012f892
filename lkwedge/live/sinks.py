"""Alert sinks for `lkwedge watch`: JSON lines, a command, a webhook, and a plain console line.

Every sink has `emit(event, episode, wall_time)` and `close(timeout)`:
- event is "alert" (an episode crossed the window) or "resolved" (an alerted episode ended);
- episode is `Episode.to_dict()` (watch adds "outage_s" on "resolved");
- wall_time is `time.time()` of the event.
`emit` never blocks on the outside world (commands and HTTP run in worker threads) and never raises
for a delivery failure: failures go to the sink's `on_error(message)` callback.  Episode fields come
from untrusted log text: they are passed as JSON / environment values, never through a shell.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import IO, Any, Protocol

from lkwedge.safe import printable

ErrorCallback = Callable[[str], None]
EVENTS = ("alert", "resolved")


def _stderr_error(msg: str) -> None:
    print(f"lkwedge: {msg}", file=sys.stderr, flush=True)


def iso_wall(wall_time: float) -> str:
    return dt.datetime.fromtimestamp(wall_time, dt.UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def event_record(event: str, episode: dict[str, Any], wall_time: float) -> dict[str, Any]:
    """The episode's fields plus "event" and "wall_time" (the two win over same-named fields)."""
    rec = dict(episode)
    rec["event"] = event
    rec["wall_time"] = iso_wall(wall_time)
    return rec


class Sink(Protocol):
    def emit(self, event: str, episode: dict[str, Any], wall_time: float) -> None: ...
    def close(self, timeout: float = 5.0) -> None: ...


# -- text helpers ------------------------------------------------------------------------------------

def _fmt_s(v: object) -> str:
    return f"{v:.1f}s" if isinstance(v, int | float) else "?"


def _trigger_text(episode: dict[str, Any]) -> str:
    for ev in episode.get("evidence") or ():
        if isinstance(ev, dict) and ev.get("role") in ("trigger", "attempt"):
            return str(ev.get("text", ""))
    return ""


def format_console(event: str, episode: dict[str, Any], wall_time: float, *, text_limit: int = 160) -> str:
    """One plain line per event, e.g.
    `2026-05-01T10:00:25.101Z ALERT stalled agent.log:1234 [job:AJ_x room=demo] no progress for 20.0s
    since 10:00:05Z: <trigger line>`.  Every field taken from the log is escaped."""
    where = f"{episode.get('file', '?')}:{episode.get('line', '?')}"
    tags = [str(episode.get("key") or "")]
    if episode.get("room"):
        tags.append(f"room={episode['room']}")
    tag = printable(" ".join(t for t in tags if t), 120)
    start = episode.get("start")
    since = f" since {printable(start, 40)}" if start else ""
    if event == "alert":
        silence = _fmt_s(episode.get("silence_s"))
        head = f"ALERT stalled {printable(where, 200)} [{tag}] no progress for {silence}{since}"
        trig = _trigger_text(episode)
        tail = f": {printable(trig, text_limit)}" if trig else ""
        if episode.get("verdict") == "ghost":  # the note names the claim and the evidence lines
            note = printable(episode.get("note") or "ghost room", 300)
            head = f"ALERT ghost {printable(where, 200)} [{tag}] {note}"
            tail = ""
    else:
        outage = episode.get("outage_s", episode.get("silence_s"))
        outcome = episode.get("outcome") or episode.get("verdict") or "ended"
        head = (f"RESOLVED {printable(where, 200)} [{tag}] {printable(outcome, 40)} after an outage of "
                f"{_fmt_s(outage)}")
        tail = ""
    return f"{iso_wall(wall_time)} {head}{tail}"


def _slack_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _redact_url(url: str) -> str:
    """Webhook URLs carry their secret in the path or query (Slack, Discord...): never print it."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{f':{parts.port}' if parts.port else ''}/…"


# -- JSON lines ---------------------------------------------------------------------------------------

class JsonlSink:
    """One JSON object per event, appended to `path` ("-" = stdout) and flushed at once."""

    def __init__(self, path: str, on_error: ErrorCallback = _stderr_error) -> None:
        self.on_error = on_error
        self._lock = threading.Lock()
        self._own = path != "-"
        self._fh: IO[str] = open(path, "a", encoding="utf-8") if self._own else sys.stdout  # noqa: SIM115

    def emit(self, event: str, episode: dict[str, Any], wall_time: float) -> None:
        line = json.dumps(event_record(event, episode, wall_time), ensure_ascii=False, default=str)
        with self._lock:
            try:
                self._fh.write(line + "\n")
                self._fh.flush()
            except (OSError, ValueError) as e:
                self.on_error(f"cannot write JSON lines: {e}")

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            if self._own and not self._fh.closed:
                self._fh.close()


# -- command ------------------------------------------------------------------------------------------

def command_env(event: str, episode: dict[str, Any]) -> dict[str, str]:
    def val(v: object) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v).replace("\x00", "")   # an env value cannot hold NUL

    return {
        "LKWEDGE_EVENT": event,
        "LKWEDGE_VERDICT": val(episode.get("verdict")),
        "LKWEDGE_FILE": val(episode.get("file")),
        "LKWEDGE_LINE": val(episode.get("line")),
        "LKWEDGE_KEY": val(episode.get("key")),
        "LKWEDGE_JOB": val(episode.get("job")),
        "LKWEDGE_ROOM": val(episode.get("room")),
        "LKWEDGE_SILENCE_S": val(episode.get("silence_s")),
        "LKWEDGE_START": val(episode.get("start")),
    }


class CommandSink:
    """Run `argv` (no shell) per event with the event record as JSON on stdin and LKWEDGE_* env vars.

    Each run happens in a worker thread, at most `max_concurrent` at a time, so a slow command never
    delays detection or the next alert (unless `max_concurrent` are all busy; then runs queue up, at
    most `max_pending` of them, beyond which events are dropped and reported).  A run is killed (its
    whole process group) after `timeout` s.  The command's stdout and stderr go to our stderr, so
    they never corrupt `--jsonl -` on stdout.
    """

    def __init__(self, argv: Sequence[str], on_error: ErrorCallback = _stderr_error, *,
                 max_concurrent: int = 4, max_pending: int = 64, timeout: float = 60.0,
                 output: int | None = None) -> None:
        if not argv:
            raise ValueError("empty command")
        self.argv = list(argv)
        self.on_error = on_error
        self.timeout = timeout
        self.output = output if output is not None else sys.stderr.fileno()
        self._slots = threading.Semaphore(max_concurrent)
        self._room = threading.Semaphore(max_pending)
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._threads: set[threading.Thread] = set()
        self._closing = threading.Event()

    def emit(self, event: str, episode: dict[str, Any], wall_time: float) -> None:
        if self._closing.is_set():
            return
        if not self._room.acquire(blocking=False):
            self.on_error(f"--on-alert: too many runs pending; dropped the {event} event for "
                          f"{printable(episode.get('id', '?'), 200)}")
            return
        payload = json.dumps(event_record(event, episode, wall_time), ensure_ascii=False, default=str)
        t = threading.Thread(target=self._run, args=(event, episode, payload.encode()),
                             name="lkwedge-on-alert", daemon=True)
        with self._lock:
            self._threads.add(t)
        t.start()

    def _run(self, event: str, episode: dict[str, Any], payload: bytes) -> None:
        name = printable(self.argv[0], 100)
        try:
            with self._slots:
                if self._closing.is_set():
                    return
                env = {**os.environ, **command_env(event, episode)}
                try:
                    proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=self.output,
                                            stderr=self.output, env=env, start_new_session=True)
                except OSError as e:
                    self.on_error(f"--on-alert: cannot run {name}: {e.strerror or e}")
                    return
                with self._lock:
                    self._procs.add(proc)
                try:
                    try:
                        proc.communicate(payload, timeout=self.timeout)
                    except subprocess.TimeoutExpired:
                        self._kill(proc)
                        proc.wait()
                        self.on_error(f"--on-alert: {name} did not finish within {self.timeout:g}s; killed")
                        return
                finally:
                    with self._lock:
                        self._procs.discard(proc)
                if proc.returncode != 0 and not self._closing.is_set():
                    how = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
                           else f"exited with status {proc.returncode}")
                    self.on_error(f"--on-alert: {name} {how} (event {event}, "
                                  f"{printable(episode.get('id', '?'), 200)})")
        finally:
            self._room.release()
            with self._lock:
                self._threads.discard(threading.current_thread())

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)

    def close(self, timeout: float = 5.0) -> None:
        """Wait up to `timeout` s for running commands, then kill what is left (and say so)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._closing.set()
        with self._lock:
            left = list(self._procs)
        for p in left:
            self._kill(p)
        if left:
            self.on_error(f"--on-alert: killed {len(left)} command(s) still running at exit")
        for t in threads:
            t.join(0.5)


# -- webhook ------------------------------------------------------------------------------------------

class _HttpFailure(Exception):
    def __init__(self, msg: str, retry: bool) -> None:
        super().__init__(msg)
        self.retry = retry


class WebhookSink:
    """POST each event as JSON {"text": <Slack-compatible summary>, "event", "wall_time", "episode"}.

    A background thread sends from a bounded queue; 5xx, 429 and connection errors are retried with
    exponential back-off (`backoff`, 2*backoff, ... capped at `max_backoff`) for at most `tries`
    attempts, then reported through on_error.  Other 4xx are reported at once.  The URL is never
    printed in full (it usually embeds a secret).
    """

    def __init__(self, url: str, on_error: ErrorCallback = _stderr_error, *, tries: int = 4,
                 backoff: float = 0.5, max_backoff: float = 8.0, timeout: float = 5.0,
                 max_queue: int = 256) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook URL must be http:// or https:// with a host")
        self.url = url
        self.on_error = on_error
        self.tries = max(1, tries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self._q: queue.Queue[tuple[str, dict[str, Any], float] | None] = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()      # set by close() when its drain deadline passes
        self._thread = threading.Thread(target=self._loop, name="lkwedge-webhook", daemon=True)
        self._thread.start()

    def emit(self, event: str, episode: dict[str, Any], wall_time: float) -> None:
        try:
            self._q.put_nowait((event, episode, wall_time))
        except queue.Full:
            self.on_error(f"webhook {_redact_url(self.url)}: queue full; dropped the {event} event")

    @staticmethod
    def body(event: str, episode: dict[str, Any], wall_time: float) -> dict[str, Any]:
        text = format_console(event, episode, wall_time)
        return {"text": _slack_escape(text), "event": event, "wall_time": iso_wall(wall_time),
                "episode": episode}

    def _post(self, data: bytes) -> None:
        req = urllib.request.Request(self.url, data=data, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "lkwedge-watch"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read(1 << 16)
        except urllib.error.HTTPError as e:
            retry = e.code >= 500 or e.code == 429
            raise _HttpFailure(f"HTTP {e.code}", retry) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise _HttpFailure(f"connection failed: {printable(reason, 200)}", True) from None

    def _deliver(self, event: str, episode: dict[str, Any], wall_time: float) -> None:
        data = json.dumps(self.body(event, episode, wall_time), ensure_ascii=False, default=str).encode()
        delay = self.backoff
        for attempt in range(1, self.tries + 1):
            try:
                self._post(data)
                return
            except _HttpFailure as e:
                last = str(e)
                if not e.retry or attempt == self.tries:
                    break
            if self._stop.wait(delay):
                last += " (gave up: shutting down)"
                break
            delay = min(delay * 2, self.max_backoff)
        episode_id = printable(episode.get("id", "?"), 200)
        self.on_error(f"webhook {_redact_url(self.url)}: {event} for {episode_id} "
                      f"not delivered after {attempt} attempt(s): {last}")

    def _loop(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            if self._stop.is_set():
                continue    # close() gave up: drain the rest without sending
            self._deliver(*item)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued for at most `timeout` s; then abandon the rest and say so."""
        deadline = time.monotonic() + timeout
        try:
            self._q.put(None, timeout=max(0.0, timeout))
            queued_sentinel = True
        except queue.Full:
            queued_sentinel = False
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if not self._thread.is_alive():
            return
        self._stop.set()                    # cut back-off waits short; skip what is still queued
        if not queued_sentinel:
            with contextlib.suppress(queue.Full):
                self._q.put(None, timeout=1.0)
        self._thread.join(self.timeout + 1.0)   # an in-flight POST is bounded by its own timeout
        self.on_error(f"webhook {_redact_url(self.url)}: shut down with events undelivered")


# -- fan-out ------------------------------------------------------------------------------------------

class Fanout:
    """Send each event to several sinks; one sink's exception never stops the others."""

    def __init__(self, sinks: Sequence[Sink], on_error: ErrorCallback = _stderr_error) -> None:
        self.sinks = list(sinks)
        self.on_error = on_error

    def emit(self, event: str, episode: dict[str, Any], wall_time: float) -> None:
        for s in self.sinks:
            try:
                s.emit(event, episode, wall_time)
            except Exception as e:      # a sink bug must not kill detection
                self.on_error(f"{type(s).__name__}: {e}")

    def close(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        for s in self.sinks:
            try:
                s.close(max(0.5, deadline - time.monotonic()))
            except Exception as e:
                self.on_error(f"{type(s).__name__}: {e}")

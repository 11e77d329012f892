"""`watch --alertmanager URL`: push alerts to Alertmanager the way Prometheus does.

Each alerted episode is one Alertmanager alert:
- labels identify it and nothing else (so its fingerprint is the same on every re-send and after a
  watcher restart): alertname (`LiveKitReconnectStalled`, or `LiveKitGhostRoom` once the SDK has given
  up), job_id / room / participant when the log names them (`episode_key` when there is no job id),
  instance (this host) and severity, plus the operator's static `--alert-label`s;
- annotations carry what changes: the one-line summary, the silence so far and the evidence lines;
- while open it is re-sent every `resend` seconds with endsAt = now + 4 x resend (what Prometheus does),
  so Alertmanager never times it out but does let it expire if this watcher dies for good;
- when the episode recovers or ends it is sent once more with endsAt = the time it ended (resolved).

Every POST carries the whole current state (all firing alerts plus the resolutions not yet
delivered), so a lost request or an Alertmanager restart heals at the next send.  Each URL (one per
member of an HA pair: each must get every alert, Alertmanager's gossip dedupes the notifications)
has its own worker thread with a bounded queue of pending resolutions and exponential back-off, so
the watcher never waits on the network and one dead Alertmanager never delays the other.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lkwedge.detect.episodes import Episode
from lkwedge.live.events import LiveEvent, iso_wall, rounded, snapshot
from lkwedge.live.sinks import ErrorCallback, format_console
from lkwedge.live.states import open_state
from lkwedge.safe import printable

if TYPE_CHECKING:
    from lkwedge.act.targets import TargetOptions
    from lkwedge.live.watch import Watcher

ALERTNAMES = {"stalled": "LiveKitReconnectStalled", "ghost": "LiveKitGhostRoom"}
DEFAULT_SEVERITY = "critical"       # a stalled voice agent is a caller talking to nobody
IDENTITY_LABELS = ("alertname", "job_id", "room", "participant", "episode_key")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
MAX_LABEL_VALUE = 256
MAX_PENDING_RESOLVED = 1000         # per URL; beyond it the oldest undelivered resolution is dropped
BATCH = 64                          # alerts per POST, as Prometheus' notifier
EVIDENCE_LINES = 8


@dataclass(frozen=True)
class AmAlert:
    """One alert as Alertmanager's v2 API wants it (ends_at None: firing, endsAt set at send time)."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: float
    ends_at: float | None = None

    def payload(self, firing_ends_at: float) -> dict[str, Any]:
        return {"labels": dict(self.labels), "annotations": dict(self.annotations),
                "startsAt": iso_wall(self.starts_at),
                "endsAt": iso_wall(self.ends_at if self.ends_at is not None else firing_ends_at)}


def parse_label(text: str) -> tuple[str, str]:
    """"KEY=VALUE" for --alert-label; ValueError with the reason."""
    key, sep, value = text.partition("=")
    if not sep or not LABEL_NAME.match(key) or key.startswith("__"):
        raise ValueError(f"expected KEY=VALUE with KEY a Prometheus label name, got {text!r}")
    if key in IDENTITY_LABELS:
        raise ValueError(f"{key} is set from the episode and cannot be overridden")
    if not value:
        raise ValueError(f"{key}: empty value")
    return key, value


def clean(text: object, limit: int = MAX_LABEL_VALUE) -> str:
    """Inert, valid UTF-8 text for a label or annotation: control characters escaped (log text is
    untrusted) and undecodable file-name bytes (surrogate escapes) shown as backslash escapes."""
    raw = str(text)
    try:
        raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")   # \udcff -> \xff
    except UnicodeEncodeError:
        raw = raw.encode("utf-8", "backslashreplace").decode("utf-8")
    return printable(raw, limit)


def _value(text: object) -> str:
    return clean(text, MAX_LABEL_VALUE)


def alerts_url(url: str) -> str:
    """The v2 alerts endpoint under an Alertmanager base URL (a path prefix such as /alertmanager is kept)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # Never echo the URL: it may carry basic-auth credentials.
        raise ValueError(f"not an http(s) URL with a host (scheme {printable(parts.scheme or 'none', 20)!r})")
    try:
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        raise ValueError(f"bad port in the URL for {printable(parts.hostname, 100)}") from None
    path = parts.path.rstrip("/")
    if not path.endswith("/api/v2/alerts"):
        path += "/api/v2/alerts"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _shown(url: str) -> str:
    """scheme://host:port only: a URL may carry basic-auth credentials; never print them."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


class AlertmanagerHook:
    """An EpisodeHook (plus on_tick): turns watch's alerts and closings into Alertmanager alerts."""

    def __init__(self, urls: Sequence[str], *, on_error: ErrorCallback, resend: float = 60.0,
                 instance: str | None = None, labels: Mapping[str, str] | None = None,
                 targets: TargetOptions | None = None, timeout: float = 5.0,
                 max_backoff: float = 30.0, on_info: ErrorCallback | None = None) -> None:
        from lkwedge.act.targets import TargetOptions

        if resend <= 0:
            raise ValueError("the re-send interval must be more than 0")
        self.resend = resend
        self.static = {"severity": DEFAULT_SEVERITY, "instance": instance or socket.gethostname(),
                       **{k: _value(v) for k, v in (labels or {}).items()}}
        self.targets = targets or TargetOptions()
        self.on_error = on_error
        self.on_info = on_info or on_error
        self._lock = threading.Lock()
        self._firing: dict[str, tuple[str, AmAlert]] = {}     # episode id -> (state, alert)
        # Retries never wait longer than a re-send interval, so an alert cannot expire between them.
        self.workers = [_Worker(self, alerts_url(u), timeout, min(max_backoff, resend)) for u in urls]
        for w in self.workers:
            w.start()

    # -- building alerts -----------------------------------------------------------------------------
    def labels_for(self, episode: Episode, state: str) -> dict[str, str]:
        from lkwedge.act.targets import derive_target

        labels = {"alertname": ALERTNAMES[state]}
        if episode.job:
            labels["job_id"] = _value(episode.job)
        else:
            labels["episode_key"] = _value(episode.key)
        if episode.room:
            labels["room"] = _value(episode.room)
        identity = derive_target(episode, self.targets).identity
        if identity:
            labels["participant"] = _value(identity)
        labels.update(self.static)
        return {k: v for k, v in labels.items() if v}

    def annotations_for(self, episode: Episode, state: str, silence: float | None) -> dict[str, str]:
        alert = LiveEvent("alert", snapshot(episode, silence_s=silence), time.time())
        line = format_console(alert).split(" ", 1)[1]   # drop the wall-clock stamp
        if state == "ghost":
            line = "ghost room (the SDK gave up and no disconnect followed): " + line
        evidence = [f"line {ev.line}: {clean(ev.text, 300)}" for ev in episode.evidence[-EVIDENCE_LINES:]]
        notes = {
            "summary": clean(line, 1000),
            "silence": "unknown (no timestamps)" if silence is None else f"{silence:.1f}s",
            "evidence": "\n".join(evidence),
            "episode": clean(episode.id, 300),
            "log_start": "" if episode.start is None else episode.start.isoformat(),
        }
        return {k: v for k, v in notes.items() if v}

    # -- EpisodeHook -------------------------------------------------------------------------------
    def on_alert(self, event: LiveEvent) -> None:
        episode = event.episode
        state = "ghost" if episode.ghost or episode.outcome == "gave_up" else "stalled"
        alert = AmAlert(self.labels_for(episode, state),
                        self.annotations_for(episode, state, rounded(episode.silence_s)), time.time())
        with self._lock:
            self._firing[episode.id] = (state, alert)
        self._wake()

    def on_closed(self, episode: Episode, resolved: LiveEvent | None) -> None:
        with self._lock:
            entry = self._firing.pop(episode.id, None)
        if entry is None or episode.closed_by is None:
            # Not alerted; or input ended with the episode still open (watch --once): nothing says the
            # wedge is over, so no resolution; the alert expires at its endsAt.
            return
        _state, alert = entry
        notes = dict(alert.annotations)
        outage = resolved.outage if resolved is not None else rounded(episode.silence_s)
        where = f" at line {episode.evidence[-1].line}" if episode.evidence else ""
        after = f" after an outage of {outage:.1f}s" if outage is not None else ""
        notes["resolution"] = clean(f"{episode.outcome or episode.verdict}{where}{after}", 300)
        self._resolve(replace(alert, annotations=notes, ends_at=time.time()))

    def on_tick(self, watcher: Watcher, mono_now: float) -> None:
        """Keep each firing alert's silence current, and switch its name when a stall becomes a ghost."""
        with self._lock:
            if not self._firing:
                return
            firing = dict(self._firing)
        for ep in watcher.detector.open_episodes():
            entry = firing.get(ep.id)
            if entry is None:
                continue
            old_state, old = entry
            log_now = watcher.estimated_log_now(ep.file, mono_now)
            state = open_state(ep, log_now, watcher.options.scan.window)   # alerted: "stalled" or "ghost"
            if old_state == "ghost" and ep.outcome == "gave_up":
                state = "ghost"         # fired as a ghost: stays one until something follows the give-up
            silence = ep.current_silence(log_now)
            if state != old_state:
                # A new alertname is a new alert: resolve the stall, fire the ghost.
                new = AmAlert(self.labels_for(ep, state), self.annotations_for(ep, state, silence),
                              time.time())
                with self._lock:
                    self._firing[ep.id] = (state, new)
                self._resolve(replace(old, ends_at=time.time()))
                continue
            notes = self.annotations_for(ep, state, silence)
            if notes != old.annotations:
                with self._lock:
                    if ep.id in self._firing:
                        self._firing[ep.id] = (state, replace(old, annotations=notes))

    # -- delivery ------------------------------------------------------------------------------------
    def firing(self) -> list[AmAlert]:
        with self._lock:
            return [alert for _state, alert in self._firing.values()]

    def _resolve(self, alert: AmAlert) -> None:
        for w in self.workers:
            w.add_resolved(alert)
        self._wake()

    def _wake(self) -> None:
        for w in self.workers:
            w.wake.set()

    def close(self, timeout: float = 5.0) -> None:
        """Deliver pending resolutions for at most `timeout` s.  Firing alerts are not resolved: the wedge
        is not known to be over; they expire at their endsAt unless a restarted watcher re-sends them."""
        deadline = time.monotonic() + timeout
        for w in self.workers:
            w.stop.set()
            w.wake.set()
        for w in self.workers:
            w.thread.join(max(0.0, deadline - time.monotonic()))
            if w.thread.is_alive() or w.resolved:
                self.on_error(f"alertmanager {_shown(w.url)}: shut down with "
                              f"{len(w.resolved)} resolution(s) undelivered")


class _Failure(Exception):
    pass


class _Worker:
    """One Alertmanager URL: sends the full state on every change and every `resend` s, with back-off."""

    def __init__(self, hook: AlertmanagerHook, url: str, timeout: float, max_backoff: float) -> None:
        self.hook = hook
        self.url = url
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.resolved: deque[AmAlert] = deque()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="lkwedge-alertmanager", daemon=True)
        self.failures = 0
        self.last_report = 0.0

    def start(self) -> None:
        self.thread.start()

    def add_resolved(self, alert: AmAlert) -> None:
        with self.lock:
            if len(self.resolved) >= MAX_PENDING_RESOLVED:
                self.resolved.popleft()
                self.hook.on_error(f"alertmanager {_shown(self.url)}: too many undelivered resolutions; "
                                   "dropped the oldest")
            self.resolved.append(alert)

    def _loop(self) -> None:
        backoff = 0.0
        next_send: float | None = None      # monotonic time of the next re-send or retry
        while True:
            if backoff and next_send is not None:
                # Backing off: new events wait for the retry (it carries the whole state anyway).
                self.stop.wait(max(0.0, next_send - time.monotonic()))
            else:
                self.wake.wait(None if next_send is None else max(0.0, next_send - time.monotonic()))
            if self.stop.is_set():
                self._final_flush()
                return
            self.wake.clear()
            firing = self.hook.firing()
            with self.lock:
                resolved = list(self.resolved)
            if not firing and not resolved:
                next_send, backoff = None, 0.0
                continue
            try:
                self._send(firing, resolved)
            except Exception as e:      # _Failure, or a bug: never let the worker thread die
                backoff = min(max(backoff * 2, 0.5), self.max_backoff)
                next_send = time.monotonic() + backoff
                self._report(str(e))
                continue
            with self.lock:
                for alert in resolved:
                    if self.resolved and self.resolved[0] is alert:
                        self.resolved.popleft()
            if self.failures:
                self.hook.on_info(f"alertmanager {_shown(self.url)}: delivered again after "
                                   f"{self.failures} failed attempt(s)")
                self.failures = 0
            backoff = 0.0
            next_send = time.monotonic() + self.hook.resend if firing else None

    def _final_flush(self) -> None:
        with self.lock:
            resolved = list(self.resolved)
        if not resolved:
            return
        try:
            self._send([], resolved)
            with self.lock:
                self.resolved.clear()
        except _Failure as e:
            self._report(str(e))

    def _report(self, reason: str) -> None:
        self.failures += 1
        now = time.monotonic()
        if self.failures == 1 or now - self.last_report >= 60.0:    # once per failure streak, then per minute
            self.last_report = now
            self.hook.on_error(f"alertmanager {_shown(self.url)}: {reason}; retrying with back-off "
                               f"({self.failures} failed attempt(s))")

    def _send(self, firing: list[AmAlert], resolved: list[AmAlert]) -> None:
        ends_at = time.time() + 4 * self.hook.resend
        # Resolutions first: when a job wedges again right after its last wedge ended, both alerts have the
        # same labels; Alertmanager must see the old one end before the new one starts, or it would merge
        # the new firing alert into the old one and then apply the old one's end to it.
        items = [a.payload(ends_at) for a in resolved] + [a.payload(ends_at) for a in firing]
        for i in range(0, len(items), BATCH):
            self._post(json.dumps(items[i:i + BATCH], ensure_ascii=False).encode())

    def _post(self, data: bytes) -> None:
        req = urllib.request.Request(self.url, data=data, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "lkwedge-watch"})
        parts = urllib.parse.urlsplit(self.url)
        if parts.username is not None:       # http://user:pass@host basic auth, as Prometheus allows
            import base64

            token = base64.b64encode(f"{urllib.parse.unquote(parts.username)}:"
                                     f"{urllib.parse.unquote(parts.password or '')}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
            req.full_url = urllib.parse.urlunsplit(
                (parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, ""))
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read(1 << 16)
        except urllib.error.HTTPError as e:
            body = printable(e.read(300).decode("utf-8", "replace"), 200)
            raise _Failure(f"HTTP {e.code} {body}".rstrip()) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise _Failure(f"connection failed: {printable(reason, 200)}") from None

"""`watch --metrics HOST:PORT`: Prometheus metrics of one watcher, for a fleet's existing Prometheus.

Labels only ever take values from small fixed sets (state, verdict, result) or the inputs the operator
named (input): never job ids, rooms or participants, which are unbounded and would give Prometheus a
new series per call.  Per-episode detail belongs in the alerts (see alertmanager.py).

Threading: event counters are prometheus_client Counters (thread-safe), bumped by the watcher's hooks;
everything derived from the detector's state is computed on the watcher's thread at each tick into an
immutable snapshot, which the scrape thread only reads, so a scrape never walks live detector maps.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from lkwedge.detect.episodes import VERDICTS, Episode
from lkwedge.errors import InputError
from lkwedge.live.alertmanager import clean
from lkwedge.live.events import LiveEvent
from lkwedge.live.states import OPEN_STATES, open_state

if TYPE_CHECKING:
    from lkwedge.live.watch import Watcher

EVICTION_RESULTS = ("evicted", "already_gone", "dry_run", "rate_limited", "duplicate", "no_target", "failed")
HEALTH_STALE_S = 30.0   # /healthz fails when the watcher loop has not ticked for this long


@dataclass(frozen=True)
class Snapshot:
    """The detector-derived values, as of the last tick."""

    open_states: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPEN_STATES, 0))
    longest_silence: float = 0.0
    lines: int = 0
    unparsed: int = 0
    input_lag: dict[str, float] = field(default_factory=dict)
    input_last_line: dict[str, float] = field(default_factory=dict)
    tick_wall: float = 0.0


class WatchMetrics:
    """An EpisodeHook (plus on_tick) that keeps the metrics; `serve()` exposes them over HTTP."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        reg = self.registry
        self.alerts = Counter("lkwedge_alerts", "Episodes that crossed the window (alerts raised).",
                              registry=reg)
        self.resolutions = Counter("lkwedge_resolutions",
                                   "Alerted episodes that ended (recovered, disconnected or superseded).",
                                   registry=reg)
        self.episodes = Counter("lkwedge_episodes", "Closed reconnect episodes, by verdict.", ["verdict"],
                                registry=reg)
        self.evictions = Counter("lkwedge_evictions", "Eviction attempts (watch --evict), by result.",
                                 ["result"], registry=reg)
        # Children made once: labels() per closed episode would cost more than the rest of the hook.
        self._by_verdict = {verdict: self.episodes.labels(verdict) for verdict in VERDICTS}
        for result in EVICTION_RESULTS:
            self.evictions.labels(result)
        self.started_wall = time.time()
        self.snapshot = Snapshot(tick_wall=self.started_wall)
        self._alerted: set[str] = set()         # ids of open, alerted episodes (dropped when they close)
        self._lock = threading.Lock()
        reg.register(_SnapshotCollector(self))
        self._server: WSGIServer | None = None

    # -- EpisodeHook ---------------------------------------------------------------------------------
    def on_alert(self, event: LiveEvent) -> None:
        self.alerts.inc()
        with self._lock:
            self._alerted.add(event.id)

    def on_closed(self, episode: Episode, resolved: LiveEvent | None) -> None:
        child = self._by_verdict.get(episode.verdict) or self.episodes.labels(episode.verdict)
        child.inc()
        with self._lock:
            alerted = episode.id in self._alerted
            self._alerted.discard(episode.id)
        if alerted and episode.closed_by is not None:
            self.resolutions.inc()

    def on_eviction(self, result: str) -> None:
        self.evictions.labels(result).inc()

    def on_tick(self, watcher: Watcher, mono_now: float) -> None:
        wall_now = time.time()
        states = dict.fromkeys(OPEN_STATES, 0)
        longest = 0.0
        window = watcher.options.scan.window
        for ep, silence, _open_s, _alerted in watcher.open_rows():
            states[open_state(ep, watcher.estimated_log_now(ep.file, mono_now), window)] += 1
            if silence is not None:
                longest = max(longest, silence)
        lag: dict[str, float] = {}
        last_line: dict[str, float] = {}
        for name, src in list(watcher.sources.items()):
            label = clean(name, 200)
            est = src.lag.log_now(mono_now, watcher.options.max_lag)
            if est is not None:
                lag[label] = max(0.0, wall_now - est.timestamp())
            # Never a line yet: count the silence from the watcher's start, so a dead input still alerts.
            last_line[label] = (wall_now - (mono_now - src.last_arrival) if src.last_arrival
                                else self.started_wall)
        streams = watcher.detector.streams
        self.snapshot = Snapshot(states, longest, sum(s.lines for s in streams),
                                 sum(sum(s.unparsed.values()) for s in streams), lag, last_line, wall_now)

    # -- HTTP ------------------------------------------------------------------------------------------
    def serve(self, host: str, port: int) -> tuple[str, int]:
        """Serve /metrics (Prometheus text, or OpenMetrics when asked) and /healthz in a daemon thread;
        returns the bound address.  Raises InputError when the address cannot be bound."""
        metrics_app = make_wsgi_app(self.registry)

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            if environ.get("PATH_INFO") == "/healthz":
                age = time.time() - self.snapshot.tick_wall
                ok = age < HEALTH_STALE_S
                start_response("200 OK" if ok else "503 Service Unavailable",
                               [("Content-Type", "text/plain; charset=utf-8")])
                return [b"ok\n" if ok else f"watcher loop stuck for {age:.0f}s\n".encode()]
            return metrics_app(environ, start_response)

        server_class = _Server6 if ":" in host else _Server
        try:
            self._server = make_server(host, port, app, server_class, handler_class=_QuietHandler)
        except (OSError, OverflowError) as e:
            raise InputError(f"--metrics {host}:{port}: cannot listen: {getattr(e, 'strerror', None) or e}"
                             ) from None
        threading.Thread(target=self._server.serve_forever, name="lkwedge-metrics", daemon=True).start()
        bound = self._server.server_address
        return str(bound[0]), int(bound[1])

    def close(self, timeout: float = 1.0) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _SnapshotCollector(Collector):
    def __init__(self, metrics: WatchMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        snap = self.metrics.snapshot
        g = GaugeMetricFamily("lkwedge_open_episodes",
                              "Reconnect episodes open now, by state (reconnecting: within the window; "
                              "stalled; ghost: stalled after the SDK gave up).", labels=["state"])
        for state in OPEN_STATES:
            g.add_metric([state], snap.open_states.get(state, 0))
        yield g
        yield GaugeMetricFamily("lkwedge_longest_open_silence_seconds",
                                "Longest silence (log time) of any open episode; 0 when none is open.",
                                value=snap.longest_silence)
        yield CounterMetricFamily("lkwedge_lines", "Log lines read.", value=snap.lines)
        yield CounterMetricFamily("lkwedge_unparsed_lines", "Log lines in no known format.",
                                  value=snap.unparsed)
        lag = GaugeMetricFamily("lkwedge_input_lag_seconds",
                                "Delivery lag of an input as the silence watermark sees it "
                                "(wall clock minus the estimated log time now).", labels=["input"])
        for name, value in sorted(snap.input_lag.items()):
            lag.add_metric([name], value)
        yield lag
        last = GaugeMetricFamily("lkwedge_input_last_line_timestamp_seconds",
                                 "Unix time the last line arrived on an input (the watcher's start time "
                                 "if none has).", labels=["input"])
        for name, value in sorted(snap.input_last_line.items()):
            last.add_metric([name], value)
        yield last
        yield GaugeMetricFamily("lkwedge_last_tick_timestamp_seconds",
                                "Unix time of the watcher loop's last tick (a stuck loop stops it).",
                                value=snap.tick_wall)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:   # no access log on the watcher's stderr
        pass


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def parse_listen(value: str) -> tuple[str, int]:
    """"HOST:PORT", ":PORT" (all interfaces) or "[v6]:PORT" -> (host, port); ValueError with the reason."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"expected HOST:PORT (e.g. 127.0.0.1:9471 or :9471), got {value!r}")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"port {port} is out of range (0-65535)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", port

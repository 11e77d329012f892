"""`watch --metrics`: the real command serves /metrics; promtool (Debian prometheus) checks it, and a real
Prometheus scrapes a running watcher and evaluates the shipped alerting rules against it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
from fleet_helpers import (
    ATTEMPT,
    CLOSE,
    PROMETHEUS,
    PROMTOOL,
    RECOVERED,
    Watch,
    agents,
    free_port,
    http_get,
    metric_value,
    need,
    wait_for,
)

ROOT = Path(__file__).resolve().parent.parent


def scrape(w: Watch) -> str:
    status, ctype, body = http_get(w.metrics_url())
    assert status == 200 and ctype.startswith("text/plain"), (status, ctype)
    return body


def test_metrics_follow_the_episodes_and_pass_promtool(watches) -> None:
    promtool = need(PROMTOOL, "prometheus")
    w = watches("--window", "2s", "--metrics", "127.0.0.1:0")
    w.write("not a log line at all", agents("job running", job="AJ_b", level="INFO"))
    w.write(agents(CLOSE, job="AJ_b"), agents(ATTEMPT, job="AJ_b", level="ERROR"),
            agents(RECOVERED, job="AJ_b", level="INFO"))           # a healthy resume
    w.write(agents(CLOSE, job="AJ_a"), agents(ATTEMPT, job="AJ_a", level="ERROR"))   # a wedge
    assert wait_for(lambda: "ALERT stalled" in w.stdout, 5), w.stderr
    text = wait_for(lambda: (t := scrape(w)) and metric_value(t, "lkwedge_alerts_total") == 1
                    and metric_value(t, "lkwedge_open_episodes", 'state="stalled"') == 1 and t, 2)
    assert text, scrape(w)
    assert metric_value(text, "lkwedge_open_episodes", 'state="stalled"') == 1
    assert metric_value(text, "lkwedge_open_episodes", 'state="reconnecting"') == 0
    assert metric_value(text, "lkwedge_open_episodes", 'state="ghost"') == 0
    assert metric_value(text, "lkwedge_episodes_total", 'verdict="recovered"') == 1
    assert metric_value(text, "lkwedge_episodes_total", 'verdict="stalled"') == 0
    assert metric_value(text, "lkwedge_resolutions_total") == 0
    assert metric_value(text, "lkwedge_lines_total") == 7
    assert metric_value(text, "lkwedge_unparsed_lines_total") == 1
    assert 2.0 <= metric_value(text, "lkwedge_longest_open_silence_seconds") < 6.0
    lag = metric_value(text, "lkwedge_input_lag_seconds", 'input="<stdin>"')
    assert lag is not None and 0 <= lag < 2
    assert abs(metric_value(text, "lkwedge_input_last_line_timestamp_seconds", 'input="<stdin>"')
               - time.time()) < 10
    assert metric_value(text, "lkwedge_evictions_total", 'result="evicted"') == 0
    assert metric_value(text, "process_resident_memory_bytes") > 0
    assert "AJ_a" not in text and "room" not in text.replace("rooms", "")    # no unbounded label values
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    w.write(agents(RECOVERED, job="AJ_a", level="INFO"))
    # Counters move at the event; the detector-derived gauges at the watcher's next tick (0.2 s).
    text = wait_for(lambda: (t := scrape(w)) and metric_value(t, "lkwedge_resolutions_total") == 1
                    and metric_value(t, "lkwedge_longest_open_silence_seconds") == 0 and t, 3)
    assert text, scrape(w)
    assert metric_value(text, "lkwedge_episodes_total", 'verdict="stalled"') == 1
    assert metric_value(text, "lkwedge_open_episodes", 'state="stalled"') == 0
    assert metric_value(text, "lkwedge_longest_open_silence_seconds") == 0

    status, ctype, body = http_get(w.metrics_url(), {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert status == 200 and ctype.startswith("application/openmetrics-text"), ctype
    assert body.rstrip().endswith("# EOF") and "lkwedge_alerts_total 1.0" in body
    status, _, body = http_get(w.metrics_url().replace("/metrics", "/healthz"))
    assert (status, body) == (200, "ok\n")
    assert w.stop() == 1


def test_a_real_prometheus_scrapes_a_watcher_and_fires_the_shipped_stall_rule(tmp_path: Path,
                                                                               watches) -> None:
    prometheus = need(PROMETHEUS, "prometheus")
    port, prom_port = free_port(), free_port()
    w = watches("--window", "2s", "--metrics", f"127.0.0.1:{port}")
    rules = tmp_path / "lkwedge-rules.yml"
    # The shipped rules, with the `for:` hold shortened so the test takes seconds, not a minute.
    shipped = (ROOT / "deploy/prometheus/lkwedge-rules.yml").read_text()
    rules.write_text(shipped.replace("for: 30s", "for: 1s"))
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "rule_files: [lkwedge-rules.yml]\n"
        "scrape_configs:\n  - job_name: lkwedge\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{port}']\n")
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{prom_port}/api/v1"

    def query(q: str) -> list[dict]:
        status, _, body = http_get(f"{api}/query?query={urllib.parse.quote(q)}", timeout=2)
        return json.loads(body)["data"]["result"] if status == 200 else []

    try:
        up = wait_for(lambda: query('up{job="lkwedge"} == 1'), 30, 0.25)
        assert up, (tmp_path / "prometheus.log").read_text()[-3000:]
        w.write(agents("job running", level="INFO"), agents(CLOSE), agents(ATTEMPT, level="ERROR"))
        stalled = wait_for(lambda: query('lkwedge_open_episodes{state="stalled"} == 1'), 15, 0.25)
        assert stalled and stalled[0]["metric"]["instance"] == f"127.0.0.1:{port}"
        firing = wait_for(lambda: query('ALERTS{alertname="LkwedgeStallOpen",alertstate="firing"}'), 15, 0.25)
        assert firing, query("ALERTS")
        assert query("lkwedge_alerts_total")[0]["value"][1] == "1"
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()
    w.stop()


def test_evictions_are_counted_by_result() -> None:
    from lkwedge.testing import FakeRoomService

    key, secret = "devkey", "a-long-enough-test-secret-0123456789"
    with FakeRoomService(api_key=key, api_secret=secret) as fake:
        fake.add_room("room-fleet", participants=["agent-AJ_fleet1"])
        w = Watch("--window", "1s", "--evict", "--metrics", "127.0.0.1:0",
                  env={"LIVEKIT_URL": fake.url, "LIVEKIT_API_KEY": key, "LIVEKIT_API_SECRET": secret})
        try:
            w.write(agents("job running", level="INFO"), agents(CLOSE), agents(ATTEMPT, level="ERROR"))
            text = wait_for(lambda: (t := scrape(w)) and
                            metric_value(t, "lkwedge_evictions_total", 'result="evicted"') == 1 and t, 8)
            assert text, w.stderr + scrape(w)
            assert metric_value(text, "lkwedge_evictions_total", 'result="failed"') == 0
            assert len(fake.calls) == 1
        finally:
            w.stop()


@pytest.mark.parametrize(("args", "message"), [
    (["--metrics", "nonsense"], "--metrics"),
    (["--metrics", "127.0.0.1:70000"], "out of range"),
    (["--metrics", "192.0.2.1:9471"], "cannot listen"),
    (["--alertmanager", "ftp://am:9093"], "not an http(s) URL"),
    (["--alertmanager", "http://am:9093", "--alert-label", "job_id=x"], "cannot be overridden"),
    (["--alertmanager", "http://am:9093", "--alert-label", "no-equals"], "KEY=VALUE"),
    (["--alert-label", "cluster=eu"], "--alert-label needs --alertmanager"),
    (["--alertmanager-resend", "10s"], "--alertmanager-resend needs --alertmanager"),
    (["--alertmanager", "http://am:9093", "--alertmanager-resend", "0"], "more than 0"),
])
def test_bad_fleet_options_exit_2_with_one_line(args: list[str], message: str) -> None:
    r = subprocess.run([sys.executable, "-m", "lkwedge", "watch", *args, "-"], input="", capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_metrics_port_in_use_is_a_one_line_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "lkwedge", "watch", "--metrics", f"127.0.0.1:{port}", "-"],
                           input="", capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"lkwedge: error: --metrics 127.0.0.1:{port}: cannot listen"), r.stderr

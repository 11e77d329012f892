"""Shared by the fleet tests: a `lkwedge watch` subprocess, agents log lines, and real Alertmanager /
Prometheus processes on loopback (Debian `prometheus-alertmanager` and `prometheus`)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CLOSE = ('livekit::rtc_engine:474:livekit::rtc_engine - received session close: '
         '"signal client closed: \\"ping timeout\\"" UnknownReason Resume')
ATTEMPT = "livekit::rtc_engine:773:livekit::rtc_engine - resuming connection... attempt: 0"
RESTART_FAILED = ("livekit::rtc_engine:759:livekit::rtc_engine - restarting connection failed: "
                  "signal failure: ws failure: IO error: dns error")
GAVE_UP = "livekit::rtc_engine:699:livekit::rtc_engine - failed to reconnect to the livekit room"
RECOVERED = "livekit::rtc_engine:702:livekit::rtc_engine - RtcEngine successfully recovered"

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


def need(binary: str, package: str) -> str:
    path = shutil.which(binary) or (binary if os.path.exists(binary) else None)
    if path is None:
        pytest.skip(f"{binary} not installed (Debian package {package}; .ci/run installs it when it can)")
    return path


def agents(msg: str, job: str = "AJ_fleet1", level: str = "WARNING", room: str | None = "room-fleet") -> str:
    """A livekit-agents JSON record stamped now."""
    rec: dict[str, Any] = {"message": msg, "level": level,
                           "name": "livekit" if msg.startswith("livekit::") else "livekit.agents",
                           "pid": 4242, "job_id": job, "timestamp": dt.datetime.now(dt.UTC).isoformat()}
    if room:
        rec["room"] = room
    return json.dumps(rec)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> tuple[int, str, str]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def wait_for(pred: Callable[[], Any], timeout: float, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = pred()
        except OSError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            return value
        time.sleep(step)


class Watch:
    """`python -m lkwedge watch ARGS` with a pipe on stdin; stdout/stderr collected as they arrive."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        env = {**os.environ, "COLUMNS": "400", **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "lkwedge", "watch", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.out: list[str] = []
        self.err: list[str] = []
        self.threads = [threading.Thread(target=self._pump, args=(s, d), daemon=True)
                        for s, d in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self.threads:
            t.start()
        assert wait_for(lambda: any("lkwedge: watching" in line for line in self.err), 20), self.stderr

    @staticmethod
    def _pump(stream: Any, dest: list[str]) -> None:
        for raw in iter(stream.readline, b""):
            dest.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def write(self, *lines: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(line + "\n" for line in lines).encode())
        self.proc.stdin.flush()

    def metrics_url(self) -> str:
        for line in self.err:
            m = re.search(r"metrics at (http://\S+/metrics)", line)
            if m:
                return m.group(1)
        raise AssertionError(self.stderr)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
        for t in self.threads:
            t.join(2)
        return rc

    @property
    def stdout(self) -> str:
        return "\n".join(self.out)

    @property
    def stderr(self) -> str:
        return "\n".join(self.err)


def metric_value(text: str, name: str, labels: str = "") -> float | None:
    """The value of `name{labels}` in Prometheus text (labels as written, e.g. 'state="ghost"')."""
    want = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == want:
            return float(value)
    return None


class Alertmanager:
    """A real Alertmanager on a loopback port, clustering off, state in tmp_path."""

    def __init__(self, tmp_path: Path, name: str = "am") -> None:
        binary = need(ALERTMANAGER, "prometheus-alertmanager")
        self.dir = tmp_path / name
        self.dir.mkdir()
        cfg = self.dir / "alertmanager.yml"
        cfg.write_text("route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(self.dir / "log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([binary, f"--config.file={cfg}", f"--storage.path={self.dir / 'data'}",
                                      f"--web.listen-address=127.0.0.1:{self.port}",
                                      "--cluster.listen-address="],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        ok = wait_for(lambda: http_get(f"{self.url}/-/ready", timeout=1)[0] == 200, 20, 0.1)
        assert ok, (self.dir / "log").read_text()

    def alerts(self, **query: str) -> list[dict[str, Any]]:
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        status, _, body = http_get(f"{self.url}/api/v2/alerts{'?' + qs if qs else ''}")
        assert status == 200, body
        return list(json.loads(body))

    def active(self, alertname: str | None = None) -> list[dict[str, Any]]:
        return [a for a in self.alerts() if a["status"]["state"] == "active"
                and (alertname is None or a["labels"].get("alertname") == alertname)]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

"""The deployment recipes in deploy/, checked as far as this machine allows: promtool and amtool check the
Prometheus and Alertmanager files (and unit-test the rules), systemd-analyze verifies the units, the compose
file and the Kubernetes manifest are parsed and their lkwedge command lines are parsed by lkwedge itself,
and the kubectl and journald recipes are run through real pipes.  No Docker engine or cluster is here."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fleet_helpers import ATTEMPT, CLOSE, PROMTOOL, Watch, agents, need, wait_for

yaml = pytest.importorskip("yaml", reason="PyYAML is a test dependency (pip install '.[test]')")

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def run(*cmd: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=60, cwd=cwd)


def parse_watch_args(args: list[str]) -> dict[str, Any]:
    """Parse a recipe's `lkwedge watch ...` arguments with lkwedge's own CLI (a bad flag fails here)."""
    from lkwedge.cli.watch import watch_command

    assert args[0] == "watch", args
    ctx = watch_command.make_context("watch", list(args[1:]))
    return dict(ctx.params)


def test_prometheus_rules_pass_promtool_check_and_their_unit_tests() -> None:
    promtool = need(PROMTOOL, "prometheus")
    r = run(promtool, "check", "rules", "lkwedge-rules.yml", cwd=DEPLOY / "prometheus")
    assert r.returncode == 0 and "SUCCESS: 6 rules found" in r.stdout, r.stdout + r.stderr
    r = run(promtool, "test", "rules", "lkwedge-rules.test.yml", cwd=DEPLOY / "prometheus")
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_prometheus_and_alertmanager_configs_pass_their_checkers() -> None:
    promtool = need(PROMTOOL, "prometheus")
    r = run(promtool, "check", "config", "prometheus.yml", cwd=DEPLOY / "prometheus")
    assert r.returncode == 0, r.stdout + r.stderr
    amtool = need("amtool", "prometheus-alertmanager")
    r = run(amtool, "check-config", str(DEPLOY / "alertmanager/alertmanager.yml"))
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("unit", ["lkwedge-journal.service", "lkwedge-file.service"])
def test_systemd_units_verify_cleanly(tmp_path: Path, unit: str) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    text = (DEPLOY / "systemd" / unit).read_text()
    # The unit runs /usr/local/bin/lkwedge; verify checks the binary exists, so point it at ours.
    lkwedge_bin = Path(sys.executable).parent / "lkwedge"
    if not lkwedge_bin.exists():
        pytest.skip(f"no lkwedge entry point next to {sys.executable}")
    (tmp_path / unit).write_text(text.replace("/usr/local/bin/lkwedge", str(lkwedge_bin)))
    r = run(analyze, "verify", str(tmp_path / unit))
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    for option in ("NoNewPrivileges=yes", "ProtectSystem=strict", "DynamicUser=yes", "MemoryMax="):
        assert option in text
    if "journal" in unit:
        assert "journalctl --follow --output=json" in text and "SupplementaryGroups=systemd-journal" in text


def test_compose_example_wires_watcher_prometheus_and_alertmanager() -> None:
    compose = yaml.safe_load((DEPLOY / "compose/docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"agent", "lkwedge", "prometheus", "alertmanager"}
    params = parse_watch_args(services["lkwedge"]["command"])
    port = params["metrics"].rpartition(":")[2]
    assert params["alertmanager"] == ("http://alertmanager:9093",)
    prom = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    assert prom["scrape_configs"][0]["static_configs"][0]["targets"] == [f"lkwedge:{port}"]
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert "../prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    assert "../alertmanager:/etc/alertmanager:ro" in services["alertmanager"]["volumes"]
    assert "agent-logs:/var/log/agent" in services["agent"]["volumes"]
    assert "agent-logs:/var/log/agent:ro" in services["lkwedge"]["volumes"]
    assert params["paths"] == ("/var/log/agent/*.log",)
    build = services["lkwedge"]["build"]
    dockerfile = (DEPLOY / "compose" / build["context"] / build["dockerfile"]).resolve()
    assert dockerfile == DEPLOY / "docker/Dockerfile"
    for line in dockerfile.read_text().splitlines():      # everything the image copies exists
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), src


def test_kubernetes_sidecar_exposes_metrics_probes_and_shares_the_log_volume() -> None:
    (deploy,) = yaml.safe_load_all((DEPLOY / "kubernetes/agent-with-lkwedge.yaml").read_text())
    pod = deploy["spec"]["template"]
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    side = containers["lkwedge"]
    params = parse_watch_args(side["args"])
    port = int(params["metrics"].rpartition(":")[2])
    assert side["ports"] == [{"name": "metrics", "containerPort": port}]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    for probe in ("readinessProbe", "livenessProbe"):
        assert side[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert len(params["alertmanager"]) == 2              # both members of the HA pair get every alert
    assert side["securityContext"]["readOnlyRootFilesystem"] is True
    assert side["resources"]["limits"]["memory"]
    mounts = {c: {m["name"]: m for m in containers[c]["volumeMounts"]} for c in containers}
    assert mounts["agent"]["agent-logs"]["mountPath"] == mounts["lkwedge"]["agent-logs"]["mountPath"]
    assert mounts["lkwedge"]["agent-logs"]["readOnly"] is True
    assert params["paths"][0].startswith(mounts["lkwedge"]["agent-logs"]["mountPath"] + "/")
    (monitor,) = yaml.safe_load_all((DEPLOY / "kubernetes/podmonitor.yaml").read_text())
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"


def test_kubectl_logs_recipe_alerts_through_a_real_pipe(tmp_path: Path) -> None:
    """deploy/kubernetes/kubectl-logs.sh with a stand-in `kubectl` (no cluster here) that prints what
    `kubectl logs --timestamps` prints: an RFC 3339 nano receive time, a space, the agent's JSON line."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "kubectl").write_text(
        "#!/bin/sh\n"
        f"echo \"$@\" > {tmp_path / 'kubectl-args'}\n"
        f"exec {sys.executable} {tmp_path / 'emit.py'}\n")
    (bindir / "lkwedge").write_text(f"#!/bin/sh\nexec {sys.executable} -m lkwedge \"$@\"\n")
    for exe in bindir.iterdir():
        exe.chmod(0o755)
    lines = [agents("job running", level="INFO"), agents(CLOSE), agents(ATTEMPT, level="ERROR")]
    (tmp_path / "emit.py").write_text(
        "import datetime as dt, json, sys, time\n"
        f"lines = {json.dumps(lines)}\n"
        "for line in lines:\n"
        "    rec = json.loads(line); rec['timestamp'] = dt.datetime.now(dt.UTC).isoformat()\n"
        "    stamp = dt.datetime.now(dt.UTC).strftime('%Y-%m-%dT%H:%M:%S.%f') + '123Z'\n"
        "    print(stamp, json.dumps(rec), flush=True)\n"
        "time.sleep(30)\n")
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "LKWEDGE_ARGS": "--window 1s"}
    recipe = str(DEPLOY / "kubernetes/kubectl-logs.sh")
    proc = subprocess.Popen([recipe, "deploy/livekit-agent", "-c", "agent"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)
    out: list[str] = []
    try:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any("ALERT stalled" in line for line in out):
            chunk = proc.stdout.read()
            if chunk:
                out.extend(chunk.decode().splitlines())
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    alert = [line for line in out if "ALERT stalled" in line]
    assert alert and "[job:AJ_fleet1 room=room-fleet]" in alert[0], out
    assert (tmp_path / "kubectl-args").read_text().split() == [
        "logs", "--follow", "--timestamps", "--since=5m", "deploy/livekit-agent", "-c", "agent"]


def test_journalctl_json_recipe_alerts_with_the_job_and_room() -> None:
    """What `journalctl -f -o json -u agent.service` writes (one journal entry per line, the agent's own
    line in MESSAGE), fed through a pipe to `lkwedge watch` as the systemd unit does."""
    w = Watch("--window", "1s")
    try:
        now_us = int(time.time() * 1e6)
        lines = [agents("job running", level="INFO"), agents(CLOSE), agents(ATTEMPT, level="ERROR")]
        for i, line in enumerate(lines):
            w.write(json.dumps({"__REALTIME_TIMESTAMP": str(now_us + i), "_SYSTEMD_UNIT": "agent.service",
                                "_PID": "812", "PRIORITY": "6", "MESSAGE": line}))
        assert wait_for(lambda: "ALERT stalled" in w.stdout, 5), w.stdout + w.stderr
        assert "[job:AJ_fleet1 room=room-fleet]" in w.stdout
    finally:
        w.stop()

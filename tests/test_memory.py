"""A watcher runs for days: its memory must not grow with the episodes it has seen.

One million reconnect episodes go through a real `lkwedge watch` on a pipe; its resident memory (from
/proc) after the first 100 000 and after all 1 000 000 must be about the same, while its metrics and
its summary still count every one of them.  Kept as objects, 900 000 episodes would add ~1 GB.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from fleet_helpers import Watch, http_get, metric_value, wait_for

from lkwedge.detect.engine import MAX_JOB_ROOMS, Detector

ATTEMPT = "resuming connection... attempt: 0"
EPISODES = 1_000_000
WARM = 100_000
BLOCK = 1000


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def block(b: int) -> str:
    """BLOCK first resume attempts (the close line hidden, as on SDKs that log it at DEBUG), one log
    second apart per block: each ends the previous episode of the stream (a new reconnect began) and
    opens the next, so every line is one episode. (Repeated closes would join one episode: a close
    before any attempt is the same reconnect, like a migration's double close.)"""
    stamp = f"2026-01-{1 + b // 86400:02d}T{b // 3600 % 24:02d}:{b // 60 % 60:02d}:{b % 60:02d}.000000Z"
    return f"{stamp} ERROR livekit::rtc_engine: {ATTEMPT}\n" * BLOCK


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/status")
def test_a_million_episodes_through_watch_do_not_grow_its_memory() -> None:
    w = Watch("--metrics", "127.0.0.1:0")
    try:
        url = w.metrics_url()
        assert w.proc.stdin is not None

        def lines_read() -> float:
            return metric_value(http_get(url)[2], "lkwedge_lines_total") or 0

        def feed(first_block: int, last_block: int) -> None:
            for b in range(first_block, last_block):
                w.proc.stdin.write(block(b).encode())
            w.proc.stdin.flush()

        feed(0, WARM // BLOCK)
        assert wait_for(lambda: lines_read() >= WARM, 120, 0.2), w.stderr
        warm_rss = rss_bytes(w.proc.pid)
        feed(WARM // BLOCK, EPISODES // BLOCK)
        assert wait_for(lambda: lines_read() >= EPISODES, 600, 0.5), w.stderr
        end_rss = rss_bytes(w.proc.pid)
        text = http_get(url)[2]
        assert metric_value(text, "lkwedge_episodes_total", 'verdict="recovered"') == EPISODES - 1
        growth = end_rss - warm_rss
        assert growth < 24 * 2**20, f"RSS grew {growth / 2**20:.1f} MiB over {EPISODES - WARM} episodes"
        assert w.stop() == 0
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
    summary = w.stdout.splitlines()
    assert f"{EPISODES - 1} closed episode(s) in {EPISODES} line(s)" in w.stdout
    assert re.search(r"note: \d+ older closed episode\(s\) not listed", w.stdout)
    assert len(summary) < 250                     # the newest 200 are listed, not a million


def test_the_job_room_map_forgets_ended_jobs_and_is_capped() -> None:
    det = Detector()
    stream = det.stream("agent.log")
    line = 0
    for i in range(3000):        # jobs that start and end
        job = f'"job_id": "AJ_{i}", "room": "r{i}", "timestamp": "2026-01-01T00:00:00+00:00"'
        for msg in ("received job request", "process exiting"):
            line += 1
            det.feed(stream, line, f'{{"message": "{msg}", "level": "INFO", {job}}}')
    assert stream.job_rooms == {}
    for i in range(MAX_JOB_ROOMS + 500):     # jobs whose end we never see
        line += 1
        det.feed(stream, line, f'{{"message": "received job request", "level": "INFO", "job_id": "AJ_x{i}", '
                               f'"room": "r{i}", "timestamp": "2026-01-01T00:00:00+00:00"}}')
    assert len(stream.job_rooms) == MAX_JOB_ROOMS
    assert f"AJ_x{MAX_JOB_ROOMS + 499}" in stream.job_rooms and "AJ_x0" not in stream.job_rooms

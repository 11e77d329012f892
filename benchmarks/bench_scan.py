#!/usr/bin/env python3
"""Throughput of `lkwedge scan` against baselines measured in the same run, on the same file.

    python benchmarks/bench_scan.py                    # builds a 1,000,000-line log itself
    python benchmarks/bench_scan.py --log synth.log    # or use an existing file (e.g. gen_synth.py output)

Baselines: (a) Python reading the file line by line and doing nothing, (b) the naive per-line way
(a substring test per pattern literal on every line). Figures are reported as ratios to (a), so they
compare across machines; the machine is printed too. SEC 2.9 measured ~285k lines/s on the reference
machine (anchors.md), i.e. about 0.12x of baseline (a) there.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

CLOSE = 'received session close: "signal client closed: \\"stream closed\\"" UnknownReason Resume'
CHATTER = ["llm turn finished in {n} ms", "vad: speech probability 0.{n}", "connection {h} idle, closing",
           "(rtp_transport.cc:{n}): Failed to demux RTP packet", "received signal message: Pong {n}"]


def build_log(path: Path, lines: int, seed: int = 42) -> None:
    rnd = random.Random(seed)
    t = datetime(2026, 5, 1, 10, tzinfo=UTC)
    written = 0
    with path.open("w", encoding="utf-8") as out:
        while written < lines:
            t += timedelta(milliseconds=rnd.randint(1, 40))
            stamp = t.strftime("%Y-%m-%dT%H:%M:%SZ")
            if rnd.random() < 1 / 2000:
                out.write(f"[{stamp} WARN  livekit::rtc_engine] {CLOSE}\n")
                out.write(f"[{stamp} ERROR livekit::rtc_engine] resuming connection... attempt: 0\n")
                written += 2
                if rnd.random() < 0.9:
                    t += timedelta(milliseconds=400)
                    out.write(f"[{t.strftime('%Y-%m-%dT%H:%M:%SZ')} INFO  livekit::rtc_engine] "
                              "RtcEngine successfully recovered\n")
                    written += 1
                continue
            msg = rnd.choice(CHATTER).format(n=rnd.randint(1, 9999), h=f"{rnd.getrandbits(32):08x}")
            out.write(f"[{stamp} INFO  my_agent] {msg}\n")
            written += 1


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and max RSS (MiB) of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(argv, check=False, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(rss, before) / 1024


BASELINE = "import sys\nfor line in open(sys.argv[1], encoding='utf-8'): pass\n"
NAIVE = (
    "import sys\nfrom lkwedge.detect.patterns import PatternSet\nlits = PatternSet.load().literals\n"
    "n = 0\nfor line in open(sys.argv[1], encoding='utf-8'):\n"
    "    if any(l in line for l in lits): n += 1\n"
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log", type=Path, help="existing log to scan (default: build 1M lines)")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = args.log or Path(tmp) / "bench.log"
        if args.log is None:
            build_log(log, args.lines)
        with log.open("rb") as handle:
            lines = sum(1 for _ in handle)
        runs = {
            "baseline: python line loop": [sys.executable, "-c", BASELINE, str(log)],
            "naive: substring test per literal per line": [sys.executable, "-c", NAIVE, str(log)],
            "lkwedge scan --format json": [sys.executable, "-m", "lkwedge", "scan", "--format", "json",
                                           str(log)],
        }
        print(f"machine: {platform.machine()} {cpu_model()}, {os.cpu_count()} cpu(s), "
              f"Python {platform.python_version()}")
        print(f"input: {log.name}, {lines:,} lines, {log.stat().st_size / 1e6:.1f} MB")
        results = {name: min(timed(argv) for _ in range(args.repeat)) for name, argv in runs.items()}
        base = results["baseline: python line loop"][0]
        for name, (secs, rss) in results.items():
            print(f"{name:<45} {secs:6.2f} s  {lines / secs / 1000:7.0f}k lines/s  "
                  f"{base / secs:5.2f}x baseline  max RSS {rss:5.0f} MiB")


if __name__ == "__main__":
    main()

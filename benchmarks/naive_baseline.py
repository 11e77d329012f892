#!/usr/bin/env python3
"""The naive baseline: a per-line Python loop with a substring prefilter, two regexes and an ISO
timestamp parse, judging 'attempt then no progress within 20 s of log time' (env_logger lines).
This is what a competent user would write in an afternoon; lkwedge must beat it by a wide margin."""
import re
import sys
from datetime import datetime

TS = re.compile(r"^\[(\S+) ")
PROGRESS = ("successfully recovered", "restarting connection", "connection failed", "disconnect")
open_at = None; stalls = 0; last = None
with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
    for line in f:
        if open_at is not None or "rtc_engine" in line:
            m = TS.match(line)
            if not m:
                continue
            t = datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
            last = t
            if open_at is not None and t - open_at > 20:
                stalls += 1; open_at = None
            if "resuming connection... attempt" in line:
                open_at = t
            elif open_at is not None and any(p in line for p in PROGRESS):
                open_at = None
print(stalls)

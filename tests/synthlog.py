"""A small deterministic generator of env_logger-format LiveKit client logs with planted episodes.

Tests build their own big inputs with it (they must not need /work/shared). Log time advances 20 ms per
line. Each planted episode is the SDK's real pair of lines::

    [.. WARN  livekit::rtc_engine] received session close: "signal client closed: \\"stream closed\\"" ...
    [.. ERROR livekit::rtc_engine] resuming connection... attempt: 0

followed by, for a *recovery*, ``RtcEngine successfully recovered`` 0.4 s later; for a *stall*, at least
``stall_s`` (default 35 s) of chatter with no progress line at all; for a *disconnect*,
``server requested disconnect during resume`` and ``disconnected from room``. Enough chatter follows the
last episode that none is left unresolved.

``style="agents"`` writes livekit-agents JSON lines instead, spread over ``jobs`` (job id, room) pairs; each
episode belongs to one job and every other job's chatter keeps the clock running.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

STEP = dt.timedelta(milliseconds=20)
CLOSE = 'received session close: "signal client closed: \\"stream closed\\"" UnknownReason Resume'
ATTEMPT = "resuming connection... attempt: 0"
RECOVERED = "RtcEngine successfully recovered"
CHATTER = [
    ("INFO", "my_agent", "llm turn finished in {n} ms"),
    ("DEBUG", "my_agent", "vad: speech probability 0.{n}"),
    ("DEBUG", "livekit::room", "participant track subscribed sid=TR_{n}"),
    ("INFO", "libwebrtc", "(audio_send_stream.cc:{n}): ssrc {n} stats"),
    ("DEBUG", "livekit_api::signal_client", "ping rtt={n}ms"),
    ("WARN", "my_agent", "tts backpressure, queued={n}"),
]


@dataclass
class Planted:
    kind: str  # "stall" | "recovery" | "disconnect"
    line: int  # 1-based line of the episode's first line (the `received session close` WARN)
    attempt_line: int  # 1-based line of `resuming connection... attempt: 0`
    time: dt.datetime  # log time of the first line
    job: str | None = None
    room: str | None = None


@dataclass
class SynthLog:
    path: Path
    lines: int
    episodes: list[Planted] = field(default_factory=list)

    def of(self, kind: str) -> list[Planted]:
        return [p for p in self.episodes if p.kind == kind]


def write_synth(path: Path, *, lines: int = 20_000, stalls: int = 3, recoveries: int = 5,
                disconnects: int = 0, stall_s: float = 35.0, seed: int = 7, style: str = "env_logger",
                jobs: list[tuple[str, str]] | None = None,
                start: dt.datetime = dt.datetime(2026, 5, 1, 10, 0, tzinfo=dt.UTC)) -> SynthLog:
    """Write ``lines`` lines (or more, if the planted episodes need more) and say where each episode is."""
    rnd = random.Random(seed)
    kinds = ["stall"] * stalls + ["recovery"] * recoveries + ["disconnect"] * disconnects
    rnd.shuffle(kinds)
    stall_lines = int(stall_s / 0.02) + 1
    tail = int(40 / 0.02)  # > window after the last episode, so nothing ends unresolved
    needed = sum(stall_lines + 2 if k == "stall" else 40 for k in kinds) + tail + len(kinds)
    gap = max(5, (lines - needed) // (len(kinds) + 1)) if kinds else lines

    out: list[str] = []
    t = start
    info = SynthLog(path=path, lines=0)

    jobs = jobs or [("AJ_synth0001", "room-a")]
    current: tuple[str, str] | None = None  # the job of the episode being written

    def emit(level: str, target: str, msg: str) -> None:
        nonlocal t
        t += STEP
        if style == "env_logger":
            out.append(f"[{t.strftime('%Y-%m-%dT%H:%M:%SZ')} {level:<5} {target}] {msg}")
            return
        job, room = current or jobs[0]
        name = "livekit" if target.startswith("livekit") else target
        record = {"message": f"{target}:474:{target} - {msg}" if name == "livekit" else msg,
                  "level": {"WARN": "WARNING"}.get(level, level), "name": name,
                  "pid": 400 + jobs.index((job, room)),
                  "job_id": job, "room": room, "timestamp": t.isoformat(timespec="microseconds")}
        out.append(json.dumps(record))

    def chatter(n: int, quiet: tuple[str, str] | None = None) -> None:
        """``quiet``: a job that says nothing meanwhile (a stalled one: its own chatter could be activity)."""
        nonlocal current
        saved = current
        others = [j for j in jobs if j != quiet] or jobs
        for _ in range(n):
            current = rnd.choice(others)
            level, target, tmpl = rnd.choice(CHATTER)
            emit(level, target, tmpl.format(n=rnd.randint(1, 9999)))
        current = saved

    for kind in kinds:
        chatter(gap)
        current = rnd.choice(jobs) if style != "env_logger" else None
        emit("WARN", "livekit::rtc_engine", CLOSE)
        job, room = current or (None, None)
        info.episodes.append(Planted(kind, len(out), len(out) + 1, t, job, room))
        emit("ERROR", "livekit::rtc_engine", ATTEMPT)
        if kind == "recovery":
            chatter(19)  # 0.4 s later
            emit("INFO", "livekit::rtc_engine", RECOVERED)
        elif kind == "disconnect":
            chatter(19)
            emit("WARN", "livekit::rtc_engine", "server requested disconnect during resume: ServerShutdown")
            emit("INFO", "livekit::room", "disconnected from room with reason: ServerShutdown")
        else:
            chatter(stall_lines, quiet=current)
        current = None
    chatter(max(tail, lines - len(out)))
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    info.lines = len(out)
    return info

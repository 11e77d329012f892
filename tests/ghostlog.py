"""Small builders for agents-JSON and env_logger lines used by the ghost/fingerprint tests."""

from __future__ import annotations

import datetime as dt
import json

T0 = dt.datetime(2026, 3, 4, 9, 0, 0, tzinfo=dt.UTC)

# python livekit 1.0.23-1.0.25 (ffi 0.12.40-0.12.44): 0-based, no Disconnected after a give-up
OLD = {
    "close": 474,
    "resume_attempt": 773,
    "resume_failed": 775,
    "restart_attempt": 749,
    "restart_failed": 759,
    "give_up": 699,
    "recovered": 702,
}
# python livekit 1.1.12-1.1.13 (ffi 0.12.67-0.12.68): 1-based, Disconnected always emitted
NEW = {
    "close": 585,
    "resume_attempt": 975,
    "resume_failed": 1002,
    "restart_attempt": 929,
    "restart_failed": 964,
    "give_up": 856,
    "recovered": 872,
}
CLOSE = 'received session close: "signal client closed: \\"ping timeout\\"" UnknownReason Resume'


class Log:
    """Agents JSON lines for one or more jobs; ``at`` is seconds after T0."""

    def __init__(self, t0: dt.datetime = T0) -> None:
        self.t0 = t0
        self.lines: list[tuple[float, str]] = []

    def job(
        self,
        at: float,
        job: str,
        message: str,
        level: str = "INFO",
        name: str = "livekit.agents",
        **extra: object,
    ) -> Log:
        obj = {
            "message": message,
            "level": level,
            "name": name,
            **extra,
            "pid": 100 + len(job),
            "job_id": job,
            "room": f"room-{job}",
            "timestamp": (self.t0 + dt.timedelta(seconds=at)).isoformat(),
        }
        self.lines.append((at, json.dumps(obj)))
        return self

    def sdk(
        self,
        at: float,
        job: str,
        message: str,
        line: int | None = None,
        level: str = "ERROR",
        target: str = "livekit::rtc_engine",
    ) -> Log:
        where = f"{target}:{line}:{target}" if line is not None else target
        return self.job(at, job, f"{where} - {message}", level=level, name="livekit")

    def activity(self, at: float, job: str) -> Log:
        return self.job(at, job, "STT metrics", audio_duration=3.0)

    def chatter(self, at: float, job: str, text: str = "still here") -> Log:
        return self.job(at, job, text, name="my-agent")

    def text(self) -> str:
        return "".join(line + "\n" for _, line in sorted(self.lines, key=lambda x: x[0]))


def give_up_sequence(log: Log, at: float, job: str, table: dict[str, int], base: int) -> float:
    """close, resume, 2 quick restarts, give-up; returns the give-up time."""
    log.sdk(at, job, CLOSE, table["close"], "WARNING")
    log.sdk(at + 0.001, job, f"resuming connection... attempt: {base}", table["resume_attempt"])
    log.sdk(
        at + 1.0,
        job,
        "resuming connection failed: signal failure: ws failure: IO error: failed to lookup "
        "address information: Temporary failure in name resolution",
        table["resume_failed"],
    )
    for i, n in enumerate(range(base + 1, base + 3)):
        log.sdk(at + 1.1 + i * 0.2, job, f"restarting connection... attempt: {n}", table["restart_attempt"])
        log.sdk(
            at + 1.2 + i * 0.2,
            job,
            "restarting connection failed: signal failure: ws failure: IO error: "
            "failed to lookup address information",
            table["restart_failed"],
        )
    log.sdk(at + 2.0, job, "failed to reconnect to the livekit room", table["give_up"])
    return at + 2.0

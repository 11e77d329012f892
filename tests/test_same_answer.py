"""One reading, one verdict: every way a log can reach lkwedge gives the same episodes, field for field.

Generated logs (several jobs and formats, blank lines, CRLF, midnight rollover, newest-first order,
more than 1 MiB of chatter between events) are read as a file, a .gz, in random-sized byte pieces, and
through the real CLI: scan of the file, of stdin, of the .gz, of gzip on stdin, `watch --once
--from-start --format json`, and a writer process feeding a pipe in random pieces. The JSON must be
identical once the input's name (a path or "<stdin>") is taken out.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
import subprocess
import sys
from pathlib import Path

from conftest import feed_in_pieces, spilling_every_episode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lkwedge.detect.engine import ScanResult, scan
from lkwedge.output.render import write_json

CLOSE = 'received session close: "signal client closed: \\"ping timeout\\"" UnknownReason Resume'
FWD = "livekit::rtc_engine:474:livekit::rtc_engine - "
FORMATS = ("env_logger", "tracing", "asctime", "json")


def _line(fmt: str, t: dt.datetime, level: str, target: str, msg: str, job: str | None) -> str:
    if fmt == "env_logger":
        return f"[{t.strftime('%Y-%m-%dT%H:%M:%SZ')} {level:<5} {target}] {msg}"
    if fmt == "tracing":
        return f"{t.strftime('%Y-%m-%dT%H:%M:%S.%fZ')} {level:>5} {target}: {msg}"
    if fmt == "asctime":
        stamp = f"{t.strftime('%Y-%m-%d %H:%M:%S')},{t.microsecond // 1000:03d}"
        return f"{stamp} - livekit - {level} - {FWD}{msg}"
    record = {"message": FWD + msg if target.startswith("livekit::") else msg,
              "level": {"WARN": "WARNING"}.get(level, level), "name": "livekit",
              "timestamp": t.isoformat(timespec="microseconds")}
    if job:
        record.update(pid=400 + len(job), job_id=job)
    return json.dumps(record)


@st.composite
def logs(draw: st.DrawFn, big: bool = False) -> bytes:
    rnd = random.Random(draw(st.integers(0, 2**32)))
    fmt_pool = draw(st.lists(st.sampled_from(FORMATS), min_size=1, max_size=3, unique=True))
    jobs = [f"AJ_{i}x{rnd.randrange(10**6)}" for i in range(draw(st.integers(1, 3)))]
    start = draw(st.sampled_from([dt.datetime(2026, 5, 1, 10, 0, tzinfo=dt.UTC),
                                  dt.datetime(2026, 5, 1, 23, 59, 10, tzinfo=dt.UTC)]))  # midnight rollover
    t = start
    lines: list[tuple[dt.datetime, str]] = []

    def emit(level: str, target: str, msg: str, job: str | None) -> None:
        fmt = "json" if job and "json" in fmt_pool else rnd.choice(fmt_pool)
        lines.append((t, _line(fmt, t, level, target, msg, job if fmt == "json" else None)))

    def chatter(n: int) -> None:
        nonlocal t
        for _ in range(n):
            t += dt.timedelta(milliseconds=rnd.randint(5, 900))
            emit("INFO", "voice_bot", f"llm turn finished in {rnd.randint(100, 9000)} ms", None)
            if rnd.random() < 0.05:
                lines.append((t, ""))  # a blank line

    chatter(rnd.randint(0, 30))
    for _ in range(draw(st.integers(1, 4))):
        job = rnd.choice(jobs)
        emit("WARN", "livekit::rtc_engine", CLOSE, job)
        t += dt.timedelta(milliseconds=rnd.randint(0, 5))
        emit("ERROR", "livekit::rtc_engine", "resuming connection... attempt: 0", job)
        gap = draw(st.sampled_from([0.5, 3.0, 19.0, 25.0, 70.0]))
        end = t + dt.timedelta(seconds=gap)
        if big and gap > 20:
            while t < end - dt.timedelta(seconds=1):  # > 1 MiB of chatter inside the silence
                chatter(2000)
                if sum(len(text) for _, text in lines) > (3 << 20):
                    break
        while t < end:
            chatter(1)
        ending = draw(st.sampled_from(["recovered", "failed", "nothing"]))
        if ending == "recovered":
            emit("INFO", "livekit::rtc_engine", "RtcEngine successfully recovered", job)
        elif ending == "failed":
            emit("ERROR", "livekit::rtc_engine", "resuming connection failed: signal failure: timed out", job)
            emit("ERROR", "livekit::rtc_engine", "restarting connection... attempt: 1", job)
        chatter(rnd.randint(0, 40))
    texts = [text for _, text in lines]
    if draw(st.booleans()) and not big:
        texts.reverse()  # a newest-first paste
    newline = "\r\n" if draw(st.booleans()) else "\n"
    return (newline.join(texts) + newline).encode()


def _normal(result: ScanResult, name: str) -> str:
    """The JSON a user gets, with the input's name taken out."""
    from io import StringIO

    out = StringIO()
    write_json(result, out)
    return _strip_name(out.getvalue(), name)


def _strip_name(text: str, name: str) -> str:
    return text.replace(json.dumps(name)[1:-1], "<input>")


def _pieces(data: bytes, rnd: random.Random) -> ScanResult:
    """The bytes as a pipe delivers them to `watch`: random-sized pieces, each cut into lines as it comes."""
    detector = feed_in_pieces(data, rnd, (1, 13, 997, 65536, 65536, 65536))
    return ScanResult(detector.episodes(), detector.summary())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=logs(), seed=st.integers(0, 1000))
def test_file_gz_and_random_pieces_give_the_same_episodes(tmp_path_factory, data: bytes, seed: int) -> None:
    tmp = tmp_path_factory.mktemp("same")
    plain, packed = tmp / "a.log", tmp / "a.log.gz"
    plain.write_bytes(data)
    packed.write_bytes(gzip.compress(data))
    want = _normal(scan([str(plain)]), str(plain))
    assert _normal(scan([str(packed)]), str(packed)) == want
    assert _normal(_pieces(data, random.Random(seed)), "<stdin>") == want
    with spilling_every_episode():  # a long scan's episodes go to disk: the answer is the same
        assert _normal(scan([str(plain)]), str(plain)) == want


def _cli(*args: str, stdin: bytes | None = None, cwd: Path) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "lkwedge", *args], input=stdin, capture_output=True,
                          cwd=cwd, timeout=180)
    assert proc.returncode in (0, 1), proc.stderr.decode()[-2000:]
    return proc.returncode, proc.stdout.decode()


WRITER = """
import random, sys, time
data = open(sys.argv[1], "rb").read()
rnd = random.Random(int(sys.argv[2]))
pos = 0
while pos < len(data):
    size = rnd.choice([1, 3, 50, 4096, 65536])
    sys.stdout.buffer.write(data[pos:pos + size]); sys.stdout.buffer.flush()
    pos += size
    if rnd.random() < 0.01:
        time.sleep(0.001)
"""


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(logs(big=True), logs()))
def test_every_cli_path_gives_the_same_json(tmp_path_factory, data: bytes) -> None:
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "a.log").write_bytes(data)
    (tmp / "a.log.gz").write_bytes(gzip.compress(data))
    (tmp / "writer.py").write_text(WRITER)
    code, out = _cli("scan", "--format", "json", "a.log", cwd=tmp)
    want = _strip_name(out, "a.log")
    assert json.loads(want)["summary"]["lines"] > 0
    paths = {
        "stdin": _cli("scan", "--format", "json", "-", stdin=data, cwd=tmp),
        "gz": _cli("scan", "--format", "json", "a.log.gz", cwd=tmp),
        "gzip on stdin": _cli("scan", "--format", "json", stdin=gzip.compress(data), cwd=tmp),
        "watch --once": _cli("watch", "--once", "--from-start", "--format", "json", "a.log", cwd=tmp),
    }
    writer = subprocess.Popen([sys.executable, str(tmp / "writer.py"), str(tmp / "a.log"), "7"],
                              stdout=subprocess.PIPE)
    piped = subprocess.run([sys.executable, "-m", "lkwedge", "scan", "--format", "json"], stdin=writer.stdout,
                           capture_output=True, cwd=tmp, timeout=180)
    writer.wait(timeout=60)
    paths["pipe in pieces"] = (piped.returncode, piped.stdout.decode())
    for how, (got_code, got) in paths.items():
        name = "a.log.gz" if how == "gz" else "a.log" if how == "watch --once" else "<stdin>"
        assert got_code == code, how
        assert _strip_name(got, name) == want, how

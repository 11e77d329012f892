"""`lkwedge scan` as a user runs it: verdicts on log time, exit codes, inputs and outputs."""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import run_lkwedge, scan_json
from hypothesis import given, settings
from hypothesis import strategies as st

from lkwedge.detect.engine import ScanOptions, scan
from lkwedge.output.render import one_line_json
from lkwedge.verdicts import Verdict

CLOSE = 'received session close: "signal client closed: \\"ping timeout\\"" UnknownReason Resume'


def env(ts: str, level: str, target: str, msg: str) -> str:
    return f"[{ts}Z {level:<5} {target}] {msg}"


def agents(ts: str, level: str, msg: str, job: str, name: str = "livekit", **extra: object) -> str:
    return json.dumps({"message": msg, "level": level, "name": name, "pid": 460, "job_id": job, **extra,
                       "timestamp": f"2026-01-30T{ts}+00:00"})


def fwd(line: int, msg: str) -> str:
    return f"livekit::rtc_engine:{line}:livekit::rtc_engine - {msg}"


SEED = "\n".join([
    agents("15:15:55.401000", "WARNING", fwd(474, CLOSE), "AJ_seed"),
    agents("15:15:55.557000", "ERROR", fwd(773, "resuming connection... attempt: 0"), "AJ_seed"),
    agents("15:16:10.000000", "INFO", "tool call finished", "AJ_seed", name="my_agent"),
    agents("15:17:00.319000", "ERROR", fwd(775, "resuming connection failed: signal failure: ws failure: "
                                                "IO error: Connection timed out (os error 110)"), "AJ_seed"),
    agents("15:17:00.319000", "ERROR", fwd(749, "restarting connection... attempt: 1"), "AJ_seed"),
    agents("15:17:30.000000", "INFO", "tool call finished", "AJ_seed", name="my_agent"),
]) + "\n"


def test_seed_case_is_stalled_for_64_8_seconds_and_exits_1(write) -> None:
    data, proc = scan_json(str(write("seed.log", SEED)))
    assert proc.returncode == 1
    [ep] = data["episodes"]
    assert ep["verdict"] == "stalled"
    assert round(ep["silence_s"], 1) == 64.8
    assert ep["outcome"] == "escalated"
    assert ep["key"] == "job:AJ_seed" and ep["job"] == "AJ_seed"
    assert ep["line"] == 1 and ep["attempts"] == 2
    assert ep["start"].startswith("2026-01-30T15:15:55.401")
    assert [e["line"] for e in ep["evidence"] if e["pattern"]] == [1, 2, 4, 5]
    assert data["summary"]["stalled"] == 1 and data["summary"]["lines"] == 6


def test_healthy_agents_resume_with_hidden_success_line_is_recovered_by_activity(write) -> None:
    lines = [
        agents("10:00:00.000000", "WARNING", fwd(474, CLOSE), "AJ_ok"),
        agents("10:00:00.120000", "ERROR", fwd(773, "resuming connection... attempt: 0"), "AJ_ok"),
        agents("10:00:04.500000", "INFO", "STT metrics", "AJ_ok", name="livekit.agents", audio_duration=3.1),
        agents("10:01:30.000000", "INFO", "STT metrics", "AJ_ok", name="livekit.agents", audio_duration=2.0),
    ]
    data, proc = scan_json(str(write("ok.log", "\n".join(lines) + "\n")))
    assert proc.returncode == 0
    [ep] = data["episodes"]
    assert (ep["verdict"], ep["outcome"]) == ("recovered", "activity")
    assert ep["evidence"][-1]["pattern"] == "stt-metrics"


def test_progress_of_one_job_never_closes_another(write) -> None:
    lines = [
        agents("10:00:00.000000", "WARNING", fwd(474, CLOSE), "AJ_a"),
        agents("10:00:00.100000", "ERROR", fwd(773, "resuming connection... attempt: 0"), "AJ_a"),
        agents("10:00:01.000000", "WARNING", fwd(474, CLOSE), "AJ_b"),
        agents("10:00:01.100000", "ERROR", fwd(773, "resuming connection... attempt: 0"), "AJ_b"),
        agents("10:00:02.000000", "INFO", fwd(702, "RtcEngine successfully recovered"), "AJ_b"),
        agents("10:00:40.000000", "INFO", "tool call finished", "AJ_b", name="my_agent"),
    ]
    data, proc = scan_json(str(write("two.log", "\n".join(lines) + "\n")))
    verdicts = {ep["job"]: ep["verdict"] for ep in data["episodes"]}
    assert verdicts == {"AJ_a": "stalled", "AJ_b": "recovered"}
    assert proc.returncode == 1


def test_log_ending_inside_the_window_is_unresolved_with_the_time_left(write) -> None:
    lines = [env("2026-01-30T10:00:00", "WARN", "livekit::rtc_engine", CLOSE),
             env("2026-01-30T10:00:01", "ERROR", "livekit::rtc_engine", "resuming connection... attempt: 1"),
             env("2026-01-30T10:00:06", "INFO", "my_agent", "still here")]
    data, proc = scan_json(str(write("end.log", "\n".join(lines))))
    [ep] = data["episodes"]
    assert ep["verdict"] == "unresolved" and ep["log_left_s"] == 5.0
    assert proc.returncode == 0
    # the same log with a shorter window is long enough to judge
    data, proc = scan_json("--window", "4s", str(write("end2.log", "\n".join(lines))))
    assert data["episodes"][0]["verdict"] == "stalled" and proc.returncode == 1


def test_lines_without_timestamps_give_outcomes_by_order_and_unknown_durations(write) -> None:
    text = "\n".join([
        "WARNING:livekit:livekit::rtc_engine:474:livekit::rtc_engine - " + CLOSE,
        "ERROR:livekit:livekit::rtc_engine:773:livekit::rtc_engine - resuming connection... attempt: 0",
        "INFO:livekit:livekit::rtc_engine:702:livekit::rtc_engine - RtcEngine successfully recovered",
        "WARNING:livekit:livekit::rtc_engine:474:livekit::rtc_engine - " + CLOSE,
    ]) + "\n"
    data, _ = scan_json(str(write("basic.log", text)))
    first, second = data["episodes"]
    assert (first["verdict"], first["silence_s"], first["start"]) == ("recovered", None, None)
    assert second["verdict"] == "unresolved" and "no timestamps" in second["note"]


def test_time_only_lines_roll_over_midnight_and_take_the_date_option(write) -> None:
    text = "\n".join([
        "23:59:50.100 WARN livekit::rtc_engine - " + CLOSE,
        "23:59:50.200 ERROR livekit::rtc_engine - resuming connection... attempt: 0",
        "00:00:12.300 ERROR livekit::rtc_engine - resuming connection failed: connection error: "
        "wait_pc_connection timed out",
        "00:00:12.300 ERROR livekit::rtc_engine - restarting connection... attempt: 1",
        "00:00:13.000 INFO livekit::rtc_engine - RtcEngine successfully recovered",
    ]) + "\n"
    data, proc = scan_json("--date", "2026-01-30", str(write("t.log", text)))
    assert proc.returncode == 1
    [ep] = data["episodes"]
    assert ep["start"].startswith("2026-01-30T23:59:50.1")
    assert ep["end"].startswith("2026-01-31T00:00:13")
    assert round(ep["silence_s"], 1) == 22.1 and ep["verdict"] == "stalled"
    assert any("--date" in note for note in data["summary"]["notes"])


def test_stdin_gzip_and_newest_first_inputs(tmp_path: Path) -> None:
    lines = SEED.splitlines()
    data, proc = scan_json("-", stdin=SEED)
    assert data["episodes"][0]["file"] == "<stdin>" and proc.returncode == 1
    gz = tmp_path / "seed.log.gz"
    gz.write_bytes(gzip.compress(SEED.encode()))
    data, _ = scan_json(str(gz))
    assert round(data["episodes"][0]["silence_s"], 1) == 64.8
    reversed_log = tmp_path / "pasted.log"
    reversed_log.write_text("\n".join(reversed(lines)) + "\n", encoding="utf-8")
    data, _ = scan_json(str(reversed_log))
    [ep] = data["episodes"]
    assert ep["verdict"] == "stalled" and round(ep["silence_s"], 1) == 64.8
    assert ep["line"] == len(lines)  # physical line of the trigger in the pasted file
    assert any("newest-first" in note for note in data["summary"]["notes"])


def test_unparsed_lines_are_counted_not_fatal(write) -> None:
    text = SEED + "garbage ~~~ not a log line\n\x00\x01binary junk\n"
    data, proc = scan_json(str(write("junk.log", text)))
    assert data["summary"]["unparsed"] == 2 and data["summary"]["lines"] == 8
    assert proc.returncode == 1


def test_jsonl_and_text_outputs(write) -> None:
    path = str(write("seed.log", SEED))
    proc = run_lkwedge("scan", "--format", "jsonl", path)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert rows[0]["verdict"] == "stalled" and rows[-1]["summary"]["stalled"] == 1
    proc = run_lkwedge("scan", path)  # not a TTY: one plain line per episode; the summary on stderr
    assert proc.returncode == 1
    assert len(proc.stdout.splitlines()) == 1 and proc.stdout.startswith("stalled")
    *context, sentence = proc.stderr.splitlines()  # advice and the SDK guess, then the summary sentence
    assert sentence == ("1 episode in 6 lines (1 file): 1 stalled, 0 ghost, 0 unresolved, 0 disconnected, "
                        "0 recovered; 0 unparsed lines")
    assert [line.split(":")[0] for line in context] == ["advice for " + path, "sdk"]


def test_terminal_escapes_in_log_text_are_never_printed_raw(write) -> None:
    evil = SEED.replace("tool call finished", "\x1b]0;pwned\x07\x1b[2J[bold]x[/bold]")
    proc = run_lkwedge("scan", str(write("evil.log", evil)))
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout


def test_usage_and_input_errors_are_one_line_and_exit_2(tmp_path: Path, write) -> None:
    bad_pack, log = str(write("bad.toml", "[[patterns]]\nid=1\n")), str(write("a.log", SEED))
    for args in (["scan", str(tmp_path / "missing.log")], ["scan", "--window", "soon", "x.log"],
                 ["scan", "--patterns", bad_pack, log], ["scan", "--format", "xml", "a.log"]):
        proc = run_lkwedge(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert proc.stdout == ""
    proc = run_lkwedge("scan", str(tmp_path / "missing.log"))
    assert proc.stderr.strip() == f"lkwedge: error: no such file: {tmp_path / 'missing.log'}"


def test_no_path_reads_a_piped_stdin_and_asks_for_input_on_a_terminal() -> None:
    import os
    import pty
    import subprocess
    import sys

    proc = run_lkwedge("scan", "--format", "json", stdin=SEED)
    assert proc.returncode == 1 and json.loads(proc.stdout)["summary"]["stalled"] == 1
    leader, follower = pty.openpty()
    try:
        tty = subprocess.run([sys.executable, "-m", "lkwedge", "scan"], stdin=follower, capture_output=True,
                             text=True, timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    assert tty.returncode == 2 and "no input" in tty.stderr


def _planted_log(path: Path, lines: int, seed: int) -> int:
    """env_logger chatter with reconnect episodes; returns the number of planted stalls."""
    rnd = random.Random(seed)
    t = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    out, stalls = [], 0
    while len(out) < lines:
        t += timedelta(milliseconds=rnd.randint(1, 40))
        stamp = t.strftime("%Y-%m-%dT%H:%M:%S")
        if rnd.random() < 0.002:
            out.append(env(stamp, "WARN", "livekit::rtc_engine", CLOSE))
            out.append(env(stamp, "ERROR", "livekit::rtc_engine", "resuming connection... attempt: 0"))
            if rnd.random() < 0.2:
                stalls += 1
                t += timedelta(seconds=rnd.randint(30, 90))
            else:
                t += timedelta(seconds=2)
                out.append(env(t.strftime("%Y-%m-%dT%H:%M:%S"), "INFO", "livekit::rtc_engine",
                               "RtcEngine successfully recovered"))
        else:
            out.append(env(stamp, "INFO", "hyper::client", f"connection {rnd.getrandbits(32):08x} idle"))
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return stalls


def test_big_log_finds_every_planted_stall(tmp_path: Path) -> None:
    """(Every reading of a log giving the same episodes is tests/test_same_answer.py.)"""
    path = tmp_path / "big.log"
    planted = _planted_log(path, 60_000, seed=7)
    result = scan([str(path)], ScanOptions())
    assert planted > 5
    assert result.summary.count(Verdict.STALLED) == planted
    assert result.summary.lines == len(path.read_text().splitlines())


def test_json_output_has_one_episode_per_line(tmp_path) -> None:
    """`--format json` stays one JSON document, laid out so grep and diff see one episode per line."""
    import json as _json

    from conftest import REPO, run_lkwedge

    proc = run_lkwedge("scan", "--format", "json", str(REPO / "samples" / "agents_json_seed_stall.log"),
                       str(REPO / "samples" / "docker_compose.log"))
    data = _json.loads(proc.stdout)
    lines = proc.stdout.splitlines()
    start = lines.index('  "episodes": [')
    stop = next(i for i in range(start, len(lines)) if lines[i].startswith("  ]"))
    episode_lines = lines[start + 1:stop]
    assert len(episode_lines) == len(data["episodes"]) >= 2
    ids = [_json.loads(line.rstrip(","))["id"] for line in episode_lines]
    assert ids == [e["id"] for e in data["episodes"]]
    assert lines[0] == "{" and lines[-1] == "}" and '  "summary": {' in lines


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: "e" not in repr(x)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(value=_JSON_VALUES)
def test_json_items_are_written_exactly_as_json_dumps_writes_them(value: object) -> None:
    # the JSON output encodes its items with msgspec (3x faster); people and grep see the same text
    assert one_line_json(value) == json.dumps(value, ensure_ascii=False)


def test_json_output_of_a_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    # msgspec refuses the surrogate that stands for the 0xff byte; the item is written as json.dumps
    # writes it, through stdout's error handler (the raw byte back)
    name = os.fsdecode(b"agent-\xff.log")
    (tmp_path / name).write_text(SEED)
    proc = subprocess.run([sys.executable, "-m", "lkwedge", "scan", "--format", "json", name], cwd=tmp_path,
                          capture_output=True, timeout=60)
    assert proc.returncode == 1 and b"internal error" not in proc.stderr, proc.stderr
    document = json.loads(proc.stdout.decode("utf-8", "surrogateescape"))
    assert document["episodes"][0]["file"] == name and document["episodes"][0]["verdict"] == "stalled"
    assert one_line_json({"file": name}) == json.dumps({"file": name}, ensure_ascii=False)

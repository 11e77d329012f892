"""`lkwedge patterns list|test` and `lkwedge explain`, run as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import REPO, run_lkwedge

from lkwedge.detect.fingerprint import builtin_table
from lkwedge.detect.patterns import builtin_pack_files

SAMPLES = REPO / "samples"


def test_patterns_test_passes_on_the_shipped_packs() -> None:
    """This is the CI gate for pattern packs: every sample of every shipped pack."""
    proc = run_lkwedge("patterns", "test")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    packs = len(builtin_pack_files())
    assert packs >= 3 and "0 failed" in proc.stdout and f"in {packs} pack(s)" in proc.stdout


def _pack(tmp_path: Path, sample_json: str, sample_line: str) -> Path:
    pack = tmp_path / "mine.toml"
    pack.write_text(
        '[pack]\nname = "mine"\n[[patterns]]\nid = "my-heartbeat"\nrole = "activity"\n'
        "literal = \"heartbeat ok\"\nregex = '^heartbeat ok (?P<n>\\d+)'\n",
        encoding="utf-8",
    )
    (tmp_path / "mine.samples.log").write_text(
        f"# failJSON: {sample_json}\n{sample_line}\n", encoding="utf-8"
    )
    return pack


def test_patterns_test_exits_1_on_a_failed_sample_and_names_it(tmp_path: Path) -> None:
    good = _pack(
        tmp_path,
        '{"pattern": "my-heartbeat", "time": "2026-01-30T18:00:00+00:00", "groups": {"n": "7"}}',
        "[2026-01-30T18:00:00Z INFO  my_app] heartbeat ok 7",
    )
    assert run_lkwedge("patterns", "test", str(good)).returncode == 0
    bad = _pack(
        tmp_path,
        '{"pattern": "my-heartbeat", "time": "2026-01-30T18:00:01+00:00", "groups": {"n": "8"}}',
        "[2026-01-30T18:00:00Z INFO  my_app] heartbeat ok 7",
    )
    proc = run_lkwedge("patterns", "test", str(bad))
    assert proc.returncode == 1
    assert "FAIL" in proc.stdout and "mine.samples.log:2" in proc.stdout
    assert "time is" in proc.stdout and "group n is '7'" in proc.stdout


def test_patterns_test_with_a_log_reports_hits_templates_unparsed_and_drift(tmp_path: Path) -> None:
    log = tmp_path / "drift.log"
    log.write_text(
        '[2026-01-30T18:24:43Z WARN  livekit::rtc_engine] received session close: "x" UnknownReason Resume\n'
        "[2026-01-30T18:24:43Z ERROR livekit::rtc_engine] resuming connection... attempt: 0\n"
        "[2026-01-30T18:24:50Z WARN  livekit::rtc_engine] received session close: reason=Migration\n"
        "garbage \x1b[31m that is no log line\n"
        "2026-01-30 18:24:51,001 - INFO my_app - hello\n",
        encoding="utf-8",
    )
    proc = run_lkwedge("patterns", "test", str(log))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "5 records, 4 parsed, 1 unparsed" in out
    assert "session-close (livekit-rust, trigger)" in out and "resume-attempt" in out
    assert "[ISO-8601 Z LEVEL target] (env_logger)" in out and "(asctime)" in out
    assert "near misses: 1 line(s)" in out and "drift.log:3 [session-close, session-close-legacy]" in out
    assert "\x1b" not in out  # log text is escaped
    data = json.loads(run_lkwedge("patterns", "test", "--format", "json", str(log)).stdout)
    assert data["logs"][0]["hits"] == {"session-close": 1, "resume-attempt": 1}
    assert data["logs"][0]["near_misses"] == 1


def test_patterns_list_shows_packs_roles_and_versions() -> None:
    proc = run_lkwedge("patterns", "list")
    assert proc.returncode == 0
    assert "pack livekit-rust" in proc.stdout and "give-up" in proc.stdout and "progress" in proc.stdout
    assert "versions: since rust-sdks 5085034f" in proc.stdout
    bands = len(builtin_table().bands)
    assert "evidence=ghost" in proc.stdout
    assert f"SDK fingerprints: {bands} python livekit (rtc) bands" in proc.stdout
    data = json.loads(run_lkwedge("patterns", "list", "--format", "json").stdout)
    assert {p["name"] for p in data["packs"]} >= {"livekit-agents", "livekit-room", "livekit-rust"}


def test_patterns_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("not toml [", encoding="utf-8")
    for args in (["test", str(bad)], ["test", "/nonexistent.log"], ["list", "--patterns", str(bad)]):
        proc = run_lkwedge("patterns", *args)
        assert proc.returncode == 2 and proc.stderr.startswith("lkwedge: error:"), (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_explain_a_wrapped_rich_line() -> None:
    proc = run_lkwedge("explain", "--date", "2026-01-30", "agents_rich_console.log:19", cwd=SAMPLES)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "part of the record on lines 17-" in out
    assert "time      2026-01-30T18:24:43.187000+00:00 (HH:MM:SS[.mmm] (time only); dated 2026-01-30 from " \
        "--date)" in out
    assert "key       job:AJ_Pz4Lq9Wm2TkE" in out
    assert "pattern   session-close (pack livekit-rust, role trigger" in out
    assert "close_cause=ping timeout" in out
    assert "episode   agents_rich_console.log:17 recovered" in out


def test_explain_json_for_a_ghost_line_and_a_plain_line() -> None:
    proc = run_lkwedge("explain", "--format", "json", "agents_json_ghost_after_restart.log:46", cwd=SAMPLES)
    data = json.loads(proc.stdout)
    assert data["pattern"]["id"] == "republish-failed" and data["pattern"]["role"] == "evidence"
    assert data["episode"]["verdict"] == "ghost" and data["episode"]["line"] == 43
    plain = json.loads(
        run_lkwedge(
            "explain", "--format", "json", "agents_json_ghost_after_restart.log:50", cwd=SAMPLES
        ).stdout
    )
    assert plain["pattern"] is None and plain["episode"] is None and plain["key"] == "job:AJ_Gh0stRstrt1"


def test_explain_bad_input() -> None:
    for where, message in (
        ("nope.log:3", "no such file"),
        ("python_asctime.log:99999", "has no line"),
        ("python_asctime.log", "expected FILE:LINE"),
        ("python_asctime.log:0", "expected"),
    ):
        proc = run_lkwedge("explain", where, cwd=SAMPLES)
        assert proc.returncode == 2 and proc.stderr.startswith("lkwedge: error:") and message in proc.stderr


def test_explain_reads_stdin_after_double_dash() -> None:
    text = (SAMPLES / "agents_json_ghost_after_restart.log").read_text(encoding="utf-8")
    proc = run_lkwedge("explain", "--", "-:46", stdin=text)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("<stdin>:46\n") and "republish-failed" in proc.stdout

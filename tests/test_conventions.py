"""Issue 12: CLI habits that match grep, rg and jq; a table that reads at 80 columns; incidents; filters."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_lkwedge
from rich.console import Console

from lkwedge.detect.engine import scan
from lkwedge.detect.incidents import find_incidents
from lkwedge.output.render import write_table

SEED = "samples/agents_json_seed_stall.log"
COMPOSE = "samples/docker_compose.log"
TWO_JOBS = "samples/agents_json_two_jobs.log"


def lk(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_lkwedge(*args, stdin=stdin, cwd=REPO, timeout=60)


# -- item 1: stdin when no PATH is given -----------------------------------------------------------

@pytest.mark.parametrize("command", ["scan", "check", "report", "watch"])
def test_every_command_reads_a_pipe_without_dash(command: str) -> None:
    extra = ["--once"] if command == "watch" else []
    proc = lk(command, *extra, stdin=(REPO / SEED).read_text())
    assert "Missing argument" not in proc.stderr and "no input" not in proc.stderr
    # the seed stall is found, whoever reads it (report judges nothing: exit 0)
    assert proc.returncode == (0 if command == "report" else 1), proc.stderr
    assert "AJ_5cQwZ8mLr3Tx" in proc.stdout + proc.stderr


# -- item 2: a missing file is reported, the others are analysed, exit 2 at the end -----------------

@pytest.mark.parametrize("command", ["scan", "check", "report"])
def test_missing_file_is_reported_and_the_rest_analysed(command: str) -> None:
    proc = lk(command, SEED, "samples/no-such.log")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == "lkwedge: error: no such file: samples/no-such.log"
    assert "AJ_5cQwZ8mLr3Tx" in proc.stdout            # the good file's episode is still reported
    assert "Traceback" not in proc.stderr


def test_only_missing_files_exit_2_with_nothing_on_stdout() -> None:
    proc = lk("scan", "a-missing.log", "b-missing.log")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == ["lkwedge: error: no such file: a-missing.log",
                                        "lkwedge: error: no such file: b-missing.log"]


# -- item 3: empty input is not a pass ---------------------------------------------------------------

def test_check_on_a_binary_fails_with_its_own_code(tmp_path: Path) -> None:
    proc = lk("check", "/bin/ls")
    assert proc.returncode == 3, proc.stdout
    assert "FAIL no-input: /bin/ls: no line recognised" in proc.stdout
    assert "unparsed lines" in proc.stdout.splitlines()[0]
    assert lk("check", "--allow-empty", "/bin/ls").returncode == 0
    empty = tmp_path / "empty.log"
    empty.write_text("")
    assert lk("check", str(empty)).returncode == 3
    assert lk("check", stdin="").returncode == 3           # an empty pipe too
    assert lk("check", SEED, "--max-stalls", "1").returncode == 0   # recognised input still passes


# -- item 4: the terminal table at 80 and 120 columns (rich's console, exact text) --------------------

def table(paths: list[str], width: int) -> str:
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        result = scan(paths)
        console = Console(file=io.StringIO(), width=width, color_system=None, legacy_windows=False)
        write_table(result, console, incidents=find_incidents(result.episodes))
        return console.file.getvalue()
    finally:
        os.chdir(cwd)


def test_table_at_80_columns_exact() -> None:
    assert table([SEED], 80) == """\
lkwedge: 1 reconnect episode (log time, 2026-01-27 UTC)
verdict  where                                  start         silence
stalled  samples/agents_json_seed_stall.log:20  15:15:55.412    64.8s
         attempts 2, outcome escalated, job:AJ_5cQwZ8mLr3Tx,
         room hotel-frontdesk-118
         no progress for 64.8 s (window 20 s); still open at end of input (last
         state: escalated)
         advice: livekit-ffi 0.12.40-0.12.44 (python livekit 1.0.23-1.0.25): ffi
         <= 0.12.47 has no WebSocket connect timeout; a ~65 s gap after attempt
         0 is an OS-level block (old socket teardown or TCP connect); fixed from
         python livekit 1.1.0 (5 s SIGNAL_CONNECT_TIMEOUT; agents 1.4.2+, but
         not 1.5.0, which pins 1.0.25 again); meanwhile run `lkwedge watch
         --evict` (or restart the job) when a reconnect is silent …
sdk: samples/agents_json_seed_stall.log: livekit-ffi 0.12.40-0.12.44 (python
livekit 1.0.23-1.0.25)
1 episode in 46 lines (1 file): 1 stalled, 0 ghost, 0 unresolved, 0
disconnected, 0 recovered; 0 unparsed lines
"""


def test_table_at_120_columns_exact_key_only_when_not_the_file() -> None:
    assert table([COMPOSE], 120) == """\
lkwedge: 2 reconnect episodes (log time, 2026-01-30 UTC)
verdict    where                          start         silence
stalled    samples/docker_compose.log:15  18:24:43.187    26.5s
           attempts 2, outcome recovered, svc:agent-1, incident I1
           no progress for 26.5 s (window 20 s); then recovered at line 30
           advice: livekit-ffi 0.12.40-0.12.44 (python livekit 1.0.23-1.0.25): ffi <= 0.12.47 has no\
 WebSocket connect
           timeout; a ~26 s gap after attempt 0 is an OS-level block (old socket teardown or TCP con\
nect); fixed from
           python livekit 1.1.0 (5 s SIGNAL_CONNECT_TIMEOUT; agents 1.4.2+, but not 1.5.0, which pin\
s 1.0.25 again);
           meanwhile run `lkwedge watch --evict` (or restart the job) when a reconnect is silent …
recovered  samples/docker_compose.log:17  18:24:44.020     0.9s
           attempts 1, outcome recovered, svc:agent-2, incident I1
           recovered at line 19; longest silence 0.9 s
incident I1 2026-01-30 18:24:43.187 samples/docker_compose.log: 2 jobs within 0.8s (worst: stalled):\
 svc:agent-1,
svc:agent-2
sdk: samples/docker_compose.log: livekit-ffi 0.12.40-0.12.44 (python livekit 1.0.23-1.0.25)
2 episodes in 33 lines (1 file): 1 stalled, 0 ghost, 0 unresolved, 0 disconnected, 1 recovered; 0 un\
parsed lines
"""


def test_table_absolute_paths_become_relative_and_file_line_is_never_split() -> None:
    text = table([str(REPO / p) for p in (SEED, COMPOSE, TWO_JOBS)], 80)
    assert all(len(line) <= 80 for line in text.splitlines())
    for where in ("samples/agents_json_seed_stall.log:20", "samples/docker_compose.log:15",
                  "samples/agents_json_two_jobs.log:19"):
        assert any(line.split()[1:2] == [where] for line in text.splitlines()), where
    assert str(REPO) not in text
    # a log without keys: the key column does not repeat the path
    assert "key" not in table(["samples/timeonly_dated_header.log"], 80).split("\n", 2)[1]


# -- item 5: piped output is line-oriented ------------------------------------------------------------

def test_grep_counts_stalled_episodes() -> None:
    samples = sorted(str(p.relative_to(REPO)) for p in (REPO / "samples").glob("*.log"))
    proc = lk("scan", *samples)
    listed = json.loads(lk("scan", "--format", "json", *samples).stdout)
    stalled = sum(1 for ep in listed["episodes"] if ep["verdict"] == "stalled")
    assert stalled > 1
    assert sum("stalled" in line for line in proc.stdout.splitlines()) == stalled   # `grep -c stalled`
    assert len(proc.stdout.splitlines()) == len(listed["episodes"])                 # one line per episode
    s = listed["summary"]
    sentence = (f"{s['episodes']} episodes in {s['lines']} lines ({s['files']} files): "
                f"{s['stalled']} stalled, {s['ghost']} ghost, {s['unresolved']} unresolved, "
                f"{s['disconnected']} disconnected, {s['recovered']} recovered; "
                f"{s['unparsed']} unparsed lines")
    assert sentence in proc.stderr.splitlines()
    assert lk("scan", "-q", *samples).stderr == ""


def test_report_in_a_file_is_not_hard_wrapped() -> None:
    proc = lk("report", "samples/timeonly_needs_date.log", SEED)
    note = [ln for ln in proc.stdout.splitlines() if ln.startswith("note:")]
    assert note and note[0].rstrip().endswith("modification time")    # one line, not cut mid-sentence
    assert "│" not in proc.stdout and "┃" not in proc.stdout             # no box-drawn columns


def test_color_always_and_never() -> None:
    assert "\x1b[" in lk("scan", "--color", "always", SEED).stdout
    env = dict(os.environ, FORCE_COLOR="1")
    forced = subprocess.run([sys.executable, "-m", "lkwedge", "scan", "--color", "never", SEED], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=60)
    assert "\x1b[" not in forced.stdout + forced.stderr


# -- item 7: fail fast --------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "flag"), [
    (["check", "--junit", "/nonexistent/x.xml"], "--junit"),
    (["report", "--html", "/nonexistent/x.html"], "--html"),
    (["report", "--csv", "/nonexistent/x.csv"], "--csv"),
    (["watch", "--once", "--on-alert", "/nonexistent/cmd"], "--on-alert"),
    (["watch", "--once", "--jsonl", "/nonexistent/a.jsonl"], "--jsonl"),
    (["watch", "--once", "--webhook", "ftp://example.com/x"], "--webhook"),
])
def test_outputs_are_checked_before_any_work(args: list[str], flag: str) -> None:
    proc = lk(*args, SEED)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"lkwedge: error: {flag}") and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stdout == ""                      # nothing was scanned or watched


# -- item 10: plurals, and the same sentence in scan, watch and check ----------------------------------

def test_one_summary_sentence_with_plurals() -> None:
    sentence = "1 episode in 46 lines (1 file): 1 stalled, 0 ghost, 0 unresolved, 0 disconnected, " \
               "0 recovered; 0 unparsed lines"
    assert lk("scan", SEED).stderr.splitlines()[-1] == sentence
    assert sentence in lk("watch", "--once", SEED).stdout.splitlines()
    assert lk("check", SEED).stdout.splitlines()[0] == f"lkwedge check: {sentence}"


# -- filters and incidents ------------------------------------------------------------------------------

def test_filters_narrow_scan_check_and_report() -> None:
    both = [COMPOSE, TWO_JOBS]
    out = lk("scan", "--verdict", "recovered", *both)
    assert out.returncode == 0 and {ln.split()[0] for ln in out.stdout.splitlines()} == {"recovered"}
    assert lk("scan", "--job", "AJ_Rt7mB2yHc5Ue", "--format", "json", *both).stdout.count('"id"') == 1
    room = lk("scan", "--room", "call-_+15551230001_Ab3x", *both)
    assert room.returncode == 1 and len(room.stdout.splitlines()) == 1
    since = lk("scan", "--since", "2026-03-01T00:00:00Z", "--until", "2026-03-06", *both)
    assert [ln.split()[1] for ln in since.stdout.splitlines()] == [f"{TWO_JOBS}:19", f"{TWO_JOBS}:21"]
    assert lk("check", "--verdict", "recovered", *both).returncode == 0      # the stalls are filtered out
    rep = lk("report", "--job", "AJ_Xq3kW9vTn2Lp", *both)
    assert "1 reconnect episode in" in rep.stdout
    bad = lk("scan", "--since", "yesterday", SEED)
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_incidents_group_jobs_hit_together() -> None:
    data = json.loads(lk("scan", "--format", "json", COMPOSE, TWO_JOBS, SEED).stdout)
    by_id = {ep["id"]: ep.get("incident") for ep in data["episodes"]}
    assert by_id == {f"{COMPOSE}:15": "I1", f"{COMPOSE}:17": "I1", f"{TWO_JOBS}:19": "I2",
                     f"{TWO_JOBS}:21": "I2", f"{SEED}:20": None}
    assert data["summary"]["incidents"] == 2
    assert data["incidents"][1]["spread_s"] == pytest.approx(0.28, abs=0.01)
    # a gap smaller than the 0.28 s between the two jobs' drops: no incident
    tight = json.loads(lk("scan", "--format", "json", "--incident-gap", "100ms", TWO_JOBS).stdout)
    assert tight["summary"]["incidents"] == 0
    text = lk("scan", TWO_JOBS)
    assert "incident I2" not in text.stdout and text.stderr.startswith("incident I1 2026-03-05 09:12:05.331")
    assert all("incident=I1" in ln for ln in text.stdout.splitlines())
    report = lk("report", COMPOSE, TWO_JOBS).stdout
    assert "2 incidents (jobs hit together); the largest, I1, hit 2 jobs within 0.8s." in report


def test_quiet_watch_prints_only_the_alerts() -> None:
    proc = lk("watch", "-q", stdin=(REPO / SEED).read_text())
    assert proc.returncode == 1 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and " ALERT stalled <stdin>:20 " in lines[0]

"""`lkwedge check` as CI runs it: exit codes, one line per failed assertion, JUnit XML, GitHub annotations,
and settings from lkwedge.toml / pyproject.toml."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import run_lkwedge
from synthlog import ATTEMPT, CLOSE, write_synth

from lkwedge.config import find_config, load_config
from lkwedge.detect.engine import ScanResult
from lkwedge.detect.episodes import Episode, Evidence
from lkwedge.detect.summary import Summary
from lkwedge.errors import InputError
from lkwedge.output.check import CheckOptions, github_annotation, run_checks
from lkwedge.output.junit import build_junit


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory):
    """A big log with planted stalls and a clean one, shared by the CLI tests of this module."""
    d = tmp_path_factory.mktemp("logs")
    bad = write_synth(d / "agent.log", lines=60_000, stalls=6, recoveries=12, disconnects=2, seed=11)
    good = write_synth(d / "clean.log", lines=8_000, stalls=0, recoveries=4, seed=12)
    return bad, good


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_junit_has_one_failure_per_planted_stall(logs, tmp_path: Path) -> None:
    bad, good = logs
    xml_path = tmp_path / "lkwedge.xml"
    proc = run_lkwedge("check", str(bad.path), str(good.path), "--junit", str(xml_path))
    assert proc.returncode == 1, proc.stderr
    assert "FAIL max-stalls: 6 stalled episodes, at most 0 allowed" in proc.stdout
    assert proc.stdout.rstrip().endswith("FAILED (1 assertion, 6 failing episodes)")

    root = ET.parse(xml_path).getroot()  # raises if the XML is not well-formed
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [str(bad.path), str(good.path)]
    failures = cases[0].findall("failure")
    assert len(failures) == len(root.findall(".//failure")) == 6
    assert [int(f.get("line")) for f in failures] == [p.line for p in bad.of("stall")]
    assert {f.get("file") for f in failures} == {str(bad.path)}
    assert {f.get("type") for f in failures} == {"stalled"}
    assert cases[0].get("file") == str(bad.path) and cases[0].get("line") == str(bad.of("stall")[0].line)
    assert cases[1].findall("failure") == []
    first = bad.of("stall")[0]
    body = failures[0].text or ""
    # the evidence: the planted lines themselves, with their 1-based line numbers
    assert f"{bad.path}:{first.line}: [trigger] " in body and CLOSE in body
    assert f"{bad.path}:{first.attempt_line}: [attempt] " in body and ATTEMPT in body
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["failing_episodes"] == "6"


def test_clean_logs_pass_and_junit_has_no_failures(logs, tmp_path: Path) -> None:
    _, good = logs
    xml_path = tmp_path / "ok.xml"
    proc = run_lkwedge("check", str(good.path), "--junit", str(xml_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passed" in proc.stdout and "FAIL" not in proc.stdout
    suite = ET.parse(xml_path).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and suite.get("tests") == "1"


def test_github_annotations_point_at_the_planted_lines(logs) -> None:
    bad, good = logs
    proc = run_lkwedge("check", str(bad.path), str(good.path), "--github")
    assert proc.returncode == 1
    pattern = re.compile(r"^::error file=(?P<file>[^,]+),line=(?P<line>\d+),"
                         r"title=lkwedge stalled::(?P<msg>.+)$")
    found = [m for m in map(pattern.match, proc.stdout.splitlines()) if m]
    assert len(found) == 6
    text = lines_of(bad.path)
    for m, planted in zip(found, bad.of("stall"), strict=True):
        assert m["file"] == str(bad.path)
        assert int(m["line"]) == planted.line
        assert "received session close" in text[int(m["line"]) - 1]  # 1-based
        assert "stalled reconnect" in m["msg"]


def test_assertions_combine_with_one_line_each(logs) -> None:
    bad, _ = logs
    stalls, recovered = len(bad.of("stall")), len(bad.of("recovery"))
    # stalls allowed, but each stall was silent for more than 30 s
    proc = run_lkwedge("check", str(bad.path), "--max-stalls", "10", "--max-silence", "30s")
    assert proc.returncode == 1
    assert f"FAIL max-silence: {stalls} episodes silent for longer than 30 s" in proc.stdout
    assert "max-stalls" not in proc.stdout.split("FAIL max-silence")[1].split("\n")[0]
    assert len([ln for ln in proc.stdout.splitlines() if ln.startswith("FAIL")]) == 1
    # a generous silence limit passes
    assert run_lkwedge("check", str(bad.path), "--max-stalls", "10", "--max-silence", "10m").returncode == 0
    # chaos test: the injected blips must have recovered
    proc = run_lkwedge("check", str(bad.path), "--max-stalls", "10", "--expect-recovered", str(recovered + 1))
    assert proc.returncode == 1
    assert f"FAIL expect-recovered: expected at least {recovered + 1} recovered episodes, found {recovered}" \
        in proc.stdout
    proc = run_lkwedge("check", str(bad.path), "--max-stalls", "10", "--expect-recovered", str(recovered))
    assert proc.returncode == 0, proc.stdout


def test_fail_on_unresolved(tmp_path: Path) -> None:
    info = write_synth(tmp_path / "cut.log", lines=3_000, stalls=0, recoveries=1)
    # the log ends 2 s after a resume attempt: no verdict is possible
    with info.path.open("a", encoding="utf-8") as fh:
        fh.write(f"[2026-05-01T12:00:00Z WARN  livekit::rtc_engine] {CLOSE}\n")
        fh.write(f"[2026-05-01T12:00:00Z ERROR livekit::rtc_engine] {ATTEMPT}\n")
        fh.write("[2026-05-01T12:00:02Z INFO  my_agent] still talking\n")
    n = info.lines + 1
    assert run_lkwedge("check", str(info.path)).returncode == 0  # unresolved is allowed by default
    proc = run_lkwedge("check", str(info.path), "--fail-on", "unresolved", "--fail-on", "stalled")
    assert proc.returncode == 1
    assert "FAIL fail-on unresolved: 1 unresolved episode\n" in proc.stdout
    assert f"{info.path}:{n}: unresolved" in proc.stdout


def test_input_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    proc = run_lkwedge("check", str(tmp_path / "missing.log"))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    proc = run_lkwedge("check", str(tmp_path / "x.log"), "--fail-on", "sometimes")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    info = write_synth(tmp_path / "a.log", lines=500, stalls=0, recoveries=1)
    proc = run_lkwedge("check", str(info.path), "--junit", str(tmp_path / "no" / "such" / "dir.xml"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "cannot write JUnit XML" in proc.stderr


# ---- config file ---------------------------------------------------------------------------------


def test_config_file_settings_and_flags_override(logs, tmp_path: Path) -> None:
    bad, _ = logs
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "ci").mkdir()
    (repo / "lkwedge.toml").write_text('max_stalls = 10\nmax-silence = "10m"\njunit = "out/lkwedge.xml"\n')
    (repo / "out").mkdir()
    proc = run_lkwedge("check", str(bad.path), cwd=repo / "ci")  # found by searching upward
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # junit path is relative to the config file, not to the current directory
    assert ET.parse(repo / "out" / "lkwedge.xml").getroot().find("testsuite").get("failures") == "0"
    # a flag beats the file
    assert run_lkwedge("check", str(bad.path), "--max-stalls", "0", cwd=repo / "ci").returncode == 1
    # window from the file: a 2-minute window means the planted ~35-100 s silences are not stalls
    (repo / "lkwedge.toml").write_text('window = "5m"\n')
    assert run_lkwedge("check", str(bad.path), cwd=repo).returncode == 0
    assert run_lkwedge("check", str(bad.path), "--window", "20s", cwd=repo).returncode == 1


def test_pyproject_table_and_explicit_config(logs, tmp_path: Path) -> None:
    bad, _ = logs
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.lkwedge]\nmax_stalls = 99\n')
    assert run_lkwedge("check", str(bad.path), cwd=tmp_path).returncode == 0
    strict = tmp_path / "strict.toml"
    strict.write_text("max_stalls = 0\n")
    assert run_lkwedge("check", str(bad.path), "--config", str(strict), cwd=tmp_path).returncode == 1
    proc = run_lkwedge("check", str(bad.path), "--config", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert proc.returncode == 2 and "config file not found" in proc.stderr


@pytest.mark.parametrize(("text", "needle"), [
    ("max_stals = 1\n", "unknown key 'max_stals'"),
    ('max_silence = "soon"\n', "bad value for 'max_silence'"),
    ("max_stalls = -1\n", "bad value for 'max_stalls'"),
    ("max_stalls = true\n", "bad value for 'max_stalls'"),
    ('fail_on = ["sometimes"]\n', "unknown verdict 'sometimes'"),
    ("window = 0\n", "bad value for 'window'"),
    ("max_stalls = [\n", "not valid TOML"),
])
def test_bad_config_is_one_line_exit_2(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "lkwedge.toml").write_text(text)
    log = write_synth(tmp_path / "a.log", lines=300, stalls=0, recoveries=1).path
    proc = run_lkwedge("check", str(log), cwd=tmp_path)
    assert proc.returncode == 2
    assert needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_config_search_order_and_repo_boundary(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    repo = outer / "repo"
    sub = repo / "pkg" / "sub"
    sub.mkdir(parents=True)
    (repo / ".git").mkdir()
    (outer / "lkwedge.toml").write_text("max_stalls = 5\n")
    assert find_config(sub) is None  # never above the repository root
    (repo / "pyproject.toml").write_text("[tool.lkwedge]\nmax_stalls = 3\n")
    assert load_config(start=sub).get("max_stalls") == 3
    (repo / "pkg" / "pyproject.toml").write_text('[project]\nname = "pkg"\n')  # no [tool.lkwedge]: skipped
    assert find_config(sub) == (repo / "pyproject.toml").resolve()
    (repo / "lkwedge.toml").write_text("max_stalls = 1\n")  # same directory: lkwedge.toml first
    assert load_config(start=sub).get("max_stalls") == 1
    with pytest.raises(InputError, match=r"no \[tool\.lkwedge\] table"):
        load_config(repo / "pkg" / "pyproject.toml")


# ---- units: escaping of untrusted text ---------------------------------------------------------------


def _episode(file: str, text: str, note: str = "") -> Episode:
    t = None
    return Episode(id=f"{file}:7", file=file, line=7, key=file, verdict="stalled", silence_s=64.8,
                   outcome="escalated", attempts=1, note=note,
                   evidence=[Evidence(line=7, time=t, role="trigger", text=text)])


def test_github_annotation_escaping() -> None:
    ep = _episode("logs/a,b:c%.log", "x", note="bad\nline\r::warning::injected 100%")
    failure = run_checks(ScanResult([ep], Summary()), CheckOptions()).failures[0]
    out = github_annotation(failure)
    assert "\n" not in out and "\r" not in out
    assert out.startswith("::error file=logs/a%2Cb%3Ac%25.log,line=7,title=lkwedge stalled::")
    assert "100%25" in out  # % in the message is escaped too


def test_junit_survives_hostile_log_text() -> None:
    evil = "]]></failure><x>&\x1b[31m\x00\x0b ok"
    ep = _episode("a.log", evil)
    outcome = run_checks(ScanResult([ep], Summary()), CheckOptions())
    data = ET.tostring(build_junit(["a.log"], ScanResult([ep], Summary()), outcome.failures).getroot())
    failure = ET.fromstring(data).find(".//failure")
    assert failure is not None and "]]></failure><x>&" in (failure.text or "")
    assert "\\x1b[31m" in (failure.text or "") and "\\x00" in (failure.text or "")

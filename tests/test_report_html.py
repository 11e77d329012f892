"""`lkwedge report --html`: a self-contained page, checked statically and in headless Chromium.

Chromium is Debian's ``chromium`` package; the browser tests are skipped where it is not installed.
``LKWEDGE_UPDATE_SCREENSHOT=1 pytest tests/test_report_html.py`` refreshes docs/report.png.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import REPO, run_lkwedge, scan_json
from synthlog import write_synth

EVIL_ROOM = '<img src=x onerror="document.title=1">'
EVIL_TEXT = "</script><script>document.title='pwned'</script>"
JOBS = [("AJ_7fQx2kPz", "support-eu-17"), ("AJ_m3Rt9wLc", "sales-demo"), ("AJ_b8Hn4sYv", "onboarding-3"),
        ("AJ_q2Wd6eUj", EVIL_ROOM)]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


def _hostile_episode(path: Path) -> None:
    """A stalled episode whose log line carries markup and an escape sequence, appended to ``path``."""
    close = f'received session close: "{EVIL_TEXT}\x1b[2J" UnknownReason Resume'
    lines = []
    for i, (msg, level) in enumerate([(close, "WARNING"), ("resuming connection... attempt: 0", "ERROR")]):
        lines.append({"message": f"livekit::rtc_engine:474:livekit::rtc_engine - {msg}", "level": level,
                      "name": "livekit", "pid": 999, "job_id": "AJ_evil", "room": EVIL_ROOM,
                      "timestamp": f"2026-05-01T23:00:0{i}.000000+00:00"})
    lines.append({"message": "later chatter", "level": "INFO", "name": "my_agent", "pid": 400,
                  "job_id": JOBS[0][0], "room": JOBS[0][1], "timestamp": "2026-05-01T23:01:00.000000+00:00"})
    with path.open("a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(rec) + "\n" for rec in lines)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("html")
    agents = write_synth(d / "agents.log", lines=40_000, stalls=6, recoveries=20, disconnects=3, seed=31,
                         style="agents", jobs=JOBS)
    _hostile_episode(agents.path)
    plain = write_synth(d / "rust-client.log", lines=20_000, stalls=2, recoveries=6, seed=32)
    paths = [str(agents.path), str(plain.path)]
    html_path = d / "report.html"
    proc = run_lkwedge("report", *paths, "--html", str(html_path))
    assert proc.returncode == 0, proc.stderr
    scanned, _ = scan_json(*paths)
    return html_path, scanned


def test_page_is_self_contained_and_escapes_log_text(report) -> None:
    html_path, scanned = report
    page = html_path.read_text(encoding="utf-8")
    assert page.count("<script") == 3  # the JSON data island, the error hook, the table script
    assert not re.search(r"<script[^>]+src=|<link\b|@import|url\(|<iframe|<img\b", page, re.I)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert EVIL_ROOM not in page and EVIL_TEXT not in page and "\x1b" not in page
    assert "&lt;img src=x onerror=" in page  # the room name, shown as text in the static summary
    # every episode is in the embedded data
    data = re.search(r'<script type="application/json" id="lkw-data">(.*?)</script>', page, re.S)
    assert data is not None
    assert len(json.loads(data.group(1))["episodes"]) == scanned["summary"]["episodes"]
    # one timeline, one row per job/stream, ONE time axis: the same second is the same x in every row
    keys = {e["key"] for e in scanned["episodes"]}
    assert page.count('<svg id="timeline"') == 1 and page.count('<g class="row"') == len(keys)
    assert page.count('class="axis"') == 1
    marks = re.findall(r'<g class="ep" data-verdict="[^"]*" data-t="([\d.]+)" data-w="[\d.]+">.*?'
                       r'<rect x="([\d.]+)".*?<text [^>]*>([^<]+)</text>', page)
    assert len(marks) == scanned["summary"]["episodes"]
    by_time = sorted(marks, key=lambda m: float(m[0]))
    (t_a, x_a, _), (t_b, x_b, _) = by_time[0], by_time[-1]
    per_second = (float(x_b) - float(x_a)) / (float(t_b) - float(t_a))
    for t, x, _ in marks:                                       # a single linear axis for every row
        assert float(x) == pytest.approx(float(x_a) + (float(t) - float(t_a)) * per_second, abs=0.2)
    outcomes = [e["outcome"] or e["verdict"] for e in sorted(scanned["episodes"], key=lambda e: e["start"])]
    assert sorted(label for *_, label in marks) == sorted(outcomes)    # every bar has its label


def _chromium(url: str, *extra: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--v=0", *extra, url],
        capture_output=True, text=True, timeout=90)


class _Rows(HTMLParser):
    """The episode table's rows as the browser left them: (verdict, silence text) per row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.errors: list[str] = []
        self.table: dict[str, str | None] = {}
        self.images = 0
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.images += 1
        if a.get("id") == "lkw-js-error":
            self.errors.append(a.get("data-error") or "?")
        if tag == "table" and a.get("id") == "episodes":
            self.table = a
        if tag == "tr" and (a.get("id") or "").startswith("ep-"):
            self._row = []
            self.rows.append(self._row)
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


@needs_chromium
def test_headless_chromium_renders_every_episode_without_errors(report, tmp_path: Path) -> None:
    html_path, scanned = report
    n = scanned["summary"]["episodes"]
    proc = _chromium(html_path.as_uri() + "#sort=-silence_s", "--dump-dom", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    assert console == []  # the page logs nothing; an uncaught error would show up here
    dom = _Rows()
    dom.feed(proc.stdout)
    assert dom.errors == []
    assert 'data-ready="1"' in proc.stdout
    assert dom.table.get("data-episodes-rendered") == str(n) == dom.table.get("data-episodes-expected")
    assert len(dom.rows) == n
    assert dom.images == 0  # the hostile room name stayed text
    assert EVIL_TEXT not in proc.stdout
    # sorted by silence, longest first, through the header's click handler
    assert dom.table.get("data-sorted-by") == "-silence_s"
    silences = [float(row[3]) for row in dom.rows if row[3]]
    assert silences == sorted(silences, reverse=True) and len(silences) == n
    assert dom.rows[0][1] == "stalled"
    assert max(e["silence_s"] for e in scanned["episodes"]) == pytest.approx(silences[0], abs=0.05)
    # the headline names the worst episode; evidence is a table with offsets from the trigger
    worst = max((e for e in scanned["episodes"] if e["verdict"] == "stalled"), key=lambda e: e["silence_s"])
    assert f"Worst: stalled job {worst['job']}" in proc.stdout
    assert '<table class="evidence">' in proc.stdout and ">+0.000 s</td>" in proc.stdout


@needs_chromium
@pytest.mark.parametrize("width", [1280, 1400])
def test_no_horizontal_scroll(report, tmp_path: Path, width: int) -> None:
    html_path, _ = report
    proc = _chromium(html_path.as_uri(), "--dump-dom", f"--window-size={width},1000", tmp_path=tmp_path)
    inner = re.search(r'data-inner-width="(\d+)"', proc.stdout)
    scroll = re.search(r'data-scroll-width="(\d+)"', proc.stdout)
    assert inner and scroll and int(inner.group(1)) == width
    # document.documentElement.scrollWidth <= innerWidth, and no inner box scrolls sideways either
    assert int(scroll.group(1)) <= int(inner.group(1))
    assert 'data-horizontal-scroll="false"' in proc.stdout


@needs_chromium
def test_error_marker_catches_a_broken_script(report, tmp_path: Path) -> None:
    """The check above can fail: a page whose script throws shows the marker in the dumped DOM."""
    html_path, _ = report
    broken = tmp_path / "broken.html"
    broken.write_text(html_path.read_text(encoding="utf-8").replace("var NUMERIC = ", "var NUMERIC = (", 1),
                      encoding="utf-8")
    proc = _chromium(broken.as_uri(), "--dump-dom", tmp_path=tmp_path)
    dom = _Rows()
    dom.feed(proc.stdout)
    assert dom.errors and "SyntaxError" in dom.errors[0]
    assert dom.table.get("data-episodes-rendered") == ""


@needs_chromium
def test_screenshot(tmp_path: Path) -> None:
    """A clean, realistic report (no hostile strings) rendered to PNG: the picture in docs/report.png."""
    agents = write_synth(tmp_path / "agents.log", lines=60_000, stalls=7, recoveries=30, disconnects=4,
                         seed=41, style="agents", jobs=[*JOBS[:3], ("AJ_q2Wd6eUj", "support-us-4")])
    html_path = tmp_path / "report.html"
    assert run_lkwedge("report", agents.path.name, "--html", "report.html", cwd=tmp_path).returncode == 0
    shot = tmp_path / "report.png"
    proc = _chromium(html_path.as_uri(), "--hide-scrollbars", f"--screenshot={shot}",
                     "--window-size=1280,1600", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    # what is in the picture: the headline, and the shared timeline fully drawn at this width
    dom = _chromium(html_path.as_uri(), "--dump-dom", "--window-size=1280,1600", tmp_path=tmp_path).stdout
    assert re.search(r'<p class="headline" id="headline">Worst: stalled job AJ_\w+ in room [\w-]+, silent',
                     dom)
    assert 'data-horizontal-scroll="false"' in dom and 'data-ready="1"' in dom
    if os.environ.get("LKWEDGE_UPDATE_SCREENSHOT") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, REPO / "docs" / "report.png")

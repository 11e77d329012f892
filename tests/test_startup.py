"""Start-up imports only what the command needs (issue 10): `--help` lists the commands without
importing any of them, and piped or JSON scans never load rich, pandas, pyparsing or urllib.request."""

from __future__ import annotations

import subprocess
import sys

from lkwedge.cli import COMMAND_HELP, COMMAND_MODULES


def _imported(*args: str, stdin: str = "") -> set[str]:
    code = ("import sys, runpy; sys.argv = ['lkwedge', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('lkwedge', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "sys.stderr.write('\\nMODULES ' + ' '.join(sorted(sys.modules)) + '\\n')")
    proc = subprocess.run([sys.executable, "-c", code, *args], input=stdin, capture_output=True, text=True,
                          timeout=60)
    line = proc.stderr.rsplit("MODULES ", 1)[1]
    return set(line.split())


def test_every_command_has_its_one_line_help_without_an_import() -> None:
    assert set(COMMAND_HELP) == set(COMMAND_MODULES)
    loaded = _imported("--help")
    assert not {m for m in loaded if m.startswith(("lkwedge.cli.", "lkwedge.detect", "pandas", "rich"))}


def test_a_piped_scan_loads_no_heavy_module(tmp_path) -> None:
    log = tmp_path / "agent.log"
    log.write_text('[2026-05-01T10:00:00Z WARN  livekit::rtc_engine] received session close: '
                   '"signal client closed: \\"stream closed\\"" UnknownReason Resume\n'
                   "[2026-05-01T10:00:00Z ERROR livekit::rtc_engine] resuming connection... attempt: 0\n"
                   "[2026-05-01T10:00:01Z INFO  livekit::rtc_engine] RtcEngine successfully recovered\n")
    for fmt in ("text", "json"):
        loaded = _imported("scan", "--format", fmt, str(log))
        heavy = {m.split(".")[0] for m in loaded} & {"rich", "pandas", "pyparsing", "asyncio",
                                                        "prometheus_client"}
        assert not heavy and "urllib.request" not in loaded, (fmt, heavy)

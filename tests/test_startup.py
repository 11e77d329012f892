"""Start-up imports only what the command needs (issue 10): `--help` lists the commands without
importing any of them, and piped or JSON scans never load rich, pandas, pyparsing or urllib.request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lkwedge.cli import COMMAND_HELP, COMMAND_MODULES


def _imported(*args: str, stdin: str = "") -> set[str]:
    code = ("import sys; sys.argv = ['lkwedge', *sys.argv[1:]]\n"
            "from lkwedge.cli import main\n"
            "try:\n    main()\n"
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


_STALL_SAMPLE = str(Path(__file__).parent.parent / "samples" / "agents_json_seed_stall.log")


def _console_script(prelude: str, *args: str) -> subprocess.CompletedProcess[str]:
    """What the `lkwedge` console script does, after ``prelude``."""
    code = (f"import sys\n{prelude}\nsys.argv = ['lkwedge', *sys.argv[1:]]\n"
            "from lkwedge.cli import run\nrun()\n")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)


def test_the_quick_exit_keeps_the_exit_code_the_output_and_the_exit_handlers(tmp_path: Path) -> None:
    marker = tmp_path / "handler-ran"
    proc = _console_script(f"import atexit; atexit.register(lambda: open({str(marker)!r}, 'w').close())",
                           "scan", _STALL_SAMPLE)
    assert proc.returncode == 1, proc.stderr                 # a stall: exit 1, as before
    assert proc.stdout.startswith("stalled") and proc.stdout.endswith("\n")
    assert "1 episode in 46 lines" in proc.stderr              # stderr flushed too
    assert marker.exists()                                     # exit handlers (logging, coverage...) ran
    usage = _console_script("", "scan", "--window", "soon", _STALL_SAMPLE)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_a_thread_still_running_at_the_end_gets_the_normal_exit(tmp_path: Path) -> None:
    done = tmp_path / "thread-done"
    prelude = ("import threading, time\n"
               f"threading.Thread(target=lambda: (time.sleep(0.5), open({str(done)!r}, 'w').close()))"
               ".start()")
    proc = _console_script(prelude, "scan", _STALL_SAMPLE)
    assert proc.returncode == 1 and done.exists()   # the interpreter waited for the thread, as always


def test_a_closed_stderr_or_stdout_keeps_the_exit_code(tmp_path: Path) -> None:
    healthy = str(Path(__file__).parent.parent / "samples" / "agents_json_healthy_resume.log")
    lkwedge = [sys.executable, "-m", "lkwedge"]
    # `2>&-` / `>&-`: Python starts with that stream set to None; the exit must not trip over it
    closed_stderr = subprocess.run(["sh", "-c", '"$@" 2>&-', "sh", *lkwedge, "check", healthy],
                                   capture_output=False, stdout=subprocess.DEVNULL, timeout=60)
    assert closed_stderr.returncode == 0                      # a passing CI gate stays passing
    stall = subprocess.run(["sh", "-c", '"$@" 2>&-', "sh", *lkwedge, "scan", _STALL_SAMPLE],
                           stdout=subprocess.DEVNULL, timeout=60)
    assert stall.returncode == 1
    version = subprocess.run(["sh", "-c", '"$@" >&-', "sh", *lkwedge, "--version"], capture_output=True,
                             text=True, timeout=60)
    assert version.returncode == 0 and "Traceback" not in version.stderr


def test_output_errors_of_help_and_a_closed_stdout_are_one_line_and_keep_the_code() -> None:
    full = subprocess.run(["sh", "-c", '"$@" > /dev/full', "sh", sys.executable, "-m", "lkwedge", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert full.returncode == 2 and full.stderr.count("\n") == 1 and "cannot write the output" in full.stderr
    closed = subprocess.run(["sh", "-c", '"$@" >&-', "sh", sys.executable, "-m", "lkwedge", "scan",
                             _STALL_SAMPLE], capture_output=True, text=True, timeout=60)
    assert closed.returncode == 1 and "Traceback" not in closed.stderr and "internal" not in closed.stderr


def test_ctrl_c_in_a_command_that_does_not_handle_it_exits_130_not_1() -> None:
    # click would print "Aborted!" and exit 1, which means "stall found" here; an interrupt while
    # `report` imports pandas was such a place
    prelude = ("import builtins\nreal_import = builtins.__import__\n"
               "def interrupted(name, *args, **kwargs):\n"
               "    if name == 'lkwedge.output.report':\n        raise KeyboardInterrupt\n"
               "    return real_import(name, *args, **kwargs)\n"
               "builtins.__import__ = interrupted")
    proc = _console_script(prelude, "report", _STALL_SAMPLE)
    assert proc.returncode == 130 and proc.stderr.strip() == "lkwedge: interrupted", proc.stderr

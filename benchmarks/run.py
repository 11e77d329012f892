#!/usr/bin/env python3
"""lkwedge's speed against baselines measured in the same run, on workloads this script builds itself.

    python benchmarks/run.py --quick          # 100k-line workloads, 3 runs each (a minute)
    python benchmarks/run.py                  # 1M-line workloads (the targets of issue 10)
    python benchmarks/run.py --big            # also 10M lines (peak memory must stay flat)
    python benchmarks/run.py --write          # also rewrite benchmarks/RESULTS.md

Every figure is the min (and median) of several runs of a whole process, start-up included, next to
baselines timed in the same run on the same file: `wc -l`, `grep -c literal | cat` (GNU grep stops at
the first match when writing to /dev/null), a bare Python line loop, the naive per-line loop a user
would write (naive_baseline.py), and SEC when Debian's `sec` is installed. Ratios, not seconds, are
what compare across machines. Episode counts are checked against the reference (38 stalls in 449
episodes for gen_synth.py seed 42; 48 in 436 for --style mixed): a faster wrong answer fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
FWD = "livekit::rtc_engine"
EXPECTED = {"env_logger": (449, 38), "mixed": (436, 48)}  # at 1M lines, seed 42


def package_dir() -> Path:
    found = subprocess.run([PY, "-c", "import lkwedge, os; print(os.path.dirname(lkwedge.__file__))"],
                           capture_output=True, text=True, check=True)
    return Path(found.stdout.strip())


def lkwedge(*args: str) -> list[str]:
    return [PY, "-m", "lkwedge", *args]


def timed(cmd: list[str] | str, runs: int, stdin: Path | None = None) -> tuple[float, float, int, bytes]:
    """(min s, median s, peak RSS KiB, stdout of the last run) of a command run ``runs`` times."""
    times, rss, out = [], 0, b""
    for _ in range(runs):
        before = time.perf_counter()
        with open(stdin, "rb") if stdin else open(os.devnull, "rb") as fh:
            proc = subprocess.run(cmd, stdin=fh, capture_output=True, shell=isinstance(cmd, str))
        times.append(time.perf_counter() - before)
        out = proc.stdout
    if shutil.which("/usr/bin/time") and not isinstance(cmd, str):
        with open(stdin or os.devnull, "rb") as fh:
            probe = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, stdin=fh)
        rss = int(probe.stderr.decode().strip().splitlines()[-1] or 0)
    return min(times), statistics.median(times), rss, out


def build(workdir: Path, lines: int) -> dict[str, Path]:
    """The workloads: the reference generators, plus pathologies made from the env_logger file."""
    files: dict[str, Path] = {}

    def gen(name: str, *args: str) -> Path:
        path = workdir / f"{name}-{lines}.log"
        if not path.exists():
            subprocess.run([PY, str(HERE / args[0]), *args[1:], "--out", str(path)], check=True,
                           stdout=subprocess.DEVNULL)
        files[name] = path
        return path

    base = gen("env_logger", "gen_synth.py", "--lines", str(lines), "--seed", "42")
    gen("mixed", "gen_synth.py", "--lines", str(lines), "--seed", "42", "--style", "mixed")
    gen("agents_json", "gen_agents_bench.py", "--lines", str(lines), "--seed", "7")
    text = base.read_text(encoding="utf-8").splitlines()
    variants = {
        # one non-Latin-1 character per 1000 lines
        "non_latin1": [line + (" 🎙" if i % 1000 == 0 else "") for i, line in enumerate(text)],
        # docker compose prefixes: every line starts with a letter
        "letter_first": [f"agent-1    | {line}" for line in text],
        # a multi-line Python traceback among the first 400 lines
        "early_traceback": [*text[:100], "Traceback (most recent call last):",
                            '  File "/app/agent.py", line 12, in <module>', "    main()",
                            "RuntimeError: boom",
                            *text[100:]],
    }
    for name, content in variants.items():
        path = workdir / f"{name}-{lines}.log"
        if not path.exists():
            path.write_text("\n".join(content) + "\n", encoding="utf-8")
        files[name] = path
    long_line = workdir / "long-line-200MB.log"
    if not long_line.exists():  # one 200 MB line between two records: skipped in one pass, never held
        with long_line.open("wb") as fh:
            fh.write(text[0].encode() + b"\n" + b"x" * (200 << 20) + b"\n" + text[1].encode() + b"\n")
    files["long_line"] = long_line
    files["open_jobs"] = _jobs_file(workdir, lines, distinct=10_000)
    files["one_job"] = _jobs_file(workdir, lines, distinct=1)
    return files


def _jobs_file(workdir: Path, lines: int, distinct: int) -> Path:
    """agents JSON: 10 000 reconnects (close + attempt) early, then chatter (no job) to the end. With
    ``distinct`` = 10 000 jobs all of them stay open; with 1 job each new close ends the previous one, so
    the two files differ only in how many episodes are open at once."""
    path = workdir / f"jobs{distinct}-{lines}.log"
    if path.exists():
        return path
    out = []
    for i in range(min(20_000, lines)):
        job = f"AJ_{i // 2 % distinct:06d}"
        msg = (f"{FWD}:474:{FWD} - received session close: \"x\" UnknownReason Resume" if i % 2 == 0
               else f"{FWD}:773:{FWD} - resuming connection... attempt: 0")
        out.append(json.dumps({"message": msg, "level": "ERROR", "name": "livekit", "job_id": job,
                               "timestamp": f"2026-05-01T10:00:{i % 60:02d}.000000+00:00"}))
    for i in range(lines - len(out)):
        out.append(json.dumps({"message": f"llm turn {i}", "level": "INFO", "name": "livekit.agents",
                               "timestamp": f"2026-05-01T10:{1 + i // 60000 % 58:02d}:00.000000+00:00"}))
    path.write_text("\n".join(out) + "\n")
    return path


def counts(stdout: bytes) -> tuple[int, int]:
    summary = json.loads(stdout)["summary"]
    return int(summary["episodes"]), int(summary["stalled"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100k lines, for a quick look")
    ap.add_argument("--big", action="store_true", help="also 10M lines (memory)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "lkwedge-bench"))
    ap.add_argument("--write", action="store_true", help="rewrite benchmarks/RESULTS.md")
    args = ap.parse_args()
    lines = 100_000 if args.quick else 1_000_000
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    files = build(work, lines)
    # An installed wheel has its bytecode compiled (pip does it); an editable checkout under
    # PYTHONDONTWRITEBYTECODE=1 would recompile every changed module on every run, so compile it once.
    subprocess.run([PY, "-m", "compileall", "-q", "-j", "0", str(package_dir())], check=True)
    rows: list[tuple[str, str, float, float, float, int, str]] = []
    problems: list[str] = []

    rss_of: dict[tuple[str, str], int] = {}

    def row(workload: str, what: str, cmd: list[str] | str, base: float | None, stdin: Path | None = None,
            check: tuple[int, int] | None = None, nlines: int | None = None) -> float:
        best, median, rss, out = timed(cmd, args.runs, stdin)
        rss_of[workload, what] = rss
        note = ""
        if check is not None:
            got = counts(out)
            note = f"{got[1]}/{got[0]} stalls/episodes"
            if got != check:
                problems.append(f"{workload}: {what} gave {got}, expected {check}")
        rate = (nlines or lines) / best / 1e6
        rows.append((workload, what, best, median, (base / best) if base else 1.0, rss,
                     f"{rate:.2f} M lines/s {note}".strip()))
        return best

    for name in ("env_logger", "mixed", "agents_json"):
        path = files[name]
        naive = row(name, "naive per-line loop (baseline)", [PY, str(HERE / "naive_baseline.py"), str(path)],
                    None)
        row(name, "bare Python line loop", [PY, "-c", "import sys\nfor _ in open(sys.argv[1], 'rb'): pass",
                                            str(path)], naive)
        row(name, "wc -l", ["wc", "-l", str(path)], naive)
        row(name, "grep -c | cat", f"grep -c 'resuming connection' {path} | cat", naive)
        expect = EXPECTED.get(name) if lines == 1_000_000 else None
        row(name, "lkwedge scan", lkwedge("scan", "--format", "json", str(path)), naive, check=expect)
        row(name, "lkwedge scan --jobs 1 (one core)", lkwedge("scan", "--jobs", "1", "--format", "json",
                                                               str(path)), naive, check=expect)
        if name == "env_logger":
            row(name, "lkwedge watch --once", lkwedge("watch", "--once", "--format", "json", str(path)),
                naive, check=expect)
            row(name, "lkwedge report", lkwedge("report", str(path)), naive)
            if shutil.which("sec"):
                conf = HERE / "sec-stalled-resume.conf"
                if conf.exists():
                    row(name, "SEC 2.9", ["sec", f"-conf={conf}", f"-input={path}", "-notail", "-debug=1"],
                        naive)
    clean = files["env_logger"]
    for name in ("non_latin1", "letter_first", "early_traceback"):
        base = row(name, "lkwedge scan (same file without it)",
                   lkwedge("scan", "--format", "json", str(clean)), None)
        row(name, "lkwedge scan", lkwedge("scan", "--format", "json", str(files[name])), base)
    wc = row("long_line", "wc -l (reads the 200 MB once)", ["wc", "-l", str(files["long_line"])], None)
    row("long_line", "lkwedge scan", lkwedge("scan", "--format", "json", str(files["long_line"])), wc)
    one = row("one_job", "lkwedge scan", lkwedge("scan", "--format", "json", str(files["one_job"])), None)
    row("open_jobs", "lkwedge scan, 10 000 open jobs", lkwedge("scan", "--format", "json",
                                                               str(files["open_jobs"])), one)
    empty = work / "empty.log"
    empty.write_text("")
    row("start-up", "python -c pass", [PY, "-c", "pass"], None)
    # the floor for any click command: the interpreter, click and the standard modules a log reader needs
    row("start-up", "python -c 'import click, json, re, gzip, datetime...'",
        [PY, "-c", "import click, dataclasses, json, datetime, re, gzip, tomllib, zoneinfo"], None)
    row("start-up", "lkwedge --help", lkwedge("--help"), None)
    row("start-up", "lkwedge scan (empty file)", lkwedge("scan", str(empty)), None)
    # What this machine gives two processes at once (2 vCPUs may share a physical core or a host):
    # the ceiling for any --jobs speed-up, measured in the same run.
    burn = "s = 0\nfor i in range(20_000_000): s += i"
    alone = row("parallelism", "one CPU-bound Python process", [PY, "-c", burn], None)
    row("parallelism", "two at once (speed-up = 2 x one / this)",
        f"{PY} -c '{burn}' & {PY} -c '{burn}'; wait", 2 * alone)
    copies = [str(files["env_logger"])] * 8
    serial = row("8 files", "lkwedge scan --jobs 1",
                 lkwedge("scan", "--jobs", "1", "--format", "json", *copies), None)
    row("8 files", "lkwedge scan --jobs 2", lkwedge("scan", "--jobs", "2", "--format", "json", *copies),
        serial)
    if args.big:
        big = work / "env_logger-10000000.log"
        if not big.exists():
            subprocess.run([PY, str(HERE / "gen_synth.py"), "--lines", "10000000", "--seed", "42", "--out",
                            str(big)], check=True, stdout=subprocess.DEVNULL)
        row("env_logger 10M", "lkwedge scan", lkwedge("scan", "--format", "json", str(big)), None,
            nlines=10_000_000)
        small, large = rss_of["env_logger", "lkwedge scan"], rss_of["env_logger 10M", "lkwedge scan"]
        if small and large > 1.15 * small:
            problems.append(f"peak RSS on 10M lines is {large / 1024:.0f} MiB, "
                            f"over 1.15 x {small / 1024:.0f} MiB")

    machine = (f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
               f"{platform.python_version()}, {platform.platform()}")
    lines_out = [f"Machine: {machine}; {lines:,} lines; best (median) of {args.runs} runs, whole process.",
                 "",
                 "| workload | command | best s | median s | speed-up vs baseline | peak RSS MiB | note |",
                 "|---|---|---|---|---|---|---|"]
    for workload, what, best, median, ratio, rss, note in rows:
        lines_out.append(f"| {workload} | {what} | {best:.3f} | {median:.3f} | {ratio:.2f}x "
                         f"| {rss / 1024:.1f} | {note} |")
    table = "\n".join(lines_out)
    print(table)
    for problem in problems:
        print("WRONG:", problem, file=sys.stderr)
    if args.write:
        results = HERE / "RESULTS.md"
        text = results.read_text() if results.exists() else ""
        marker = "<!-- table -->"
        head, _, rest = text.partition(marker)
        _, _, tail = rest.partition("<!-- /table -->")
        results.write_text(f"{head}{marker}\n{table}\n<!-- /table -->{tail}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

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
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
PY = sys.executable
FWD = "livekit::rtc_engine"
EXPECTED = {"env_logger": (449, 38), "mixed": (436, 48)}  # at 1M lines, seed 42


def package_dir() -> Path:
    found = subprocess.run([PY, "-c", "import lkwedge, os; print(os.path.dirname(lkwedge.__file__))"],
                           capture_output=True, text=True, check=True)
    return Path(found.stdout.strip())


def lkwedge(*args: str) -> list[str]:
    """The `lkwedge` console script beside this interpreter (what a user runs), else ``python -m``."""
    script = Path(PY).with_name("lkwedge")
    return [str(script), *args] if script.exists() else [PY, "-m", "lkwedge", *args]


def scan_json(*args: str | Path) -> list[str]:
    return lkwedge("scan", "--format", "json", *map(str, args))


class Spec(NamedTuple):
    """One command to time: its row's label, the command, and what its output must show."""

    what: str
    cmd: list[str] | str
    stdin: Path | None = None
    check: tuple[int, int] | None = None  # (episodes, stalls) its JSON must report
    nlines: int | None = None


def timed(specs: list[Spec], runs: int) -> list[tuple[float, float, int, bytes]]:
    """(min s, median s, peak RSS KiB, stdout of the last run) of each command, run ``runs`` times in
    turn (A B C A B C...): a machine whose speed drifts during the run moves every command alike, so
    the ratios between them hold."""
    times: list[list[float]] = [[] for _ in specs]
    outs = [b""] * len(specs)
    for _ in range(runs):
        for i, spec in enumerate(specs):
            before = time.perf_counter()
            with open(spec.stdin, "rb") if spec.stdin else open(os.devnull, "rb") as fh:
                proc = subprocess.run(spec.cmd, stdin=fh, capture_output=True,
                                      shell=isinstance(spec.cmd, str))
            times[i].append(time.perf_counter() - before)
            outs[i] = proc.stdout
    results = []
    for spec, spent, out in zip(specs, times, outs, strict=True):
        rss = 0
        if shutil.which("/usr/bin/time") and not isinstance(spec.cmd, str):
            with open(spec.stdin or os.devnull, "rb") as fh:
                probe = subprocess.run(["/usr/bin/time", "-f", "%M", *spec.cmd], capture_output=True,
                                       stdin=fh)
            rss = int(probe.stderr.decode().strip().splitlines()[-1] or 0)
        results.append((min(spent), statistics.median(spent), rss, out))
    return results


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

    def group(workload: str, specs: list[Spec], compare: bool = True) -> list[float]:
        """Time ``specs`` in turn; each row's speed-up is against the first spec's best time (itself
        1.00x), or none with ``compare`` False (absolute times). Returns the best times."""
        bests = []
        for spec, (best, median, rss, out) in zip(specs, timed(specs, args.runs), strict=True):
            rss_of[workload, spec.what] = rss
            note = ""
            if spec.check is not None:
                got = counts(out)
                note = f"{got[1]}/{got[0]} stalls/episodes"
                if got != spec.check:
                    problems.append(f"{workload}: {spec.what} gave {got}, expected {spec.check}")
            reference = bests[0] if bests and compare else best
            rate = (spec.nlines or lines) / best / 1e6
            rows.append((workload, spec.what, best, median, reference / best, rss,
                         f"{rate:.2f} M lines/s {note}".strip()))
            bests.append(best)
        return bests

    for name in ("env_logger", "mixed", "agents_json"):
        path = files[name]
        expect = EXPECTED.get(name) if lines == 1_000_000 else None
        specs = [Spec("naive per-line loop (baseline)", [PY, str(HERE / "naive_baseline.py"), str(path)]),
                 Spec("bare Python line loop",
                      [PY, "-c", "import sys\nfor _ in open(sys.argv[1], 'rb'): pass", str(path)]),
                 Spec("wc -l", ["wc", "-l", str(path)]),
                 Spec("grep -c | cat", f"grep -c 'resuming connection' {path} | cat"),
                 Spec("lkwedge scan", scan_json(path), check=expect),
                 Spec("lkwedge scan --jobs 1 (one core)", scan_json("--jobs", "1", path), check=expect)]
        if name == "env_logger":
            specs += [Spec("lkwedge watch --once", lkwedge("watch", "--once", "--format", "json", str(path)),
                           check=expect),
                      Spec("lkwedge report", lkwedge("report", str(path)))]
            conf = HERE / "sec-stalled-resume.conf"
            if shutil.which("sec") and conf.exists():
                specs.append(Spec("SEC 2.9",
                                  ["sec", f"-conf={conf}", f"-input={path}", "-notail", "-debug=1"]))
        group(name, specs)
    clean = files["env_logger"]
    for name in ("non_latin1", "letter_first", "early_traceback"):
        group(name, [Spec("lkwedge scan (same file without it)", scan_json(clean)),
                     Spec("lkwedge scan", scan_json(files[name]))])
    group("long_line", [Spec("wc -l (reads the 200 MB once)", ["wc", "-l", str(files["long_line"])]),
                        Spec("lkwedge scan", scan_json(files["long_line"]))])
    group("one_job", [Spec("lkwedge scan", scan_json(files["one_job"])),
                      Spec("lkwedge scan, 10 000 open jobs", scan_json(files["open_jobs"]))])
    rows[-1] = ("open_jobs", *rows[-1][1:])
    empty = work / "empty.log"
    empty.write_text("")
    group("start-up", [
        Spec("python -c pass", [PY, "-c", "pass"]),
        # the floor for any click command: the interpreter, click and the standard modules a log reader needs
        Spec("python -c 'import click, json, re, gzip, datetime...'",
             [PY, "-c", "import click, dataclasses, json, datetime, re, gzip, tomllib, zoneinfo"]),
        Spec("lkwedge --help", lkwedge("--help")),
        Spec("lkwedge scan (empty file)", lkwedge("scan", str(empty)))], compare=False)
    # What this machine gives two processes at once (2 vCPUs may share a physical core or a host):
    # the ceiling for any --jobs speed-up, measured in the same run.
    burn = "s = 0\nfor i in range(20_000_000): s += i"
    alone, pair = timed([Spec("one", [PY, "-c", burn]),
                         Spec("two", f"{PY} -c '{burn}' & {PY} -c '{burn}'; wait")], args.runs)
    rows.append(("parallelism", "one CPU-bound Python process", alone[0], alone[1], 1.0, alone[2],
                 f"{lines / alone[0] / 1e6:.2f} M lines/s"))
    rows.append(("parallelism", "two at once (speed-up = 2 x one / this)", pair[0], pair[1],
                 2 * alone[0] / pair[0], 0, f"{lines / pair[0] / 1e6:.2f} M lines/s"))
    copies = [str(files["env_logger"])] * 8
    group("8 files", [Spec("lkwedge scan --jobs 1", scan_json("--jobs", "1", *copies)),
                      Spec("lkwedge scan --jobs 2", scan_json("--jobs", "2", *copies))])
    if args.big:
        big = work / "env_logger-10000000.log"
        if not big.exists():
            subprocess.run([PY, str(HERE / "gen_synth.py"), "--lines", "10000000", "--seed", "42", "--out",
                            str(big)], check=True, stdout=subprocess.DEVNULL)
        group("env_logger 10M", [Spec("lkwedge scan", scan_json(big), nlines=10_000_000)])
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

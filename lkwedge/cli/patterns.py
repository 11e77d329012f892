"""`lkwedge patterns list|test`: what the pattern packs know, and proof that they still match.

`test` is this field's fail2ban-regex / `vector test`: every pattern against its samples (exit 1 on a
failed sample), and with logs, how the patterns fare on real lines (hit counts, timestamp templates,
unparsed lines, and near misses: a pattern's literal is on the line but no pattern matched it, which is
how SDK wording drift shows up).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from lkwedge.cli import main
from lkwedge.cli.common import run_guarded
from lkwedge.datafile import load_toml
from lkwedge.detect.fingerprint import builtin_table, show_range
from lkwedge.detect.patterns import Pattern, PatternSet, builtin_pack_files, load_pack
from lkwedge.detect.sampletest import (
    LogStats,
    SampleResult,
    analyze_log,
    check_sample,
    read_samples,
    sample_file,
)
from lkwedge.errors import InputError
from lkwedge.read.framing import read_lines
from lkwedge.read.sources import describe
from lkwedge.safe import printable


@main.group("patterns")
def patterns_group() -> None:
    """List the pattern packs, or test them against their samples and real logs."""


def _pack_meta(path: Path) -> dict[str, str]:
    try:
        data = load_toml(path)
    except (OSError, ValueError):
        return {}
    pack = data.get("pack", {})
    if not isinstance(pack, dict):
        return {}
    return {k: str(v) for k, v in pack.items() if isinstance(v, str | int | float)}


def _pattern_dict(p: Pattern) -> dict[str, Any]:
    return {"id": p.id, "role": p.role, "literal": p.literal, "outcome": p.outcome, "versions": p.versions,
            "evidence": p.evidence or None}


@patterns_group.command("list")
@click.option("--patterns", "extra", type=click.Path(path_type=Path), multiple=True,
              help="Also list this pack (TOML).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def list_command(extra: tuple[Path, ...], fmt: str) -> None:
    """Packs, their patterns (id, role, literal) and the SDK versions each applies to."""

    def load() -> list[tuple[Path, list[Pattern]]]:
        return [(path, load_pack(path)) for path in [*extra, *builtin_pack_files()]]

    packs = run_guarded(load)
    table = run_guarded(builtin_table)
    if fmt == "json":
        out = {"packs": [{"file": str(path), **_pack_meta(path), "patterns": [_pattern_dict(p) for p in pats]}
                         for path, pats in packs],
               "fingerprints": [{"rtc": show_range(*b.rtc), "ffi": show_range(*b.ffi)} for b in table.bands]}
        json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    for path, pats in packs:
        meta = _pack_meta(path)
        click.echo(printable(f"pack {meta.get('name', path.stem)} ({path}): {len(pats)} patterns"))
        for key in ("summary", "sdk"):
            if meta.get(key):
                click.echo(printable(f"  {key}: {meta[key]}"))
        for p in pats:
            extra_note = f" outcome={p.outcome}" if p.outcome else ""
            extra_note += f" evidence={p.evidence}" if p.evidence else ""
            click.echo(printable(f"  {p.id:<28} {p.role:<9} literal={p.literal!r}{extra_note}"))
            if p.versions:
                click.echo(printable(f"  {'':<28} versions: {p.versions}"))
    bands = ", ".join(f"{show_range(*b.rtc)}" for b in table.bands)
    click.echo(printable(f"SDK fingerprints: {len(table.bands)} python livekit (rtc) bands ({bands}), "
                         f"{len(table.vocab)} wording rules"))


def _split_args(args: tuple[str, ...]) -> tuple[list[Path], list[str]]:
    packs = [Path(a) for a in args if a.endswith(".toml")]
    logs = [a for a in args if not a.endswith(".toml")]
    return packs, logs


def _run_samples(packs: list[Path], pattern_set: PatternSet) -> tuple[list[SampleResult], list[str]]:
    """Every sample's result, and one line per pattern that has no sample at all."""
    results, missing = [], []
    for pack in packs:
        samples_path = sample_file(pack)
        if not samples_path.is_file():
            raise InputError(f"pack {pack} has no samples file {samples_path.name}")
        samples = read_samples(samples_path)
        sampled = {s.expect.get("pattern") for s in samples}
        for pattern in load_pack(pack):
            if pattern.id not in sampled:
                missing.append(f"{pack}: pattern {pattern.id!r} has no failJSON sample in "
                               f"{samples_path.name}")
        results.extend(check_sample(s, pattern_set) for s in samples)
    return results, missing


def _log_stats(logs: list[str], pattern_set: PatternSet) -> list[LogStats]:
    found = []
    for path in logs:
        source = describe(path)
        found.append(analyze_log(source.name, read_lines(source.path, source.name), pattern_set))
    return found


def _print_log(stats: LogStats, pattern_set: PatternSet) -> None:
    name = printable(stats.name)
    click.echo(f"log {name}: {stats.lines} records, {stats.lines - stats.unparsed} parsed, "
               f"{stats.unparsed} unparsed")
    click.echo("  timestamps:")
    for template, count in sorted(stats.time_templates.items(), key=lambda kv: -kv[1]):
        click.echo(f"    {count:>8}  {template}")
    click.echo(f"  pattern hits ({sum(stats.hits.values())} lines):")
    for p in pattern_set.patterns:
        if stats.hits.get(p.id):
            click.echo(printable(f"    {stats.hits[p.id]:>8}  {p.id} ({p.pack}, {p.role})"))
    for both, count in stats.overlaps.items():
        click.echo(printable(f"  overlap: {count} line(s) matched {both} (the first wins)"))
    if stats.near_miss_count:
        click.echo(f"  near misses: {stats.near_miss_count} line(s) hold a pattern literal but match no "
                   f"pattern (SDK wording drift?):")
        for lineno, owners, text in stats.near_misses:
            click.echo(printable(f"    {name}:{lineno} [{', '.join(owners)}] {text}", 240))
    if stats.unparsed_examples:
        click.echo("  unparsed (first lines):")
        for lineno, text in stats.unparsed_examples:
            click.echo(printable(f"    {name}:{lineno} {text}", 240))


@patterns_group.command("test")
@click.argument("args", nargs=-1, metavar="[PACK.toml]... [LOG]...")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def test_command(args: tuple[str, ...], fmt: str) -> None:
    """Test packs against their samples (default: the built-in packs), and report on logs.

    A PACK is a .toml file; its samples are the .samples.log next to it. Each sample must match the
    pattern and log time its "# failJSON:" line states, and exactly one pattern. With a LOG (file, .gz
    or - for stdin): hits per pattern, timestamp templates, unparsed lines and near misses.
    Exit 0 when every sample passes, 1 when one fails, 2 on a usage or input error.

    \b
      lkwedge patterns test
      lkwedge patterns test my-pack.toml
      lkwedge patterns test agent.log
    """
    packs, logs = _split_args(args)
    pattern_set = run_guarded(lambda: PatternSet.load(packs))
    tested = packs or builtin_pack_files()
    results, missing = run_guarded(lambda: _run_samples(tested, pattern_set))
    stats = run_guarded(lambda: _log_stats(logs, pattern_set))
    failed = [r for r in results if not r.ok]
    if fmt == "json":
        out = {"samples": len(results), "failed": [{"file": str(r.sample.file), "line": r.sample.line,
                                                    "problems": r.problems} for r in failed],
               "unsampled": missing, "packs": [str(p) for p in tested], "logs": [s.to_dict() for s in stats]}
        json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        for r in failed:
            click.echo(printable(f"FAIL {r.sample.file}:{r.sample.line}: {'; '.join(r.problems)}", 400))
        for line in missing:
            click.echo(printable(f"FAIL {line}", 400))
        click.echo(f"patterns test: {len(results)} samples in {len(tested)} pack(s): "
                   f"{len(results) - len(failed)} passed, {len(failed)} failed"
                   + (f", {len(missing)} pattern(s) without a sample" if missing else ""))
        for s in stats:
            _print_log(s, pattern_set)
    sys.exit(1 if failed or missing else 0)

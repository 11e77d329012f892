"""Fuzzing the read and detect stages (framing, clock, matching) with a bounded budget.

Seed corpus: every line of the bundled samples and pattern samples, plus the lines that once crashed
lkwedge (tests/fuzz_corpus.txt). Hypothesis mutates and mixes them, cuts the bytes at random places,
and checks the promises: no input raises, and every physical line is accounted for (the summary's line
count is the number of lines in the input, and its unparsed lines are exactly the sum of their reasons).
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

from conftest import feed_in_pieces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lkwedge.detect.engine import ScanOptions
from lkwedge.detect.summary import Summary

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _corpus() -> list[bytes]:
    lines: list[bytes] = []
    for path in sorted((REPO / "samples").iterdir()):
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        if path.suffix in (".log", ".gz"):
            lines.extend(data.split(b"\n"))
    for path in sorted((REPO / "patterns").glob("*.samples.log")):
        lines.extend(line for line in path.read_bytes().split(b"\n") if not line.startswith(b"#"))
    lines.extend((HERE / "fuzz_corpus.txt").read_bytes().split(b"\n"))
    return [line for line in lines if line]


CORPUS = _corpus()


@st.composite
def mutated_line(draw: st.DrawFn) -> bytes:
    line = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(0, 4))):
        if not line:
            break
        pos = draw(st.integers(0, len(line) - 1))
        action = draw(st.sampled_from(["digit", "byte", "cut", "dup", "delete"]))
        if action == "digit" and chr(line[pos]).isdigit():
            line[pos] = ord(draw(st.sampled_from("0123456789")))
        elif action == "byte":
            line[pos] = draw(st.integers(0, 255))
        elif action == "cut":
            del line[pos:]
        elif action == "dup":
            line[pos:pos] = line[pos:pos + draw(st.integers(1, 40))]
        else:
            del line[pos:pos + draw(st.integers(1, 10))]
    return bytes(line).replace(b"\n", b" ")


@st.composite
def inputs(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(mutated_line(), min_size=1, max_size=60))
    end = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = end.join(lines)
    if draw(st.booleans()):
        data += end
    return data


def _run(data: bytes, seed: int, max_line: int) -> Summary:
    detector = feed_in_pieces(data, random.Random(seed), (1, 5, 64, 4096, 1 << 16),
                              ScanOptions(window=20.0, max_line=max_line), "fuzz")
    for episode in detector.episodes():
        episode.to_dict()
    return detector.summary()


def _physical_lines(data: bytes) -> int:
    return data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=inputs(), seed=st.integers(0, 10_000), max_line=st.sampled_from([1 << 20, 1024]))
def test_no_input_raises_and_every_line_is_accounted_for(data: bytes, seed: int, max_line: int) -> None:
    summary = _run(data, seed, max_line)
    assert summary.lines == _physical_lines(data)
    assert summary.unparsed == sum(summary.unparsed_reasons.values()) <= summary.lines
    assert summary.records + summary.unparsed == summary.lines


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=3000), seed=st.integers(0, 10_000))
def test_random_bytes_never_raise(data: bytes, seed: int) -> None:
    summary = _run(data, seed, 1 << 20)
    assert summary.lines == _physical_lines(data)


def test_every_crash_in_the_corpus_is_read_without_error() -> None:
    data = (HERE / "fuzz_corpus.txt").read_bytes()
    summary = _run(data, 1, 1 << 20)
    assert summary.lines == _physical_lines(data)

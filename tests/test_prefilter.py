"""The prefilter's two ways of finding odd line starts (the automaton and the regex) find the same
lines and the same candidates (a literal at the start of an odd line included), and the facts of a run
of lines do not depend on where it was cut into blocks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lkwedge.detect.patterns import PatternSet
from lkwedge.detect.prefilter import BlockFacts, Prefilter, block_facts, wrapper_prefixes

PREFILTER = Prefilter(PatternSet.load([]))

_starts = st.sampled_from([
    "[2026-05-01T10:00:00Z ERROR livekit::rtc_engine] resuming connection... attempt: 1",
    "2026-05-01T10:00:00.1Z INFO livekit: RtcEngine successfully recovered",
    '{"message": "x", "level": "INFO"}', "   at frame", "\tindented", "\x1b[2mdim", "\r",
    "agent-1    | [2026-05-01T10:00:00Z INFO x] y", "Jan 30 18:24:43 host agent[1]: z",
    "INFO 2026-05-01 hello", "ERROR:livekit:boom", "Traceback (most recent call last):",
    "résumé", "|pipe", "resuming connection... attempt: 2", "received session close: x resuming connection",
    "rresuming connection... attempt: 1", "x received leave request", "EOU metrics STT metrics",
    "agent-1\n| split wrapper", "x", "", "\x00\x00lkwedge: line too long\x00\x00",
])


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_starts, min_size=1, max_size=40))
def test_automaton_and_regex_find_the_same_odd_lines(lines: list[str]) -> None:
    buf = ("\n".join(lines) + "\n").encode()
    for start in (0, buf.index(b"\n") + 1):
        if start < len(buf):
            assert PREFILTER.odd_line_starts(buf, start, len(buf), True) == \
                PREFILTER.odd_line_starts(buf, start, len(buf), False)


_WRAPPED = st.lists(st.tuples(st.sampled_from(["agent-1    | ", "worker_2 | ", "a.b-c\t| ", "", "x "]),
                              st.sampled_from(["[2026-05-01T10:00:00Z INFO x] y", "hello", "| z", ""])),
                    min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(pairs=_WRAPPED, learn_from=st.integers(min_value=1, max_value=30))
def test_counting_wrapper_prefixes_finds_the_same_odd_lines(pairs: list[tuple[str, str]],
                                                              learn_from: int) -> None:
    # compose logs: when every line but the first starts with a wrapper seen in the sample, a count
    # settles it; when one does not, the regex runs. Either way, the regex's answer.
    lines = [wrapper + rest for wrapper, rest in pairs]
    buf = ("\n".join(lines) + "\n").encode()
    wrappers = wrapper_prefixes(lines[:learn_from])
    for start in (0, buf.index(b"\n") + 1):
        if start < len(buf):
            assert PREFILTER.odd_line_starts(buf, start, len(buf), False, wrappers,
                                             buf.count(b"\n", start)) == \
                PREFILTER.odd_line_starts(buf, start, len(buf), False)


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(_starts, min_size=2, max_size=60), cut=st.integers(min_value=1, max_value=59),
       by_automaton=st.booleans())
def test_facts_of_two_pieces_extend_to_the_facts_of_the_whole(lines: list[str], cut: int,
                                                               by_automaton: bool) -> None:
    lines = "\n".join(lines).split("\n")  # a cut may fall between any two physical lines
    cut = min(cut, len(lines) - 1)
    whole = ("\n".join(lines) + "\n").encode()
    first = ("\n".join(lines[:cut]) + "\n").encode()
    second = ("\n".join(lines[cut:]) + "\n").encode()
    wrappers = () if by_automaton else wrapper_prefixes(lines)
    facts = block_facts(PREFILTER, first, 0, len(first), by_automaton, wrappers=wrappers)
    facts.extend(block_facts(PREFILTER, second, 0, len(second), by_automaton, wrappers=wrappers))
    expected = block_facts(PREFILTER, whole, 0, len(whole), not by_automaton)
    assert (facts.lines, facts.candidates, facts.unparsed, facts.tail) == \
        (expected.lines, expected.candidates, expected.unparsed, expected.tail)
    assert isinstance(facts, BlockFacts) and facts.lines == whole.count(b"\n")

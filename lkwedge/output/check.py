"""CI assertions over a scan result: which episodes (and which counts) make ``lkwedge check`` fail.

An episode fails when it breaks any per-episode rule; it is reported once, with every rule it broke:
- ``max_stalls``: when more than N episodes are ``stalled``, every stalled episode is a failure (each is
  evidence; picking "the ones after the Nth" would be arbitrary);
- ``max_silence``: an episode whose longest silence exceeds the limit (episodes without timestamps have no
  known silence and cannot break this rule);
- ``fail_on``: an episode whose verdict is listed.
- ``max_ghosts``: the same for ``ghost`` episodes (ghost rooms fail like stalls, with their own count);
``expect_recovered`` is about the whole run (at least N ``recovered`` episodes): its failure has no episode.
"""

from __future__ import annotations

from collections import Counter

import msgspec

from lkwedge.detect.engine import ScanResult
from lkwedge.detect.episodes import Episode
from lkwedge.detect.spool import headers
from lkwedge.output.present import plural, seconds
from lkwedge.safe import printable

__all__ = ["plural"]      # re-exported: it lived here first




def fmt_seconds(value: float | None) -> str:
    return seconds(value, unknown="unknown")


class CheckOptions(msgspec.Struct):
    max_stalls: int = 0
    max_silence: float | None = None  # seconds; None = no limit
    fail_on: tuple[str, ...] = ()
    expect_recovered: int | None = None
    max_ghosts: int = 0


class Failure(msgspec.Struct):
    """One failed assertion: about one episode (``episode`` set) or about the whole run."""

    rule: str  # "max-stalls" | "max-silence" | "fail-on" | "expect-recovered" (comma-joined if several)
    message: str  # one line, already printable
    episode: Episode | None = None
    reasons: list[str] = []

    @property
    def title(self) -> str:
        return f"lkwedge {self.episode.verdict}" if self.episode else f"lkwedge {self.rule}"


def episode_summary(ep: Episode) -> str:
    """``stalled job:AJ_x, silence 64.8 s, outcome escalated``: the facts a reader needs, one line.
    The key is left out when it is just the file (a log without job ids)."""
    head = ep.verdict if ep.key == ep.file else f"{ep.verdict} {printable(ep.key)}"
    parts = [head]
    if ep.silence_s is not None:
        parts.append(f"silence {seconds(ep.silence_s)}")
    if ep.outcome:
        parts.append(f"outcome {ep.outcome}")
    if ep.confidence:
        parts.append(f"confidence {ep.confidence}")
    if ep.verdict == "unresolved" and ep.log_left_s is not None:
        parts.append(f"log ends {seconds(ep.log_left_s)} later")
    return ", ".join(parts)


class CheckOutcome(msgspec.Struct):
    assertions: list[str]  # one line per failed assertion ("max-stalls: 38 stalled episodes, 0 allowed")
    failures: list[Failure]  # per failing episode (input order), then run-wide failures

    @property
    def passed(self) -> bool:
        return not self.assertions

    @property
    def episode_failures(self) -> list[Failure]:
        return [f for f in self.failures if f.episode is not None]


def run_checks(result: ScanResult, options: CheckOptions) -> CheckOutcome:
    counts = Counter(ep.verdict for ep in headers(result.episodes))
    stalls, ghosts = counts["stalled"], counts["ghost"]
    too_many_stalls, too_many_ghosts = stalls > options.max_stalls, ghosts > options.max_ghosts
    assertions: list[str] = []
    if too_many_stalls:
        assertions.append(f"max-stalls: {plural(stalls, 'stalled episode')}, "
                          f"at most {options.max_stalls} allowed")
    if too_many_ghosts:
        assertions.append(f"max-ghosts: {plural(ghosts, 'ghost episode')}, "
                          f"at most {options.max_ghosts} allowed")
    failures: list[Failure] = []
    over_silence = 0
    by_verdict: dict[str, int] = {}
    for ep in result.episodes:  # one pass: a long scan's episodes may be read back from disk
        reasons: list[tuple[str, str]] = []
        if too_many_ghosts and ep.verdict == "ghost":
            reasons.append(("max-ghosts", f"{ghosts} ghost > max-ghosts {options.max_ghosts}"))
        if too_many_stalls and ep.verdict == "stalled":
            reasons.append(("max-stalls", f"{stalls} stalled > max-stalls {options.max_stalls}"))
        limit = options.max_silence
        if limit is not None and ep.silence_s is not None and ep.silence_s > limit:
            over_silence += 1
            reasons.append(("max-silence", f"silence {seconds(ep.silence_s)} > max-silence {seconds(limit)}"))
        if ep.verdict in options.fail_on:
            by_verdict[ep.verdict] = by_verdict.get(ep.verdict, 0) + 1
            reasons.append(("fail-on", f"fail-on {ep.verdict}"))
        if reasons:  # one failure per episode, every rule it broke listed
            rules = ", ".join(dict.fromkeys(rule for rule, _ in reasons))
            failures.append(Failure(
                rule=rules,
                message=f"{printable(ep.file)}:{ep.line}: {episode_summary(ep)} [{rules}]",
                episode=ep,
                reasons=[text for _, text in reasons],
            ))
    if over_silence:
        assertions.append(f"max-silence: {plural(over_silence, 'episode')} silent for longer than "
                          f"{options.max_silence:g} s")
    for verdict, count in by_verdict.items():
        assertions.append(f"fail-on {verdict}: {plural(count, verdict + ' episode')}")
    if options.expect_recovered is not None:
        recovered = counts["recovered"]
        if recovered < options.expect_recovered:
            line = (f"expect-recovered: expected at least {options.expect_recovered} recovered episodes, "
                    f"found {recovered}")
            assertions.append(line)
            failures.append(Failure(rule="expect-recovered", message=line))
    return CheckOutcome(assertions=assertions, failures=failures)


# GitHub workflow commands: https://docs.github.com/actions/reference/workflow-commands-for-github-actions
def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(failure: Failure, file: str | None = None) -> str:
    """``::error file=…,line=…,title=…::message``. Escaping matters: log text with a newline must not be
    able to start a workflow command of its own."""
    props = []
    ep = failure.episode
    if ep is not None and ep.file != "<stdin>":
        props.append(f"file={_gh_property(file or ep.file)}")
        props.append(f"line={ep.line}")
    props.append(f"title={_gh_property(failure.title)}")
    if ep is not None:
        key = "" if ep.key == ep.file else f" {printable(ep.key)}"
        message = f"{ep.verdict} reconnect{key} ({'; '.join(failure.reasons)})"
        message += f": {printable(ep.note)}" if ep.note else f": {episode_summary(ep)}"
    else:
        message = failure.message
    return f"::error {','.join(props)}::{_gh_data(message)}"

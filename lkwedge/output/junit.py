"""JUnit XML for ``lkwedge check --junit``: what GitHub Actions, GitLab and Jenkins render as test results.

Layout: one ``<testsuite name="lkwedge check">``; one ``<testcase>`` per input file (name = the path as
given); inside it one ``<failure>`` per failing episode, whose body holds the episode's evidence lines
(``file:line: [role] text``). A run-wide assertion (``--expect-recovered``) gets a testcase of its own.
Counts follow the JUnit schema: ``tests`` = testcases, ``failures`` = failing testcases; the number of
failing episodes is the number of ``<failure>`` elements (also given as the ``failing_episodes`` property).
``file``/``line`` attributes (1-based physical line) sit on each ``<failure>`` and on its ``<testcase>``
(the first failing episode's line), which is where GitLab and most GitHub reporters look for them.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from lkwedge.detect.engine import ScanResult
from lkwedge.output.check import Failure, episode_summary, fmt_seconds

# XML 1.0 cannot carry these code points at all, even escaped; log text may contain them.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _XML_INVALID.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _failure_body(failure: Failure) -> str:
    ep = failure.episode
    assert ep is not None
    lines = [
        f"{episode_summary(ep)}",
        f"failed: {'; '.join(failure.reasons)}",
        f"start {ep.start.isoformat() if ep.start else 'unknown'}, "
        f"longest silence {fmt_seconds(ep.silence_s)}, attempts {ep.attempts}",
    ]
    if ep.note:
        lines.append(ep.note)
    lines.append("evidence:")
    lines.extend(f"{ep.file}:{ev.line}: [{ev.role}] {ev.text}" for ev in ep.evidence)
    return _xml_text("\n".join(lines)) + "\n"


def build_junit(files: Sequence[str], result: ScanResult, failures: Sequence[Failure]) -> ET.ElementTree:
    """``files``: the input names in the order given ("<stdin>" for "-"), so files without episodes still
    appear as passing testcases."""
    names = list(dict.fromkeys([*files, *(ep.file for ep in result.episodes)]))
    per_file: dict[str, list[Failure]] = {name: [] for name in names}
    run_wide: list[Failure] = []
    for failure in failures:
        if failure.episode is None:
            run_wide.append(failure)
        else:
            per_file[failure.episode.file].append(failure)
    episodes_per_file: dict[str, int] = dict.fromkeys(names, 0)
    for ep in result.episodes:
        episodes_per_file[ep.file] += 1

    suite = ET.Element("testsuite", name="lkwedge check",
                       timestamp=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat())
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="failing_episodes", value=str(len(failures) - len(run_wide)))
    ET.SubElement(props, "property", name="episodes", value=str(len(result.episodes)))
    testcases = 0
    failing = 0
    for name in names:
        fails = per_file[name]
        case = ET.SubElement(suite, "testcase", classname="lkwedge.check", name=_xml_text(name),
                             file=_xml_text(name), time="0")
        testcases += 1
        if fails:
            failing += 1
            case.set("line", str(fails[0].episode.line))  # type: ignore[union-attr]
        for failure in fails:
            ep = failure.episode
            assert ep is not None
            elem = ET.SubElement(case, "failure", type=ep.verdict, message=_xml_text(failure.message),
                                 file=_xml_text(ep.file), line=str(ep.line))
            elem.text = _failure_body(failure)
        out = ET.SubElement(case, "system-out")
        out.text = f"{episodes_per_file[name]} reconnect episodes, {len(fails)} failing\n"
    if run_wide:
        testcases += 1
        failing += 1
        case = ET.SubElement(suite, "testcase", classname="lkwedge.check", name="run-wide assertions",
                             time="0")
        for failure in run_wide:
            elem = ET.SubElement(case, "failure", type=failure.rule, message=_xml_text(failure.message))
            elem.text = _xml_text(failure.message) + "\n"
    counts = {"tests": testcases, "failures": failing, "errors": 0, "skipped": 0, "time": 0}
    for attr, value in counts.items():
        suite.set(attr, str(value))
    root = ET.Element("testsuites", name="lkwedge", tests=str(testcases), failures=str(failing), errors="0")
    root.append(suite)
    tree = ET.ElementTree(root)
    ET.indent(tree)
    return tree


def write_junit(path: str | Path, files: Sequence[str], result: ScanResult,
                failures: Sequence[Failure]) -> None:
    build_junit(files, result, failures).write(path, encoding="utf-8", xml_declaration=True)

"""Rust {:?} payloads → structured fields (pyparsing grammar, candidate lines only)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import scan_json

from lkwedge.detect.debug_values import facts_for, parse_debug, parse_debug_sequence


def test_the_three_shapes_of_the_issue() -> None:
    assert parse_debug("LeaveRequest { can_reconnect: false, reason: DuplicateIdentity }") == {
        "LeaveRequest": {"can_reconnect": False, "reason": "DuplicateIdentity"}
    }
    assert parse_debug("Err(Io(Os { code: 104, kind: ConnectionReset, … }))") == {
        "Err": {"Io": {"Os": {"code": 104, "kind": "ConnectionReset"}}}
    }
    assert parse_debug_sequence('"signal client closed: \\"ping timeout\\"" UnknownReason Resume') == [
        'signal client closed: "ping timeout"',
        "UnknownReason",
        "Resume",
    ]


def test_nested_options_lists_and_paths() -> None:
    value = parse_debug(
        'JoinResponse { room: Some(Room { sid: "RM_1", n: -2 }), ice: [], x: 1.5, '
        "kind: livekit_protocol::ReconnectResponse, .. }"
    )
    assert value["JoinResponse"]["room"] == {"Some": {"Room": {"sid": "RM_1", "n": -2}}}
    assert value["JoinResponse"]["ice"] == [] and value["JoinResponse"]["x"] == 1.5


@pytest.mark.parametrize(
    "text", ["Err(Io(Os { code: 104", "{ : }", "", '"unterminated', "a" * 5000, "A(" * 1900]
)
def test_garbage_raises_value_error_and_yields_no_facts(text: str) -> None:
    with pytest.raises(ValueError):
        parse_debug(text)
    assert facts_for("ws-unhandled", "unhandled websocket message " + text) in (
        {},
        {"payload_unparsed": True},
    )


def test_facts_of_each_payload_kind() -> None:
    assert facts_for(
        "session-close", 'received session close: "server request to leave" Migration Reconnect'
    ) == {
        "close_source": "server request to leave",
        "close_cause": "server request to leave",
        "close_reason": "Migration",
        "leave_action": "Reconnect",
    }
    assert facts_for(
        "leave-disconnect",
        "received leave request: LeaveRequest { can_reconnect: false, "
        "reason: DuplicateIdentity, action: Disconnect, regions: None }",
    ) == {"close_reason": "DuplicateIdentity", "leave_action": "Disconnect", "can_reconnect": False}
    assert facts_for(
        "ws-unhandled",
        "unhandled websocket message Err(Io(Os { code: 104, kind: ConnectionReset, "
        'message: "Connection reset by peer" }))',
    ) == {"error_path": "Err/Io/Os", "error_kind": "ConnectionReset", "os_code": 104}
    assert facts_for(
        "resume-failed",
        "resuming connection failed: signal failure: ws failure: IO error: "
        "Connection timed out (os error 110)",
    ) == {"error_class": "tcp_timeout", "os_code": 110}


def test_scan_json_evidence_carries_the_fields(tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "leave.log"
    log.write_text(
        '[2026-01-30T18:24:40Z WARN  livekit::rtc_engine] received session close: "server request to leave" '
        "DuplicateIdentity Reconnect\n"
        "[2026-01-30T18:24:40Z ERROR livekit::rtc_engine] restarting connection... attempt: 0\n"
        "[2026-01-30T18:24:41Z DEBUG livekit::rtc_engine::rtc_session] received leave request: "
        "LeaveRequest { can_reconnect: false, reason: DuplicateIdentity, action: Disconnect, "
        "regions: None }\n"
    )
    report, _ = scan_json(str(log))
    (ep,) = report["episodes"]
    assert ep["verdict"] == "disconnected"
    assert ep["evidence"][0]["fields"]["close_reason"] == "DuplicateIdentity"
    assert ep["evidence"][-1]["fields"] == {
        "close_reason": "DuplicateIdentity",
        "leave_action": "Disconnect",
        "can_reconnect": False,
    }
    assert "same identity" in ep["advice"]


def _leave_during_reconnect(tmp_path, action: str):  # type: ignore[no-untyped-def]
    log = tmp_path / f"leave-{action}.log"
    log.write_text(
        '[2026-01-30T18:24:40Z WARN  livekit::rtc_engine] received session close: "signal client closed: '
        '\\"stream closed\\"" UnknownReason Resume\n'
        "[2026-01-30T18:24:40Z ERROR livekit::rtc_engine] resuming connection... attempt: 0\n"
        "[2026-01-30T18:24:42Z ERROR livekit::rtc_engine] resuming connection failed: connection error: "
        f"server sent leave during reconnect: reason=ParticipantRemoved, action={action}\n"
        "[2026-01-30T18:25:30Z INFO  my_app] still here\n"
    )
    report, _ = scan_json(str(log))
    return report["episodes"][0]


def test_a_leave_with_action_disconnect_inside_a_failed_attempt_ends_the_episode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ep = _leave_during_reconnect(tmp_path, "Disconnect")
    assert (ep["verdict"], ep["outcome"]) == ("disconnected", "disconnected")
    assert ep["evidence"][-1]["fields"]["leave_action"] == "Disconnect"
    assert "removed" in ep["advice"]
    # the same line with action=Reconnect is only progress: the silence after it is a stall
    assert _leave_during_reconnect(tmp_path, "Reconnect")["verdict"] == "stalled"


# -- the session-close fast path gives what the grammar gives ------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lkwedge.detect.debug_values import _session_close_values  # noqa: E402

_names = st.sampled_from(["UnknownReason", "Resume", "Reconnect", "true", "false", "a::B", "_x1", "9x", ""])
_pieces = ['a', ' ', ':', '"', '\\', '\\"', 'é', '\t', 'x']
_inner = st.lists(st.sampled_from(_pieces), max_size=12).map("".join)


@settings(max_examples=400, deadline=None)
@given(inner=_inner, first=_names, second=_names, spaces=st.sampled_from([" ", "  "]))
def test_session_close_fast_path_agrees_with_the_grammar(inner: str, first: str, second: str,
                                                         spaces: str) -> None:
    payload = f'"{inner}"{spaces}{first} {second}'
    try:
        expected = parse_debug_sequence(payload)
    except ValueError:
        expected = None
    try:
        got = _session_close_values(payload)
    except ValueError:
        got = None
    assert got == expected


def test_session_close_fast_path_reads_the_usual_line_without_the_grammar() -> None:
    # in a fresh interpreter: pyparsing is not even imported for the usual close line
    code = ("import sys; from lkwedge.detect.debug_values import facts_for; "
            "f = facts_for('session-close', 'received session close: "
            "\"signal client closed: \\\\\"ping timeout\\\\\"\" UnknownReason Resume'); "
            "print(f['close_cause'], f['close_reason'], f['leave_action'], 'pyparsing' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["ping", "timeout", "UnknownReason", "Resume", "False"]

"""Rust ``{:?}`` (Debug) payloads → Python values, and the few facts lkwedge needs from them.

``LeaveRequest { can_reconnect: false, reason: DuplicateIdentity }`` → ``{"LeaveRequest": {...}}``,
``Err(Io(Os { code: 104, kind: ConnectionReset, … }))`` → nested one-key dicts, ``"a \\"b\\""`` → str.
The grammar is pyparsing, so it runs only on lines a pattern already matched (see `facts_for`), never
on the per-line hot path. A payload the grammar cannot read yields no facts rather than an error.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, Any

from lkwedge import lazyre

if TYPE_CHECKING:
    import pyparsing as pp

MAX_PAYLOAD = 4000


def _named(tokens: pp.ParseResults) -> Any:
    if len(tokens) == 1:
        return tokens[0]  # a bare name: None, UnknownReason, Resume...
    name, (kind, payload) = tokens[0], tokens[1]
    if kind == "tuple":
        return {name: payload[0] if len(payload) == 1 else payload}
    return {name: payload}


@cache
def _grammar() -> pp.ParserElement:
    import pyparsing as pp  # imported on the first candidate line, not at start-up

    value = pp.Forward()
    string = pp.QuotedString('"', esc_char="\\", unquote_results=True)
    number = pp.Regex(r"-?\d+(?:\.\d+)?").set_parse_action(
        lambda t: float(t[0]) if "." in t[0] else int(t[0]))
    boolean = (pp.Keyword("true") | pp.Keyword("false")).set_parse_action(lambda t: t[0] == "true")
    ident = pp.Regex(r"[A-Za-z_][\w]*(?:::[A-Za-z_]\w*)*")
    rest = pp.Suppress(pp.Literal("..") | pp.Literal("…"))
    lb, rb, lp, rp, ls, rs, colon = map(pp.Suppress, "{}()[]:")
    field = pp.Group(ident + colon + value)
    fields = pp.Optional(pp.DelimitedList(field | rest, allow_trailing_delim=True))
    items = pp.Group(pp.Optional(pp.DelimitedList(value | rest, allow_trailing_delim=True)))
    # one rule for Name, Name {..} and Name(..): the name is read once, not once per alternative
    struct = pp.Group(lb + fields + rb).set_parse_action(lambda t: [("struct", {f[0]: f[1] for f in t[0]})])
    tuple_args = (lp + items + rp).set_parse_action(lambda t: [("tuple", list(t[0]))])
    body = struct | tuple_args
    named = (ident + pp.Optional(body)).set_parse_action(_named)
    seq = (ls + items + rs).set_parse_action(lambda t: [list(t[0])])
    value <<= string | number | boolean | named | seq
    return value


@cache
def _sequence() -> pp.ParserElement:
    import pyparsing as pp

    return pp.OneOrMore(_grammar()).streamline()


def parse_debug(text: str) -> Any:
    """One Debug value; raises ValueError when the text is not one."""
    _check_size(text)
    grammar = _grammar()
    import pyparsing as pp

    try:
        return grammar.parse_string(text, parse_all=True)[0]
    except (pp.ParseBaseException, RecursionError) as exc:  # log text is untrusted: deep nesting too
        raise ValueError(str(exc)[:200]) from None


def _check_size(text: str) -> None:
    if len(text) > MAX_PAYLOAD:
        raise ValueError(f"payload longer than {MAX_PAYLOAD} characters")


def parse_debug_sequence(text: str) -> list[Any]:
    """Several space-separated Debug values (``received session close: {:?} {:?} {:?}``)."""
    _check_size(text)
    grammar = _sequence()
    import pyparsing as pp

    try:
        return list(grammar.parse_string(text, parse_all=True))
    except (pp.ParseBaseException, RecursionError) as exc:
        raise ValueError(str(exc)[:200]) from None


def find_key(value: Any, key: str) -> Any:
    """The first value under ``key`` anywhere in a parsed payload."""
    if isinstance(value, dict):
        if key in value:
            return value[key]
        for inner in value.values():
            found = find_key(inner, key)
            if found is not None:
                return found
    elif isinstance(value, list):
        for inner in value:
            found = find_key(inner, key)
            if found is not None:
                return found
    return None


def _error_path(value: Any) -> list[str]:
    """``Err(Io(Os {…}))`` → ["Err", "Io", "Os"]."""
    path: list[str] = []
    while isinstance(value, dict) and len(value) == 1:
        name, value = next(iter(value.items()))
        path.append(name)
    return path


# Display strings inside "resuming/restarting connection failed: {}" (livekit-logs.md §1.6)
_ERROR_CLASSES = (
    ("failed to receive livekit_protocol::ReconnectResponse", "no_reconnect_response"),
    ("failed to receive livekit_protocol::JoinResponse", "no_join_response"),
    ("wait_pc_connection timed out", "pc_connect_timeout"),
    ("signal connection timed out", "signal_connect_timeout"),
    ("signal connection severed during resume", "signal_severed"),
    ("server sent leave during reconnect", "server_leave"),
    ("os error 110", "tcp_timeout"), ("Connection timed out", "tcp_timeout"),
    ("os error 111", "connection_refused"), ("os error 104", "connection_reset"),
    ("Connection reset", "connection_reset"), ("lookup address", "dns_failure"),
    ("Connection closed normally", "server_closed_socket"), ("TLS error", "tls_error"),
    ("HTTP error", "http_error"), ("client error: 401", "unauthorized"), ("client error: 403", "forbidden"),
)
_OS_CODE = lazyre.compile(r"os error (\d+)")
_CLOSE_CAUSE = lazyre.compile(r'^signal client closed: "(.*)"$')
_SERVER_LEAVE = lazyre.compile(r"reason=(\w+), action=(\w+)")


def classify_error(text: str) -> dict[str, object]:
    facts: dict[str, object] = {}
    for needle, name in _ERROR_CLASSES:
        if needle in text:
            facts["error_class"] = name
            break
    m = _OS_CODE.search(text)
    if m:
        facts["os_code"] = int(m.group(1))
    m = _SERVER_LEAVE.search(text)
    if m:
        facts["close_reason"], facts["leave_action"] = m.group(1), m.group(2)
    return facts


def ends_connection(facts: dict[str, object]) -> bool:
    """The parsed payload says the server ended the session for good (no reconnect will follow)."""
    return facts.get("can_reconnect") is False or facts.get("leave_action") == "Disconnect"


# The usual session-close payload: a string (no tab, which pyparsing expands; no escape but \") and two
# bare names. It gives what the grammar gives (tests/test_debug_values.py checks both on generated
# payloads) without paying for pyparsing on every close line; anything else goes to the grammar.
_PLAIN_CLOSE = lazyre.compile(r'"((?:[^"\\\t]|\\")*)" ([A-Za-z_]\w*) ([A-Za-z_]\w*)')
_BOOLEAN_NAMES = frozenset({"true", "false"})


def _session_close_values(payload: str) -> list[Any]:
    m = _PLAIN_CLOSE.fullmatch(payload)
    if m is None or not _BOOLEAN_NAMES.isdisjoint(m.group(2, 3)):
        return parse_debug_sequence(payload)
    return [m.group(1).replace('\\"', '"'), m.group(2), m.group(3)]


def facts_for(pattern_id: str, message: str) -> dict[str, object]:
    """Structured fields of one matched line (close reason, leave action, error kind...)."""
    facts: dict[str, object] = {}
    try:
        if pattern_id == "session-close":
            values = _session_close_values(message.split("received session close: ", 1)[1])
            if values and isinstance(values[0], str):
                facts["close_source"] = values[0]
                m = _CLOSE_CAUSE.match(values[0])
                facts["close_cause"] = m.group(1) if m else values[0]
            if len(values) > 1 and isinstance(values[1], str):
                facts["close_reason"] = values[1]
            if len(values) > 2 and isinstance(values[2], str):
                facts["leave_action"] = values[2]
        elif pattern_id.startswith("leave-"):
            value = parse_debug(message.split("received leave request: ", 1)[1])
            for key, name in (("reason", "close_reason"), ("action", "leave_action"),
                              ("can_reconnect", "can_reconnect")):
                found = find_key(value, key)
                if found is not None:
                    facts[name] = found
        elif pattern_id == "ws-unhandled":
            value = parse_debug(message.split("unhandled websocket message ", 1)[1])
            path = _error_path(value)
            kind = find_key(value, "kind")
            facts["error_path"] = "/".join(path)
            if kind is not None:
                facts["error_kind"] = kind
            code = find_key(value, "code")
            if isinstance(code, int):
                facts["os_code"] = code
        elif pattern_id in ("resume-failed", "restart-failed"):
            facts.update(classify_error(message))
        elif pattern_id in ("room-disconnected", "server-disconnect"):
            m = re.search(r"(?:reason: |: )(\w+)\s*$", message)
            if m:
                facts["close_reason"] = m.group(1)
    except (ValueError, IndexError):
        facts["payload_unparsed"] = True
    return facts

"""The pattern packs against the newest installed `livekit` (rtc) wheel: SDK wording drift fails here.

The test extra installs the newest `livekit` from the index. Its native library carries the Rust format
strings (the pieces of `log::warn!("...: {}", x)` around the arguments), so every pattern literal of the
Rust packs must be found among the library's printable runs, as `strings` would show them (done in Python,
no binutils needed). The Rust packs and the few retired patterns are listed in
patterns/fingerprints/rtc-1.2.toml ([wheel]).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import re
import socket
import sys
import tomllib
from functools import cache
from importlib import metadata, resources
from pathlib import Path

import pytest

from lkwedge.detect.patterns import builtin_pack_dir, load_pack

BAND = builtin_pack_dir() / "fingerprints" / "rtc-1.2.toml"


def ffi_library() -> Path:
    lib = resources.files("livekit.rtc").joinpath("resources")
    found = [Path(str(p)) for p in lib.iterdir() if p.name.startswith("liblivekit_ffi")]
    assert found, f"no liblivekit_ffi in the installed livekit {metadata.version('livekit')} wheel"
    return found[0]


@cache
def library_strings() -> str:
    """Printable ASCII runs of 4+ bytes, one per line: what `strings -n 4` prints."""
    data = ffi_library().read_bytes()
    return "\n".join(m.group().decode("ascii") for m in re.finditer(rb"[\x20-\x7e]{4,}", data))


@cache
def band() -> dict:
    return tomllib.loads(BAND.read_text(encoding="utf-8"))


def rust_patterns() -> list[tuple[str, str, str]]:
    packs = {p.stem: p for p in builtin_pack_dir().glob("*.toml")}
    wanted = band()["wheel"]["rust_packs"]
    missing = [name for name in wanted if name not in packs]
    assert not missing, f"[wheel] rust_packs names packs that do not exist: {missing}"
    return [(name, p.id, p.literal) for name in wanted for p in load_pack(packs[name])]


def test_the_newest_wheel_is_installed_and_has_the_ffi_library():
    version = tuple(int(x) for x in metadata.version("livekit").split(".")[:2])
    assert version >= (1, 2), metadata.version("livekit")
    assert "RtcEngine successfully recovered" in library_strings()   # the extraction itself works


def test_every_rust_pattern_literal_is_still_in_the_sdk():
    retired = band()["wheel"].get("retired", {})
    strings = library_strings()
    drifted = [f"{pack}:{pid} {literal!r}" for pack, pid, literal in rust_patterns()
               if pid not in retired and literal not in strings]
    assert not drifted, (f"livekit {metadata.version('livekit')} no longer contains these pattern literals "
                         f"(SDK wording changed; update the packs): {drifted}")


def test_retired_patterns_are_really_gone_and_documented():
    ids = {pid for _pack, pid, _lit in rust_patterns()}
    literals = {pid: lit for _pack, pid, lit in rust_patterns()}
    for pid, why in band()["wheel"].get("retired", {}).items():
        assert pid in ids, f"retired pattern {pid} is not in the Rust packs"
        assert why.strip()
        # when the SDK brings it back, it must leave the retired list (and be checked again)
        assert literals[pid] not in library_strings(), f"{pid} is back in the SDK: un-retire it"


def test_issue_14_vocabulary_is_in_the_wheel():
    strings = library_strings()
    for text in ("resuming connection... attempt: ", "received session close: ",
                 "RtcEngine successfully recovered", "failed to reconnect to the livekit room",
                 "signal connection severed during resume", "authentication failed during reconnect",
                 "retry_now signalled, skipping reconnect backoff",
                 "engine closed, cancelling reconnect backoff",
                 "v1 path not found (404), falling back to v0 path", "livekit_signaling::signal_stream"):
        assert text in strings, text


def test_fingerprint_rows_are_in_the_wheel_and_measured_rows_hold_live():
    rows = band()["fingerprints"]
    strings = library_strings()
    for row in rows:
        if row["kind"] == "target_line":
            assert row["message"] in strings and row["target"] in strings, row
        elif row["kind"] == "target":
            assert row["target"] in strings, row
        else:
            # in the library the text runs on from the previous string: drop the message's ^ anchor
            assert re.search(row["regex"].removeprefix("^"), strings), row
    if metadata.version("livekit") != band()["band"]["measured_python_rtc"]:
        pytest.skip("line numbers are measured on another wheel version; the literals above still hold")
    seen = connect_to_closed_port()
    for row in rows:
        if row["kind"] == "target_line" and row["source"] == "measured":
            assert any(t == row["target"] and line == row["line"] and row["message"] in msg
                       for t, line, msg in seen), (row, seen)


def connect_to_closed_port() -> list[tuple[str, int, str]]:
    """Records the real wheel forwards while Room.connect fails against a closed loopback port."""
    from livekit import rtc

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    seen: list[tuple[str, int, str]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.msg == "%s:%s:%s - %s" and isinstance(record.args, tuple):
                target, line, _module, message = record.args
                seen.append((str(target), int(line), str(message)))

    lk = logging.getLogger("livekit")
    handler, old = Capture(), lk.level
    lk.addHandler(handler)
    lk.setLevel(logging.INFO)

    async def main() -> None:
        with pytest.raises(rtc.ConnectError):
            await rtc.Room().connect(f"ws://127.0.0.1:{port}", "not-a-token")
        for _ in range(300):                      # the FFI flushes its log batch every second
            if any("error while connecting to a room" in m for _t, _l, m in seen):
                return
            await asyncio.sleep(0.01)

    try:
        asyncio.run(main())
    finally:
        lk.removeHandler(handler)
        lk.setLevel(old)
    return seen


def load_tool():
    path = Path(__file__).resolve().parents[1] / "tools" / "wheel_log_sites.py"
    spec = importlib.util.spec_from_file_location("wheel_log_sites", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def module_path(rust_file: str) -> str:
    """livekit/src/rtc_engine/mod.rs -> livekit::rtc_engine (the log target of a call site there)."""
    crate, _src, *rest = rust_file.removesuffix(".rs").split("/")
    if rest and rest[-1] in ("mod", "lib"):
        rest = rest[:-1]
    return "::".join([crate.replace("-", "_"), *rest])


def test_derived_call_sites_match_the_wheel():
    if metadata.version("livekit") != band()["band"]["measured_python_rtc"]:
        pytest.skip("the line rows are for another wheel version")
    lib = load_tool().Library(ffi_library())
    for row in band()["fingerprints"]:
        if row["kind"] != "target_line":
            continue
        sites = lib.sites(row["message"])[:3]
        where = [(module_path(s.file), s.line) for s in sites]
        assert (row["target"], row["line"]) in where, (row, sites)
        if row["source"] == "measured":      # the method itself: the nearest site is the measured one
            assert where[0] == (row["target"], row["line"]), (row, sites)

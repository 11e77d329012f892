#!/usr/bin/env python3
"""Where in the Rust source a log line of the installed livekit wheel comes from: file, line, column.

    python tools/wheel_log_sites.py                         # the reconnect lines, installed wheel
    python tools/wheel_log_sites.py --so path/to/liblivekit_ffi.so "failed to connect: "

The forwarded record carries the Rust line number (``target:LINE:module - message``), so line numbers
fingerprint an SDK build. Without running the SDK they can be read from its library: every `log!` call
site passes a static ``core::panic::Location`` (file, line, column) and loads its format template with a
RIP-relative ``lea``; the Location's ``lea`` follows within a few dozen bytes. So for each occurrence of
the message text, this finds the instructions that load it (the template starts at most a few bytes
before the text: newer rustc prefixes each piece with its length), then the nearest instruction that
loads a Location, and prints that Location. ELF64 x86-64 only.

Checked against lines measured from the real python livekit 1.2.1 wheel (tests/test_sdk_wheel.py):
``failed to connect`` 564, ``connecting to`` 63, ``signal connection failed on`` 583 and ``error while
connecting to a room`` 355 all come out exactly (the Location load sits 47-63 bytes after the template
load). A line marked AMBIGUOUS has another Location almost as near (typical for messages without
arguments, next to a `select!`): settle it with the source's order of log calls, as
patterns/fingerprints/rtc-1.2.toml does.
"""

from __future__ import annotations

import argparse
import bisect
import re
import struct
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

RECONNECT_LINES = [
    "received session close: ", "resuming connection... attempt: ", "resuming connection failed: ",
    "restarting connection... attempt: ", "restarting connection failed: ",
    "failed to reconnect to the livekit room", "RtcEngine successfully recovered", "reconnection cancelled",
    "server requested disconnect during resume: ", "server requested disconnect during restart: ",
    "authentication rejected during resume (", "authentication rejected during restart (",
    "authentication rejected during connect (", "retry_now signalled, skipping reconnect backoff",
    "engine closed, cancelling reconnect backoff", "Disconnected from room \"", " pc state failed",
    "failed to connect: ", "connecting to ", "signal connection failed on ",
    "v1 path not found (404), falling back to v0 path", "error while connecting to a room: ",
    "received reconnect response: ", "synthesizing disconnect for absent participant: ",
]
R_X86_64_RELATIVE = 8
LEA_RIP = re.compile(rb"[\x48\x4c]\x8d[\x05\x0d\x15\x1d\x25\x2d\x35\x3d]")   # lea r64, [rip+disp32]


@dataclass(frozen=True)
class Site:
    file: str
    line: int
    column: int
    distance: int   # bytes between the template load and the Location load


class Library:
    def __init__(self, path: Path) -> None:
        self.data = path.read_bytes()
        if self.data[:4] != b"\x7fELF" or self.data[4] != 2 or self.data[18] != 62:
            raise SystemExit(f"{path}: not an ELF64 x86-64 library")
        shoff, = struct.unpack_from("<Q", self.data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", self.data, 0x3A)
        raw = [struct.unpack_from("<IIQQQQ", self.data, shoff + i * shentsize) for i in range(shnum)]
        names = raw[shstrndx][4]
        self.sections: dict[str, tuple[int, int, int, int]] = {}   # name -> (type, vaddr, offset, size)
        for name, kind, _flags, addr, offset, size in raw:
            end = self.data.index(b"\0", names + name)
            self.sections[self.data[names + name:end].decode()] = (kind, addr, offset, size)
        self.mapped = [s for s in self.sections.values() if s[1] and s[0] != 8]   # not NOBITS
        self.relative: dict[int, int] = {}
        _kind, _addr, offset, size = self.sections[".rela.dyn"]
        for i in range(size // 24):
            where, info, addend = struct.unpack_from("<QQq", self.data, offset + 24 * i)
            if info & 0xFFFFFFFF == R_X86_64_RELATIVE:
                self.relative[where] = addend
        _kind, text_addr, text_off, text_size = self.sections[".text"]
        text = self.data[text_off:text_off + text_size]
        loads: list[tuple[int, int]] = []
        self.loaders: dict[int, list[int]] = {}
        for m in LEA_RIP.finditer(text):
            disp, = struct.unpack_from("<i", text, m.start() + 3)
            at = text_addr + m.start()
            loads.append((at, at + 7 + disp))
            self.loaders.setdefault(at + 7 + disp, []).append(at)
        loads.sort()
        self.load_at = [a for a, _ in loads]
        self.load_target = [t for _, t in loads]

    def _offset(self, vaddr: int) -> int | None:
        for _kind, addr, offset, size in self.mapped:
            if addr <= vaddr < addr + size:
                return offset + vaddr - addr
        return None

    def _vaddr(self, offset: int) -> int | None:
        for _kind, addr, off, size in self.mapped:
            if off <= offset < off + size:
                return addr + offset - off
        return None

    def _location(self, vaddr: int) -> tuple[str, int, int] | None:
        """A core::panic::Location {file: &str, line: u32, col: u32} at vaddr, if it is one."""
        ptr, off = self.relative.get(vaddr), self._offset(vaddr)
        if ptr is None or off is None:
            return None
        length, line, col = struct.unpack_from("<QII", self.data, off + 8)
        start = self._offset(ptr)
        if start is None or not 3 < length < 400 or not (0 < line < 100_000 and 0 < col < 500):
            return None
        name = self.data[start:start + length]
        return (name.decode(), line, col) if name.endswith(b".rs") else None

    def sites(self, message: str, back: int = 8, span: int = 300) -> list[Site]:
        """Locations loaded near the instructions that load `message`'s template, nearest first."""
        found: dict[tuple[str, int, int], int] = {}
        for m in re.finditer(re.escape(message.encode()), self.data):
            text_at = self._vaddr(m.start())
            if text_at is None:
                continue
            for k in range(back + 1):
                for at in self.loaders.get(text_at - k, []):
                    for key, distance in self._locations_near(at, span):
                        found[key] = min(distance, found.get(key, distance))
        sites = [Site(f, line, col, d) for (f, line, col), d in found.items()]
        return sorted(sites, key=lambda s: s.distance)

    def _locations_near(self, at: int, span: int) -> list[tuple[tuple[str, int, int], int]]:
        near = []
        i = bisect.bisect_left(self.load_at, at - span)
        while i < len(self.load_at) and self.load_at[i] < at + span:
            loc = self._location(self.load_target[i])
            if loc is not None:
                near.append((loc, abs(self.load_at[i] - at)))
            i += 1
        return near


def installed_library() -> Path:
    folder = resources.files("livekit.rtc").joinpath("resources")
    return next(Path(str(p)) for p in folder.iterdir() if p.name.startswith("liblivekit_ffi"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--so", type=Path, help="liblivekit_ffi.so (default: the installed livekit wheel)")
    parser.add_argument("messages", nargs="*", help="message text (a piece of the format string)")
    ns = parser.parse_args()
    lib = Library(ns.so or installed_library())
    for message in ns.messages or RECONNECT_LINES:
        sites = lib.sites(message)
        if not sites:
            print(f"{message!r}: not found")
            continue
        shown = ", ".join(f"{s.file}:{s.line}:{s.column} (+{s.distance}B)" for s in sites[:3])
        doubt = "  AMBIGUOUS" if len(sites) > 1 and sites[1].distance - sites[0].distance < 24 else ""
        print(f"{message!r}: {shown}{doubt}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

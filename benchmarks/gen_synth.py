#!/usr/bin/env python3
"""Generate a synthetic RUST_LOG-style log of a LiveKit Rust SDK client for benchmarks.

Mostly unrelated lines (agent chatter, libwebrtc, other livekit targets) plus, every
--episode-every lines on average, a reconnect episode that starts with
"resuming connection... attempt: 0" and then either recovers, escalates, or stalls.

Deterministic for a given --seed.  Log time advances 1-40 ms per line, so 1,000,000 lines
span several hours of log time.  Reconnect episodes are written with realistic log-time
gaps: recoveries 0.2-3 s after the trigger, stalls with >= 30 s of log time of
unrelated chatter before the next progress line (if any).

Styles (--style):
  env_logger  [2026-05-01T10:00:00Z ERROR livekit::rtc_engine] resuming connection... attempt: 0
  tracing     2026-05-01T10:00:00.123456Z ERROR livekit::rtc_engine: resuming connection... attempt: 0
  python      2026-05-01 10:00:00,123 - livekit - ERROR - livekit::rtc_engine:988:livekit::rtc_engine - resuming connection... attempt: 0
  timeonly    10:00:00.123 ERROR livekit::rtc_engine resuming connection... attempt: 0
  mixed       a random mix of the above, per line

Usage:
  python3 gen_synth.py --lines 1000000 --out synth.log          # env_logger style
  python3 gen_synth.py --lines 1000 --style mixed | less
At the end a summary (episodes by outcome) is printed to stderr.
"""
import argparse
import datetime as dt
import random
import sys

UNRELATED = [
    ("INFO", "my_agent", "llm turn finished in {n} ms"),
    ("DEBUG", "my_agent", "vad: speech probability {f}"),
    ("INFO", "my_agent", "stt final transcript len={n}"),
    ("WARN", "my_agent", "tts backpressure, queued={n}"),
    ("DEBUG", "livekit::room", "participant track subscribed sid=TR_{h}"),
    ("INFO", "livekit::room", "data packet received size={n}"),
    ("DEBUG", "livekit::rtc_engine::rtc_session", "received signal message: Pong {n}"),
    ("INFO", "libwebrtc", "(audio_send_stream.cc:{n}): ssrc {h} stats"),
    ("WARN", "libwebrtc", "(rtp_transport.cc:{n}): Failed to demux RTP packet"),
    ("DEBUG", "livekit_api::signal_client", "ping rtt={n}ms"),
    ("INFO", "hyper::client", "connection {h} idle, closing"),
    ("ERROR", "my_agent", "tool call failed: timeout after {n} ms"),
]

OUTCOMES = [
    # (weight, name, lines after trigger: list of (delay_seconds, level, target, message))
    (50, "resume_failed_then_restart", [
        (0.8, "ERROR", "livekit::rtc_engine", "resuming connection failed: connection error: wait_pc_connection timed out"),
        (1.1, "ERROR", "livekit::rtc_engine", "restarting connection... attempt: 1"),
        (2.5, "INFO", "livekit::rtc_engine", "RtcEngine successfully recovered"),
    ]),
    # The real SDK logs no line containing "resumed" on a successful resume: its only
    # success line is INFO "RtcEngine successfully recovered" (rust-sdks
    # livekit/src/rtc_engine/mod.rs), which a /resumed|.../ pattern does NOT match.
    (30, "recovered", [
        (0.4, "INFO", "livekit::rtc_engine", "RtcEngine successfully recovered"),
    ]),
    (10, "disconnected", [
        (2.0, "WARN", "livekit::rtc_engine", "server requested disconnect during resume: ServerShutdown"),
        (2.1, "INFO", "livekit::room", "disconnected from room with reason: ServerShutdown"),
    ]),
    (10, "stalled", []),  # nothing follows: the case a watchdog must catch
]


def fmt(style, t, level, target, msg, rnd):
    if style == "mixed":
        style = rnd.choice(("env_logger", "tracing", "python", "timeonly"))
    if style == "env_logger":
        return f"[{t.strftime('%Y-%m-%dT%H:%M:%SZ')} {level:<5} {target}] {msg}"
    if style == "tracing":
        return f"{t.strftime('%Y-%m-%dT%H:%M:%S.%fZ')} {level:>5} {target}: {msg}"
    if style == "python":
        pylevel = {"WARN": "WARNING"}.get(level, level)
        return (f"{t.strftime('%Y-%m-%d %H:%M:%S')},{t.microsecond // 1000:03d} - livekit - {pylevel} - "
                f"{target}:988:{target} - {msg}")
    if style == "timeonly":
        return f"{t.strftime('%H:%M:%S')}.{t.microsecond // 1000:03d} {level} {target} {msg}"
    raise SystemExit(f"unknown style {style}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--episode-every", type=int, default=2000, help="mean unrelated lines between episodes")
    ap.add_argument("--style", default="env_logger",
                    choices=("env_logger", "tracing", "python", "timeonly", "mixed"))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--start", default="2026-05-01T10:00:00", help="UTC start of log time")
    ap.add_argument("--out", default="-")
    a = ap.parse_args()

    rnd = random.Random(a.seed)
    t = dt.datetime.fromisoformat(a.start).replace(tzinfo=dt.UTC)
    out = sys.stdout if a.out == "-" else open(a.out, "w", buffering=1 << 20)
    weights = [w for w, _, _ in OUTCOMES]
    counts = {name: 0 for _, name, _ in OUTCOMES}
    written = 0
    pending = []  # (due_time, level, target, msg) for the current episode
    next_episode = rnd.randint(1, 2 * a.episode_every)

    def filler():
        level, target, tmpl = rnd.choice(UNRELATED)
        return level, target, tmpl.format(n=rnd.randint(1, 9999), f=round(rnd.random(), 3),
                                          h=f"{rnd.getrandbits(32):08x}")

    while written < a.lines:
        t += dt.timedelta(milliseconds=rnd.randint(1, 40))
        if pending and t >= pending[0][0]:
            _, level, target, msg = pending.pop(0)
        elif not pending and written >= next_episode:
            _, name, follow = rnd.choices(OUTCOMES, weights=weights)[0]
            counts[name] += 1
            level, target, msg = "WARN", "livekit::rtc_engine", \
                'received session close: "signal client closed: \\"stream closed\\"" UnknownReason Resume'
            out.write(fmt(a.style, t, level, target, msg, rnd) + "\n")
            written += 1
            level, target, msg = "ERROR", "livekit::rtc_engine", "resuming connection... attempt: 0"
            pending = [(t + dt.timedelta(seconds=d), lv, tg, m) for d, lv, tg, m in follow]
            if name == "stalled":
                # 30-90 s of log time of chatter without any progress line
                t_gap = rnd.randint(30, 90)
                next_episode = written + 2 + int(t_gap / 0.0205) + rnd.randint(1, 2 * a.episode_every)
            else:
                next_episode = written + 2 + rnd.randint(1, 2 * a.episode_every)
        else:
            level, target, msg = filler()
        out.write(fmt(a.style, t, level, target, msg, rnd) + "\n")
        written += 1

    if out is not sys.stdout:
        out.close()
    print(f"lines={written} episodes={sum(counts.values())} " +
          " ".join(f"{k}={v}" for k, v in counts.items()) +
          f" log_time_end={t.isoformat()}", file=sys.stderr)


if __name__ == "__main__":
    main()

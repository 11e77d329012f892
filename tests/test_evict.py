"""Eviction against the loopback RoomService, through the real livekit-api client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from lkwedge.act.evict import EvictionResult, Evictor
from lkwedge.act.targets import EvictionTarget, Facts, TargetOptions, derive_target
from lkwedge.errors import InputError
from lkwedge.testing import FakeRoomService

KEY = "devkey"
SECRET = "s3cr3t-Zq9-distinctive-value-0123456789"   # >= 32 bytes; must never show up anywhere
EPISODE = Facts(id="agent.log:12", job="AJ_x", room="r1", room_id=None, pid=460)


class Results:
    """on_result collector; the callback runs on the evictor thread."""

    def __init__(self) -> None:
        self.items: list[EvictionResult] = []
        self._cond = threading.Condition()

    def __call__(self, result: EvictionResult) -> None:
        with self._cond:
            self.items.append(result)
            self._cond.notify_all()

    def wait(self, n: int, timeout: float = 15.0) -> list[EvictionResult]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.items) >= n, timeout), f"got {self.items}"
            return list(self.items)


@pytest.fixture
def fake():
    with FakeRoomService(KEY, SECRET) as server:
        server.add_room("r1", sid="RM_r1", participants=["agent-AJ_x"])
        yield server


def make(fake: FakeRoomService | None, results: Results | None = None, **kw) -> Evictor:
    kw.setdefault("retry_for", 2.0)
    kw.setdefault("backoff", 0.02)
    kw.setdefault("request_timeout", 2.0)
    url = fake.url if fake is not None else kw.pop("url")
    return Evictor(url, KEY, kw.pop("api_secret", SECRET), on_result=results, env={}, **kw)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- targets -----------------------------------------------------------------------------------------


def test_target_from_job_and_room():
    assert derive_target(EPISODE) == EvictionTarget("r1", "agent-AJ_x", None)


def test_target_overrides_and_template():
    t = derive_target(EPISODE, TargetOptions(identity_template="worker-{job_id}-{pid}", room="other"))
    assert (t.room, t.identity) == ("other", "worker-AJ_x-460")
    assert derive_target(Facts(room="r1"), TargetOptions(identity="bob")).identity == "bob"


def test_no_job_no_identity_means_no_target():
    t = derive_target(Facts(id="x:1", room="r1", job=None))
    assert not t.ok and "job id" in (t.reason_missing or "")
    t = derive_target(Facts(id="x:1", job="AJ_x"))
    assert not t.ok and "room" in (t.reason_missing or "")


@pytest.mark.parametrize("template", ["{job}", "{job_id.__class__}", "agent-{", "{job_id!r}", " "])
def test_bad_identity_template_is_an_input_error(template):
    with pytest.raises(InputError):
        TargetOptions(identity_template=template)


# ---- the evictor -------------------------------------------------------------------------------------


def test_success_sends_protobuf_with_valid_token(fake):
    results = Results()
    before = int(time.time())
    with make(fake, results, revoke_token=True) as ev:
        ev.submit(EPISODE, derive_target(EPISODE))
        (res,) = results.wait(1)
    assert res.result == "evicted" and res.ok and res.http_status == 200 and res.episode == "agent.log:12"
    (call,) = fake.calls
    assert call.path == "/twirp/livekit.RoomService/RemoveParticipant"
    assert call.content_type == "application/protobuf"
    assert call.status == 200          # the fake verified HS256 with SECRET, iss, roomAdmin and room
    assert call.claims is not None and call.claims["iss"] == KEY
    assert call.claims["video"]["roomAdmin"] is True and call.claims["video"]["room"] == "r1"
    assert (call.room, call.identity) == ("r1", "agent-AJ_x")
    assert before <= call.revoke_token_ts <= int(time.time())
    assert res.revoke_token_ts == call.revoke_token_ts
    assert fake.participants("r1") == set()


def test_without_revoke_token_the_field_is_unset(fake):
    with make(fake) as ev:
        res = ev.evict_now(EvictionTarget("r1", "agent-AJ_x"))
    assert res.result == "evicted" and fake.calls[0].revoke_token_ts == 0


def test_room_id_resolved_through_list_rooms(fake):
    fake.add_room("other", sid="RM_other", participants=["agent-AJ_x"])
    ep = Facts(id="a:1", job="AJ_x", room=None, room_id="RM_other")
    with make(fake) as ev:
        res = ev.evict_now(derive_target(ep), ep)
    assert res.result == "evicted" and res.room == "other" and res.requests == 2
    lst, rm = fake.calls
    assert lst.method == "ListRooms" and lst.claims["video"].get("roomList") is True
    assert (rm.method, rm.room, rm.identity) == ("RemoveParticipant", "other", "agent-AJ_x")
    assert fake.participants("r1") == {"agent-AJ_x"}


def test_unknown_room_id_is_a_failure_unless_missing_ok(fake):
    with make(fake) as ev:
        res = ev.evict_now(EvictionTarget(None, "agent-AJ_x", "RM_gone"))
    assert res.result == "failed" and "RM_gone" in (res.error or "") and "--missing-ok" in res.error
    with make(fake, missing_ok=True) as ev:
        res = ev.evict_now(EvictionTarget(None, "agent-AJ_x", "RM_gone"))
    assert res.result == "already_gone" and "RM_gone" in (res.error or "")
    assert [c.method for c in fake.calls] == ["ListRooms", "ListRooms"]


def test_room_not_found_is_a_failure_with_the_servers_reason(fake):
    with make(fake) as ev:
        res = ev.evict_now(EvictionTarget("nosuch", "nobody"))
    assert res.result == "failed" and not res.ok and res.http_status == 404
    assert res.reason == "room not found" and "room not found" in res.summary()
    with make(fake, missing_ok=True) as ev:
        res = ev.evict_now(EvictionTarget("nosuch", "nobody"))
    assert res.result == "already_gone" and res.reason == "room not found"


def test_not_found_counts_as_already_gone(fake):
    with make(fake) as ev:
        res = ev.evict_now(EvictionTarget("r1", "agent-AJ_nobody"))
    assert res.result == "already_gone" and res.ok and res.http_status == 404
    assert res.reason == "participant not found" and "(server: participant not found)" in res.summary()
    assert len(fake.calls) == 1


def test_bad_route_404_is_a_failure_not_already_gone(fake):
    # A wrong URL prefix answers 404 too, but with code bad_route: the participant is not known gone.
    with make(None, url=fake.url + "/wrong-prefix") as ev:
        res = ev.evict_now(EvictionTarget("r1", "agent-AJ_x"))
    assert res.result == "failed" and res.http_status == 404
    assert fake.participants("r1") == {"agent-AJ_x"}


def test_403_reported_and_not_retried(fake):
    fake.fail_next("RemoveParticipant", 403, times=5)
    with make(fake) as ev:
        res = ev.evict_now(EvictionTarget("r1", "agent-AJ_x"))
    assert res.result == "failed" and not res.ok and res.http_status == 403
    assert "403" in (res.error or "") and "not retried" in (res.error or "")
    assert len(fake.calls) == 1


def test_wrong_secret_is_401_not_retried(fake):
    with make(fake, api_secret="not-the-secret-but-long-enough-0123456789") as ev:
        res = ev.evict_now(EvictionTarget("r1", "agent-AJ_x"))
    assert res.result == "failed" and res.http_status == 401 and len(fake.calls) == 1
    assert fake.participants("r1") == {"agent-AJ_x"}


def test_500_twice_then_200_is_one_eviction(fake):
    fake.fail_next("RemoveParticipant", 500, times=2)
    with make(fake) as ev:
        res = ev.evict_now(EvictionTarget("r1", "agent-AJ_x"))
    assert res.result == "evicted" and res.requests == 3
    assert [c.status for c in fake.calls] == [500, 500, 200]
    assert fake.removals() == [("r1", "agent-AJ_x")]


def test_request_timeout_is_retried(fake):
    fake.delay_next("RemoveParticipant", 3.0)
    with make(fake, request_timeout=0.3) as ev:
        res = ev.evict_now(EvictionTarget("r1", "agent-AJ_x"))
    assert res.result == "evicted" and res.requests == 2


def test_persistent_500_gives_up_after_retry_budget(fake):
    fake.fail_next("RemoveParticipant", 503, times=1000)
    with make(fake, retry_for=0.5) as ev:
        res = ev.evict_now(EvictionTarget("r1", "agent-AJ_x"))
    assert res.result == "failed" and res.http_status == 503 and "giving up" in (res.error or "")
    assert 2 <= len(fake.calls) == res.requests < 1000


def test_server_down_submit_returns_at_once_and_failure_is_reported():
    results = Results()
    with make(None, results, url=f"http://127.0.0.1:{closed_port()}", retry_for=0.6) as ev:
        ev.submit(EPISODE, derive_target(EPISODE))
        assert results.items == []      # submit did not wait for the (retrying) call
        (res,) = results.wait(1)
    assert res.result == "failed" and res.http_status is None and res.requests >= 2
    assert "Connect" in (res.error or "") or "connect" in (res.error or "")


def test_rate_limit_five_evictions_then_alerts(fake):
    fake.add_room("r1", participants=[f"agent-AJ_{i}" for i in range(10)])
    results = Results()
    with make(fake, results) as ev:            # default max_per_minute=5
        for i in range(10):
            ep = Facts(id=f"a:{i}", job=f"AJ_{i}", room="r1")
            ev.submit(ep, derive_target(ep))
        got = results.wait(10)
    assert sorted(r.result for r in got) == ["evicted"] * 5 + ["rate_limited"] * 5
    assert len(fake.removals()) == 5
    limited = [r for r in got if r.result == "rate_limited"]
    assert all("rate limit" in r.summary() for r in limited)


def test_dry_run_makes_no_request(fake, tmp_path):
    results, audit = Results(), tmp_path / "audit.jsonl"
    with make(fake, results, dry_run=True, audit=audit) as ev:
        ev.submit(EPISODE, derive_target(EPISODE))
        (res,) = results.wait(1)
    assert res.result == "dry_run" and res.ok
    assert res.call == 'RoomService.RemoveParticipant(room="r1", identity="agent-AJ_x")'
    assert res.url == f"{fake.url}/twirp/livekit.RoomService/RemoveParticipant"
    assert res.call in res.summary() and res.url in res.summary()
    assert fake.calls == []
    (line,) = audit.read_text().splitlines()
    assert json.loads(line)["result"] == "dry_run"


def test_dry_run_needs_no_credentials():
    with Evictor(dry_run=True, env={}) as ev:
        res = ev.evict_now(EvictionTarget("r1", "agent-AJ_x"))
    assert res.result == "dry_run"


def test_missing_credentials_is_an_input_error():
    with pytest.raises(InputError, match="LIVEKIT_API_SECRET"):
        Evictor(env={"LIVEKIT_URL": "http://127.0.0.1:1", "LIVEKIT_API_KEY": KEY})


def test_dedupe_until_released(fake):
    results = Results()
    target = derive_target(EPISODE)
    with make(fake, results) as ev:
        ev.submit(EPISODE, target)
        ev.submit(EPISODE, target)
        first, second = results.wait(2)
        assert {first.result, second.result} == {"evicted", "duplicate"}
        ev.release("r1", "agent-AJ_x")
        fake.add_participant("r1", "agent-AJ_x")        # the job came back and wedged again
        ev.submit(EPISODE, target)
        third = results.wait(3)[2]
    assert third.result == "evicted"
    assert len(fake.removals()) == 2


def test_no_target_is_reported_without_request(fake):
    results = Results()
    ep = Facts(id="a:1", job=None, room="r1")
    with make(fake, results) as ev:
        ev.submit(ep, derive_target(ep))
        (res,) = results.wait(1)
    assert res.result == "no_target" and "job id" in (res.error or "") and fake.calls == []


def test_audit_pending_line_is_written_before_the_call(fake, tmp_path):
    audit = tmp_path / "audit.jsonl"
    fake.delay_next("RemoveParticipant", 1.0)
    results = Results()
    with make(fake, results, audit=audit) as ev:
        ev.submit(EPISODE, derive_target(EPISODE))
        deadline = time.monotonic() + 10
        while not fake.calls and not audit.read_text() and time.monotonic() < deadline:
            time.sleep(0.01)
        # The call is in flight (the server sleeps): a crash now would leave this pending line.
        pending = [json.loads(x) for x in audit.read_text().splitlines()]
        assert [p["result"] for p in pending] == ["pending"]
        results.wait(1)
    first, done = (json.loads(x) for x in audit.read_text().splitlines())
    assert first["attempt"] == done["attempt"]
    assert (done["phase"], done["result"], done["http_status"]) == ("done", "evicted", 200)
    assert (done["episode"], done["room"], done["identity"]) == ("agent.log:12", "r1", "agent-AJ_x")
    assert done["time"] >= first["time"] and done["error"] is None


def test_close_cancels_in_flight_and_audits_it(fake, tmp_path):
    audit = tmp_path / "audit.jsonl"
    fake.delay_next("RemoveParticipant", 5.0)
    results = Results()
    ev = make(fake, results, audit=audit, request_timeout=10.0)
    ev.submit(EPISODE, derive_target(EPISODE))
    deadline = time.monotonic() + 10
    while not audit.read_text() and time.monotonic() < deadline:   # the request is on its way
        time.sleep(0.01)
    time.sleep(0.1)
    ev.close(timeout=0.1)
    (res,) = results.wait(1)
    assert res.result == "failed" and "cancelled" in (res.error or "")
    phases = [json.loads(x)["result"] for x in audit.read_text().splitlines()]
    assert phases == ["pending", "failed"]


def test_secret_never_in_results_repr_logs_or_audit(fake, tmp_path, caplog, capsys):
    caplog.set_level("DEBUG")
    audit = tmp_path / "audit.jsonl"
    results = Results()
    fake.fail_next("RemoveParticipant", 500)
    with make(fake, results, audit=audit) as ev:
        ev.evict_now(EvictionTarget("r1", "agent-AJ_x"))
        ev.evict_now(EvictionTarget("r1", "agent-AJ_y"))            # 404
        text = repr(ev)
    with make(None, results, url=f"http://127.0.0.1:{closed_port()}", audit=audit, retry_for=0.2) as ev:
        ev.evict_now(EvictionTarget("r1", "agent-AJ_z"))
    out = capsys.readouterr()
    blobs = [text, out.out, out.err, caplog.text, audit.read_text(), repr(fake)]
    blobs += [json.dumps(r.to_dict()) + r.summary() for r in results.items]
    assert len(results.items) == 3
    assert not [b for b in blobs if SECRET in b]



def _agents_json_log(job: str, **room: str) -> list[str]:
    """An agents-JSON log (agents >= 1.6 carries `room`, 1.3-1.5 `room_id`) whose resume wedges."""
    close = ('livekit::rtc_engine:474:livekit::rtc_engine - received session close: '
             '"signal client closed: \\"ping timeout\\"" UnknownReason Resume')
    resume = "livekit::rtc_engine:480:livekit::rtc_engine - resuming connection... attempt: 0"
    rows = [(close, "2026-01-30T18:24:43.187000+00:00"), (resume, "2026-01-30T18:24:43.300000+00:00")]
    lines = [json.dumps({"message": m, "level": "WARNING", "name": "livekit", "pid": 460, "job_id": job,
                         **room, "timestamp": t}) for m, t in rows]
    lines.append(json.dumps({"message": "tick", "level": "INFO", "name": "app",
                             "timestamp": "2026-01-30T18:25:30.000000+00:00"}))
    return lines


@pytest.mark.parametrize("room", [{"room": "r1"}, {"room_id": "RM_r1"}])
def test_stalled_episode_from_the_detector_is_evicted_once(fake, tmp_path, room):
    from lkwedge.detect.engine import Detector, ScanOptions

    audit, results = tmp_path / "audit.jsonl", Results()
    with make(fake, results, audit=audit) as ev:
        def listener(event, episode):     # what `watch --evict` does
            if event == "stalled":
                ev.submit(episode, derive_target(episode))
            elif event == "closed":
                ev.release_target(derive_target(episode))

        detector = Detector(ScanOptions(window=20.0), listener)
        stream = detector.stream("agent.log")
        for n, line in enumerate(_agents_json_log("AJ_x", **room), 1):
            detector.feed(stream, n, line)
        detector.finish(stream)
        (res,) = results.wait(1)
    assert res.result == "evicted" and res.episode == "agent.log:1"
    assert fake.removals() == [("r1", "agent-AJ_x")]
    video = fake.calls[-1].claims["video"]
    assert (video["roomAdmin"], video["room"], fake.calls[-1].status) == (True, "r1", 200)
    assert [json.loads(x)["result"] for x in audit.read_text().splitlines()] == ["pending", "evicted"]

# ---- `lkwedge evict` ---------------------------------------------------------------------------------


def run_cli(args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "lkwedge", "evict", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def creds(fake: FakeRoomService) -> dict[str, str]:
    return {"LIVEKIT_URL": fake.url, "LIVEKIT_API_KEY": KEY, "LIVEKIT_API_SECRET": SECRET}


def test_cli_evicts(fake, tmp_path):
    audit = tmp_path / "a.jsonl"
    p = run_cli(["--room", "r1", "--job", "AJ_x", "--revoke-token", "--audit", str(audit)], creds(fake))
    assert p.returncode == 0, p.stderr
    assert "evicted" in p.stdout and p.stderr == ""
    assert fake.removals() == [("r1", "agent-AJ_x")] and fake.calls[0].revoke_token_ts > 0
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    assert [x["result"] for x in lines] == ["pending", "evicted"]
    assert SECRET not in p.stdout + p.stderr + audit.read_text()


def test_cli_already_gone_is_success(fake):
    p = run_cli(["--room", "r1", "--identity", "agent-nobody"], creds(fake))
    assert p.returncode == 0 and "already gone" in p.stdout


def test_cli_403_exits_1_with_one_line(fake):
    fake.fail_next("RemoveParticipant", 403)
    p = run_cli(["--room", "r1", "--identity", "agent-AJ_x"], creds(fake))
    assert p.returncode == 1
    assert len(p.stderr.strip().splitlines()) == 1 and "403" in p.stderr and "Traceback" not in p.stderr
    assert len(fake.calls) == 1
    assert SECRET not in p.stdout + p.stderr


def test_cli_server_down_exits_1(fake):
    env = creds(fake) | {"LIVEKIT_URL": f"http://127.0.0.1:{closed_port()}"}
    p = run_cli(["--room", "r1", "--identity", "agent-AJ_x", "--retry-for", "300ms"], env)
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1
    assert SECRET not in p.stdout + p.stderr


def test_cli_missing_credentials_exits_2(fake):
    p = run_cli(["--room", "r1", "--identity", "agent-AJ_x"], {"LIVEKIT_URL": fake.url})
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [p.stderr.strip()] and "LIVEKIT_API_KEY" in p.stderr
    assert fake.calls == []


def test_cli_usage_error_exits_2(fake):
    p = run_cli(["--identity", "agent-AJ_x"], creds(fake))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "--room" in p.stderr


def test_cli_dry_run_shows_the_call_and_sends_nothing(fake):
    p = run_cli(["--room", "r1", "--identity", "agent-AJ_x", "--dry-run"], creds(fake))
    assert p.returncode == 0
    assert 'RoomService.RemoveParticipant(room="r1", identity="agent-AJ_x")' in p.stdout
    assert f"{fake.url}/twirp/livekit.RoomService/RemoveParticipant" in p.stdout
    assert fake.calls == [] and SECRET not in p.stdout + p.stderr


def test_cli_escapes_control_characters(fake):
    p = run_cli(["--room", "r1", "--identity", "agent-\x1b[31mred", "--dry-run"], creds(fake))
    assert p.returncode == 0 and "\x1b" not in p.stdout and "\\u001b" in p.stdout


def test_cli_json_format(fake):
    p = run_cli(["--room", "r1", "--identity", "agent-AJ_x", "--format", "json"], creds(fake))
    assert p.returncode == 0
    assert json.loads(p.stdout)["result"] == "evicted"


def test_cli_audit_file_not_writable_exits_2(fake, tmp_path):
    p = run_cli(["--room", "r1", "--identity", "agent-AJ_x", "--audit", str(tmp_path / "no" / "a.jsonl")],
                creds(fake))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and fake.calls == []


def test_evict_command_is_listed():
    # the group's docstring mentions "evict" too: look for the command in the Commands section
    p = subprocess.run([sys.executable, "-m", "lkwedge", "--help"], capture_output=True, text=True,
                       timeout=60)
    commands = p.stdout.split("Commands:", 1)[1].split()
    assert "evict" in commands and "watch" in commands


def test_cli_room_not_found_exits_1_keeping_the_reason(fake):
    p = run_cli(["--room", "nosuch", "--identity", "nobody", "--format", "json"], creds(fake))
    assert p.returncode == 1
    out = json.loads(p.stdout)
    assert out["result"] == "failed" and "room not found" in out["error"]
    assert out["reason"] == "room not found"
    p = run_cli(["--room", "nosuch", "--identity", "nobody", "--missing-ok"], creds(fake))
    assert p.returncode == 0 and "already gone (server: room not found)" in p.stdout


@pytest.mark.parametrize("source", ["flag", "env"])
def test_cli_bad_url_names_where_it_came_from(fake, source):
    env = creds(fake)
    if source == "flag":
        args = ["--url", "127.0.0.1:7880"]
    else:
        args, env = [], env | {"LIVEKIT_URL": "127.0.0.1:7880"}
    p = run_cli(["--room", "r1", "--identity", "agent-AJ_x", *args], env)
    assert p.returncode == 2 and fake.calls == []
    named = "--url" if source == "flag" else "LIVEKIT_URL"
    assert p.stderr == (f'lkwedge: error: {named} "127.0.0.1:7880" is not an http(s):// or ws(s):// URL '
                        '(e.g. "http://127.0.0.1:7880")\n')


def test_watch_has_url_for_evict(fake, tmp_path):
    log = tmp_path / "a.log"
    log.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}
    env |= {"LIVEKIT_API_KEY": KEY, "LIVEKIT_API_SECRET": SECRET}
    p = subprocess.run([sys.executable, "-m", "lkwedge", "watch", "--once", "--evict", "--url", "localhost:1",
                        str(log)], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stderr.startswith('lkwedge: error: --url "localhost:1" is not')
    p = subprocess.run([sys.executable, "-m", "lkwedge", "watch", "--once", "--evict", "--url", fake.url,
                        str(log)], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


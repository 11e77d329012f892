"""The loopback RoomService rejects what a real livekit-server would reject."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import jwt
import pytest
from livekit.protocol import room as proto_room

from lkwedge.testing import FakeRoomService

KEY, SECRET = "devkey", "fake-test-secret-0123456789-abcdefghij"
PATH = "/twirp/livekit.RoomService/RemoveParticipant"


def token(key: str = KEY, secret: str = SECRET, **video: object) -> str:
    now = int(time.time())
    return jwt.encode({"iss": key, "nbf": now, "exp": now + 600, "video": video}, secret, algorithm="HS256")


def post(url: str, body: bytes, *, ctype: str = "application/protobuf",
         auth: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": ctype})
    if auth is not None:
        req.add_header("Authorization", f"Bearer {auth}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, {}
    except urllib.error.HTTPError as err:
        assert err.headers.get_content_type() == "application/json"   # livekit-api parses errors as JSON
        return err.code, json.loads(err.read())


@pytest.fixture
def fake():
    with FakeRoomService(KEY, SECRET) as server:
        server.add_room("r1", participants=["agent-AJ_x"])
        yield server


BODY = proto_room.RoomParticipantIdentity(room="r1", identity="agent-AJ_x").SerializeToString()


def test_valid_request_removes(fake):
    assert post(fake.url + PATH, BODY, auth=token(roomAdmin=True, room="r1"))[0] == 200
    assert fake.removals() == [("r1", "agent-AJ_x")]


def test_json_body_is_accepted(fake):
    body = json.dumps({"room": "r1", "identity": "agent-AJ_x"}).encode()
    auth = token(roomAdmin=True, room="r1")
    assert post(fake.url + PATH, body, ctype="application/json", auth=auth)[0] == 200


@pytest.mark.parametrize(("auth", "status", "code"), [
    (None, 401, "unauthenticated"),
    (token(secret="another-secret-0123456789-abcdefgh", roomAdmin=True, room="r1"), 401, "unauthenticated"),
    (token(key="otherkey", roomAdmin=True, room="r1"), 401, "unauthenticated"),
    (token(room="r1"), 403, "permission_denied"),                       # no roomAdmin
    (token(roomAdmin=True, room="r2"), 403, "permission_denied"),       # grant for another room
])
def test_bad_tokens_are_rejected(fake, auth, status, code):
    got, body = post(fake.url + PATH, BODY, auth=auth)
    assert (got, body["code"]) == (status, code)
    assert fake.calls[-1].status == status
    assert fake.participants("r1") == {"agent-AJ_x"}


def test_wrong_content_type_and_garbage_body(fake):
    auth = token(roomAdmin=True, room="r1")
    assert post(fake.url + PATH, BODY, ctype="text/plain", auth=auth)[0] == 400
    assert post(fake.url + PATH, b"\xff\xff\xff", auth=auth)[0] == 400
    assert post(fake.url + "/twirp/livekit.RoomService/Nope", BODY, auth=auth) == \
        (404, {"code": "bad_route", "msg": "no handler for path '/twirp/livekit.RoomService/Nope'"})


def test_list_rooms_needs_room_list_grant(fake):
    url = fake.url + "/twirp/livekit.RoomService/ListRooms"
    assert post(url, b"", auth=token(roomAdmin=True))[0] == 403
    assert post(url, b"", auth=token(roomList=True))[0] == 200


def test_injected_failures_are_consumed_in_order(fake):
    fake.fail_next("RemoveParticipant", 500, times=2)
    auth = token(roomAdmin=True, room="r1")
    got = [post(fake.url + PATH, BODY, auth=auth)[0] for _ in range(4)]
    assert got == [500, 500, 200, 404]


def test_runnable_as_a_module(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}
    env["LIVEKIT_API_SECRET"] = SECRET
    proc = subprocess.Popen([sys.executable, "-m", "lkwedge.testing.fake_roomservice", "--port", str(port),
                             "--room", "r1", "--participant", "agent-AJ_x"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "listening on" in proc.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        cli = subprocess.run([sys.executable, "-m", "lkwedge", "evict", "--room", "r1", "--job", "AJ_x"],
                             env=env | {"LIVEKIT_URL": url, "LIVEKIT_API_KEY": KEY},
                             capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0 and "evicted" in cli.stdout
        logged = json.loads(proc.stdout.readline())
        assert logged["method"] == "RemoveParticipant" and logged["status"] == 200
    finally:
        proc.terminate()
        proc.wait(10)
    rest = (proc.stdout.read() if proc.stdout else "") + (proc.stderr.read() if proc.stderr else "")
    assert SECRET not in rest and "Warning" not in rest

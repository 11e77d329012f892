"""A loopback LiveKit RoomService (Twirp over HTTP) for tests and manual trials of `lkwedge evict`.

It speaks the wire protocol the real ``livekit-api`` client uses: ``POST /twirp/livekit.RoomService/<Method>``
with a binary protobuf body (``application/protobuf``; ``application/json`` is accepted too) and an
``Authorization: Bearer <JWT>`` header. Each request is checked the way livekit-server checks it:

- the JWT is HS256-signed with the API secret, ``iss`` is the API key, and it is within nbf/exp;
- RemoveParticipant / ListParticipants / GetParticipant need ``video.roomAdmin`` and ``video.room`` equal
  to the room in the body; ListRooms needs ``video.roomList``;
- errors are Twirp JSON (``{"code": ..., "msg": ...}``, ``Content-Type: application/json``).

Removing an identity that is not in the room answers 404 ``not_found`` like the real server (unless the
server is ``lenient``). Every request is recorded as a `Call`. Failures and delays can be queued per method.

Python use (runs in its own thread, so synchronous tests can use it)::

    with FakeRoomService(api_key="devkey", api_secret=SECRET) as fake:
        fake.add_room("r1", sid="RM_1", participants=["agent-AJ_x"])
        fake.fail_next("RemoveParticipant", status=500, times=2)
        ...  # LIVEKIT_URL=fake.url
        assert fake.removals() == [("r1", "agent-AJ_x")]

Manual use::

    python -m lkwedge.testing.fake_roomservice --port 7880 --room r1 --participant agent-AJ_x
    LIVEKIT_URL=http://127.0.0.1:7880 LIVEKIT_API_KEY=devkey LIVEKIT_API_SECRET=secret \\
        lkwedge evict --room r1 --identity agent-AJ_x
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from livekit.protocol import models as proto_models
from livekit.protocol import room as proto_room

# livekit-server --dev uses the 6-byte secret "secret"; PyJWT warns about short HMAC keys on every decode.
warnings.filterwarnings("ignore", message=r"The HMAC key is \d+ bytes long", module=r"jwt(\..*)?")

SERVICE_PREFIX = "/twirp/livekit.RoomService/"

# method -> (request class, grant the caller needs: "admin" = roomAdmin + matching room, "list" = roomList)
_METHODS: dict[str, tuple[type[Message], str]] = {
    "RemoveParticipant": (proto_room.RoomParticipantIdentity, "admin"),
    "GetParticipant": (proto_room.RoomParticipantIdentity, "admin"),
    "ListParticipants": (proto_room.ListParticipantsRequest, "admin"),
    "ListRooms": (proto_room.ListRoomsRequest, "list"),
}


@dataclass
class Call:
    """One request as the server saw it. `status` is the HTTP status it answered with."""

    method: str
    path: str
    status: int
    content_type: str
    claims: dict[str, Any] | None        # decoded JWT claims (None when the token was missing or invalid)
    body: dict[str, Any] | None          # decoded request message as a dict (proto field names)
    error: str | None = None             # Twirp error code answered, if any
    time: float = field(default_factory=time.time)

    @property
    def room(self) -> str | None:
        return (self.body or {}).get("room")

    @property
    def identity(self) -> str | None:
        return (self.body or {}).get("identity")

    @property
    def revoke_token_ts(self) -> int:
        return int((self.body or {}).get("revoke_token_ts") or 0)


@dataclass
class _Fault:
    status: int = 0            # 0 = answer normally (after the delay)
    code: str | None = None
    msg: str | None = None
    delay: float = 0.0


_STATUS_CODES = {400: "malformed", 401: "unauthenticated", 403: "permission_denied", 404: "not_found",
                 409: "already_exists", 429: "resource_exhausted", 500: "internal", 503: "unavailable"}


class FakeRoomService:
    """An in-process RoomService on 127.0.0.1. Thread-safe; see the module docstring."""

    def __init__(self, api_key: str = "devkey", api_secret: str = "secret", *, host: str = "127.0.0.1",
                 port: int = 0, lenient: bool = False) -> None:
        self.api_key = api_key
        self._secret = api_secret
        self.host = host
        self.port = port
        self.lenient = lenient
        self._lock = threading.RLock()  # _answer reports 404s while holding it
        self._rooms: dict[str, dict[str, Any]] = {}     # name -> {"sid": str, "participants": set[str]}
        self._faults: dict[str, deque[_Fault]] = {}
        self._calls: list[Call] = []
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # never show the secret
        return f"FakeRoomService(url={self.url!r}, api_key={self.api_key!r})"

    # ---- state the test controls -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_room(self, name: str, sid: str | None = None,
                 participants: list[str] | tuple[str, ...] = ()) -> None:
        with self._lock:
            room = self._rooms.setdefault(name, {"sid": sid or f"RM_{len(self._rooms) + 1}",
                                                 "participants": set()})
            if sid:
                room["sid"] = sid
            room["participants"].update(participants)

    def add_participant(self, room: str, identity: str) -> None:
        self.add_room(room, participants=[identity])

    def participants(self, room: str) -> set[str]:
        with self._lock:
            return set(self._rooms.get(room, {}).get("participants", ()))

    def fail_next(self, method: str = "RemoveParticipant", status: int = 500, *, times: int = 1,
                  code: str | None = None, msg: str | None = None) -> None:
        """Answer the next `times` calls of `method` with `status` (Twirp JSON error `code`)."""
        with self._lock:
            q = self._faults.setdefault(method, deque())
            q.extend(_Fault(status=status, code=code, msg=msg) for _ in range(times))

    def delay_next(self, method: str = "RemoveParticipant", seconds: float = 1.0, *, times: int = 1) -> None:
        """Sleep `seconds` before answering the next `times` calls of `method` (normally)."""
        with self._lock:
            self._faults.setdefault(method, deque()).extend(_Fault(delay=seconds) for _ in range(times))

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def removals(self) -> list[tuple[str, str]]:
        """(room, identity) of each RemoveParticipant that succeeded (HTTP 200)."""
        return [(c.room or "", c.identity or "")
                for c in self.calls_to("RemoveParticipant") if c.status == 200]

    # ---- HTTP ------------------------------------------------------------------------------------------
    def _record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def _error(self, call: Call, status: int, code: str, msg: str) -> web.Response:
        call.status, call.error = status, code
        self._record(call)
        return web.json_response({"code": code, "msg": msg}, status=status)

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        call = Call(method=method, path=request.path, status=0, content_type=ctype, claims=None, body=None)
        raw = await request.read()

        if method not in _METHODS:
            return self._error(call, 404, "bad_route", f"no handler for path {request.path!r}")
        if ctype not in ("application/protobuf", "application/json"):
            return self._error(call, 400, "bad_route", f"unexpected Content-Type: {ctype!r}")
        req_cls, grant = _METHODS[method]
        try:
            msg = req_cls.FromString(raw) if ctype == "application/protobuf" else \
                json_format.Parse(raw.decode("utf-8") or "{}", req_cls())
        except (DecodeError, json_format.ParseError, UnicodeDecodeError) as exc:
            return self._error(call, 400, "malformed", f"cannot decode {req_cls.__name__}: {exc}")
        call.body = json_format.MessageToDict(msg, preserving_proto_field_name=True)
        if "revoke_token_ts" in call.body:      # int64 arrives as a JSON string
            call.body["revoke_token_ts"] = int(call.body["revoke_token_ts"])

        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return self._error(call, 401, "unauthenticated", "authorization header missing")
        try:
            call.claims = jwt.decode(auth.removeprefix("Bearer "), self._secret, algorithms=["HS256"],
                                     issuer=self.api_key, leeway=10, options={"require": ["iss", "exp"]})
        except jwt.PyJWTError as exc:
            return self._error(call, 401, "unauthenticated", f"invalid token: {exc}")
        video = call.claims.get("video") or {}
        if grant == "list" and not video.get("roomList"):
            return self._error(call, 403, "permission_denied", "permissions denied")
        if grant == "admin" and not (video.get("roomAdmin") and video.get("room") == msg.room):
            return self._error(call, 403, "permission_denied", "permissions denied")

        with self._lock:
            q = self._faults.get(method)
            fault = q.popleft() if q else None
        if fault and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault and fault.status:
            default = "internal" if fault.status >= 500 else "unknown"
            code = fault.code or _STATUS_CODES.get(fault.status, default)
            return self._error(call, fault.status, code, fault.msg or f"injected {fault.status}")

        return self._answer(call, method, msg)

    def _answer(self, call: Call, method: str, msg: Any) -> web.Response:
        reply: Message
        with self._lock:
            if method == "ListRooms":
                names = set(msg.names)
                reply = proto_room.ListRoomsResponse(rooms=[
                    proto_models.Room(sid=r["sid"], name=n, num_participants=len(r["participants"]))
                    for n, r in self._rooms.items() if not names or n in names])
            else:
                room = self._rooms.get(msg.room)
                people: set[str] = room["participants"] if room is not None else set()
                if method == "RemoveParticipant" and (msg.identity in people or self.lenient):
                    people.discard(msg.identity)
                    reply = proto_room.RemoveParticipantResponse()
                elif method == "GetParticipant" and msg.identity in people:
                    reply = proto_models.ParticipantInfo(identity=msg.identity)
                elif method == "ListParticipants" and room is not None:
                    reply = proto_room.ListParticipantsResponse(
                        participants=[proto_models.ParticipantInfo(identity=i) for i in sorted(people)])
                else:
                    what = "room" if room is None else "participant"
                    return self._error(call, 404, "not_found", f"{what} not found")
        call.status = 200
        self._record(call)
        return web.Response(body=reply.SerializeToString(), content_type="application/protobuf")

    # ---- lifecycle -------------------------------------------------------------------------------------
    async def start_async(self) -> FakeRoomService:
        """Start on the running loop (for async callers); `port` 0 picks a free port."""
        app = web.Application()
        app.router.add_post(SERVICE_PREFIX + "{method}", self._handle)
        # A short shutdown_timeout: stopping must not wait for handlers sleeping in delay_next().
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if server is not None and getattr(server, "sockets", None):
            self.port = server.sockets[0].getsockname()[1]
        return self

    async def stop_async(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> FakeRoomService:
        """Start in a background thread with its own event loop; returns once it is listening."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            leftovers = asyncio.all_tasks(loop)   # handlers still sleeping in delay_next()
            for task in leftovers:
                task.cancel()
            if leftovers:
                loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-roomservice", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = self._thread = None

    def __enter__(self) -> FakeRoomService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lkwedge.testing.fake_roomservice",
                                description="Loopback LiveKit RoomService for trying lkwedge evict.")
    p.add_argument("--port", type=int, default=7880)
    p.add_argument("--api-key", default=os.environ.get("LIVEKIT_API_KEY", "devkey"))
    p.add_argument("--room", action="append", default=[], help="room name (repeatable)")
    p.add_argument("--participant", action="append", default=[],
                   help="identity present in every --room (repeatable)")
    p.add_argument("--lenient", action="store_true", help="removing an unknown identity succeeds")
    args = p.parse_args(argv)
    # The secret comes only from the environment, so it stays out of shell history and `ps`.
    secret = os.environ.get("LIVEKIT_API_SECRET", "secret")
    fake = FakeRoomService(args.api_key, secret, port=args.port, lenient=args.lenient)
    for name in args.room:
        fake.add_room(name, participants=args.participant)

    async def serve() -> None:
        await fake.start_async()
        print(f"fake RoomService listening on {fake.url} (api key {args.api_key!r}; "
              "secret from $LIVEKIT_API_SECRET, default 'secret')", flush=True)
        seen = 0
        try:
            while True:
                await asyncio.sleep(0.2)
                for c in fake.calls[seen:]:
                    print(json.dumps({"method": c.method, "status": c.status, "error": c.error,
                                      "body": c.body}), flush=True)
                seen = len(fake.calls)
        finally:
            await fake.stop_async()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())

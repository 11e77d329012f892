"""Test support shipped with lkwedge: a loopback LiveKit RoomService (see `fake_roomservice`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lkwedge.testing.fake_roomservice import Call, FakeRoomService

__all__ = ["Call", "FakeRoomService"]


def __getattr__(name: str) -> Any:
    # Imported lazily so `python -m lkwedge.testing.fake_roomservice` does not import the module twice.
    if name in __all__:
        from lkwedge.testing import fake_roomservice

        return getattr(fake_roomservice, name)
    raise AttributeError(name)

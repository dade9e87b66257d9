"""Who is looking at a ticket right now, and who is typing a reply (collision detection).

State lives in the Django cache (Redis in production, local memory in embedded mode), one entry per
ticket holding one record per websocket connection. A connection that stops sending heartbeats drops
out after ``PRESENCE_TTL_SECONDS``, so a crashed browser or web node never leaves a ghost viewer.
Two connections writing at the very same moment may overwrite each other's record; the loser's next
heartbeat (every 10 s) puts it back, which is good enough for a courtesy display.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from django.core.cache import cache

from fedele.shared import clock

PRESENCE_TTL_SECONDS = 30
HEARTBEAT_SECONDS = 10


class Viewer(TypedDict):
    user_id: int
    name: str
    typing: bool
    since: str  # ISO 8601, when this user started looking at the ticket


def _key(public_id: str) -> str:
    return f"support.presence.{public_id}"


def _fresh(records: dict[str, dict[str, Any]], now: datetime) -> dict[str, dict[str, Any]]:
    limit = now.timestamp() - PRESENCE_TTL_SECONDS
    return {connection: record for connection, record in records.items() if record["seen"] >= limit}


def _load(public_id: str, now: datetime) -> dict[str, dict[str, Any]]:
    records = cache.get(_key(public_id))
    return _fresh(records, now) if isinstance(records, dict) else {}


def _store(public_id: str, records: dict[str, dict[str, Any]]) -> None:
    if records:
        cache.set(_key(public_id), records, timeout=PRESENCE_TTL_SECONDS * 2)
    else:
        cache.delete(_key(public_id))


def _as_viewers(records: dict[str, dict[str, Any]]) -> list[Viewer]:
    """One entry per user (several tabs collapse into one); typing when any of their tabs types."""
    by_user: dict[int, Viewer] = {}
    for record in records.values():
        user_id = int(record["user_id"])
        existing = by_user.get(user_id)
        if existing is None:
            by_user[user_id] = Viewer(
                user_id=user_id,
                name=str(record["name"]),
                typing=bool(record["typing"]),
                since=record["since"],
            )
        else:
            existing["typing"] = existing["typing"] or bool(record["typing"])
            existing["since"] = min(existing["since"], record["since"])
    return sorted(by_user.values(), key=lambda viewer: (viewer["since"], viewer["user_id"]))


def presence_touch(
    public_id: str,
    *,
    connection: str,
    user_id: int,
    name: str,
    typing: bool = False,
    now: datetime | None = None,
) -> list[Viewer]:
    """A connection joined or sent a heartbeat: refresh it and return the viewers after the change."""
    at = now or clock.now()
    records = _load(public_id, at)
    previous = records.get(connection)
    records[connection] = {
        "user_id": user_id,
        "name": name,
        "typing": typing,
        "since": previous["since"] if previous else at.isoformat(),
        "seen": at.timestamp(),
    }
    _store(public_id, records)
    return _as_viewers(records)


def presence_leave(public_id: str, *, connection: str, now: datetime | None = None) -> list[Viewer]:
    """A connection closed: forget it and return who is still there."""
    at = now or clock.now()
    records = _load(public_id, at)
    records.pop(connection, None)
    _store(public_id, records)
    return _as_viewers(records)


def viewers(public_id: str, *, now: datetime | None = None) -> list[Viewer]:
    """Who is looking at the ticket now (heartbeat within the last ``PRESENCE_TTL_SECONDS``)."""
    return _as_viewers(_load(public_id, now or clock.now()))

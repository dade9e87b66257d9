"""The desktop area's websocket consumers (auth + groups only) and their routes.

``AgentDesktopConsumer`` at ``ws/contact-center/desktop/``: an agent's desktop joins ``cc.agent.<agent
id>``, where the router pushes offers (``cc.offer``), the chat pushes visitor messages and typing
(``cc.chat.message`` / ``cc.chat.typing``) and the other areas push whatever concerns that agent. Every
``cc.*`` message is forwarded to the browser as ``{"type": <type>, **data}``: a new message type from
another area reaches the page without a change here (and never crashes the consumer).

``WallboardConsumer`` at ``ws/contact-center/wallboard/?queue=a&queue=b``: sends the rendered wallboard
table on connect, again whenever it changes (checked on every tick, and at once on a
``cc.wallboard.changed`` push to ``cc.wallboard``), and at least every tick while contacts wait (the
longest wait keeps growing). Viewers asking for the same board share one computation per second.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.core.cache import cache
from django.urls import URLPattern, URLResolver, path
from django.utils import translation

REFUSED = 4403
WALLBOARD_GROUP = "cc.wallboard"
SNAPSHOT_SECONDS = 1


def agent_group(agent_id: int) -> str:
    return f"cc.agent.{agent_id}"


def tick_seconds() -> float:
    return float(getattr(settings, "FEDELE_CC_WALLBOARD_TICK_SECONDS", 5))


def _agent_id_for(user: Any) -> int | None:
    """The active agent row of an internal user allowed to handle contacts, else None."""
    from fedele.accounts.facade import actor_for
    from fedele.contact_center.models import Agent

    if user is None or not user.is_authenticated or not user.is_active:
        return None
    actor = actor_for(user)
    if not (actor.is_internal and actor.can("contact_center.handle_interactions")):
        return None
    return Agent.objects.filter(user_id=user.pk, active=True).values_list("id", flat=True).first()


def _may_watch_wallboard(user: Any) -> bool:
    from fedele.accounts.facade import actor_for

    if user is None or not user.is_authenticated or not user.is_active:
        return False
    actor = actor_for(user)
    return actor.is_internal and actor.can("contact_center.view_wallboards")


def wallboard_snapshot(codes: tuple[str, ...], language: str) -> tuple[str, tuple[object, ...], bool]:
    """(table html, fingerprint, anything waiting) — cached for a second per board and language."""
    key = f"cc:wallboard:{language}:{','.join(codes)}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    from fedele.contact_center.selectors.wallboard import wallboard
    from fedele.contact_center.web.desktop_wallboard import render_board

    with translation.override(language):
        board = wallboard(queue_codes=list(codes) or None)
        html = render_board(board)
    waiting = any(row.waiting.value for queue in board.queues for row in queue.rows)
    snapshot = (html, board.fingerprint(), waiting)
    cache.set(key, snapshot, SNAPSHOT_SECONDS)
    return snapshot


class AgentDesktopConsumer(AsyncJsonWebsocketConsumer):
    """Server → client: every ``cc.*`` push of the agent's group. Client → server: {"type": "ping"} →
    {"type": "pong"} (the page's liveness check)."""

    group_name = ""

    async def connect(self) -> None:
        agent_id = await database_sync_to_async(_agent_id_for)(self.scope.get("user"))
        if agent_id is None:
            await self.close(code=REFUSED)
            return
        self.group_name = agent_group(agent_id)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        await self.send_json({"type": "cc.hello", "agent_id": agent_id})

    async def disconnect(self, code: int) -> None:
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def dispatch(self, message: dict[str, Any]) -> None:
        kind = str(message.get("type", ""))
        if kind.startswith("cc."):
            data = message.get("data")
            await self.send_json({**(data if isinstance(data, dict) else {}), "type": kind})
            return
        await super().dispatch(message)


class WallboardConsumer(AsyncJsonWebsocketConsumer):
    """Server → client: {"type": "wallboard", "html": "<table…>"}."""

    joined = False
    ticker: asyncio.Task[None] | None = None
    pending: asyncio.Future[None] | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if not await database_sync_to_async(_may_watch_wallboard)(user):
            await self.close(code=REFUSED)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.codes = tuple(sorted({code for code in query.get("queue", []) if code}))[:50]
        self.language = str(getattr(user, "language", "") or settings.LANGUAGE_CODE)
        self.last_fingerprint: tuple[object, ...] | None = None
        await self.channel_layer.group_add(WALLBOARD_GROUP, self.channel_name)
        self.joined = True
        await self.accept()
        await self.push(force=True)
        self.ticker = asyncio.ensure_future(self.tick())

    async def disconnect(self, code: int) -> None:
        for task in (self.ticker, self.pending):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.joined:
            await self.channel_layer.group_discard(WALLBOARD_GROUP, self.channel_name)

    async def tick(self) -> None:
        while True:
            await asyncio.sleep(tick_seconds())
            await self.push(force=False)

    async def push(self, *, force: bool) -> None:
        html, fingerprint, waiting = await database_sync_to_async(wallboard_snapshot)(
            self.codes, self.language
        )
        if force or waiting or fingerprint != self.last_fingerprint:
            self.last_fingerprint = fingerprint
            await self.send_json({"type": "wallboard", "html": html})

    async def dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") == "cc.wallboard.changed":
            # A burst of changes makes one push, once the shared one-second snapshot has expired.
            if self.pending is None or self.pending.done():
                self.pending = asyncio.ensure_future(self.push_soon())
            return
        await super().dispatch(message)

    async def push_soon(self) -> None:
        await asyncio.sleep(SNAPSHOT_SECONDS + 0.1)
        await self.push(force=False)


urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/contact-center/desktop/", AgentDesktopConsumer.as_asgi()),
    path("ws/contact-center/wallboard/", WallboardConsumer.as_asgi()),
]

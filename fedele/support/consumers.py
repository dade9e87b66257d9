"""Websocket consumers of the agent workspace (auth + groups only).

``TicketPresenceConsumer`` at ``ws/support/tickets/<uuid>/``: agents looking at one ticket see who else
is there and who is typing, and hear "ticket.changed" pushes from the ticket services.
``QueueConsumer`` at ``ws/support/queue/``: the queue page refreshes its table on "queue.changed".
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from fedele.support import presence

QUEUE_GROUP = "support.queue"
REFUSED = 4403


def ticket_group(public_id: str) -> str:
    return f"support.ticket.{public_id}"


def _agent_name(user: Any) -> str:
    return str(user.get_full_name() or user.email)


def _may_watch_ticket(user: Any, public_id: str) -> bool:
    from fedele.accounts.facade import actor_for
    from fedele.shared.errors import ApplicationError
    from fedele.support.selectors.tickets import ticket_get

    if user is None or not user.is_authenticated or not user.is_active:
        return False
    actor = actor_for(user)
    if not (actor.is_internal and actor.can("support.view_ticket")):
        return False
    try:
        ticket_get(actor=actor, public_id=public_id)
    except ApplicationError:
        return False
    return True


def _may_watch_queue(user: Any) -> bool:
    from fedele.accounts.facade import actor_for

    if user is None or not user.is_authenticated or not user.is_active:
        return False
    actor = actor_for(user)
    return actor.is_internal and actor.can("support.view_ticket")


class TicketPresenceConsumer(AsyncJsonWebsocketConsumer):
    """Client → server: {"type": "heartbeat", "typing": bool} every 10 s and when typing starts/stops.
    Server → client: {"type": "presence", "viewers": [...]} and {"type": "ticket.changed", ...}."""

    group_name = ""
    public_id = ""

    async def connect(self) -> None:
        user = self.scope.get("user")
        public_id = str(self.scope["url_route"]["kwargs"]["public_id"])
        if not await database_sync_to_async(_may_watch_ticket)(user, public_id):
            await self.close(code=REFUSED)
            return
        self.public_id = public_id
        self.user_id = int(user.pk)
        self.user_name = _agent_name(user)
        self.typing = False
        self.group_name = ticket_group(public_id)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        await self._touch(typing=False, force=True)

    async def disconnect(self, code: int) -> None:
        if not self.group_name:
            return
        viewers = presence.presence_leave(self.public_id, connection=self.channel_name)
        await self.channel_layer.group_discard(self.group_name, self.channel_name)
        await self._broadcast(viewers)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "heartbeat":
            return
        typing = content.get("typing") is True
        await self._touch(typing=typing, force=typing != self.typing)

    async def _touch(self, *, typing: bool, force: bool) -> None:
        before = [(v["user_id"], v["typing"]) for v in presence.viewers(self.public_id)]
        viewers = presence.presence_touch(
            self.public_id,
            connection=self.channel_name,
            user_id=self.user_id,
            name=self.user_name,
            typing=typing,
        )
        self.typing = typing
        if force or before != [(v["user_id"], v["typing"]) for v in viewers]:
            await self._broadcast(viewers)

    async def _broadcast(self, viewers: list[presence.Viewer]) -> None:
        await self.channel_layer.group_send(
            self.group_name, {"type": "presence.update", "data": {"viewers": viewers}}
        )

    async def presence_update(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "presence", "viewers": event["data"]["viewers"]})

    async def ticket_changed(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "ticket.changed", **event.get("data", {})})


class QueueConsumer(AsyncJsonWebsocketConsumer):
    """Forwards "queue.changed" so open queue pages refresh their table (debounced in the browser)."""

    joined = False

    async def connect(self) -> None:
        if not await database_sync_to_async(_may_watch_queue)(self.scope.get("user")):
            await self.close(code=REFUSED)
            return
        await self.channel_layer.group_add(QUEUE_GROUP, self.channel_name)
        self.joined = True
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.joined:
            await self.channel_layer.group_discard(QUEUE_GROUP, self.channel_name)

    async def queue_changed(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "queue.changed", **event.get("data", {})})

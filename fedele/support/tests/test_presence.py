"""Collision detection: presence records in the cache and the ticket/queue websocket consumers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import path

from fedele.accounts.tests.factories import user_with_roles
from fedele.support import presence
from fedele.support.consumers import QueueConsumer, TicketPresenceConsumer
from fedele.support.tests.factories import TicketFactory

T0 = datetime.fromisoformat("2026-03-29 01:59:50+01:00")  # the night Italy moves to summer time
TICKET = "7f6c2c1e-8f7d-4b1a-9a55-111111111111"

application = URLRouter(
    [
        path("ws/support/tickets/<uuid:public_id>/", TicketPresenceConsumer.as_asgi()),
        path("ws/support/queue/", QueueConsumer.as_asgi()),
    ]
)


# ---------------------------------------------------------------- presence records


def test_join_typing_and_leave():
    viewers = presence.presence_touch(TICKET, connection="c1", user_id=1, name="Anna", now=T0)
    assert viewers == [{"user_id": 1, "name": "Anna", "typing": False, "since": T0.isoformat()}]
    later = T0 + timedelta(seconds=5)
    viewers = presence.presence_touch(
        TICKET, connection="c2", user_id=2, name="Bruno", typing=True, now=later
    )
    assert [(v["name"], v["typing"]) for v in viewers] == [("Anna", False), ("Bruno", True)]
    assert presence.presence_leave(TICKET, connection="c1", now=later) == [
        {"user_id": 2, "name": "Bruno", "typing": True, "since": later.isoformat()}
    ]
    assert presence.presence_leave(TICKET, connection="c2", now=later) == []
    assert presence.viewers(TICKET, now=later) == []


def test_a_viewer_without_heartbeat_drops_out_after_the_ttl():
    presence.presence_touch(TICKET, connection="c1", user_id=1, name="Anna", now=T0)
    edge = T0 + timedelta(seconds=presence.PRESENCE_TTL_SECONDS)
    assert [v["user_id"] for v in presence.viewers(TICKET, now=edge)] == [1]
    assert presence.viewers(TICKET, now=edge + timedelta(seconds=1)) == []


def test_heartbeats_keep_the_first_since_across_the_dst_change():
    presence.presence_touch(TICKET, connection="c1", user_id=1, name="Anna", now=T0)
    for seconds in range(10, 70, 10):  # crosses 02:00 → 03:00 local time
        viewers = presence.presence_touch(
            TICKET, connection="c1", user_id=1, name="Anna", now=T0 + timedelta(seconds=seconds)
        )
    assert viewers == [{"user_id": 1, "name": "Anna", "typing": False, "since": T0.isoformat()}]


def test_two_tabs_of_one_user_are_one_viewer_typing_if_either_types():
    presence.presence_touch(TICKET, connection="tab1", user_id=1, name="Anna", now=T0)
    viewers = presence.presence_touch(TICKET, connection="tab2", user_id=1, name="Anna", typing=True, now=T0)
    assert viewers == [{"user_id": 1, "name": "Anna", "typing": True, "since": T0.isoformat()}]
    assert presence.presence_leave(TICKET, connection="tab2", now=T0)[0]["typing"] is False


def test_tickets_do_not_share_presence():
    presence.presence_touch(TICKET, connection="c1", user_id=1, name="Anna", now=T0)
    assert presence.viewers("00000000-0000-0000-0000-000000000000", now=T0) == []


# ---------------------------------------------------------------- consumers


def _communicator(url: str, user: Any) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, url)
    communicator.scope["user"] = user
    return communicator


@pytest.mark.django_db
@pytest.mark.parametrize("role", [None, "portal_customer"])
def test_the_ticket_socket_refuses_anonymous_and_portal_users(role):
    from django.contrib.auth.models import AnonymousUser

    ticket = TicketFactory()
    user = AnonymousUser() if role is None else user_with_roles(role)

    async def run() -> tuple[bool, int | None]:
        communicator = _communicator(f"/ws/support/tickets/{ticket.public_id}/", user)
        connected, code = await communicator.connect()
        await communicator.disconnect()
        return connected, code

    assert async_to_sync(run)() == (False, 4403)
    assert presence.viewers(str(ticket.public_id)) == []


@pytest.mark.django_db
def test_the_ticket_socket_refuses_a_ticket_that_does_not_exist():
    agent = user_with_roles("agent")

    async def run() -> tuple[bool, int | None]:
        communicator = _communicator("/ws/support/tickets/00000000-0000-0000-0000-000000000000/", agent)
        connected, code = await communicator.connect()
        await communicator.disconnect()
        return connected, code

    assert async_to_sync(run)() == (False, 4403)


@pytest.mark.django_db
def test_two_agents_see_each_other_typing_and_hear_ticket_changes():
    ticket = TicketFactory()
    anna = user_with_roles("agent", first_name="Anna", last_name="Neri")
    bruno = user_with_roles("agent", first_name="Bruno", last_name="Blu")
    url = f"/ws/support/tickets/{ticket.public_id}/"

    async def run() -> dict[str, Any]:
        first = _communicator(url, anna)
        assert (await first.connect())[0]
        joined = await first.receive_json_from()
        second = _communicator(url, bruno)
        assert (await second.connect())[0]
        both = await first.receive_json_from()
        await second.receive_json_from()
        await second.send_json_to({"type": "heartbeat", "typing": True})
        typing = await first.receive_json_from()
        await second.receive_json_from()
        await get_channel_layer().group_send(
            f"support.ticket.{ticket.public_id}",
            {
                "type": "ticket.changed",
                "data": {"ticket": str(ticket.public_id), "what": "message", "by": "Bruno Blu"},
            },
        )
        changed = await first.receive_json_from()
        await second.receive_json_from()
        await second.disconnect()
        left = await first.receive_json_from()
        await first.disconnect()
        return {"joined": joined, "both": both, "typing": typing, "changed": changed, "left": left}

    result = async_to_sync(run)()
    assert [(v["name"], v["typing"]) for v in result["joined"]["viewers"]] == [("Anna Neri", False)]
    assert result["joined"]["type"] == "presence"
    assert [(v["name"], v["typing"]) for v in result["both"]["viewers"]] == [
        ("Anna Neri", False),
        ("Bruno Blu", False),
    ]
    assert [(v["name"], v["typing"]) for v in result["typing"]["viewers"]] == [
        ("Anna Neri", False),
        ("Bruno Blu", True),
    ]
    assert result["changed"] == {
        "type": "ticket.changed",
        "ticket": str(ticket.public_id),
        "what": "message",
        "by": "Bruno Blu",
    }
    assert [v["name"] for v in result["left"]["viewers"]] == ["Anna Neri"]
    assert presence.viewers(str(ticket.public_id)) == []


@pytest.mark.django_db
def test_a_heartbeat_that_changes_nothing_is_not_broadcast():
    ticket = TicketFactory()
    anna = user_with_roles("agent", first_name="Anna", last_name="Neri")

    async def run() -> bool:
        communicator = _communicator(f"/ws/support/tickets/{ticket.public_id}/", anna)
        await communicator.connect()
        await communicator.receive_json_from()
        await communicator.send_json_to({"type": "heartbeat", "typing": False})
        await communicator.send_json_to({"type": "something else"})
        silent = await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()
        return silent

    assert async_to_sync(run)() is True


@pytest.mark.django_db
def test_the_queue_socket_forwards_queue_changes_to_agents_only():
    agent = user_with_roles("agent")
    customer = user_with_roles("portal_customer")

    async def run() -> tuple[Any, Any]:
        refused = _communicator("/ws/support/queue/", customer)
        refused_result = await refused.connect()
        communicator = _communicator("/ws/support/queue/", agent)
        assert (await communicator.connect())[0]
        await get_channel_layer().group_send(
            "support.queue", {"type": "queue.changed", "data": {"ticket": "abc"}}
        )
        message = await communicator.receive_json_from()
        await communicator.disconnect()
        return refused_result, message

    refused_result, message = async_to_sync(run)()
    assert refused_result == (False, 4403)
    assert message == {"type": "queue.changed", "ticket": "abc"}

"""The visitor's websocket: origin checks, resuming with the token (and reconnecting), messages with
their size limit, typing both ways and the agent's replies arriving in the widget."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from fedele.contact_center.consumers.messaging import urlpatterns
from fedele.contact_center.models import AgentState, ChatWidget, InteractionMessage
from fedele.contact_center.services import chat, messaging
from fedele.contact_center.services.interactions import interaction_connect
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory

# The consumer writes from pooled threads with their own connections: the rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime.fromisoformat("2026-10-25T02:30:00+01:00")  # the night Italy goes back to winter time
ALLOWED = "https://www.example.it"
application = URLRouter(urlpatterns)


@pytest.fixture(autouse=True)
def _no_router(settings: Any) -> None:
    settings.CONTACT_CENTER_ROUTE_ON_COMMIT = False


@pytest.fixture
def setup() -> dict[str, Any]:
    queue = QueueFactory(code="web")
    agent = AgentFactory(state=AgentState.AVAILABLE, display_name="Anna Rossi")
    agent.queues.add(queue)
    widget = ChatWidget.objects.create(
        name="Sito", queue=queue, allowed_origins=[ALLOWED], max_message_chars=20, created_at=T0
    )
    started = chat.chat_start(
        widget=widget, name="Mario", email="mario@example.it", consent=True, message="Ciao", at=T0
    )
    return {"widget": widget, "agent": agent, "started": started}


def _socket(widget: ChatWidget, origin: str | None) -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode())] if origin is not None else []
    return WebsocketCommunicator(
        application, f"/ws/contact-center/chat/{widget.public_key}/", headers=headers
    )


@pytest.mark.parametrize("origin", ["https://evil.example.com", None, "null"])
def test_a_foreign_or_missing_origin_is_refused(setup, origin):
    async def run() -> tuple[bool, int | None]:
        socket = _socket(setup["widget"], origin)
        connected, code = await socket.connect()
        await socket.disconnect()
        return connected, code

    assert async_to_sync(run)() == (False, 4403)


def test_an_unknown_or_inactive_widget_is_refused(setup):
    widget = setup["widget"]
    ChatWidget.objects.filter(pk=widget.pk).update(active=False)

    async def run() -> list[tuple[bool, int | None]]:
        results = []
        for url in (f"/ws/contact-center/chat/{widget.public_key}/", "/ws/contact-center/chat/w_nope/"):
            socket = WebsocketCommunicator(application, url, headers=[(b"origin", ALLOWED.encode())])
            results.append(await socket.connect())
            await socket.disconnect()
        return results

    assert async_to_sync(run)() == [(False, 4403), (False, 4403)]


def test_a_bad_token_gets_an_error_and_the_socket_closes(setup):
    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        socket = _socket(setup["widget"], ALLOWED)
        assert (await socket.connect())[0]
        await socket.send_json_to({"type": "message", "body": "before resume"})
        early = await socket.receive_json_from()
        await socket.send_json_to({"type": "resume", "token": "forged"})
        error = await socket.receive_json_from()
        closed = await socket.receive_output()
        await socket.disconnect()
        return early, {**error, "closed": closed["code"]}

    early, error = async_to_sync(run)()
    assert early["code"] == "chat_not_started"
    assert (error["type"], error["code"], error["closed"]) == ("error", "chat_token_invalid", 4401)
    assert InteractionMessage.objects.count() == 1  # only the pre-chat message


def test_the_conversation_both_ways_and_a_reconnect_with_the_same_token(setup):
    widget, agent, started = setup["widget"], setup["agent"], setup["started"]
    interaction = interaction_connect(interaction=started.session.interaction, agent=agent, at=T0)
    # The agent's reply (a sync service) runs between the socket steps, on a worker thread.
    result = async_to_sync(_conversation)(widget, agent, started, interaction)
    ready = result["ready"]
    assert (ready["type"], ready["state"], ready["agent"]) == ("ready", "active", "Anna Rossi")
    assert [(m["sender"], m["body"]) for m in ready["messages"]] == [("customer", "Ciao")]
    assert result["ack"]["client_id"] == "m1"
    assert result["echo"]["type"] == "message" and result["echo"]["body"] == "Buongiorno"
    assert result["echo"]["id"] == result["ack"]["id"]
    assert result["desk"]["type"] == "cc.chat.message"
    assert result["desk"]["data"]["message"]["body"] == "Buongiorno"
    assert (result["too_long"]["type"], result["too_long"]["code"], result["too_long"]["client_id"]) == (
        "error",
        "chat_message_too_long",
        "m2",
    )
    assert result["oversized_frame"]["code"] == "chat_message_too_long"
    assert result["typing_at_desk"] == {"type": "cc.chat.typing", "typing": True}
    assert result["reply"]["type"] == "message"
    assert (result["reply"]["sender"], result["reply"]["body"], result["reply"]["author"]) == (
        "agent",
        "<script>x</script>",
        "Anna Rossi",
    )
    assert result["agent_typing"] == {"type": "typing", "typing": True}
    resumed = result["resumed"]
    assert [(m["sender"], m["body"]) for m in resumed["messages"]] == [
        ("customer", "Ciao"),
        ("customer", "Buongiorno"),
        ("agent", "<script>x</script>"),
    ]
    assert result["resend_ack"]["id"] == result["ack"]["id"]
    assert list(
        InteractionMessage.objects.filter(interaction=interaction).values_list("body", flat=True)
    ) == [
        "Ciao",
        "Buongiorno",
        "<script>x</script>",
    ]


async def _conversation(widget: ChatWidget, agent: Any, started: Any, interaction: Any) -> dict[str, Any]:
    from channels.db import database_sync_to_async

    layer = get_channel_layer()
    desk = await layer.new_channel()
    await layer.group_add(messaging.agent_group(agent.pk), desk)
    result: dict[str, Any] = {}
    socket = _socket(widget, ALLOWED)
    assert (await socket.connect())[0]
    await socket.send_json_to({"type": "resume", "token": started.token})
    result["ready"] = await socket.receive_json_from()

    await socket.send_json_to({"type": "message", "body": "Buongiorno", "client_id": "m1"})
    first, second = await socket.receive_json_from(), await socket.receive_json_from()
    result["ack"], result["echo"] = (first, second) if first["type"] == "ack" else (second, first)
    result["desk"] = await layer.receive(desk)

    await socket.send_json_to({"type": "message", "body": "x" * 21, "client_id": "m2"})
    result["too_long"] = await socket.receive_json_from()
    await socket.send_to(text_data='{"type": "message", "body": "' + "y" * 5000 + '"}')
    result["oversized_frame"] = await socket.receive_json_from()

    await socket.send_json_to({"type": "typing", "typing": True})
    typing = await layer.receive(desk)
    result["typing_at_desk"] = {"type": typing["type"], "typing": typing["data"]["typing"]}

    def reply() -> None:
        messaging.chat_message_send(interaction=interaction, agent=agent, body="<script>x</script>")
        messaging.chat_agent_typing(interaction=interaction, agent=agent, typing=True)

    await database_sync_to_async(reply)()
    result["reply"] = await socket.receive_json_from()
    await socket.receive_json_from()  # typing off that comes with the reply
    result["agent_typing"] = await socket.receive_json_from()
    await socket.disconnect()

    again = _socket(widget, ALLOWED)
    assert (await again.connect())[0]
    await again.send_json_to({"type": "resume", "token": started.token})
    result["resumed"] = await again.receive_json_from()
    # The widget sends an unacknowledged message again after a reconnect: stored once.
    await again.send_json_to({"type": "message", "body": "Buongiorno", "client_id": "m1"})
    result["resend_ack"] = await again.receive_json_from()
    await again.disconnect()
    return result


def test_ending_from_the_socket_ends_the_interaction_and_tells_the_widget(setup):
    widget, started = setup["widget"], setup["started"]

    async def run() -> dict[str, Any]:
        socket = _socket(widget, ALLOWED)
        assert (await socket.connect())[0]
        await socket.send_json_to({"type": "resume", "token": started.token})
        await socket.receive_json_from()
        await socket.send_json_to({"type": "end"})
        ended = await socket.receive_json_from()
        await socket.send_json_to({"type": "message", "body": "still there?", "client_id": "late"})
        late = await socket.receive_json_from()
        await socket.disconnect()
        return {"ended": ended, "late": late}

    result = async_to_sync(run)()
    assert result["ended"] == {"type": "ended"}
    assert (result["late"]["type"], result["late"]["code"]) == ("error", "chat_ended")
    started.session.refresh_from_db()
    assert started.session.state == "ended"


@pytest.mark.parametrize(
    ("language", "frame_text", "too_long_text"),
    [
        ("it", "Invia oggetti JSON.", "Il messaggio supera i 20 caratteri."),
        ("en", "Send JSON objects.", "The message is longer than 20 characters."),
    ],
)
def test_the_sockets_refusals_are_in_the_visitors_language(setup, language, frame_text, too_long_text):
    widget = setup["widget"]
    started = chat.chat_start(
        widget=widget,
        name="Mario",
        email="mario@example.it",
        consent=True,
        message="Ciao",
        language=language,
        at=T0,
    )

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        socket = _socket(widget, ALLOWED)
        assert (await socket.connect())[0]
        await socket.send_json_to({"type": "resume", "token": started.token})
        await socket.receive_json_from()
        await socket.send_to(text_data="[1]")
        not_an_object = await socket.receive_json_from()
        await socket.send_to(text_data='{"type": "message", "body": "' + "y" * 5000 + '"}')
        oversized = await socket.receive_json_from()
        await socket.disconnect()
        return not_an_object, oversized

    not_an_object, oversized = async_to_sync(run)()
    assert (not_an_object["code"], not_an_object["message"]) == ("chat_frame_invalid", frame_text)
    assert (oversized["code"], oversized["message"]) == ("chat_message_too_long", too_long_text)

"""The web chat visitor's websocket ``ws/contact-center/chat/<widget_key>/`` (auth + groups only).

Why the project's ``AllowedHostsOriginValidator`` is left in front of it: the widget's script only
draws a launcher on the host page; the chat itself runs in an iframe served by fedele, so the
websocket's Origin is fedele's own host and passes the validator. Which sites may embed the widget is
enforced by the browser on that iframe (``Content-Security-Policy: frame-ancestors`` from the
widget's allowed origins). This consumer checks the Origin again against fedele's own origins and the
widget's allowed ones, so a deployment that routes the chat around the validator stays closed.

Visitor → server (JSON): ``{"type": "resume", "token"}`` first (the token from the pre-chat form),
then ``{"type": "message", "body", "client_id"}``, ``{"type": "typing", "typing": bool}``,
``{"type": "end", "transcript_to"?}``.
Server → visitor: ``ready`` {session, state, messages}, ``ack`` {client_id, id}, ``message`` {…},
``typing`` {typing}, ``ended``, ``error`` {code, message, client_id?}.
"""

from __future__ import annotations

import json
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.urls import URLPattern, URLResolver, path
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from fedele.contact_center.services.messaging import agent_group
from fedele.shared.errors import ApplicationError

REFUSED = 4403
NOT_AUTHENTICATED = 4401
# Per connection: a visitor may send this many messages (and typing signals) per window.
MESSAGES_PER_WINDOW = 20
TYPING_PER_WINDOW = 40
WINDOW_SECONDS = 10.0
FRAME_OVERHEAD_BYTES = 1024


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


def _widget_if_allowed(widget_key: str, origin: str) -> Any:
    from fedele.contact_center.selectors.messaging import origin_allowed, widget_by_key

    try:
        widget = widget_by_key(widget_key)
    except ApplicationError:
        return None
    return widget if origin_allowed(widget, origin) else None


def _resume(widget: Any, token: str) -> tuple[Any, dict[str, Any]]:
    from fedele.contact_center.selectors.messaging import transcript
    from fedele.contact_center.services.chat import session_for_token

    session = session_for_token(widget, token)
    interaction = session.interaction
    agent_name = ""
    if interaction is not None and interaction.agent_id is not None:
        agent_name = interaction.agent.display_name if interaction.agent else ""
    return session, {
        "type": "ready",
        "session": str(session.public_id),
        "state": session.state,
        "agent": agent_name,
        "messages": transcript(interaction) if interaction is not None else [],
    }


def _message(session: Any, body: str, client_id: str) -> Any:
    from fedele.contact_center.services.chat import chat_visitor_message_store

    with translation.override(session.language or None):  # a refusal's text in the visitor's language
        return chat_visitor_message_store(session=session, body=body, client_id=client_id)


def _typing(session: Any, typing: bool) -> None:
    from fedele.contact_center.services.chat import chat_visitor_typing

    chat_visitor_typing(session=session, typing=typing)


def _end(session: Any, transcript_to: str) -> None:
    from fedele.contact_center.services.chat import chat_end

    with translation.override(session.language or None):
        chat_end(session=session, transcript_to=transcript_to)


# Not thread-sensitive: hundreds of visitors write at once, each on a pooled thread with its own
# database connection, instead of queueing behind one thread.
_widget_if_allowed_async = database_sync_to_async(_widget_if_allowed)
_resume_async = database_sync_to_async(_resume, thread_sensitive=False)
_message_async = database_sync_to_async(_message, thread_sensitive=False)
_typing_async = database_sync_to_async(_typing, thread_sensitive=False)
_end_async = database_sync_to_async(_end, thread_sensitive=False)


class _Window:
    """A fixed-window counter: cheap per-connection flood control."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.started = time.monotonic()
        self.count = 0

    def allow(self) -> bool:
        now = time.monotonic()
        if now - self.started >= WINDOW_SECONDS:
            self.started, self.count = now, 0
        self.count += 1
        return self.count <= self.limit


class ChatVisitorConsumer(AsyncJsonWebsocketConsumer):
    widget: Any = None
    session: Any = None
    group_name = ""

    async def connect(self) -> None:
        widget_key = str(self.scope["url_route"]["kwargs"]["widget_key"])
        origin = _header(self.scope, b"origin")
        self.widget = await _widget_if_allowed_async(widget_key, origin)
        if self.widget is None:
            await self.close(code=REFUSED)
            return
        self.messages = _Window(MESSAGES_PER_WINDOW)
        self.typing_signals = _Window(TYPING_PER_WINDOW)
        self.frame_limit = self.widget.max_message_chars * 4 + FRAME_OVERHEAD_BYTES
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if text_data is None:
            await self._error("chat_frame_invalid", _("Send JSON text frames."))
            return
        if len(text_data) > self.frame_limit:
            # Refused before parsing: a message this size cannot be within the widget's limit.
            await self._error(
                "chat_message_too_long",
                _("The message is longer than %(limit)s characters."),
                params={"limit": self.widget.max_message_chars},
            )
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self._error("chat_frame_invalid", _("Send JSON text frames."))
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict):
            await self._error("chat_frame_invalid", _("Send JSON objects."))
            return
        kind = content.get("type")
        if kind == "resume":
            await self._on_resume(str(content.get("token") or ""))
            return
        if self.session is None:
            await self._error("chat_not_started", _("Resume the chat with its token first."))
            return
        if kind == "message":
            await self._on_message(content)
        elif kind == "typing":
            if self.typing_signals.allow():
                await _typing_async(self.session, content.get("typing") is True)
        elif kind == "end":
            try:
                await _end_async(self.session, str(content.get("transcript_to") or ""))
            except ApplicationError as error:
                await self._error(error.code, error.message)
        else:
            await self._error("chat_frame_invalid", _("Unknown message type."))

    async def _on_resume(self, token: str) -> None:
        from fedele.contact_center.services.messaging import visitor_group

        try:
            session, ready = await _resume_async(self.widget, token)
        except ApplicationError as error:
            await self._error(error.code, error.message)
            await self.close(code=NOT_AUTHENTICATED)
            return
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)
        self.session = session
        self.group_name = visitor_group(session.public_id)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.send_json(ready)

    async def _on_message(self, content: dict[str, Any]) -> None:
        client_id = str(content.get("client_id") or "")[:100]
        if not self.messages.allow():
            await self._error(
                "rate_limited", _("Too many messages: wait a few seconds."), client_id=client_id
            )
            return
        try:
            stored = await _message_async(self.session, str(content.get("body") or ""), client_id)
        except ApplicationError as error:
            await self._error(error.code, error.message, client_id=client_id)
            return
        await self.send_json({"type": "ack", "client_id": client_id, "id": str(stored.message.public_id)})
        if stored.resent:
            return
        # Pushed from here (the write has committed): no worker thread waits on the event loop.
        await self.channel_layer.group_send(
            self.group_name, {"type": "cc.visitor.message", "data": {"message": stored.payload}}
        )
        if stored.agent_id is not None:
            interaction = self.session.interaction
            await self.channel_layer.group_send(
                agent_group(stored.agent_id),
                {
                    "type": "cc.chat.message",
                    "data": {
                        "interaction": str(interaction.public_id),
                        "number": interaction.number,
                        "message": stored.payload,
                    },
                },
            )

    def _language(self) -> str | None:
        """The visitor's language: the chat's, else their browser's (Accept-Language), else the site's."""
        if self.session is not None and self.session.language:
            return str(self.session.language)
        from fedele.shared.fastpath import accept_language

        return accept_language(_header(self.scope, b"accept-language"))

    async def _error(
        self, code: str, message: Any, *, client_id: str = "", params: dict[str, Any] | None = None
    ) -> None:
        with translation.override(self._language()):
            text = str(message) % params if params else str(message)
        payload: dict[str, Any] = {"type": "error", "code": code, "message": text}
        if client_id:
            payload["client_id"] = client_id
        await self.send_json(payload)

    # --- group messages (from services.messaging / services.chat, after commit) -----------------

    async def cc_visitor_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "message", **event["data"]["message"]})

    async def cc_visitor_typing(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "typing", "typing": bool(event["data"].get("typing"))})

    async def cc_visitor_ended(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "ended"})


urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/contact-center/chat/<str:widget_key>/", ChatVisitorConsumer.as_asgi()),
]

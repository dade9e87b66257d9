"""Reads of the messaging area: widgets by key, chat sessions, transcripts as the JSON the widget and
the agent desktop render, messaging channels."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.db.models import QuerySet
from django.urls import reverse

from fedele.contact_center.models import (
    ChatSession,
    ChatWidget,
    Interaction,
    InteractionMessage,
    MessagingChannel,
)
from fedele.shared.errors import NotFound

FILE_SIGNATURE_SALT = "contact_center.chat.file"
FILE_LINK_MAX_AGE_SECONDS = 24 * 3600


def widget_by_key(public_key: str, *, active_only: bool = True) -> ChatWidget:
    widgets = ChatWidget.objects.select_related("queue")
    if active_only:
        widgets = widgets.filter(active=True)
    widget = widgets.filter(public_key=str(public_key)[:40]).first()
    if widget is None:
        raise NotFound("No such chat widget.", code="chat_widget_not_found")
    return widget


def widget_list() -> QuerySet[ChatWidget]:
    return ChatWidget.objects.select_related("queue").order_by("name", "id")


def channel_list() -> QuerySet[MessagingChannel]:
    return MessagingChannel.objects.select_related("queue").order_by("code")


def channel_by_code(code: str, *, active_only: bool = True) -> MessagingChannel:
    """An active channel (the webhook's lookup) or, for the settings pages, any channel."""
    queryset = MessagingChannel.objects.select_related("queue").filter(code=str(code)[:40])
    channel = (queryset.filter(active=True) if active_only else queryset).first()
    if channel is None:
        raise NotFound("No such messaging channel.", code="messaging_channel_not_found")
    return channel


def session_for_interaction(interaction: Interaction) -> ChatSession | None:
    return ChatSession.objects.select_related("widget").filter(interaction=interaction).first()


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL or an Origin header, lower case; "" when it has none."""
    parts = urlsplit((url or "").strip())
    if not parts.scheme or not parts.hostname:
        return ""
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        return ""
    suffix = f":{port}" if port and port != default_port else ""
    return f"{parts.scheme.lower()}://{parts.hostname.lower()}{suffix}"


def is_own_origin(origin: str) -> bool:
    """Whether an origin is fedele's own: its public URL, or any port of a host in ALLOWED_HOSTS (the
    rule the project's AllowedHostsOriginValidator applies to every websocket)."""
    from django.http.request import validate_host

    normalised = origin_of(origin)
    if not normalised:
        return False
    if normalised == origin_of(settings.FEDELE_PUBLIC_URL):
        return True
    hostname = urlsplit(normalised).hostname or ""
    return validate_host(hostname, [host for host in settings.ALLOWED_HOSTS if host != "*"])


def widget_embedding_origins(widget: ChatWidget) -> list[str]:
    """The sites that may embed the widget (normalised, as the browser sends them)."""
    return sorted({origin_of(str(value)) for value in widget.allowed_origins or []} - {""})


def origin_allowed(widget: ChatWidget, origin: str) -> bool:
    """Whether a page at ``origin`` may talk to the widget: one of the widget's allowed origins or
    fedele's own (the widget's frame is served by fedele). A missing origin is refused: browsers
    always send one on websockets and POSTs."""
    normalised = origin_of(origin)
    if not normalised:
        return False
    return is_own_origin(normalised) or normalised in widget_embedding_origins(widget)


def file_url(message: InteractionMessage, index: int) -> str:
    """A download link for one attachment, signed so the visitor needs no account (and it expires)."""
    signature = signing.dumps([str(message.public_id), index], salt=FILE_SIGNATURE_SALT, compress=True)
    path = reverse("contact_center:chat_file", args=[message.public_id, index])
    return f"{path}?s={signature}"


def file_signature_valid(message_public_id: str, index: int, signature: str) -> bool:
    try:
        value = signing.loads(signature, salt=FILE_SIGNATURE_SALT, max_age=FILE_LINK_MAX_AGE_SECONDS)
    except signing.BadSignature:
        return False
    return value == [str(message_public_id), index]


def message_payload(message: InteractionMessage, *, author: str = "") -> dict[str, Any]:
    """One transcript message as JSON (what the widget and the desktop render, always as text)."""
    attachments = [
        {
            "name": str(item.get("name", "")),
            "content_type": str(item.get("content_type", "")),
            "size": int(item.get("size", 0)),
            "url": file_url(message, index),
        }
        for index, item in enumerate(message.attachments or [])
    ]
    client_id = message.provider_ref[len("visitor:") :] if message.provider_ref.startswith("visitor:") else ""
    return {
        "id": str(message.public_id),
        "client_id": client_id,
        "sender": message.sender,
        "author": author,
        "body": message.body,
        "attachments": attachments,
        "created_at": message.created_at.isoformat(),
    }


def transcript(interaction: Interaction) -> list[dict[str, Any]]:
    """The conversation so far, oldest first (the desktop shows it when the agent accepts a chat)."""
    session = session_for_interaction(interaction)
    visitor = session.visitor_name if session else interaction.from_address
    messages = InteractionMessage.objects.filter(interaction=interaction).select_related("agent")
    return [
        message_payload(
            message,
            author=(message.agent.display_name if message.agent else "")
            if message.sender == InteractionMessage.Sender.AGENT
            else (visitor if message.sender == InteractionMessage.Sender.CUSTOMER else ""),
        )
        for message in messages.order_by("created_at", "id")
    ]

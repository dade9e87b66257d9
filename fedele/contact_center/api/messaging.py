"""The messaging area's API under /api/v1/contact-center/: chat widgets and SMS/social channels
(settings), consent-aware outbound messages, and an agent's conversation (transcript, reply).
POSTs take an Idempotency-Key (the middleware replays the first response)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status

from fedele.contact_center.models import Agent, ChatWidget, Interaction, MessagingChannel
from fedele.contact_center.selectors import messaging as selectors
from fedele.contact_center.services import messaging as messaging_services
from fedele.contact_center.services import sms_social
from fedele.contact_center.services.chat import widget_save
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import NotFound, PermissionDenied

router = Router(tags=["contact center: messaging"])

MANAGE = "contact_center.manage_contact_center"
HANDLE = "contact_center.handle_interactions"
SUPERVISE = "contact_center.view_all_interactions"
CAMPAIGNS = "contact_center.run_campaigns"


def _require(request: HttpRequest, permission: str, scope: str) -> None:
    require_scope(request, scope)
    if not request.user.has_perm(permission):
        raise PermissionDenied(_("You may not do this."), code="permission_denied")


# --- widgets ----------------------------------------------------------------------------------------


class Topic(StrictSchema):
    code: str = Field(..., max_length=40)
    label_it: str = Field("", max_length=80)
    label_en: str = Field("", max_length=80)
    queue_code: str = ""
    skills: dict[str, int] = {}


class WidgetIn(StrictSchema):
    name: str
    queue: str
    allowed_origins: list[str] = []
    topics: list[Topic] = []
    greeting_it: str = ""
    greeting_en: str = ""
    consent_text_it: str = ""
    consent_text_en: str = ""
    primary_colour: str = "#1f6feb"
    max_message_chars: int = 2000
    max_upload_bytes: int = 5 * 1024 * 1024
    allowed_upload_types: list[str] = [
        "image/png",
        "image/jpeg",
        "image/gif",
        "application/pdf",
        "text/plain",
    ]
    calendar_code: str = ""
    require_email: bool = True
    offline_when_no_agent: bool = True
    active: bool = True


class WidgetOut(Schema):
    key: str
    name: str
    queue: str
    allowed_origins: list[str]
    topics: list[dict[str, Any]]
    max_message_chars: int
    max_upload_bytes: int
    allowed_upload_types: list[str]
    calendar_code: str
    require_email: bool
    offline_when_no_agent: bool
    active: bool
    embed_code: str


def _widget_out(widget: ChatWidget) -> dict[str, Any]:
    from django.conf import settings
    from django.urls import reverse

    script = f"{settings.FEDELE_PUBLIC_URL}{reverse('contact_center:chat_widget_script')}"
    return {
        "key": widget.public_key,
        "name": widget.name,
        "queue": widget.queue.code,
        "allowed_origins": list(widget.allowed_origins or []),
        "topics": list(widget.topics or []),
        "max_message_chars": widget.max_message_chars,
        "max_upload_bytes": widget.max_upload_bytes,
        "allowed_upload_types": list(widget.allowed_upload_types or []),
        "calendar_code": widget.calendar_code,
        "require_email": widget.require_email,
        "offline_when_no_agent": widget.offline_when_no_agent,
        "active": widget.active,
        "embed_code": f'<script src="{script}" data-widget="{widget.public_key}" async></script>',
    }


def _widget_values(payload: WidgetIn) -> dict[str, Any]:
    import json

    data = payload.model_dump()
    return {
        **{
            key: value
            for key, value in data.items()
            if key not in ("allowed_origins", "topics", "allowed_upload_types")
        },
        "allowed_origins": "\n".join(payload.allowed_origins),
        "topics": json.dumps(data["topics"]),
        "allowed_upload_types": ", ".join(payload.allowed_upload_types),
        "max_message_chars": str(payload.max_message_chars),
        "max_upload_bytes": str(payload.max_upload_bytes),
    }


@router.get(
    "/messaging/widgets", response={200: list[WidgetOut], **ERROR_RESPONSES}, summary="List chat widgets"
)
def list_widgets(request: HttpRequest) -> list[dict[str, Any]]:
    _require(request, MANAGE, "read")
    return [_widget_out(widget) for widget in selectors.widget_list()]


@router.post(
    "/messaging/widgets", response={201: WidgetOut, **ERROR_RESPONSES}, summary="Create a chat widget"
)
def create_widget(request: HttpRequest, payload: WidgetIn) -> Status:
    _require(request, MANAGE, "write")
    widget = widget_save(widget=None, values=_widget_values(payload), actor_id=request.user.pk)
    return Status(201, _widget_out(widget))


@router.put(
    "/messaging/widgets/{key}", response={200: WidgetOut, **ERROR_RESPONSES}, summary="Change a chat widget"
)
def update_widget(request: HttpRequest, key: str, payload: WidgetIn) -> dict[str, Any]:
    _require(request, MANAGE, "write")
    widget = selectors.widget_by_key(key, active_only=False)
    return _widget_out(widget_save(widget=widget, values=_widget_values(payload), actor_id=request.user.pk))


# --- channels ---------------------------------------------------------------------------------------


class ChannelIn(StrictSchema):
    code: str
    name: str
    kind: Literal["twilio", "generic"]
    network: str = "sms"
    address: str = ""
    queue: str
    secret_env: str = ""
    outbound_url: str = ""
    outbound_token_env: str = ""
    active: bool = True


class ChannelOut(Schema):
    id: UUID
    code: str
    name: str
    kind: str
    network: str
    address: str
    queue: str
    secret_env: str
    secret_configured: bool
    outbound_url: str
    outbound_token_env: str
    active: bool
    webhook_url: str


def _channel_out(channel: MessagingChannel) -> dict[str, Any]:
    from django.conf import settings
    from django.urls import reverse

    return {
        "id": channel.public_id,
        "code": channel.code,
        "name": channel.name,
        "kind": channel.kind,
        "network": channel.network,
        "address": channel.address,
        "queue": channel.queue.code,
        "secret_env": channel.secret_env,
        "secret_configured": bool(sms_social.channel_secret(channel)),
        "outbound_url": channel.outbound_url,
        "outbound_token_env": channel.outbound_token_env,
        "active": channel.active,
        "webhook_url": settings.FEDELE_PUBLIC_URL
        + reverse("contact_center:messaging_webhook", args=[channel.code]),
    }


@router.get(
    "/messaging/channels", response={200: list[ChannelOut], **ERROR_RESPONSES}, summary="List channels"
)
def list_channels(request: HttpRequest) -> list[dict[str, Any]]:
    _require(request, MANAGE, "read")
    return [_channel_out(channel) for channel in selectors.channel_list()]


@router.post("/messaging/channels", response={201: ChannelOut, **ERROR_RESPONSES}, summary="Create a channel")
def create_channel(request: HttpRequest, payload: ChannelIn) -> Status:
    _require(request, MANAGE, "write")
    channel = sms_social.channel_save(channel=None, values=payload.model_dump(), actor_id=request.user.pk)
    return Status(201, _channel_out(channel))


@router.put(
    "/messaging/channels/{code}", response={200: ChannelOut, **ERROR_RESPONSES}, summary="Change a channel"
)
def update_channel(request: HttpRequest, code: str, payload: ChannelIn) -> dict[str, Any]:
    _require(request, MANAGE, "write")
    channel = MessagingChannel.objects.select_related("queue").filter(code=code).first()
    if channel is None:
        raise NotFound(_("No such messaging channel."), code="messaging_channel_not_found")
    saved = sms_social.channel_save(channel=channel, values=payload.model_dump(), actor_id=request.user.pk)
    return _channel_out(saved)


# --- outbound -----------------------------------------------------------------------------------------


class SendIn(StrictSchema):
    channel: str
    to: str = Field(..., max_length=120)
    body: str = Field(..., max_length=4000)
    purpose: Literal["service", "marketing"]
    customer_id: UUID | None = None


class SentOut(Schema):
    id: UUID
    channel: str
    to: str
    purpose: str
    provider_ref: str
    sent_at: datetime


@router.post(
    "/messaging/send", response={201: SentOut, **ERROR_RESPONSES}, summary="Send an SMS or social message"
)
def send_message(request: HttpRequest, payload: SendIn) -> Status:
    """Consent-aware: refused (403 consent_missing / opted_out) without the customer's consent in
    force for the channel and purpose; marketing also needs the campaigns permission."""
    _require(request, CAMPAIGNS if payload.purpose == "marketing" else HANDLE, "write")
    channel = selectors.channel_by_code(payload.channel)
    sent = sms_social.message_send(
        channel=channel,
        to=payload.to,
        body=payload.body,
        purpose=payload.purpose,
        customer_public_id=str(payload.customer_id or ""),
        actor_id=request.user.pk,
    )
    return Status(
        201,
        {
            "id": sent.public_id,
            "channel": channel.code,
            "to": sent.to_address,
            "purpose": sent.purpose,
            "provider_ref": sent.provider_ref,
            "sent_at": sent.sent_at,
        },
    )


# --- an agent's conversation --------------------------------------------------------------------------


class MessageOut(Schema):
    id: UUID
    client_id: str
    sender: str
    author: str
    body: str
    attachments: list[dict[str, Any]]
    created_at: datetime


class ReplyIn(StrictSchema):
    body: str = Field(..., max_length=10_000)


def _conversation(request: HttpRequest, interaction_id: UUID) -> tuple[Interaction, Agent | None]:
    require_scope(request, "read")
    interaction = Interaction.objects.filter(public_id=interaction_id).first()
    agent = Agent.objects.filter(user_id=request.user.pk or 0).first()
    mine = interaction is not None and agent is not None and interaction.agent_id == agent.pk
    if interaction is None or not (mine or request.user.has_perm(SUPERVISE)):
        raise NotFound(_("This contact does not exist."), code="interaction_not_found")
    return interaction, agent


@router.get(
    "/interactions/{interaction_id}/transcript",
    response={200: list[MessageOut], **ERROR_RESPONSES},
    summary="A conversation's messages",
)
def conversation_transcript(request: HttpRequest, interaction_id: UUID) -> list[dict[str, Any]]:
    interaction, _agent = _conversation(request, interaction_id)
    return selectors.transcript(interaction)


@router.post(
    "/interactions/{interaction_id}/messages",
    response={201: MessageOut, **ERROR_RESPONSES},
    summary="Reply in a chat, SMS or social conversation",
)
def conversation_reply(request: HttpRequest, interaction_id: UUID, payload: ReplyIn) -> Status:
    require_scope(request, "write")
    interaction, agent = _conversation(request, interaction_id)
    if agent is None or not request.user.has_perm(HANDLE):
        raise PermissionDenied(
            _("Only the agent handling this contact can reply."), code="not_your_interaction"
        )
    message = messaging_services.chat_message_send(interaction=interaction, agent=agent, body=payload.body)
    return Status(201, selectors.message_payload(message, author=agent.display_name))

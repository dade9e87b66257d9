"""SMS and social messages through provider webhooks, in and out.

Inbound, two formats (``MessagingChannel.kind``):

- **Twilio** (SMS and WhatsApp): form parameters ``From``, ``To``, ``Body``, ``MessageSid``,
  ``NumMedia`` / ``MediaUrl0``… signed with ``X-Twilio-Signature`` (the channel's auth token, checked
  by the telephony area's ``twilio_signature_valid``);
- **generic JSON** (WhatsApp Cloud, Telegram-style bridges): one object ``{"id", "from", "to", "text",
  "name"?, "media"?: [{"url", "content_type"}]}`` or ``{"messages": [...]}``, signed with
  ``Fedele-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`` (the same scheme as
  fedele's own outbound webhooks, with its 5-minute replay window).

An unsigned or forged request is refused (403) and logged; nothing changes. A provider's retry of a
message already received (same provider message id) changes nothing. A message joins the sender's
open conversation on the channel, or opens one (an Interaction, queued for the channel's queue).

Keywords: STOP, STOP ALL, ANNULLA, CANCELLA (any case, trimmed) record an opt-out (a marketing
consent withdrawal through the customers facade for a known customer, and a MessagingOptOut row) and
confirm once; a document keyword (FATTURA, …) goes to document-on-demand.

Outbound is consent-aware: a service message inside an open conversation is always allowed; anything
else needs the customer's consent in force for the channel and purpose, and marketing is refused to an
opted-out address.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext as _

from fedele.contact_center.models import (
    Agent,
    Interaction,
    InteractionMessage,
    InteractionState,
    MessagingChannel,
    MessagingChannelKind,
    MessagingOptOut,
    MessagingReceipt,
    OutboundMessage,
    OutboundPurpose,
)
from fedele.contact_center.selectors.messaging import message_payload
from fedele.contact_center.services.messaging import push_to_agent
from fedele.shared import audit, clock
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed

logger = logging.getLogger(__name__)

OPT_OUT_KEYWORDS = frozenset({"STOP", "STOP ALL", "STOPALL", "ANNULLA", "CANCELLA"})
MAX_BODY_CHARS = 1600
MAX_MEDIA = 10
OPEN_STATES = (
    InteractionState.IVR,
    InteractionState.QUEUED,
    InteractionState.OFFERED,
    InteractionState.CONNECTED,
)
# The customers module's consent channels for each network (a network without one, e.g. Telegram,
# keeps its opt-outs only here).
CONSENT_CHANNEL = {"sms": "sms", "whatsapp": "whatsapp"}
HTTP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class InboundMessage:
    provider_message_id: str
    sender: str
    recipient: str
    body: str
    sender_name: str = ""
    media: tuple[dict[str, str], ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class InboundResult:
    kind: str  # "message", "opt_out", "document"
    duplicate: bool
    interaction: Interaction | None = None


class WebhookRefused(PermissionDenied):
    """The request is not the provider's (no signature, a wrong one, a stale one)."""


# --- signatures and parsing ------------------------------------------------------------------------


def channel_secret(channel: MessagingChannel) -> str:
    """The signing secret, from the environment variable the channel names (never stored)."""
    if not channel.secret_env:
        return ""
    return os.environ.get(channel.secret_env, "")


def twilio_request_valid(
    channel: MessagingChannel, *, url: str, params: Mapping[str, Any], signature: str
) -> bool:
    from fedele.contact_center.telephony.twilio import twilio_signature_valid

    return twilio_signature_valid(url, params, signature, channel_secret(channel))


def generic_request_valid(channel: MessagingChannel, *, body: bytes, signature: str) -> bool:
    from fedele.shared.webhooks import verify_signature

    secret = channel_secret(channel)
    return bool(secret) and bool(signature) and verify_signature(secret, signature, body)


def refuse(channel_code: str, reason: str, *, remote: str = "") -> WebhookRefused:
    """Log a refused webhook (a forgery attempt or a misconfigured provider) and build the 403."""
    logger.warning("Messaging webhook refused: channel=%s reason=%s remote=%s", channel_code, reason, remote)
    return WebhookRefused(_("The request is not signed by the provider."), code="webhook_signature_invalid")


def _first(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name, "")
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return str(value)


def parse_twilio(params: Mapping[str, Any]) -> InboundMessage:
    sid = _first(params, "MessageSid") or _first(params, "SmsMessageSid")
    sender = _first(params, "From").strip()
    if not sid or not sender:
        raise ValidationFailed(_("MessageSid and From are required."), code="webhook_payload_invalid")
    try:
        media_count = min(int(_first(params, "NumMedia") or 0), MAX_MEDIA)
    except ValueError:
        media_count = 0
    media = tuple(
        {
            "url": _first(params, f"MediaUrl{index}"),
            "content_type": _first(params, f"MediaContentType{index}"),
        }
        for index in range(media_count)
        if _first(params, f"MediaUrl{index}")
    )
    return InboundMessage(
        provider_message_id=sid[:120],
        sender=sender[:120],
        recipient=_first(params, "To").strip()[:120],
        body=_first(params, "Body")[: MAX_BODY_CHARS * 4],
        sender_name=_first(params, "ProfileName")[:120],
        media=media,
    )


def parse_generic(body: bytes) -> list[InboundMessage]:
    try:
        payload = json.loads(body)
    except ValueError:
        raise ValidationFailed(_("The body is not JSON."), code="webhook_payload_invalid") from None
    items = payload.get("messages") if isinstance(payload, dict) and "messages" in payload else [payload]
    if not isinstance(items, list) or not items:
        raise ValidationFailed(_("No messages in the body."), code="webhook_payload_invalid")
    parsed: list[InboundMessage] = []
    for item in items:
        if not isinstance(item, dict) or not str(item.get("id") or "") or not str(item.get("from") or ""):
            raise ValidationFailed(
                _("Every message needs an id and a sender."), code="webhook_payload_invalid"
            )
        raw_media = item.get("media")
        media_items: list[Any] = raw_media if isinstance(raw_media, list) else []
        parsed.append(
            InboundMessage(
                provider_message_id=str(item["id"])[:120],
                sender=str(item["from"]).strip()[:120],
                recipient=str(item.get("to") or "").strip()[:120],
                body=str(item.get("text") or "")[: MAX_BODY_CHARS * 4],
                sender_name=str(item.get("name") or "")[:120],
                media=tuple(
                    {"url": str(m.get("url") or ""), "content_type": str(m.get("content_type") or "")}
                    for m in media_items[:MAX_MEDIA]
                    if isinstance(m, dict) and m.get("url")
                ),
            )
        )
    return parsed


# --- addresses, consent -----------------------------------------------------------------------------


def bare_address(address: str) -> str:
    """``whatsapp:+39333…`` → ``+39333…``; a handle stays as it is."""
    value = (address or "").strip()
    for scheme in ("whatsapp:", "sms:", "tel:"):
        if value.lower().startswith(scheme):
            return value[len(scheme) :]
    return value


def normalised_address(network: str, address: str) -> str:
    """The form opt-outs and the send log use: E.164 for phone networks (``333 123 4567`` →
    ``+393331234567``; ValidationFailed when it is not a number), the bare handle otherwise."""
    bare = bare_address(address)
    if network in CONSENT_CHANNEL:
        from fedele.shared.sms import e164

        return e164(bare)
    return bare


def keyword_of(body: str) -> str:
    """The text as a keyword: spaces collapsed, upper case, and the punctuation people add around a
    keyword ("Stop!", "ANNULLA.") dropped from both ends, so the opt-out is honoured."""
    return " ".join((body or "").split()).upper().strip(_KEYWORD_PUNCTUATION).strip()


_KEYWORD_PUNCTUATION = " .,;:!?¡¿\"'«»“”‘’()"


def is_opted_out(channel: MessagingChannel, address: str) -> bool:
    return MessagingOptOut.objects.filter(
        network=channel.network, address=normalised_address(channel.network, address)
    ).exists()


def _consent_granted(customer_public_id: str, channel: MessagingChannel, purpose: str) -> bool:
    consent_channel = CONSENT_CHANNEL.get(channel.network)
    if not customer_public_id or consent_channel is None:
        return False
    from fedele.customers.facade import consents_in_force

    state = consents_in_force(customer_public_id).get((consent_channel, purpose))
    return bool(state and state.granted)


# --- inbound --------------------------------------------------------------------------------------


def receive(
    channel: MessagingChannel, message: InboundMessage, *, at: datetime | None = None
) -> InboundResult:
    """One inbound message, exactly once (a retry with the same provider id changes nothing)."""
    moment = at or clock.now()
    existing = MessagingReceipt.objects.filter(
        channel=channel, provider_message_id=message.provider_message_id
    ).first()
    if existing is not None:
        return InboundResult(kind=existing.kind, duplicate=True, interaction=existing.interaction)
    keyword = keyword_of(message.body)
    try:
        with transaction.atomic():
            if keyword in OPT_OUT_KEYWORDS and not message.media:
                result = _opt_out(channel, message, keyword, moment)
            elif _document_keyword(keyword) and not message.media:
                result = _document_request(channel, message, keyword, moment)
            else:
                result = _thread(channel, message, moment)
            MessagingReceipt.objects.create(
                channel=channel,
                provider_message_id=message.provider_message_id,
                interaction=result.interaction,
                kind=result.kind,
                received_at=moment,
            )
    except IntegrityError:
        # The same message arrived twice at once; the other request stored it.
        existing = MessagingReceipt.objects.filter(
            channel=channel, provider_message_id=message.provider_message_id
        ).first()
        if existing is None:
            raise
        return InboundResult(kind=existing.kind, duplicate=True, interaction=existing.interaction)
    return result


def _serialise_sender(channel: MessagingChannel, sender: str) -> None:
    """A burst of messages from one sender, delivered at once, must thread into one conversation: on
    PostgreSQL they queue on an advisory lock keyed by channel and sender until the first one's
    transaction (which may open the conversation) commits (SQLite already runs one writer at a time;
    a row lock would not do: there is no row yet)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"cc-messaging:{channel.pk}:{sender}"])


def _open_conversation(channel: MessagingChannel, sender: str) -> Interaction | None:
    _serialise_sender(channel, sender)
    candidates = (
        Interaction.objects.select_for_update()
        .filter(channel=channel.channel, network=channel.network, from_address=sender, state__in=OPEN_STATES)
        .order_by("-created_at", "-id")
    )
    for interaction in candidates[:5]:
        if (interaction.attributes or {}).get("messaging_channel") == channel.code:
            return interaction
    return None


def _thread(channel: MessagingChannel, message: InboundMessage, moment: datetime) -> InboundResult:
    from fedele.contact_center.services.interactions import interaction_create, interaction_enqueue

    interaction = _open_conversation(channel, message.sender)
    opened = interaction is None
    if interaction is None:
        interaction = interaction_create(
            channel=channel.channel,
            direction="inbound",
            from_address=message.sender,
            to_address=message.recipient or channel.address,
            subject=(message.body or _("Message")).strip()[:80],
            network=channel.network,
            provider=channel.kind,
            attributes={"messaging_channel": channel.code, "sender_name": message.sender_name},
            at=moment,
        )
    stored = InteractionMessage.objects.create(
        interaction=interaction,
        sender=InteractionMessage.Sender.CUSTOMER,
        body=message.body[: MAX_BODY_CHARS * 4],
        attachments=[{"name": f"media-{index + 1}", **item} for index, item in enumerate(message.media)],
        provider_ref=message.provider_message_id,
        created_at=moment,
    )
    if opened:
        interaction_enqueue(interaction=interaction, queue_code=channel.queue.code, at=moment)
    else:
        push_to_agent(
            interaction, "cc.chat.message", {"message": message_payload(stored, author=message.sender_name)}
        )
    return InboundResult(kind="message", duplicate=False, interaction=interaction)


def _opt_out(
    channel: MessagingChannel, message: InboundMessage, keyword: str, moment: datetime
) -> InboundResult:
    from fedele.contact_center.services.interactions import identify_customer

    try:
        address = normalised_address(channel.network, message.sender)
    except ValidationFailed:
        address = bare_address(message.sender)
    customer = identify_customer(address)
    _row, created = MessagingOptOut.objects.get_or_create(
        network=channel.network,
        address=address,
        defaults={"keyword": keyword, "customer_public_id": customer, "created_at": moment},
    )
    if not created:
        # Already opted out: confirmed the first time, nothing more to say.
        return InboundResult(kind="opt_out", duplicate=False)
    consent_channel = CONSENT_CHANNEL.get(channel.network)
    if customer and consent_channel:
        from fedele.customers.facade import consent_change

        consent_change(
            actor=None,
            customer_public_id=customer,
            channel=consent_channel,
            purpose="marketing",
            granted=False,
            source="contact_center",
            evidence=f"{channel.code}: {keyword} ({message.provider_message_id})",
        )
    audit.record(
        action="contact_center.messaging_opt_out",
        object_type="contact_center.messaging_channel",
        object_id=channel.code,
        after={"network": channel.network, "keyword": keyword, "customer": customer},
    )
    confirmation = _(
        "You will receive no more promotional messages from us. Write to us at any time for help."
    )
    sender = message.sender
    transaction.on_commit(lambda: _confirm(channel, sender, confirmation))
    return InboundResult(kind="opt_out", duplicate=False)


def _confirm(channel: MessagingChannel, to: str, body: str) -> None:
    try:
        provider_ref = deliver(channel, to=to, body=body)
    except Exception:
        logger.exception("Opt-out confirmation to %s on %s could not be sent", channel.network, channel.code)
        return
    OutboundMessage.objects.create(
        channel=channel,
        to_address=bare_address(to),
        body=body,
        purpose=OutboundPurpose.SERVICE,
        provider_ref=provider_ref,
        sent_at=clock.now(),
    )


def _documents_service() -> Any:
    try:
        from fedele.contact_center.services import documents
    except ImportError:
        return None
    return documents if hasattr(documents, "document_request_by_keyword") else None


def _document_keyword(keyword: str) -> bool:
    """Whether the text starts with an active document's keyword (FATTURA, MANUALE…)."""
    word = keyword.split(" ", 1)[0] if keyword else ""
    if not word or len(word) > 20 or _documents_service() is None:
        return False
    from fedele.contact_center.models import Document

    return Document.objects.filter(sms_keyword=word, active=True).exists()


def _document_request(
    channel: MessagingChannel, message: InboundMessage, keyword: str, moment: datetime
) -> InboundResult:
    """Document-on-demand by SMS; when it cannot be served (an unidentified number for a personal
    document, a keyword gone meanwhile) the text goes to an agent like any message."""
    try:
        with transaction.atomic():
            _documents_service().document_request_by_keyword(
                from_number=bare_address(message.sender),
                keyword=keyword,
                message_ref=message.provider_message_id,
            )
    except (NotFound, PermissionDenied, ValidationFailed):
        return _thread(channel, message, moment)
    return InboundResult(kind="document", duplicate=False)


# --- outbound -------------------------------------------------------------------------------------


def _http_client() -> httpx.Client:
    """Tests replace this with a client on an ``httpx.MockTransport``."""
    return httpx.Client(timeout=HTTP_TIMEOUT_SECONDS)


def deliver(channel: MessagingChannel, *, to: str, body: str) -> str:
    """Hand one message to the channel's provider; returns the provider's message id. Raises
    ValidationFailed for a bad number or body (nothing sent) and an error from the provider."""
    if channel.kind == MessagingChannelKind.TWILIO and channel.network == "sms":
        from fedele.shared.sms import send_sms

        return send_sms(bare_address(to), body, sender=channel.address or None).provider_id
    if channel.kind == MessagingChannelKind.TWILIO:
        return _twilio_whatsapp(channel, to=to, body=body)
    return _generic_send(channel, to=to, body=body)


def _twilio_whatsapp(channel: MessagingChannel, *, to: str, body: str) -> str:
    from fedele.shared.sms import SmsSendFailed, e164

    account = str(getattr(settings, "FEDELE_TWILIO_ACCOUNT_SID", ""))
    token = channel_secret(channel) or str(getattr(settings, "FEDELE_TWILIO_AUTH_TOKEN", ""))
    base = str(getattr(settings, "FEDELE_TWILIO_BASE_URL", "https://api.twilio.com")).rstrip("/")
    if not account or not token:
        raise SmsSendFailed("Twilio credentials are not configured.")
    network = channel.network
    form = {
        "To": f"{network}:{e164(bare_address(to))}",
        "From": f"{network}:{bare_address(channel.address)}",
        "Body": body,
    }
    with _http_client() as client:
        response = client.post(
            f"{base}/2010-04-01/Accounts/{account}/Messages.json", data=form, auth=(account, token)
        )
    if response.status_code not in (200, 201):
        raise SmsSendFailed(
            f"Twilio refused the message (HTTP {response.status_code}).", status=response.status_code
        )
    return str(_json(response).get("sid") or "")


def _generic_send(channel: MessagingChannel, *, to: str, body: str) -> str:
    from fedele.shared.sms import SmsSendFailed

    if not channel.outbound_url:
        raise SmsSendFailed(f"The channel {channel.code} has no outbound URL.")
    headers = {"Content-Type": "application/json"}
    token = os.environ.get(channel.outbound_token_env, "") if channel.outbound_token_env else ""
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with _http_client() as client:
            response = client.post(
                channel.outbound_url, json={"to": bare_address(to), "text": body}, headers=headers
            )
    except httpx.HTTPError as error:
        raise SmsSendFailed(f"The provider could not be reached: {error.__class__.__name__}.") from error
    if response.status_code >= 300:
        raise SmsSendFailed(
            f"The provider refused the message (HTTP {response.status_code}).", status=response.status_code
        )
    return str(_json(response).get("id") or "")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _clean_outbound_body(body: str) -> str:
    text = (body or "").strip()
    if not text:
        raise ValidationFailed(
            _("Write a message first."), code="message_empty", fields={"body": _("Required.")}
        )
    if len(text) > MAX_BODY_CHARS:
        raise ValidationFailed(
            _("The message is longer than %(limit)s characters.") % {"limit": MAX_BODY_CHARS},
            code="message_too_long",
            fields={"body": _("At most %(limit)s characters.") % {"limit": MAX_BODY_CHARS}},
        )
    return text


def conversation_reply(
    *, interaction: Interaction, agent: Agent, body: str, at: datetime
) -> InteractionMessage:
    """An agent's answer in an open SMS/social conversation (called by ``chat_message_send`` with the
    interaction locked): a service message, so no marketing consent is needed."""
    text = _clean_outbound_body(body)
    code = str((interaction.attributes or {}).get("messaging_channel") or "")
    channel = MessagingChannel.objects.filter(code=code).first()
    if channel is None:
        raise ValidationFailed(
            _("This conversation has no messaging channel."), code="messaging_channel_missing"
        )
    provider_ref = deliver(channel, to=interaction.from_address, body=text)
    message = InteractionMessage.objects.create(
        interaction=interaction,
        sender=InteractionMessage.Sender.AGENT,
        agent=agent,
        body=text,
        provider_ref=provider_ref,
        created_at=at,
    )
    OutboundMessage.objects.create(
        channel=channel,
        interaction=interaction,
        to_address=bare_address(interaction.from_address),
        body=text,
        purpose=OutboundPurpose.SERVICE,
        customer_public_id=interaction.customer_public_id,
        provider_ref=provider_ref,
        sent_at=at,
    )
    return message


def message_send(
    *,
    channel: MessagingChannel,
    to: str,
    body: str,
    purpose: str,
    customer_public_id: str = "",
    actor_id: int | None = None,
    at: datetime | None = None,
) -> OutboundMessage:
    """A message fedele starts (a reminder, a campaign). Service messages need the customer's service
    consent for the channel; marketing needs marketing consent and no opt-out of the address.
    Refused (PermissionDenied ``consent_missing`` / ``opted_out``) with nothing sent or written."""
    if purpose not in OutboundPurpose.values:
        raise ValidationFailed(
            _("Unknown purpose."), code="purpose_invalid", fields={"purpose": _("Unknown.")}
        )
    text = _clean_outbound_body(body)
    if not bare_address(to):
        raise ValidationFailed(_("No recipient."), code="recipient_missing", fields={"to": _("Required.")})
    address = normalised_address(channel.network, to)
    if purpose == OutboundPurpose.MARKETING and is_opted_out(channel, address):
        raise PermissionDenied(_("This recipient has opted out of promotional messages."), code="opted_out")
    if not _consent_granted(customer_public_id, channel, purpose):
        raise PermissionDenied(
            _("The customer has not consented to %(purpose)s messages on %(network)s.")
            % {"purpose": purpose, "network": channel.network},
            code="consent_missing",
        )
    provider_ref = deliver(channel, to=address, body=text)
    with transaction.atomic():
        sent = OutboundMessage.objects.create(
            channel=channel,
            to_address=address,
            body=text,
            purpose=purpose,
            customer_public_id=customer_public_id,
            provider_ref=provider_ref,
            sent_at=at or clock.now(),
        )
        audit.record(
            action="contact_center.message_sent",
            object_type="contact_center.outbound_message",
            object_id=str(sent.public_id),
            after={"channel": channel.code, "purpose": purpose, "customer": customer_public_id},
            actor_id=actor_id,
        )
    return sent


# --- channel settings -----------------------------------------------------------------------------

_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,39}$")
_NETWORK = re.compile(r"^[a-z][a-z0-9_]{1,19}$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,79}$")
CHANNEL_FIELDS = (
    "code",
    "name",
    "kind",
    "network",
    "address",
    "queue",
    "secret_env",
    "outbound_url",
    "outbound_token_env",
    "active",
)


def channel_save(
    *, channel: MessagingChannel | None, values: Mapping[str, Any], actor_id: int | None = None
) -> MessagingChannel:
    """Create (``channel`` None) or change a messaging channel. The code cannot change once made
    (providers are configured with the webhook address). ValidationFailed lists every bad field and
    writes nothing."""
    from fedele.contact_center.models import Queue

    current = {name: getattr(channel, name) for name in CHANNEL_FIELDS if name != "queue"} if channel else {}
    if channel is not None:
        current["queue"] = channel.queue.code
    merged = {**current, **{key: value for key, value in values.items() if key in CHANNEL_FIELDS}}
    errors: dict[str, str] = {}
    code = str(merged.get("code") or "").strip()
    if channel is not None and code != channel.code:
        errors["code"] = _("The code of a channel cannot change.")
    elif not _CODE.match(code):
        errors["code"] = _("2 to 40 lower-case letters, digits, - or _.")
    elif channel is None and MessagingChannel.objects.filter(code=code).exists():
        errors["code"] = _("Another channel has this code.")
    name = str(merged.get("name") or "").strip()
    if not name or len(name) > 120:
        errors["name"] = _("A name of 1 to 120 characters.")
    kind = str(merged.get("kind") or "")
    if kind not in MessagingChannelKind.values:
        errors["kind"] = _("Twilio or generic.")
    network = str(merged.get("network") or "").strip().lower()
    if not _NETWORK.match(network):
        errors["network"] = _("A network name like sms, whatsapp, telegram.")
    elif kind == MessagingChannelKind.TWILIO and network not in ("sms", "whatsapp"):
        errors["network"] = _("Twilio carries sms and whatsapp.")
    address = str(merged.get("address") or "").strip()
    if network in CONSENT_CHANNEL and address and not errors.get("network"):
        try:
            address = normalised_address(network, address)
        except ValidationFailed:
            errors["address"] = _("Not a phone number.")
    if len(address) > 120:
        errors["address"] = _("At most 120 characters.")
    elif (
        address
        and not errors.get("address")
        and MessagingChannel.objects.filter(kind=kind, network=network, address=address)
        .exclude(pk__in=[channel.pk] if channel is not None else [])
        .exists()
    ):
        # Two channels of one provider on the same number would both claim its messages.
        errors["address"] = _("Another channel of this provider already uses this address.")
    queue = Queue.objects.filter(code=str(merged.get("queue") or ""), active=True).first()
    conversation_channel = "sms" if network == "sms" else "social"
    if queue is None:
        errors["queue"] = _("Choose a queue.")
    elif conversation_channel not in (queue.channels or []):
        errors["queue"] = _("This queue does not take %(channel)s.") % {"channel": conversation_channel}
    for field_name in ("secret_env", "outbound_token_env"):
        value = str(merged.get(field_name) or "").strip()
        if value and not _ENV_NAME.match(value):
            errors[field_name] = _("The name of an environment variable, like FEDELE_WHATSAPP_SECRET.")
    outbound_url = str(merged.get("outbound_url") or "").strip()
    if outbound_url and not outbound_url.startswith(("https://", "http://")):
        errors["outbound_url"] = _("An http(s) URL.")
    if errors:
        raise ValidationFailed(
            _("Please check the channel's settings."), code="messaging_channel_invalid", fields=errors
        )
    fields: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "network": network,
        "address": address,
        "queue": queue,
        "secret_env": str(merged.get("secret_env") or "").strip(),
        "outbound_url": outbound_url,
        "outbound_token_env": str(merged.get("outbound_token_env") or "").strip(),
        "active": bool(merged.get("active", True)),
    }
    with transaction.atomic():
        if channel is None:
            saved = MessagingChannel.objects.create(code=code, created_at=clock.now(), **fields)
        else:
            saved = MessagingChannel.objects.select_for_update().get(pk=channel.pk)
            for field_name, value in fields.items():
                setattr(saved, field_name, value)
            saved.save()
        after = {name: getattr(saved, name) for name in CHANNEL_FIELDS if name != "queue"}
        audit.record(
            action="contact_center.messaging_channel_saved",
            object_type="contact_center.messaging_channel",
            object_id=saved.code,
            before=current or None,
            after={**after, "queue": saved.queue.code},
            actor_id=actor_id,
        )
    return saved

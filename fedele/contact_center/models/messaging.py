"""The messaging area's tables: the embeddable web chat (widgets and visitor sessions), the SMS and
social channels fed by provider webhooks, their inbound receipts (retry dedupe), outbound log and the
opt-outs of senders the customers module does not know.

Secrets are never stored: a channel names the environment variable that holds its signing secret
(the Twilio auth token or the HMAC secret of a generic provider) and its outbound API token.
"""

from __future__ import annotations

import secrets
import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fedele.contact_center.models.core import Interaction, Queue

__all__ = [
    "ChatSession",
    "ChatSessionState",
    "ChatWidget",
    "MessagingChannel",
    "MessagingChannelKind",
    "MessagingOptOut",
    "MessagingReceipt",
    "OutboundMessage",
    "OutboundPurpose",
]

DEFAULT_UPLOAD_TYPES = ["image/png", "image/jpeg", "image/gif", "application/pdf", "text/plain"]


def new_widget_key() -> str:
    return f"w_{secrets.token_urlsafe(18)}"


def default_upload_types() -> list[str]:
    return list(DEFAULT_UPLOAD_TYPES)


class ChatWidget(models.Model):
    """One embeddable chat (a script tag on a customer-facing site). ``allowed_origins`` lists the
    sites that may embed it (``https://www.example.it``); fedele's own hosts always may."""

    public_key = models.CharField(_("public key"), max_length=40, unique=True, default=new_widget_key)
    name = models.CharField(_("name"), max_length=120)
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="+", verbose_name=_("queue"))
    allowed_origins = models.JSONField(_("allowed origins"), default=list, blank=True)
    topics = models.JSONField(
        _("topics"),
        default=list,
        blank=True,
        help_text=_("each with code, label_it, label_en, queue_code and skills (code → level)"),
    )
    require_email = models.BooleanField(_("e-mail required"), default=True)
    greeting_it = models.CharField(_("greeting (Italian)"), max_length=300, blank=True, default="")
    greeting_en = models.CharField(_("greeting (English)"), max_length=300, blank=True, default="")
    consent_text_it = models.CharField(_("consent text (Italian)"), max_length=500, blank=True, default="")
    consent_text_en = models.CharField(_("consent text (English)"), max_length=500, blank=True, default="")
    primary_colour = models.CharField(_("colour"), max_length=7, default="#1f6feb")
    max_message_chars = models.PositiveIntegerField(_("longest message (characters)"), default=2000)
    max_upload_bytes = models.PositiveIntegerField(_("largest file (bytes)"), default=5 * 1024 * 1024)
    allowed_upload_types = models.JSONField(_("file types allowed"), default=default_upload_types, blank=True)
    calendar_code = models.CharField(
        _("business calendar"), max_length=40, blank=True, default="", help_text=_("empty: the queue's")
    )
    offline_when_no_agent = models.BooleanField(_("offline when no agent is signed in"), default=True)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class ChatSessionState(models.TextChoices):
    ACTIVE = "active", _("active")
    ENDED = "ended", _("ended")


class ChatSession(models.Model):
    """One visitor's conversation through a widget. The visitor holds a signed token naming the
    session and its nonce (``services.chat.visitor_token``) and reconnects with it."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    widget = models.ForeignKey(ChatWidget, on_delete=models.PROTECT, related_name="sessions")
    interaction = models.OneToOneField(
        Interaction, on_delete=models.PROTECT, null=True, blank=True, related_name="chat_session"
    )
    visitor_name = models.CharField(_("name"), max_length=120)
    visitor_email = models.EmailField(_("e-mail"), blank=True, default="")
    consent = models.BooleanField(_("consent given"), default=False)
    topic = models.CharField(_("topic"), max_length=40, blank=True, default="")
    language = models.CharField(_("language"), max_length=8, blank=True, default="")
    origin = models.CharField(_("page origin"), max_length=200, blank=True, default="")
    token_nonce = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=ChatSessionState.choices, default=ChatSessionState.ACTIVE)
    created_at = models.DateTimeField(_("started"))
    last_seen_at = models.DateTimeField(_("last seen"))
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    transcript_sent_to = models.EmailField(blank=True, default="")
    transcript_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return str(self.public_id)


class MessagingChannelKind(models.TextChoices):
    TWILIO = "twilio", _("Twilio (SMS, WhatsApp)")
    GENERIC = "generic", _("generic JSON webhook (WhatsApp Cloud, Telegram…)")


class MessagingChannel(models.Model):
    """An SMS number or a social account whose messages reach fedele through a provider webhook at
    ``/contact-center/webhooks/messaging/<code>/``."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("provider format"), max_length=10, choices=MessagingChannelKind.choices)
    network = models.CharField(
        _("network"), max_length=20, default="sms", help_text=_("sms, whatsapp, telegram, facebook…")
    )
    address = models.CharField(_("our number or account"), max_length=120, blank=True, default="")
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="+", verbose_name=_("queue"))
    secret_env = models.CharField(
        _("environment variable with the signing secret"), max_length=80, blank=True, default=""
    )
    outbound_url = models.URLField(_("outbound API URL"), blank=True, default="")
    outbound_token_env = models.CharField(
        _("environment variable with the outbound API token"), max_length=80, blank=True, default=""
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    @property
    def channel(self) -> str:
        """The Interaction channel its messages become."""
        return "sms" if self.network == "sms" else "social"


class MessagingReceipt(models.Model):
    """One inbound provider message, by the provider's own id: a webhook retry finds it and changes
    nothing. A keyword (opt-out, document request) has no interaction."""

    channel = models.ForeignKey(MessagingChannel, on_delete=models.CASCADE, related_name="receipts")
    provider_message_id = models.CharField(max_length=120)
    interaction = models.ForeignKey(
        Interaction, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=20, default="message", help_text="message, opt_out, document")
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "provider_message_id"], name="cc_messaging_receipt_once"
            )
        ]

    def __str__(self) -> str:
        return self.provider_message_id


class OutboundPurpose(models.TextChoices):
    SERVICE = "service", _("service")
    MARKETING = "marketing", _("marketing")


class OutboundMessage(models.Model):
    """Every message fedele sent through a messaging channel (the send log)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    channel = models.ForeignKey(MessagingChannel, on_delete=models.PROTECT, related_name="outbound")
    interaction = models.ForeignKey(
        Interaction, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    to_address = models.CharField(max_length=120)
    body = models.TextField()
    purpose = models.CharField(max_length=10, choices=OutboundPurpose.choices)
    customer_public_id = models.CharField(max_length=36, blank=True, default="")
    provider_ref = models.CharField(max_length=120, blank=True, default="")
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["-sent_at", "-id"]
        indexes = [models.Index(fields=["to_address", "sent_at"], name="cc_outbound_to_time")]

    def __str__(self) -> str:
        return f"{self.purpose} → {self.to_address}"


class MessagingOptOut(models.Model):
    """A sender who answered STOP/ANNULLA: no more marketing to this address on this network. Kept
    here for senders the customers module does not know (known customers get a consent record too)."""

    network = models.CharField(max_length=20)
    address = models.CharField(max_length=120)
    keyword = models.CharField(max_length=20)
    customer_public_id = models.CharField(max_length=36, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["network", "address"], name="cc_messaging_optout_once"),
            models.CheckConstraint(condition=~Q(address=""), name="cc_messaging_optout_address"),
        ]

    def __str__(self) -> str:
        return f"{self.network}:{self.address}"

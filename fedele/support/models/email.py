"""Mailboxes (inbound via LMTP/SMTP or IMAP polling) and the log of every inbound message."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Mailbox(models.Model):
    """A support address. Mail to ``address`` arrives through the built-in LMTP/SMTP receiver or is
    fetched by IMAP polling. The IMAP password is never stored: ``imap_password_env`` names the
    environment variable that holds it."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=80)
    address = models.EmailField(_("address"), unique=True)
    from_name = models.CharField(_("sender name"), max_length=120, blank=True)
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ticket_type = models.ForeignKey(
        "support.TicketType", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    default_priority = models.CharField(max_length=8, default="normal")
    language = models.CharField(max_length=2, default="it")
    max_attachment_bytes = models.PositiveBigIntegerField(default=25 * 1024 * 1024)
    imap_host = models.CharField(max_length=200, blank=True)
    imap_port = models.PositiveIntegerField(default=993)
    imap_ssl = models.BooleanField(default=True)
    imap_username = models.CharField(max_length=200, blank=True)
    imap_password_env = models.CharField(max_length=80, blank=True)
    imap_folder = models.CharField(max_length=120, default="INBOX")
    imap_uidvalidity = models.BigIntegerField(null=True, blank=True)
    imap_last_uid = models.BigIntegerField(default=0)
    imap_last_polled_at = models.DateTimeField(null=True, blank=True)
    imap_last_error = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["address"]

    def __str__(self) -> str:
        return self.address


class InboundEmail(models.Model):
    """Every message received, with what became of it. (mailbox, message_id) dedupes redeliveries."""

    class Outcome(models.TextChoices):
        CREATED = "created", _("ticket created")
        APPENDED = "appended", _("added to ticket")
        AUTO_REPLY = "auto_reply", _("auto-reply ignored")
        BOUNCE = "bounce", _("bounce ignored")
        LOOP = "loop", _("mail loop stopped")
        TOO_LARGE = "too_large", _("refused: too large")
        DUPLICATE = "duplicate", _("duplicate")
        REJECTED = "rejected", _("rejected")

    mailbox = models.ForeignKey(Mailbox, null=True, on_delete=models.SET_NULL, related_name="inbound")
    message_id = models.CharField(max_length=255)
    sender = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=250, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    detail = models.CharField(max_length=500, blank=True)
    ticket = models.ForeignKey(
        "support.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    received_via = models.CharField(max_length=8, default="lmtp")  # lmtp | smtp | imap | api
    received_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "message_id"], condition=~Q(message_id=""), name="support_inbound_unique"
            )
        ]

    def __str__(self) -> str:
        return self.message_id

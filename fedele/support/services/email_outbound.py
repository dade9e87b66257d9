"""Outbound e-mail of replies and notifications (owned by the e-mail area).

A public reply is e-mailed to the requester with the CC watchers copied, threaded so that the
customer's mail program shows one conversation and the customer's answer comes back to the same
ticket: our Message-ID encodes the ticket (``<ticket-{ticket}.{message}@{domain}>``), In-Reply-To is
the customer's last message, References carries the chain, the subject carries ``[T-000123]``.

Delivery is at-least-once and idempotent in the usual case: the Message-ID is stored on the message
(in a transaction) before sending, ``sent_at`` is set after the backend accepted the mail, and a
message with ``sent_at`` is never sent again. If the backend fails, the message keeps its Message-ID
and no ``sent_at``: the sweep (``deliver_pending``, every minute) retries messages in that state that
are older than two minutes and younger than three days.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from email.mime.base import MIMEBase
from email.utils import formataddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import translation

from fedele.shared import audit, clock
from fedele.support.email.parsing import clean_subject
from fedele.support.email.threading import make_message_id, subject_number
from fedele.support.models import Attachment, Mailbox, Ticket, TicketMessage, TicketWatcher

logger = logging.getLogger(__name__)

NON_EMAIL_CHANNELS = ("chat", "sms", "social")
MAX_REFERENCES = 20
RETRY_AFTER = timedelta(minutes=2)
RETRY_FOR = timedelta(days=3)


def default_mailbox() -> Mailbox | None:
    """The mailbox replies come from when a ticket has none: the first active one."""
    return Mailbox.objects.filter(active=True).order_by("pk").first()


def sender_for(ticket: Ticket) -> tuple[str, Mailbox | None]:
    mailbox = ticket.mailbox if ticket.mailbox is not None and ticket.mailbox.active else default_mailbox()
    if mailbox is None:
        return str(settings.DEFAULT_FROM_EMAIL), None
    name = mailbox.from_name or str(getattr(settings, "FEDELE_BRAND_NAME", "") or mailbox.name)
    return formataddr((name, mailbox.address)), mailbox


def reply_subject(ticket: Ticket) -> str:
    """``Re: <subject> [T-000123]``, without doubling the prefix or the number."""
    subject = clean_subject(ticket.subject) or ticket.subject
    if subject_number(subject) is None:
        subject = f"{subject} [{ticket.number}]"
    return f"Re: {subject}"


def _thread_headers(ticket: Ticket, before_pk: int | None) -> tuple[str, list[str]]:
    """(In-Reply-To, References) for a message written on ``ticket`` before message ``before_pk``."""
    messages = TicketMessage.objects.filter(ticket=ticket).exclude(email_message_id="")
    if before_pk is not None:
        messages = messages.filter(pk__lt=before_pk)
    rows = list(messages.order_by("pk").values_list("kind", "email_message_id", "email_references"))
    in_reply_to = ""
    chain: list[str] = []
    for kind, message_id, references in rows:
        if kind == TicketMessage.Kind.CUSTOMER:
            in_reply_to = message_id
            for reference in references.split():
                if reference not in chain:
                    chain.append(reference)
        if message_id not in chain:
            chain.append(message_id)
    if not in_reply_to and chain:
        in_reply_to = chain[-1]
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return in_reply_to, chain


def _cc_addresses(ticket: Ticket) -> list[str]:
    requester = ticket.requester_email.lower()
    return [
        address
        for address in TicketWatcher.objects.filter(ticket=ticket, kind=TicketWatcher.Kind.CC)
        .exclude(email="")
        .order_by("pk")
        .values_list("email", flat=True)
        if address.lower() != requester
    ]


def _portal_url(ticket: Ticket) -> str:
    try:
        path = reverse("help:request_detail", args=[ticket.public_id])
    except NoReverseMatch:
        return ""
    return f"{getattr(settings, 'FEDELE_PUBLIC_URL', '')}{path}"


def deliver_reply(message_pk: int) -> None:
    """Send a public reply to the requester (and CC watchers) with threading headers. Called after
    commit by the ticket services; idempotent (a message already sent is not sent again)."""
    with transaction.atomic():
        message = (
            TicketMessage.objects.select_for_update(of=("self",))
            .select_related("ticket", "ticket__mailbox")
            .filter(pk=message_pk)
            .first()
        )
        if message is None or message.kind != TicketMessage.Kind.REPLY or message.sent_at is not None:
            return
        ticket = message.ticket
        if not ticket.requester_email or message.channel in NON_EMAIL_CHANNELS:
            return
        in_reply_to, references = _thread_headers(ticket, message.pk)
        cc = _cc_addresses(ticket)
        if not message.email_message_id:
            message.email_message_id = make_message_id(ticket.public_id, message.public_id)
            message.email_in_reply_to = in_reply_to[:255]
            message.email_references = " ".join(references)
            message.email_to = ticket.requester_email
            message.email_cc = ", ".join(cc)
            message.save(
                update_fields=[
                    "email_message_id",
                    "email_in_reply_to",
                    "email_references",
                    "email_to",
                    "email_cc",
                ]
            )
    from_address, _mailbox = sender_for(ticket)
    email = _reply_email(message, ticket, from_address, cc)
    email.send(fail_silently=False)  # a failure leaves sent_at empty for the sweep
    sent_at = clock.now()
    with transaction.atomic():
        updated = TicketMessage.objects.filter(pk=message.pk, sent_at__isnull=True).update(sent_at=sent_at)
        if updated:
            audit.record(
                action="support.reply_emailed",
                object_type="support.ticket",
                object_id=str(ticket.public_id),
                after={
                    "message": str(message.public_id),
                    "to": ticket.requester_email,
                    "cc": cc,
                    "message_id": message.email_message_id,
                },
            )


def _reply_email(
    message: TicketMessage, ticket: Ticket, from_address: str, cc: list[str]
) -> EmailMultiAlternatives:
    from fedele.support.html import sanitise_html, text_to_html

    language = ticket.language if ticket.language in ("it", "en") else "it"
    with translation.override(language):
        context = {
            "ticket": ticket,
            "message": message,
            "body_text": message.body_text,
            "body_html": sanitise_html(message.body_html)
            if message.body_html
            else text_to_html(message.body_text),
            "portal_url": _portal_url(ticket),
            "brand": getattr(settings, "FEDELE_BRAND_NAME", "fedele"),
            "brand_color": getattr(settings, "FEDELE_BRAND_COLOR", "#0d6efd"),
        }
        text = render_to_string("support/emails/reply.txt", context)
        html = render_to_string("support/emails/reply.html", context)
    headers = {
        "Message-ID": message.email_message_id,
        "Auto-Submitted": "no",
        "X-Fedele-Ticket": ticket.number,
    }
    if message.email_in_reply_to:
        headers["In-Reply-To"] = message.email_in_reply_to
    if message.email_references:
        headers["References"] = message.email_references
    email = EmailMultiAlternatives(
        subject=reply_subject(ticket),
        body=text,
        from_email=from_address,
        to=[ticket.requester_email],
        cc=cc,
        headers=headers,
    )
    email.attach_alternative(html, "text/html")
    for attachment in Attachment.objects.filter(message=message).order_by("pk"):
        _attach(email, attachment)
    return email


def _attach(email: EmailMultiAlternatives, attachment: Attachment) -> None:
    with attachment.file.open("rb") as handle:
        content = handle.read()
    if attachment.content_id:
        maintype, _, subtype = attachment.content_type.partition("/")
        part = MIMEBase(maintype or "application", subtype or "octet-stream")
        part.set_payload(content)
        from email import encoders

        encoders.encode_base64(part)
        part.add_header("Content-ID", f"<{attachment.content_id}>")
        part.add_header("Content-Disposition", "inline", filename=attachment.filename)
        email.attach(part)
    else:
        email.attach(attachment.filename, content, attachment.content_type)


def send_ticket_email(
    *,
    ticket: Ticket,
    to: list[str],
    subject: str,
    body_text: str,
    body_html: str = "",
    auto_submitted: bool = True,
) -> str:
    """Send a notification about ``ticket`` (survey, automation e-mail, agent notice) now, threaded
    with the ticket's conversation; returns its Message-ID. Callers run it after commit.

    ``Auto-Submitted: auto-generated`` marks it as machine mail (out-of-office robots stay quiet)."""
    recipients = [address for address in to if address]
    message_id = make_message_id(ticket.public_id, f"n-{uuid.uuid4().hex[:24]}")
    if not recipients:
        return message_id
    from_address, _mailbox = sender_for(ticket)
    in_reply_to, references = _thread_headers(ticket, None)
    headers = {
        "Message-ID": message_id,
        "Auto-Submitted": "auto-generated" if auto_submitted else "no",
        "X-Fedele-Ticket": ticket.number,
    }
    if auto_submitted:
        headers["X-Auto-Response-Suppress"] = "All"
    if in_reply_to:
        headers["In-Reply-To"] = in_reply_to
    if references:
        headers["References"] = " ".join(references)
    if subject_number(subject) is None:
        subject = f"{subject} [{ticket.number}]"
    email = EmailMultiAlternatives(
        subject=" ".join(subject.split())[:250],
        body=body_text,
        from_email=from_address,
        to=recipients,
        headers=headers,
    )
    if body_html:
        email.attach_alternative(body_html, "text/html")
    email.send(fail_silently=False)
    return message_id


def pending_replies() -> list[int]:
    """Replies whose send was started (Message-ID stored) but never confirmed, ready for a retry."""
    now = clock.now()
    return list(
        TicketMessage.objects.filter(
            kind=TicketMessage.Kind.REPLY,
            channel="email",
            sent_at__isnull=True,
            created_at__lte=now - RETRY_AFTER,
            created_at__gte=now - RETRY_FOR,
        )
        .exclude(Q(email_message_id="") | Q(ticket__requester_email=""))
        .order_by("pk")
        .values_list("pk", flat=True)[:200]
    )


def deliver_pending() -> int:
    """The sweep: retry every pending reply; one failure does not stop the others."""
    sent = 0
    for message_pk in pending_replies():
        try:
            deliver_reply(message_pk)
        except Exception:
            logger.exception("Reply %s could not be e-mailed; it will be retried", message_pk)
            continue
        sent += TicketMessage.objects.filter(pk=message_pk, sent_at__isnull=False).exists()
    return sent

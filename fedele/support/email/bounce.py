"""Telling a sender that their message was refused, when no mail server can say it for us.

Mail received over LMTP/SMTP is refused in the protocol (552/550) and the sending server bounces it.
Mail fetched by IMAP was already accepted by someone else's server, so support writes the refusal
itself: ``Auto-Submitted: auto-replied`` (RFC 3834), In-Reply-To the original, in the mailbox language.
Never to robots, never to our own addresses, and at most a few per sender per hour (forged senders
must not turn us into a backscatter source).
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from email.utils import formataddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation

from fedele.shared import clock
from fedele.support.email.parsing import BOUNCE_SENDERS, ParsedEmail
from fedele.support.email.threading import message_id_domain, own_addresses
from fedele.support.models import InboundEmail, Mailbox

logger = logging.getLogger(__name__)

MAX_REFUSALS_PER_SENDER_PER_HOUR = 3


def may_notify(parsed: ParsedEmail) -> bool:
    sender = parsed.sender_email
    if not sender or parsed.automatic or sender.startswith(BOUNCE_SENDERS):
        return False
    if sender in own_addresses():
        return False
    since = clock.now() - timedelta(hours=1)
    recent = InboundEmail.objects.filter(
        sender=sender,
        received_at__gte=since,
        outcome__in=[InboundEmail.Outcome.TOO_LARGE, InboundEmail.Outcome.REJECTED],
    ).count()
    # The refusal being notified is already logged, hence "<=".
    return recent <= MAX_REFUSALS_PER_SENDER_PER_HOUR


def send_refusal(*, mailbox: Mailbox, parsed: ParsedEmail, reason: str) -> bool:
    """E-mail the sender why their message was not accepted. True when a message was sent.

    ``reason`` is already in the mailbox language."""
    if not may_notify(parsed):
        return False
    language = mailbox.language if mailbox.language in ("it", "en") else "it"
    with translation.override(language):
        context = {
            "reason": reason,
            "subject": parsed.subject,
            "mailbox": mailbox,
            "brand": getattr(settings, "FEDELE_BRAND_NAME", "fedele"),
        }
        subject = " ".join(render_to_string("support/emails/refused_subject.txt", context).split())
        body = render_to_string("support/emails/refused_body.txt", context)
    message = EmailMultiAlternatives(
        subject=subject[:250],
        body=body,
        from_email=formataddr((mailbox.from_name or mailbox.name, mailbox.address)),
        to=[parsed.sender_email],
        headers={
            "Message-ID": f"<refusal.{uuid.uuid4()}@{message_id_domain()}>",
            "In-Reply-To": parsed.message_id,
            "References": " ".join([*parsed.references[-10:], parsed.message_id]),
            "Auto-Submitted": "auto-replied",
            "X-Auto-Response-Suppress": "All",
        },
    )
    try:
        message.send(fail_silently=False)
    except Exception:
        logger.exception("Could not send the refusal notice for %s", parsed.message_id)
        return False
    return True

"""Inbound e-mail: one raw message in, a ticket created or continued (or a clear refusal) out.

``process_inbound`` is called by the LMTP/SMTP receiver, the IMAP poller and the API. Everything it
writes happens in one transaction (the InboundEmail log row, the ticket or message, attachments, CC
watchers): a failure half-way leaves nothing behind, and the caller answers "try again later".

Outcomes (``InboundEmail.Outcome``) and the SMTP reply that goes with them:

- created / appended → 250; duplicate (the same Message-ID already received on this mailbox) → 250;
- auto_reply / bounce / loop → 250 (accepted and dropped: refusing would only make more robot mail);
- too_large → 552 (only the log row is written; mail fetched by IMAP gets a refusal notice);
- rejected → 550 (no mailbox for the recipient) or 554 (the message cannot become a ticket);
- failed → 451 (unexpected error, nothing written; the sender retries, the Message-ID dedupes).

The body stored on the ticket is the new text only (quoted history stripped, see
``fedele.support.email.parsing``); attachments whose type is refused are left out and named in a
note at the end of the body so the agent knows something was removed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import translation
from django.utils.translation import gettext as _

from fedele.shared import clock
from fedele.shared.errors import ValidationFailed
from fedele.support.attachments import IncomingFile, check_files, max_attachments, safe_filename
from fedele.support.email import parsing
from fedele.support.email.parsing import ParsedEmail
from fedele.support.email.threading import find_mailbox, find_ticket, is_our_message_id, own_addresses
from fedele.support.models import InboundEmail, Mailbox, Ticket, TicketWatcher

logger = logging.getLogger(__name__)

DEFAULT_MAX_EMAIL_BYTES = 35 * 1024 * 1024
DEFAULT_RATE_LIMIT = 10  # messages from one sender ...
DEFAULT_RATE_WINDOW_SECONDS = 600  # ... in this many seconds, then the sender is treated as a loop
MAX_CC_WATCHERS = 10
VIAS = ("lmtp", "smtp", "imap", "api")
Outcome = InboundEmail.Outcome
REFUSED = (Outcome.TOO_LARGE, Outcome.REJECTED)

ENHANCED_CODES = {250: "2.0.0", 451: "4.3.0", 550: "5.1.1", 552: "5.3.4", 554: "5.6.0"}


@dataclass(frozen=True, slots=True)
class InboundResult:
    """What became of one message. ``outcome`` is an InboundEmail.Outcome value or "failed"."""

    outcome: str
    ticket_public_id: str | None
    detail: str
    reply_code: int

    @property
    def accepted(self) -> bool:
        return self.reply_code < 400

    def smtp_reply(self) -> str:
        """One SMTP/LMTP reply line, e.g. ``552 5.3.4 The attachment ... is too large``."""
        enhanced = ENHANCED_CODES.get(self.reply_code, f"{str(self.reply_code)[0]}.0.0")
        text = " ".join(self.detail.split()) or self.outcome
        text = text.encode("ascii", "replace").decode("ascii")[:400]
        return f"{self.reply_code} {enhanced} {text}"


def max_email_bytes() -> int:
    return int(getattr(settings, "FEDELE_SUPPORT_MAX_EMAIL_BYTES", DEFAULT_MAX_EMAIL_BYTES))


def process_inbound(raw: bytes, *, recipients: Sequence[str], via: str) -> InboundResult:
    """Receive one raw RFC 822 message addressed to ``recipients`` (envelope recipients; the To, Cc
    and Delivered-To headers are used when none of them is a mailbox). ``via``: lmtp|smtp|imap|api."""
    via = via if via in VIAS else "api"
    too_big = len(raw) > max_email_bytes()
    parsed = parsing.parse(raw, headers_only=too_big)
    mailbox = find_mailbox([*recipients, *parsed.delivered_to, *parsed.to, *parsed.cc])
    if mailbox is None:
        _log_only(None, parsed, via, Outcome.REJECTED, "No mailbox for these recipients.")
        return InboundResult(Outcome.REJECTED, None, "Mailbox unknown: no such support address.", 550)
    try:
        with transaction.atomic():
            result, notify = _process(parsed, raw, mailbox, via, too_big)
    except IntegrityError:
        # Two deliveries of the same message at the same time: the unique log row lets one through.
        if InboundEmail.objects.filter(mailbox=mailbox, message_id=parsed.message_id).exists():
            return _duplicate(mailbox, parsed, via)
        logger.exception("Inbound message %s could not be stored", parsed.message_id)
        return InboundResult("failed", None, "Temporary failure, please try again later.", 451)
    except ValidationFailed as error:
        # The ticket services refused the content (attachment type, size, body): nothing was written.
        outcome = Outcome.TOO_LARGE if error.code == "attachment_too_large" else Outcome.REJECTED
        code = 552 if outcome == Outcome.TOO_LARGE else 554
        _log_only(mailbox, parsed, via, outcome, error.message)
        if via == "imap":
            _notify_refusal(mailbox, parsed, error.message)
        return InboundResult(outcome, None, _ascii(error.message), code)
    except Exception:
        logger.exception("Inbound message %s failed; nothing was stored", parsed.message_id)
        return InboundResult("failed", None, "Temporary failure, please try again later.", 451)
    if notify:
        _notify_refusal(mailbox, parsed, notify)
    return result


def _process(
    parsed: ParsedEmail, raw: bytes, mailbox: Mailbox, via: str, too_big: bool
) -> tuple[InboundResult, str]:
    """The transactional part. Returns the result and, for a refusal to notify by e-mail, its reason."""
    existing = (
        InboundEmail.objects.select_for_update(of=("self",))
        .filter(mailbox=mailbox, message_id=parsed.message_id)
        .select_related("ticket")
        .first()
    )
    if existing is not None and existing.outcome not in REFUSED:
        return _duplicate(mailbox, parsed, via, existing), ""
    now = clock.now()
    if existing is not None:
        # A refused message sent again is judged again (the limit may have changed since).
        log = existing
        log.received_at, log.received_via, log.size = now, via, parsed.size
        log.save(update_fields=["received_at", "received_via", "size"])
    else:
        # Written first: a concurrent delivery of the same message waits on this unique row.
        log = InboundEmail.objects.create(
            mailbox=mailbox,
            message_id=parsed.message_id[:255],
            sender=parsed.sender_email[:254],
            subject=parsed.subject[:250],
            size=parsed.size,
            outcome=Outcome.REJECTED,
            received_via=via,
            received_at=now,
        )

    def finish(outcome: str, detail: str, code: int, ticket: Ticket | None = None) -> InboundResult:
        log.outcome = outcome
        log.detail = detail[:500]
        log.ticket = ticket
        log.save(update_fields=["outcome", "detail", "ticket"])
        return InboundResult(outcome, str(ticket.public_id) if ticket else None, detail, code)

    if parsed.automatic:
        outcome = Outcome.BOUNCE if parsed.automatic == "bounce" else Outcome.AUTO_REPLY
        return finish(outcome, f"Ignored automatic message ({parsed.automatic_reason}).", 250), ""
    loop_reason = _loop_reason(parsed, log.pk, now)
    if loop_reason:
        return finish(Outcome.LOOP, loop_reason, 250), ""
    too_large = _size_refusal(parsed, mailbox, too_big)
    if too_large:
        english, localised = too_large
        return finish(Outcome.TOO_LARGE, english, 552), (localised if via == "imap" else "")

    files, removed = _acceptable_files(parsed.attachments)
    body = parsed.body_text
    if removed:
        with translation.override(mailbox.language if mailbox.language in ("it", "en") else "it"):
            note = _("Attachments removed (file type not accepted): %(names)s") % {
                "names": ", ".join(removed)
            }
        body = f"{body}\n\n[{note}]" if body else f"[{note}]"
    if not body.strip() and not files:
        body = "-"  # an empty e-mail still becomes a message the agent can see
    common = {
        "body": body,
        "body_html": parsed.body_html if not removed else "",
        "attachments": files,
        "email_message_id": parsed.message_id,
        "email_in_reply_to": parsed.in_reply_to,
        "email_references": " ".join(parsed.references),
        "email_to": ", ".join(parsed.to),
        "email_cc": ", ".join(parsed.cc),
    }
    from fedele.support.services.tickets import message_add, ticket_create

    ticket = find_ticket(parsed)
    if ticket is not None:
        message = message_add(
            actor=None,
            ticket=ticket,
            kind="customer",
            channel="email",
            author_email=parsed.sender_email,
            author_name=parsed.sender_name,
            **common,  # type: ignore[arg-type]
        )
        target = message.ticket
        outcome = Outcome.APPENDED if target.pk == ticket.pk else Outcome.CREATED
        detail = (
            f"Added to {target.number}." if outcome == Outcome.APPENDED else f"Follow-up {target.number}."
        )
    else:
        target = ticket_create(
            actor=None,
            subject=parsing.clean_subject(parsed.subject) or parsed.subject or _no_subject(mailbox),
            channel="email",
            requester_email=parsed.requester_email,
            requester_name=parsed.sender_name if not parsed.reply_to else "",
            ticket_type=mailbox.ticket_type.code if mailbox.ticket_type_id and mailbox.ticket_type else None,
            priority=mailbox.default_priority or None,
            team_public_id=str(mailbox.team.public_id) if mailbox.team_id and mailbox.team else None,
            language=mailbox.language if mailbox.language in ("it", "en") else None,
            mailbox=mailbox,
            **common,  # type: ignore[arg-type]
        )
        outcome, detail = Outcome.CREATED, f"Created {target.number}."
    _add_cc_watchers(target, parsed, mailbox, now)
    if removed:
        detail = f"{detail} Removed attachments: {', '.join(removed)}."
    return finish(outcome, detail, 250, target), ""


def _duplicate(
    mailbox: Mailbox, parsed: ParsedEmail, via: str, existing: InboundEmail | None = None
) -> InboundResult:
    if existing is None:
        existing = InboundEmail.objects.filter(mailbox=mailbox, message_id=parsed.message_id).first()
    ticket = existing.ticket if existing is not None else None
    detail = f"Already received: {parsed.message_id}"
    # The log keeps the redelivery with an empty message id (the unique key belongs to the first one).
    _log_only(mailbox, replace(parsed, message_id=""), via, Outcome.DUPLICATE, detail, ticket=ticket)
    return InboundResult(Outcome.DUPLICATE, str(ticket.public_id) if ticket else None, detail, 250)


def _log_only(
    mailbox: Mailbox | None,
    parsed: ParsedEmail,
    via: str,
    outcome: str,
    detail: str,
    *,
    ticket: Ticket | None = None,
) -> None:
    try:
        with transaction.atomic():
            InboundEmail.objects.create(
                mailbox=mailbox,
                message_id=parsed.message_id[:255],
                sender=parsed.sender_email[:254],
                subject=parsed.subject[:250],
                size=parsed.size,
                outcome=outcome,
                detail=detail[:500],
                ticket=ticket,
                received_via=via,
                received_at=clock.now(),
            )
    except IntegrityError:
        # Already logged under this Message-ID (a refused message delivered again).
        InboundEmail.objects.filter(mailbox=mailbox, message_id=parsed.message_id).update(
            outcome=outcome, detail=detail[:500]
        )


def _loop_reason(parsed: ParsedEmail, log_pk: int, now: datetime) -> str:
    if parsed.fedele_ticket:
        return f"Our own message came back (X-Fedele-Ticket {parsed.fedele_ticket[:40]})."
    if is_our_message_id(parsed.message_id):
        return "Our own message came back (our Message-ID)."
    if parsed.sender_email and parsed.sender_email in own_addresses():
        return f"Sent from our own mailbox {parsed.sender_email}."
    if not parsed.sender_email:
        return ""
    limit = int(getattr(settings, "FEDELE_SUPPORT_EMAIL_RATE_LIMIT", DEFAULT_RATE_LIMIT))
    window = int(getattr(settings, "FEDELE_SUPPORT_EMAIL_RATE_WINDOW_SECONDS", DEFAULT_RATE_WINDOW_SECONDS))
    since = now - timedelta(seconds=window)
    recent = (
        InboundEmail.objects.filter(sender=parsed.sender_email, received_at__gte=since)
        .exclude(pk=log_pk)
        .exclude(outcome=Outcome.DUPLICATE)
        .count()
    )
    if recent >= limit:
        return f"More than {limit} messages from {parsed.sender_email} in {window // 60} minutes."
    return ""


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}"


def _size_refusal(parsed: ParsedEmail, mailbox: Mailbox, too_big: bool) -> tuple[str, str] | None:
    """(English detail for the log and SMTP reply, text in the mailbox language) or None."""
    language = mailbox.language if mailbox.language in ("it", "en") else "it"
    limit = max_email_bytes()
    if too_big:
        english = f"Message too large: {_megabytes(parsed.size)} MB, at most {_megabytes(limit)} MB."
        with translation.override(language):
            localised = _("The message is %(size)s MB; this address accepts messages up to %(limit)s MB.") % {
                "size": _megabytes(parsed.size),
                "limit": _megabytes(limit),
            }
        return english, localised
    for incoming in parsed.attachments:
        if len(incoming.content) > mailbox.max_attachment_bytes:
            name = safe_filename(incoming.filename)
            english = (
                f"Attachment {name} is too large: {_megabytes(len(incoming.content))} MB, "
                f"at most {_megabytes(mailbox.max_attachment_bytes)} MB."
            )
            with translation.override(language):
                localised = _(
                    "The attachment %(name)s is %(size)s MB; this address accepts attachments up to "
                    "%(limit)s MB."
                ) % {
                    "name": name,
                    "size": _megabytes(len(incoming.content)),
                    "limit": _megabytes(mailbox.max_attachment_bytes),
                }
            return english, localised
    return None


def _acceptable_files(files: Sequence[IncomingFile]) -> tuple[list[IncomingFile], list[str]]:
    """The attachments support accepts, and the names of those left out (programs, scripts, or past
    the maximum count). Size is checked before this, per mailbox."""
    kept: list[IncomingFile] = []
    removed: list[str] = []
    for incoming in files:
        if len(kept) >= max_attachments():
            removed.append(safe_filename(incoming.filename))
            continue
        try:
            check_files([incoming], max_bytes=max(len(incoming.content), 1))
        except ValidationFailed as error:
            if error.code == "attachment_type_refused":
                removed.append(safe_filename(incoming.filename))
                continue
            raise
        kept.append(incoming)
    return kept, removed


def _add_cc_watchers(ticket: Ticket, parsed: ParsedEmail, mailbox: Mailbox, now: datetime) -> None:
    """Everyone the customer copied (To and Cc, except support addresses) is copied on public replies."""
    ours = own_addresses()
    skip = {ticket.requester_email.lower(), parsed.sender_email, mailbox.address.lower(), *ours}
    from fedele.support.email.threading import base_address

    candidates = [
        address
        for address in (*parsed.to, *parsed.cc)
        if address not in skip and base_address(address) not in ours
    ]
    existing = set(
        TicketWatcher.objects.filter(ticket=ticket, kind=TicketWatcher.Kind.CC).values_list(
            "email", flat=True
        )
    )
    room = MAX_CC_WATCHERS - len(existing)
    for address in candidates:
        if room <= 0:
            break
        if address in existing or len(address) > 254:
            continue
        TicketWatcher.objects.create(ticket=ticket, kind=TicketWatcher.Kind.CC, email=address, created_at=now)
        existing.add(address)
        room -= 1


def _no_subject(mailbox: Mailbox) -> str:
    with translation.override(mailbox.language if mailbox.language in ("it", "en") else "it"):
        return _("(no subject)")


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def _notify_refusal(mailbox: Mailbox, parsed: ParsedEmail, reason: str) -> None:
    from fedele.support.email.bounce import send_refusal

    transaction.on_commit(lambda: send_refusal(mailbox=mailbox, parsed=parsed, reason=reason))

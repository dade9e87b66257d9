"""Which ticket an inbound message belongs to, and which mailbox it was sent to.

Order of trust:

1. In-Reply-To / References naming a message already on a ticket (ours or the customer's);
2. one of our own outbound Message-IDs, which encode the ticket
   (``<ticket-{ticket public_id}.{message public_id}@{domain}>``);
3. the ticket number ``[T-000123]`` in the subject, only when the sender is the requester, a CC
   watcher of that ticket or a known contact of the ticket's customer (anyone can type a number);
4. otherwise a new ticket.

A merged ticket forwards to the ticket it was merged into.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Q

from fedele.support.email.parsing import ParsedEmail
from fedele.support.models import Mailbox, Ticket, TicketMessage, TicketWatcher

OUR_MESSAGE_ID = re.compile(
    r"^<ticket-(?P<ticket>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"\.(?P<message>[0-9a-z-]{1,40})@(?P<domain>[^<>@\s]+)>$",
    re.IGNORECASE,
)
SUBJECT_NUMBER = re.compile(r"\[\s*#?\s*(T-\d{3,12})\s*\]", re.IGNORECASE)


def message_id_domain() -> str:
    """The right-hand side of our Message-IDs: a setting, else the public URL's host."""
    configured = str(getattr(settings, "FEDELE_SUPPORT_MESSAGE_ID_DOMAIN", "") or "")
    if configured:
        return configured.lower()
    host = urlsplit(str(getattr(settings, "FEDELE_PUBLIC_URL", "") or "")).hostname or ""
    return (host or "fedele.local").lower()


def make_message_id(ticket_public_id: uuid.UUID | str, message_public_id: uuid.UUID | str) -> str:
    return f"<ticket-{ticket_public_id}.{message_public_id}@{message_id_domain()}>"


def ticket_id_in_message_id(message_id: str) -> str | None:
    """The ticket public id encoded in one of our Message-IDs, else None."""
    found = OUR_MESSAGE_ID.match(message_id.strip())
    return found.group("ticket").lower() if found else None


def is_our_message_id(message_id: str) -> bool:
    found = OUR_MESSAGE_ID.match(message_id.strip())
    return found is not None and found.group("domain").lower() == message_id_domain()


def subject_number(subject: str) -> str | None:
    found = SUBJECT_NUMBER.search(subject)
    return found.group(1).upper() if found else None


def find_ticket(parsed: ParsedEmail) -> Ticket | None:
    """The ticket this message continues (see the module docstring), or None for a new ticket."""
    ticket = _by_references(parsed.thread_ids)
    if ticket is None:
        ticket = _by_subject_number(parsed)
    return _follow_merges(ticket) if ticket is not None else None


def _by_references(thread_ids: Sequence[str]) -> Ticket | None:
    if not thread_ids:
        return None
    known = dict(
        TicketMessage.objects.filter(email_message_id__in=list(thread_ids))
        .order_by("-id")
        .values_list("email_message_id", "ticket_id")
    )
    for message_id in thread_ids:  # nearest reference first
        if message_id in known:
            return Ticket.objects.filter(pk=known[message_id]).first()
        ticket_public_id = ticket_id_in_message_id(message_id)
        if ticket_public_id:
            ticket = Ticket.objects.filter(public_id=ticket_public_id).first()
            if ticket is not None:
                return ticket
    return None


def _by_subject_number(parsed: ParsedEmail) -> Ticket | None:
    number = subject_number(parsed.subject)
    if number is None or not parsed.sender_email:
        return None
    ticket = Ticket.objects.filter(number=number).first()
    if ticket is None:
        return None
    return ticket if sender_may_continue(ticket, parsed.sender_email) else None


def sender_may_continue(ticket: Ticket, sender: str) -> bool:
    """The requester, a CC watcher or a contact of the ticket's customer may continue it by number."""
    sender = sender.lower()
    if ticket.requester_email.lower() == sender:
        return True
    if TicketWatcher.objects.filter(ticket=ticket, kind=TicketWatcher.Kind.CC, email__iexact=sender).exists():
        return True
    if ticket.customer_id is None:
        return False
    from fedele.customers.facade import find_customer_by_email

    customer = find_customer_by_email(sender)
    return customer is not None and customer.customer_id == ticket.customer_id


def _follow_merges(ticket: Ticket) -> Ticket:
    seen = {ticket.pk}
    while ticket.merged_into_id is not None and ticket.merged_into_id not in seen:
        seen.add(ticket.merged_into_id)
        merged = Ticket.objects.filter(pk=ticket.merged_into_id).first()
        if merged is None:
            break
        ticket = merged
    return ticket


def base_address(address: str) -> str:
    """``support+anything@x`` → ``support@x`` (plus-addressing), lower-cased."""
    local, _, domain = address.strip().lower().partition("@")
    return f"{local.split('+', 1)[0]}@{domain}" if domain else local


def find_mailbox(addresses: Iterable[str]) -> Mailbox | None:
    """The first active mailbox among ``addresses`` (in the order given), matching plus-addresses."""
    ordered: list[str] = []
    for address in addresses:
        for candidate in (address.strip().lower(), base_address(address)):
            if candidate and candidate not in ordered:
                ordered.append(candidate)
    if not ordered:
        return None
    query = Q()
    for candidate in ordered:
        query |= Q(address__iexact=candidate)
    mailboxes = {mailbox.address.lower(): mailbox for mailbox in Mailbox.objects.filter(query, active=True)}
    for candidate in ordered:
        if candidate in mailboxes:
            return mailboxes[candidate]
    return None


def own_addresses() -> set[str]:
    """Every mailbox address (active or not): mail from one of them is our own mail coming back."""
    return {address.lower() for address in Mailbox.objects.values_list("address", flat=True)}

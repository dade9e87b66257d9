"""Support's reactions to other modules' events (subscribed in setup/portal.py with stable names).

"billing.dunning_escalated" (fedele/billing/dunning_events.py, DunningEscalated)::

    {"case_id": "<uuid>", "invoice_id": "<uuid>", "invoice_number": "INV-2026-000123",
     "customer_id": "<customer public id>", "currency": "EUR", "amount_due": "122.00",
     "days_overdue": 45}

  → one collections ticket per dunning case (type "collections", priority high, channel "internal",
  the customer's language), keyed by external_source="billing_dunning", external_id=case_id: a
  redelivered or repeated escalation of the same case adds an internal note to that ticket instead.

"field_service.work_order_updated" (published by field service; documented in support/events.py)::

    {"work_order_id": "<uuid>", "number": "WO-2026-000042", "status": "scheduled|in_progress|
     completed|cancelled|...", "customer_id": "<uuid>|null", "ticket_id": "<ticket public id>|null",
     "summary": "text", "scheduled_for": "ISO datetime|null", "technician_name": "text|null"}

  → a system note on the linked ticket(s): the ticket named by ticket_id and every ticket about the
  work order (subject_kind="work_order", subject_reference=work_order_id). When the work order is
  completed and a ticket waits on the third party (status pending_third_party) it moves to "open",
  so its agent follows up with the customer.

Each handler runs at most once per event (the outbox receipt) and is written so that running it
twice would not duplicate a ticket either.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import formats, translation

from fedele.shared.events import EventEnvelope
from fedele.shared.money import Money
from fedele.support.models import StatusKind, Ticket

logger = logging.getLogger(__name__)

DUNNING_SOURCE = "billing_dunning"
DUNNING_HANDLER_NAME = "support.consumers.collections_ticket_on_dunning_escalated"
WORK_ORDER_HANDLER_NAME = "support.consumers.note_on_work_order_updated"
WORK_ORDER_COMPLETED = "completed"
PENDING_THIRD_PARTY = "pending_third_party"


def _amount(payload: dict[str, Any], language: str) -> str:
    try:
        return Money(
            Decimal(str(payload.get("amount_due") or "0")), str(payload.get("currency") or "EUR")
        ).format(language)
    except (InvalidOperation, ValueError, KeyError):
        return f"{payload.get('amount_due')} {payload.get('currency')}"


def _dunning_texts(payload: dict[str, Any], language: str) -> tuple[str, str, str]:
    days = int(payload.get("days_overdue") or 0)
    number = str(payload.get("invoice_number") or "")
    amount = _amount(payload, language)
    values = {"number": number, "days": days, "amount": amount}
    with translation.override(language):
        subject = (
            translation.ngettext(
                "Reminder: invoice %(number)s overdue by %(days)s day",
                "Reminder: invoice %(number)s overdue by %(days)s days",
                days,
            )
            % values
        )
        body = (
            translation.ngettext(
                "Invoice %(number)s is %(days)s day overdue: %(amount)s still to pay. Dunning has "
                "escalated: contact the customer to agree on payment.",
                "Invoice %(number)s is %(days)s days overdue: %(amount)s still to pay. Dunning has "
                "escalated: contact the customer to agree on payment.",
                days,
            )
            % values
        )
        note = (
            translation.ngettext(
                "Dunning escalated again: invoice %(number)s is %(days)s day overdue, "
                "%(amount)s still to pay.",
                "Dunning escalated again: invoice %(number)s is %(days)s days overdue, "
                "%(amount)s still to pay.",
                days,
            )
            % values
        )
    return subject, body, note


def on_dunning_escalated(envelope: EventEnvelope) -> Ticket | None:
    """billing.dunning_escalated → the case's collections ticket, or a note on it."""
    from fedele.customers.facade import customer_summary
    from fedele.support.services.tickets import message_add, ticket_create

    payload = dict(envelope.payload)
    case_id = str(payload.get("case_id") or "")
    customer_id = str(payload.get("customer_id") or "")
    if not case_id:
        logger.warning("Dunning event %s without case_id: ignored", envelope.event_id)
        return None
    existing = (
        Ticket.objects.select_for_update().filter(external_source=DUNNING_SOURCE, external_id=case_id).first()
    )
    summary = customer_summary(customer_id) if customer_id else None
    language = (summary.language if summary is not None and summary.language else "it")[:2]
    if existing is not None:
        _subject, _body, note = _dunning_texts(payload, (existing.language or language)[:2])
        message_add(actor=None, ticket=existing, kind="note", body=note, send_email=False)
        return existing
    subject, body, _note = _dunning_texts(payload, language)
    return ticket_create(
        actor=None,
        subject=subject[:250],
        body=body,
        channel="internal",
        customer_public_id=str(summary.public_id) if summary is not None else None,
        requester_email=summary.email if summary is not None else "",
        requester_name=summary.display_name if summary is not None else "",
        ticket_type="collections",
        priority="high",
        language=language,
        external_source=DUNNING_SOURCE,
        external_id=case_id[:64],
    )


def _work_order_note(payload: dict[str, Any], language: str) -> str:
    values = {
        "number": str(payload.get("number") or payload.get("work_order_id") or ""),
        "status": str(payload.get("status") or ""),
    }
    with translation.override(language):
        lines = [translation.gettext("Work order %(number)s is now: %(status)s.") % values]
        if payload.get("summary"):
            lines.append(str(payload["summary"]))
        scheduled = _parse_datetime(payload.get("scheduled_for"))
        if scheduled is not None:
            lines.append(
                translation.gettext("Scheduled for %(when)s.")
                % {"when": formats.date_format(scheduled, "SHORT_DATETIME_FORMAT")}
            )
        if payload.get("technician_name"):
            lines.append(
                translation.gettext("Technician: %(name)s.") % {"name": str(payload["technician_name"])}
            )
    return "\n".join(lines)


def _parse_datetime(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    from django.utils import timezone

    if timezone.is_naive(moment):
        return None
    return timezone.localtime(moment)


def on_work_order_updated(envelope: EventEnvelope) -> list[Ticket]:
    """field_service.work_order_updated → a system note on each linked ticket (see module doc)."""
    from django.db.models import Q

    from fedele.support.services.tickets import message_add, ticket_update

    payload = dict(envelope.payload)
    work_order_id = str(payload.get("work_order_id") or "")
    ticket_id = str(payload.get("ticket_id") or "")
    match = Q(pk__in=[])
    if work_order_id:
        match |= Q(subject_kind="work_order", subject_reference=work_order_id)
    if ticket_id:
        try:
            import uuid

            match |= Q(public_id=uuid.UUID(ticket_id))
        except ValueError:
            logger.warning("Work order event %s has a bad ticket_id %r", envelope.event_id, ticket_id)
    tickets = list(Ticket.objects.filter(match).exclude(merged_into__isnull=False).select_related("status"))
    completed = str(payload.get("status") or "") == WORK_ORDER_COMPLETED
    for ticket in tickets:
        note = _work_order_note(payload, (ticket.language or "it")[:2])
        message_add(
            actor=None,
            ticket=ticket,
            kind="system",
            body=note,
            author_name="Field service",
            send_email=False,
        )
        if (
            completed
            and ticket.status_kind == StatusKind.PENDING
            and ticket.status.code == PENDING_THIRD_PARTY
        ):
            ticket_update(actor=None, ticket=ticket, changes={"status": "open"})
    return tickets

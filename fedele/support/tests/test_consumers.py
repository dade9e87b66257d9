"""Event consumers: dunning escalation → one collections ticket per case (then notes), work order
updates → system notes and pending-third-party tickets back to open when the work is done."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from fedele.customers.tests.factories import CustomerFactory
from fedele.shared import events, subjects
from fedele.shared.models import OutboxEvent
from fedele.shared.subjects import SubjectRef
from fedele.support.models import Ticket
from fedele.support.services.tickets import ticket_create, ticket_update
from fedele.support.tests.factories import ticket_kwargs

pytestmark = pytest.mark.django_db
NOW = "2026-03-10 10:00 +01:00"


def _deliver(event_type: str, payload: dict[str, Any]) -> OutboxEvent:
    row = OutboxEvent.objects.create(
        event_type=event_type,
        aggregate_type="test",
        aggregate_id="1",
        payload=payload,
        occurred_at=timezone.now(),
    )
    assert events.dispatch(row.event_id)
    return row


def _dunning(customer: Any, case_id: str, days: int = 45) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "invoice_id": str(uuid.uuid4()),
        "invoice_number": "INV-2026-000123",
        "customer_id": str(customer.public_id),
        "currency": "EUR",
        "amount_due": "1220.50",
        "days_overdue": days,
    }


@time_machine.travel(NOW, tick=False)
def test_dunning_escalation_opens_one_collections_ticket_in_customer_language() -> None:
    customer = CustomerFactory(language="it", email="moroso@example.it")
    case_id = str(uuid.uuid4())
    row = _deliver("billing.dunning_escalated", _dunning(customer, case_id))
    ticket = Ticket.objects.get(external_source="billing_dunning", external_id=case_id)
    assert ticket.subject == "Reminder: invoice INV-2026-000123 overdue by 45 days" or ticket.subject == (
        "Sollecito: fattura INV-2026-000123 scaduta da 45 giorni"
    )
    assert ticket.ticket_type is not None and ticket.ticket_type.code == "collections"
    assert (ticket.priority, ticket.channel, ticket.customer_id) == ("high", "internal", customer.pk)
    body = ticket.messages.order_by("id").first()
    assert body is not None and "1.220,50" in body.body_text and "45" in body.body_text
    # The same event delivered again does nothing; a new escalation of the same case adds a note.
    assert events.dispatch(row.event_id)
    _deliver("billing.dunning_escalated", _dunning(customer, case_id, days=60))
    assert Ticket.objects.filter(external_source="billing_dunning").count() == 1
    notes = list(ticket.messages.filter(kind="note").values_list("body_text", flat=True))
    assert len(notes) == 1 and "60" in notes[0]


@time_machine.travel(NOW, tick=False)
def test_english_customer_gets_english_subject() -> None:
    customer = CustomerFactory(language="en")
    _deliver("billing.dunning_escalated", _dunning(customer, str(uuid.uuid4()), days=1))
    ticket = Ticket.objects.get(external_source="billing_dunning")
    assert ticket.subject == "Reminder: invoice INV-2026-000123 overdue by 1 day"
    assert ticket.language == "en"


@time_machine.travel(NOW, tick=False)
def test_work_order_completion_notes_ticket_and_reopens_pending_third_party() -> None:
    work_order_id = str(uuid.uuid4())
    # Field service registers its work orders as ticket subjects when it is installed; here a
    # resolver stands in for it (the kernel registry is the whole contract between the two).
    subjects.register(
        "work_order",
        lambda reference: (
            SubjectRef("work_order", reference, None, "WO-2026-000042", "scheduled")
            if reference == work_order_id
            else None
        ),
    )
    try:
        _work_order_scenario(work_order_id)
    finally:
        subjects.unregister("work_order")


def _work_order_scenario(work_order_id: str) -> None:
    linked = ticket_create(
        actor=None, **ticket_kwargs(subject_kind="work_order", subject_reference=work_order_id, language="en")
    )
    named = ticket_create(actor=None, **ticket_kwargs())
    untouched = ticket_create(actor=None, **ticket_kwargs())
    ticket_update(actor=None, ticket=linked, changes={"status": "pending_third_party"})
    payload = {
        "work_order_id": work_order_id,
        "number": "WO-2026-000042",
        "status": "completed",
        "customer_id": None,
        "ticket_id": str(named.public_id),
        "summary": "Router replaced.",
        "scheduled_for": None,
        "technician_name": "Paolo Neri",
    }
    _deliver("field_service.work_order_updated", payload)
    linked.refresh_from_db()
    named.refresh_from_db()
    assert linked.status.code == "open"
    system = linked.messages.filter(kind="system").get()
    assert system.body_text.startswith("Work order WO-2026-000042 is now: completed.")
    assert "Router replaced." in system.body_text and "Paolo Neri" in system.body_text
    assert named.messages.filter(kind="system").count() == 1
    assert named.status.code == "new"  # not waiting on a third party: status unchanged
    assert untouched.messages.filter(kind="system").count() == 0


@time_machine.travel(NOW, tick=False)
def test_work_order_event_without_links_or_with_bad_ids_changes_nothing() -> None:
    ticket_create(actor=None, **ticket_kwargs())
    before = Ticket.objects.count()
    _deliver(
        "field_service.work_order_updated", {"work_order_id": "", "ticket_id": "not-a-uuid", "status": "x"}
    )
    _deliver("billing.dunning_escalated", {"case_id": ""})
    assert Ticket.objects.count() == before

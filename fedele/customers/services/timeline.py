"""The customer 360 timeline: any module appends to it by publishing TimelineAppend."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils.dateparse import parse_datetime

from fedele.customers.contracts import TimelineAppend
from fedele.customers.models import Customer, TimelineEntry
from fedele.shared.events import EventEnvelope, handles


def timeline_append(
    *,
    customer: Customer,
    module: str,
    kind: str,
    title: str,
    occurred_at: datetime,
    summary: str = "",
    link: str = "",
    data: dict[str, object] | None = None,
    source_event_id: str | None = None,
) -> TimelineEntry | None:
    """Write one entry; returns None when this source event was already recorded."""
    try:
        with transaction.atomic():
            return TimelineEntry.objects.create(
                customer=customer,
                module=module[:32],
                kind=kind[:64],
                title=title[:200],
                summary=summary,
                link=link[:500],
                data=data or {},
                occurred_at=occurred_at,
                source_event_id=source_event_id,
            )
    except IntegrityError:
        return None


@handles(TimelineAppend.event_type, name="customers.timeline.append")
def on_timeline_append(envelope: EventEnvelope) -> None:
    payload = envelope.payload
    customer = Customer.objects.filter(public_id=payload["customer_public_id"]).first()
    while customer is not None and customer.merged_into_id is not None:
        customer = customer.merged_into
    if customer is None:
        return
    occurred_at = parse_datetime(str(payload.get("occurred_at"))) or envelope.occurred_at
    timeline_append(
        customer=customer,
        module=str(payload.get("module", "")),
        kind=str(payload.get("kind", "")),
        title=str(payload.get("title", "")),
        occurred_at=occurred_at,
        summary=str(payload.get("summary", "")),
        link=str(payload.get("link", "")),
        data=dict(payload.get("data") or {}),
        source_event_id=str(envelope.event_id),
    )


TIMELINE_OWN_EVENTS = {
    "customers.CustomerCreated": ("customer.created", "Customer created"),
    "customers.ConsentChanged": ("consent.changed", "Consent updated"),
}


@handles("customers.CustomerCreated", name="customers.timeline.created")
@handles("customers.ConsentChanged", name="customers.timeline.consent")
def on_own_event(envelope: EventEnvelope) -> None:
    kind, title = TIMELINE_OWN_EVENTS[envelope.event_type]
    customer_id = envelope.payload.get("customer_id") or envelope.payload.get("survivor_customer_id")
    customer = Customer.objects.filter(public_id=str(customer_id)).first() if customer_id else None
    if customer is None:
        return
    summary = ""
    if envelope.event_type == "customers.ConsentChanged":
        state = "granted" if envelope.payload["granted"] else "withdrawn"
        summary = f"{envelope.payload['purpose']} via {envelope.payload['channel']}: {state}"
    timeline_append(
        customer=customer,
        module="customers",
        kind=kind,
        title=title,
        occurred_at=envelope.occurred_at,
        summary=summary,
        source_event_id=str(envelope.event_id),
    )

"""E-mails are routed like every other channel: support's inbound e-mail opens a ticket and publishes
``support.ticket_created`` (channel "email"); this handler opens an Interaction (channel e-mail, the
ticket linked) and queues it, so an agent is offered the e-mail by the same router as a call or chat.

Which queue: ``settings.FEDELE_CC_EMAIL_QUEUE`` (a queue code, which must serve e-mail) when set,
else the first active queue (by code) that serves the e-mail channel; with none, e-mails stay with
support only (logged once per ticket). Idempotent: the event bus runs the handler once per event,
and a ticket already routed is never routed twice.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction

from fedele.contact_center.models import Channel, Direction, Interaction, Queue
from fedele.shared.events import EventEnvelope

logger = logging.getLogger(__name__)

HANDLER_NAME = "contact_center.email_routing.ticket_created"
TICKET_CREATED = "support.ticket_created"


def email_queue() -> Queue | None:
    configured = str(getattr(settings, "FEDELE_CC_EMAIL_QUEUE", "") or "")
    queues = Queue.objects.filter(active=True).order_by("code")
    if configured:
        queues = queues.filter(code=configured)
    for queue in queues.only("id", "code", "channels"):
        if Channel.EMAIL in (queue.channels or []):
            return queue
    return None


def route_ticket_email(
    *, ticket_public_id: str, subject: str, customer_public_id: str, at: datetime | None = None
) -> Interaction | None:
    """Open and queue the e-mail interaction of one ticket (None when no queue takes e-mails, or the
    ticket was routed already)."""
    from fedele.contact_center.services.interactions import interaction_create, interaction_enqueue

    queue = email_queue()
    if queue is None:
        logger.info("No contact-center queue takes e-mails; ticket %s stays with support", ticket_public_id)
        return None
    with transaction.atomic():
        if Interaction.objects.filter(channel=Channel.EMAIL, ticket_public_id=ticket_public_id).exists():
            return None
        requester = ""
        from fedele.support.facade import ticket_summary

        summary = ticket_summary(ticket_public_id)
        if summary is not None:
            requester = summary.requester_email
        interaction = interaction_create(
            channel=Channel.EMAIL,
            direction=Direction.INBOUND,
            from_address=requester[:200],
            subject=subject[:200],
            attributes={"ticket_number": summary.number if summary else ""},
            customer_public_id=customer_public_id or None,
            at=at,
        )
        interaction.ticket_public_id = ticket_public_id
        interaction.save(update_fields=["ticket_public_id"])
        interaction_enqueue(interaction=interaction, queue_code=queue.code, at=at)
    return interaction


def on_ticket_created(envelope: EventEnvelope) -> None:
    payload = envelope.payload
    if str(payload.get("channel") or "") != "email":
        return
    route_ticket_email(
        ticket_public_id=str(payload.get("ticket_id") or ""),
        subject=str(payload.get("subject") or ""),
        customer_public_id=str(payload.get("customer_id") or ""),
    )

"""Celery entry points of the kernel. Each is idempotent."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="shared.dispatch_outbox_event", acks_late=True)
def dispatch_outbox_event(event_id: str) -> bool:
    from fedele.shared.events import dispatch

    return dispatch(event_id)


@shared_task(name="shared.dispatch_outbox_events", acks_late=True)
def dispatch_outbox_events(event_ids: list[str]) -> int:
    """The events of one batch posting, delivered in order by one task."""
    from fedele.shared.events import dispatch

    return sum(1 for event_id in event_ids if dispatch(event_id))


@shared_task(name="shared.dispatch_outbox_due")
def dispatch_outbox_due() -> int:
    from fedele.shared.events import dispatch_due

    return dispatch_due()


@shared_task(name="shared.deliver_webhook", acks_late=True)
def deliver_webhook(delivery_id: int) -> str:
    from fedele.shared.webhooks import deliver

    return deliver(delivery_id)


@shared_task(name="shared.deliver_webhooks_due")
def deliver_webhooks_due() -> int:
    from fedele.shared.webhooks import deliver_due

    return deliver_due()


@shared_task(name="shared.purge_idempotency_records")
def purge_idempotency_records() -> int:
    from fedele.shared.idempotency import purge_expired

    return purge_expired()

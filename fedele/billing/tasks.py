"""Celery entry points of billing. Each is idempotent: running it twice changes nothing more."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="billing.execute_billing_run", acks_late=True)
def execute_billing_run(run_id: int, part: int = 0, parts: int = 1) -> int:
    from fedele.billing.services.billing_run import billing_run_execute

    return billing_run_execute(run_id, partition=(part, parts)).invoices_created


@shared_task(name="billing.daily_billing_run")
def daily_billing_run() -> int | None:
    """The periodic job: resume a crashed run or start today's; nothing when one is alive or done."""
    from fedele.billing.models import BillingRun
    from fedele.billing.services.billing_run import (
        billing_run_execute,
        billing_run_latest_resumable,
        billing_run_start,
    )
    from fedele.billing.services.invoicing import business_today
    from fedele.billing.services.pending_charges import pending_charges_invoice
    from fedele.shared.errors import Conflict

    today = business_today()
    resumable = billing_run_latest_resumable()
    if resumable is not None:
        created = billing_run_execute(resumable.pk).invoices_created
    elif BillingRun.objects.filter(as_of=today, status=BillingRun.Status.COMPLETED).exists():
        created = None
    else:
        try:
            run = billing_run_start(as_of=today, execute=False)
        except Conflict:
            return None
        created = billing_run_execute(run.pk).invoices_created
    # After the run: charges of customers no subscription invoice picked up get their own invoice.
    orphans = len(pending_charges_invoice(as_of=today))
    return None if created is None and not orphans else (created or 0) + orphans


@shared_task(name="billing.deliver_invoices", acks_late=True)
def deliver_invoices(invoice_ids: list[int]) -> int:
    from fedele.billing.services.delivery import deliver_many

    return deliver_many(invoice_ids)


@shared_task(name="billing.deliver_pending_invoices")
def deliver_pending_invoices() -> int:
    from fedele.billing.services.delivery import deliver_pending

    return deliver_pending()


@shared_task(name="billing.dispatch_events", acks_late=True)
def dispatch_events(event_ids: list[str]) -> int:
    """Deliver a billing run batch's outbox events (what publish() would enqueue one by one)."""
    from fedele.shared.events import dispatch

    return sum(1 for event_id in event_ids if dispatch(event_id))

"""The billing run: every subscription due on or before ``as_of`` gets its period-boundary transition
and its invoice, in batches of set-based statements.

- **Idempotent and resumable.** Each invoice carries ``billing_key = sub:<id>:<date billed>``
  (unique) and is written in the same transaction as the subscription's move to its next billing
  date, so a crashed run loses at most its open batch (rolled back) and a re-run picks up exactly
  what is still due. A subscription that fails is reported in ``errors`` and skipped.
- **Gapless numbers.** A batch reserves one block per series with a single
  ``UPDATE … SET last_value = last_value + n RETURNING`` inside its own transaction: the counter row
  stays locked until the batch commits, and a rollback gives the block back.
- **Period boundary** (contracts): first invoice (period in advance + setup fee), trial end →
  active, ``cancel_at_period_end`` / term end without auto-renew → cancelled (final invoice with the
  ended period's usage and pending charges only), pending change applied, period advanced; every
  state change has a SubscriptionChange row with before/after snapshots.
- **Events.** Outbox rows are bulk-inserted with the batch; after commit one Celery task delivers
  them (the outbox sweep is the safety net), and another e-mails the invoices.

This module starts and drives runs; billing_plan.py plans a batch in memory and billing_batch.py
writes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Mod

from fedele.billing.models import (
    BillingRun,
    Subscription,
)
from fedele.billing.services.billing_batch import BatchProcessor, fast_insert, flat_payload, reserve_numbers
from fedele.billing.services.billing_plan import (
    BATCH_SIZE,
    MAX_PASSES,
    STALE_AFTER,
    business_midnight,
    due_filter,
)
from fedele.billing.services.invoicing import (
    business_today,
)
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, ValidationFailed

logger = logging.getLogger(__name__)


def billing_run_start(
    *, as_of: date, actor_id: int | None = None, finalise: bool = True, execute: bool = True
) -> BillingRun:
    """Create a run (refused while another one is alive) and, after commit, execute it as a task."""
    if isinstance(as_of, datetime) or not isinstance(as_of, date):
        raise ValidationFailed("as_of must be a date.", code="invalid_date", fields={"as_of": "A date."})
    if as_of > business_today():
        raise ValidationFailed(
            "A billing run cannot be dated in the future.",
            code="future_billing_run",
            fields={"as_of": "Must be today or earlier."},
        )
    now = clock.now()
    with transaction.atomic():
        alive = (
            BillingRun.objects.select_for_update()
            .filter(status__in=[BillingRun.Status.PENDING, BillingRun.Status.RUNNING])
            .filter(
                Q(heartbeat_at__isnull=True, created_at__gt=now - STALE_AFTER)
                | Q(heartbeat_at__gt=now - STALE_AFTER)
            )
            .first()
        )
        if alive is not None:
            raise Conflict(f"Billing run {alive.pk} is still running.", code="billing_run_in_progress")
        run = BillingRun.objects.create(
            as_of=as_of,
            finalise=finalise,
            started_by_id=actor_id,
            subscriptions_due=Subscription.objects.filter(due_filter(as_of)).count(),
            created_at=now,
        )
        audit.record(
            action="billing.billing_run_started",
            object_type="billing.billing_run",
            object_id=str(run.public_id),
            after={"as_of": as_of, "finalise": finalise, "subscriptions_due": run.subscriptions_due},
            actor_id=actor_id,
        )
        if execute:
            from fedele.billing.tasks import execute_billing_run

            run_id = run.pk
            # One task per partition: with FEDELE_BILLING_RUN_WORKERS=n, n Celery workers share the run.
            parts = max(1, int(getattr(settings, "FEDELE_BILLING_RUN_WORKERS", 1)))
            for part in range(parts):
                transaction.on_commit(partial(execute_billing_run.delay, run_id, part, parts))
    return run


def billing_run_latest_resumable(as_of: date | None = None) -> BillingRun | None:
    """A run that crashed (stale heartbeat) or failed, to be resumed rather than started anew."""
    runs = BillingRun.objects.filter(
        Q(status=BillingRun.Status.FAILED)
        | Q(
            status__in=[BillingRun.Status.RUNNING, BillingRun.Status.PENDING],
            heartbeat_at__lt=clock.now() - STALE_AFTER,
        )
        | Q(
            status=BillingRun.Status.PENDING,
            heartbeat_at__isnull=True,
            created_at__lt=clock.now() - STALE_AFTER,
        )
    )
    if as_of is not None:
        runs = runs.filter(as_of=as_of)
    return runs.order_by("-id").first()


# executing -----------------------------------------------------------------------------------------


def billing_run_execute(
    run_id: int,
    *,
    batch_size: int = BATCH_SIZE,
    on_progress: Callable[[BillingRun], None] | None = None,
    partition: tuple[int, int] = (0, 1),
) -> BillingRun:
    """Process every due subscription; safe to call again on a crashed or failed run.

    ``partition=(k, n)``: this executor takes the subscriptions whose id is k modulo n, so n workers
    (Celery workers, or processes of ``manage.py billing_run --workers n``) share one run. Batches
    never overlap, and the invoice numbers stay gapless: each batch reserves its block of numbers in
    its own transaction. The last executor to find nothing left marks the run completed.
    """
    part, parts = partition
    if not 0 <= part < parts:
        raise ValidationFailed("A partition is (k, n) with 0 <= k < n.", code="invalid_partition")
    now = clock.now()
    claimed = (
        BillingRun.objects.filter(pk=run_id)
        .exclude(status=BillingRun.Status.COMPLETED)
        .update(status=BillingRun.Status.RUNNING, heartbeat_at=now, finished_at=None)
    )
    run = BillingRun.objects.get(pk=run_id)
    if not claimed:
        return run
    if run.started_at is None:
        BillingRun.objects.filter(pk=run_id, started_at__isnull=True).update(started_at=now)
    processor = BatchProcessor(run)
    due = Subscription.objects.filter(due_filter(run.as_of))
    mine = due.annotate(_partition=Mod("id", parts)).filter(_partition=part) if parts > 1 else due
    try:
        for _pass in range(MAX_PASSES):
            found = False
            last_id = 0
            while True:
                ids = list(
                    mine.filter(pk__gt=last_id)
                    .exclude(pk__in=processor.failed_ids)
                    .order_by("pk")
                    .values_list("pk", flat=True)[:batch_size]
                )
                if not ids:
                    break
                found = True
                last_id = ids[-1]
                processor.process(ids)
                if on_progress is not None:
                    on_progress(BillingRun.objects.get(pk=run_id))
            if not found:
                break
    except Exception:
        logger.exception("Billing run %s failed", run_id)
        BillingRun.objects.filter(pk=run_id).update(status=BillingRun.Status.FAILED, heartbeat_at=clock.now())
        raise
    run.refresh_from_db()
    failed = {int(error["subscription_id"]) for error in run.errors or [] if "subscription_id" in error}
    if parts > 1 and due.exclude(pk__in=failed).exists():
        return run  # another partition is still working; it completes the run
    completed = BillingRun.objects.filter(pk=run_id, status=BillingRun.Status.RUNNING).update(
        status=BillingRun.Status.COMPLETED, finished_at=clock.now(), heartbeat_at=clock.now()
    )
    run.refresh_from_db()
    if completed:
        audit.record(
            action="billing.billing_run_completed",
            object_type="billing.billing_run",
            object_id=str(run.public_id),
            after={
                "subscriptions_processed": run.subscriptions_processed,
                "invoices_created": run.invoices_created,
                "errors": len(run.errors),
            },
            actor_id=run.started_by_id,
        )
    return run


__all__ = [
    "BATCH_SIZE",
    "billing_run_execute",
    "billing_run_latest_resumable",
    "billing_run_start",
    "business_midnight",
    "due_filter",
    "fast_insert",
    "flat_payload",
    "reserve_numbers",
]

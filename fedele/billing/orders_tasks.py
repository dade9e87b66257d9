"""Celery entry points for usage, quotes and provisioning (H3). Idempotent."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="billing.provisioning_run_due", acks_late=True)
def provisioning_run_due() -> int:
    from fedele.billing.services.provisioning import provisioning_run_due as run_due

    return run_due()


@shared_task(name="billing.quotes_expire_due")
def quotes_expire_due() -> int:
    from fedele.billing.services.quotes import quotes_expire_due as expire_due

    return expire_due()

"""Celery entry points of the loyalty programmes area. Each is idempotent."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="loyalty.tiers_review_due")
def tiers_review_due() -> int:
    """Hourly (idempotent): review the members whose tier review date has come (soft landing)."""
    from fedele.loyalty.services.tiers import tiers_review_due as run

    return run()

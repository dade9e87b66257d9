"""Celery entry points of the loyalty partners area. Each is idempotent."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="loyalty.settlements_generate_month")
def settlements_generate_month() -> dict[str, int]:
    """Hourly (idempotent): on the 1st (programme time zone) (re)generate last month's draft
    statement of every active partner; on other days create only the ones still missing."""
    from fedele.loyalty.services.settlements import settlements_generate_month as run

    return run()

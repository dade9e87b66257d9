"""Celery entry points of the loyalty rules area. Each is idempotent."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="loyalty.birthdays_award")
def birthdays_award() -> int:
    """Birthday points for today's birthdays (each programme's time zone); once per member and year,
    so the scheduler may run it every hour."""
    from fedele.loyalty.services.rules import birthdays_award as award

    return award()

"""Celery entry points of the loyalty ledger area. Each is idempotent: running one twice, or two at
once, changes nothing more than running it once (the postings lock the members they change)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="loyalty.lots_mature_due")
def lots_mature_due() -> int:
    """Every 10 minutes: pending points whose return window has ended become available."""
    from fedele.loyalty.services.ledger import lots_mature_due as run

    return run()


@shared_task(name="loyalty.lots_expire_due")
def lots_expire_due() -> int:
    """Hourly: lots whose last day has passed (each programme's time zone) expire."""
    from fedele.loyalty.services.ledger import lots_expire_due as run

    return run()


@shared_task(name="loyalty.reservations_expire_due")
def reservations_expire_due() -> int:
    """Every minute: reservations held past their time are released onto their lots."""
    from fedele.loyalty.services.ledger import reservations_expire_due as run

    return run()


@shared_task(name="loyalty.expiry_notices_send")
def expiry_notices_send() -> int:
    """Daily: one "points expiring" notice per member and expiry date."""
    from fedele.loyalty.services.ledger import expiry_notices_send as run

    return run()

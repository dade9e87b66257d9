"""Celery entry points of the loyalty rewards area. Each is idempotent."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="loyalty.rewards_reservations_cleanup")
def rewards_reservations_cleanup() -> int:
    """Every minute: cancel the reserved redemptions whose points hold timed out (stock and codes
    back). Running it twice, or alongside the ledger's own timeout job, changes nothing more."""
    from fedele.loyalty.services.rewards import reservations_expired_cleanup

    return reservations_expired_cleanup()

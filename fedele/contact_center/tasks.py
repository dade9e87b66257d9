"""Celery entry points of the contact center. Each calls a service and is idempotent: running it
twice changes nothing more than running it once. Areas add their own tasks below their heading."""

from __future__ import annotations

from celery import shared_task

# --- routing -------------------------------------------------------------------------------------


@shared_task(name="contact_center.route_pending")
def route_pending_task(limit: int = 500) -> int:
    """After every enqueue (on commit) and every few seconds: offers for waiting contacts, expired
    offers back in line, target timeouts, overflow and automatic wrap-up ends."""
    from fedele.contact_center.services.routing import route_pending

    return route_pending(limit=limit)

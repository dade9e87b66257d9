"""Celery entry points of the dialer (imported by ``setup.dialer.register`` so workers know them).
Each is idempotent: a tick claims contacts under the campaign's row lock, so a second run at the same
moment finds the lines already out and dials nothing more."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="contact_center.dialer_tick")
def dialer_tick_task() -> int:
    """Every few seconds: one pacing decision per running campaign; returns the calls placed."""
    from fedele.contact_center.services.dialer import campaign_tick_all

    return campaign_tick_all()

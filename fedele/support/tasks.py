"""Celery entry points of support. Each is idempotent: running it twice changes nothing more."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="support.sla_run_due")
def sla_run_due() -> dict[str, int]:
    """Every 60 s: SLA warnings, breaches and escalations (each clock warns and breaches once)."""
    from fedele.support.services.sla import sla_run_due as run

    return run()


@shared_task(name="support.time_rules_run")
def time_rules_run() -> int:
    """Every 300 s: time rules (each fires once per ticket per reference time)."""
    from fedele.support.services.automations import time_rules_run as run

    return run()


@shared_task(name="support.post_automation_webhook", autoretry_for=(), acks_late=True)
def post_automation_webhook(url: str, payload: dict[str, Any]) -> int | None:
    """A trigger's webhook action: one signed POST after the ticket change committed."""
    from fedele.support.services.automations import post_webhook

    return post_webhook(url, payload)

"""Celery entry points of the knowledge base (imported by setup.kb so the names are registered)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="support.kb_settle_deflections")
def settle_deflections() -> int:
    from fedele.support.services.kb import deflections_settle

    return deflections_settle()

"""Celery entry points of the IVR area (registered by setup/ivr.py at start-up)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="contact_center.document_requests_retry_failed")
def document_requests_retry_failed() -> int:
    from fedele.contact_center.services.documents import document_requests_retry_failed as retry

    return retry()

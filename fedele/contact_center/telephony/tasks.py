"""Celery entry points of the telephony area. Each is idempotent."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="contact_center.media_fetch", acks_late=True)
def media_fetch(kind: str, row_id: int) -> str:
    """Download a recording or voicemail a provider announced (a stored one is left alone)."""
    from fedele.contact_center.services.recordings import media_fetch as fetch

    return fetch(kind=kind, row_id=row_id)


@shared_task(name="contact_center.recordings_purge_expired")
def recordings_purge_expired() -> dict[str, int]:
    """Hourly: delete recordings and voicemail past their queue's retention, and audio files no row
    references (left by a transaction that rolled back after storing them)."""
    from fedele.contact_center.services.audio_storage import audio_orphans_sweep
    from fedele.contact_center.services.recordings import recordings_purge_expired as purge

    return {**purge(), "orphan_files": len(audio_orphans_sweep())}


@shared_task(name="contact_center.media_fetch_due")
def media_fetch_due() -> int:
    """Every 5 minutes: fetch again what is still pending (a lost task)."""
    from fedele.contact_center.services.recordings import media_fetch_due as fetch_due

    return fetch_due()

"""Celery entry points of the e-mail channel (idempotent; the scheduler runs them every minute)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="support.imap_poll")
def imap_poll() -> dict[str, int]:
    """Fetch new mail from every active IMAP mailbox."""
    from fedele.support.email.imap import poll_all

    return poll_all()


@shared_task(name="support.deliver_pending_replies")
def deliver_pending_replies() -> int:
    """Retry public replies whose e-mail was started but not confirmed (backend down)."""
    from fedele.support.services.email_outbound import deliver_pending

    return deliver_pending()

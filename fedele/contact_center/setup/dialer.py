"""What the dialer area registers at start-up: its Celery task, the tick job, and the handler that
finishes a dial attempt when its interaction ends."""

from __future__ import annotations

from datetime import datetime

from fedele.shared.events import EventEnvelope

DIALER_TICK_SECONDS = 2  # the 2 s abandon rule is enforced at the next tick after a live answer


def interaction_ended(envelope: EventEnvelope) -> None:
    """An outbound call the dialer placed ended: bring its attempt up to date (idempotent)."""
    from fedele.contact_center.models import DialAttempt
    from fedele.contact_center.services.dialer import attempt_sync

    payload = envelope.payload
    if payload.get("direction") != "outbound" or not payload.get("provider_ref"):
        return
    attempt = DialAttempt.objects.filter(
        provider=payload.get("provider", ""), call_ref=payload["provider_ref"]
    ).first()
    if attempt is not None:
        attempt_sync(attempt=attempt, at=datetime.fromisoformat(str(payload["ended_at"])))


def register() -> None:
    from django.utils.translation import gettext_lazy as _

    from fedele.contact_center.dialer import tasks  # noqa: F401  (registers the Celery task)
    from fedele.contact_center.events import InteractionEnded
    from fedele.shared import events, navigation, scheduler
    from fedele.shared.navigation import NavItem

    navigation.register(
        "contact_center",
        NavItem(_("Outbound campaigns"), "contact_center:dialer_campaigns", "contact_center.run_campaigns"),
    )
    scheduler.register("contact-center-dialer", "contact_center.dialer_tick", DIALER_TICK_SECONDS)
    events.handles(InteractionEnded.event_type, name="contact_center.dialer.interaction_ended")(
        interaction_ended
    )

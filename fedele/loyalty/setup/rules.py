"""What the earning rules, campaigns and events area registers at start-up: the handlers of other
modules' events (and of loyalty's own MemberEnrolled), the birthday job and the navigation items."""

from __future__ import annotations

from fedele.shared.events import EventEnvelope


def _on_invoice_paid(envelope: EventEnvelope) -> None:
    from fedele.loyalty.services.consumers import on_invoice_paid

    on_invoice_paid(envelope)


def _on_subscription_cancelled(envelope: EventEnvelope) -> None:
    from fedele.loyalty.services.consumers import on_subscription_cancelled

    on_subscription_cancelled(envelope)


def _on_survey_completed(envelope: EventEnvelope) -> None:
    from fedele.loyalty.services.consumers import on_survey_completed

    on_survey_completed(envelope)


def _on_member_enrolled(envelope: EventEnvelope) -> None:
    from fedele.loyalty.services.consumers import on_member_enrolled

    on_member_enrolled(envelope)


def register() -> None:
    from django.utils.translation import gettext_lazy as _

    from fedele.loyalty.jobs import rules as jobs  # noqa: F401  (registers the Celery task name)
    from fedele.loyalty.services.consumers import (
        INVOICE_PAID_HANDLER,
        MEMBER_ENROLLED_HANDLER,
        SUBSCRIPTION_CANCELLED_HANDLER,
        SURVEY_COMPLETED_HANDLER,
    )
    from fedele.shared import events, navigation, scheduler
    from fedele.shared.navigation import NavItem

    events.handles("billing.invoice_paid", name=INVOICE_PAID_HANDLER)(_on_invoice_paid)
    events.handles("billing.subscription_cancelled", name=SUBSCRIPTION_CANCELLED_HANDLER)(
        _on_subscription_cancelled
    )
    events.handles("support.survey_completed", name=SURVEY_COMPLETED_HANDLER)(_on_survey_completed)
    events.handles("loyalty.member_enrolled", name=MEMBER_ENROLLED_HANDLER)(_on_member_enrolled)
    scheduler.register("loyalty-birthdays", "loyalty.birthdays_award", 3600)
    navigation.register("loyalty", NavItem(_("Earning rules"), "loyalty:rules_list", "loyalty.view_loyalty"))
    navigation.register(
        "loyalty", NavItem(_("Bonus campaigns"), "loyalty:rules_campaigns", "loyalty.view_loyalty")
    )
    navigation.register(
        "loyalty", NavItem(_("Earning simulator"), "loyalty:rules_simulator", "loyalty.view_loyalty")
    )

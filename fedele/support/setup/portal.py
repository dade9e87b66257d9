"""What the portal & surveys area registers at start-up: event handlers (CSAT on solved tickets,
collections tickets on dunning escalation, notes on work order updates), navigation to the reports,
and the portal customer's "Help centre" card on the home dashboard (billing's portal card sits next
to it: the frame links both portals)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from fedele.shared.events import EventEnvelope
from fedele.shared.web.dashboard import DashboardWidget


def _csat_on_ticket_solved(envelope: EventEnvelope) -> None:
    from fedele.support.services.surveys import on_ticket_solved

    on_ticket_solved(envelope)


def _collections_ticket_on_dunning_escalated(envelope: EventEnvelope) -> None:
    from fedele.support.services.consumers import on_dunning_escalated

    on_dunning_escalated(envelope)


def _note_on_work_order_updated(envelope: EventEnvelope) -> None:
    from fedele.support.services.consumers import on_work_order_updated

    on_work_order_updated(envelope)


def help_widget(request: HttpRequest) -> DashboardWidget | None:
    """Portal customers see their open requests and a way into the help centre on the home page."""
    from fedele.accounts.facade import actor_for
    from fedele.customers.facade import customer_for_user
    from fedele.support.selectors.portal import my_requests

    user: Any = request.user
    if not user.is_authenticated:
        return None
    actor = actor_for(user)
    if not actor.is_portal_customer or customer_for_user(actor.user_id) is None:
        # A login not (yet) linked to a customer gets the plain welcome page, as billing does.
        return None
    open_requests = my_requests(actor=actor, state="open")
    return DashboardWidget(
        template="support/portal/_widget.html",
        context={"open_count": open_requests.count(), "recent": list(open_requests[:3])},
        order=60,
    )


def register() -> None:
    from django.utils.translation import gettext_lazy as _

    from fedele.shared import events, navigation
    from fedele.shared.navigation import NavItem
    from fedele.shared.web import dashboard
    from fedele.support.events import FIELD_SERVICE_WORK_ORDER_UPDATED
    from fedele.support.services.consumers import DUNNING_HANDLER_NAME, WORK_ORDER_HANDLER_NAME
    from fedele.support.services.surveys import CSAT_HANDLER_NAME

    events.handles("support.ticket_solved", name=CSAT_HANDLER_NAME)(_csat_on_ticket_solved)
    events.handles("billing.dunning_escalated", name=DUNNING_HANDLER_NAME)(
        _collections_ticket_on_dunning_escalated
    )
    events.handles(FIELD_SERVICE_WORK_ORDER_UPDATED, name=WORK_ORDER_HANDLER_NAME)(
        _note_on_work_order_updated
    )
    navigation.register(
        "service", NavItem(_("Satisfaction (CSAT)"), "support:csat_report", "support.view_support_reports")
    )
    navigation.register(
        "service", NavItem(_("NPS campaigns"), "support:nps_campaigns", "support.manage_support")
    )
    dashboard.register("support-portal", help_widget)

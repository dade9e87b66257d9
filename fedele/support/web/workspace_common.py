"""Shared pieces of the agent workspace pages: who may use them, labels, SLA countdowns, pick lists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from fedele.accounts.facade import Actor, actor_for
from fedele.shared import clock
from fedele.shared.errors import PermissionDenied
from fedele.support.models import Category, Ticket, TicketStatus, TicketType

UNSOLVED_KINDS = ("new", "open", "pending")
ACTIVE_KINDS = ("new", "open")
DUE_SOON = timedelta(hours=1)


def agent(request: HttpRequest) -> Actor:
    """The internal user with support.view_ticket asking; anyone else gets a 403."""
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can("support.view_ticket")):
        raise PermissionDenied(_("You do not have permission to see tickets."))
    return actor


def worker(request: HttpRequest) -> Actor:
    """As ``agent`` and allowed to reply to and change tickets."""
    actor = agent(request)
    if not actor.can("support.work_tickets"):
        raise PermissionDenied(_("You do not have permission to work on tickets."))
    return actor


def is_italian() -> bool:
    return (get_language() or "en").startswith("it")


def name_of(row: TicketStatus | TicketType | Category | None) -> str:
    if row is None:
        return ""
    return row.name_it if is_italian() else row.name_en


def person_name(user: Any) -> str:
    if user is None:
        return ""
    return str(user.get_full_name() or user.email)


STATUS_COLOURS = {
    "new": "info",
    "open": "primary",
    "pending": "warning",
    "solved": "success",
    "closed": "secondary",
}
PRIORITY_COLOURS = {"low": "secondary", "normal": "light", "high": "warning", "urgent": "danger"}


@dataclass(frozen=True, slots=True)
class Due:
    """The next SLA deadline of a ticket as shown in the queue: text and urgency colour."""

    at: datetime | None
    text: str
    level: str  # "danger" (breached), "warning" (due within the hour), "secondary", "" (none)


def _duration(seconds: int) -> str:
    minutes = max(0, seconds) // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return _("%(days)d d %(hours)d h") % {"days": days, "hours": hours}
    if hours:
        return _("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}
    return _("%(minutes)d min") % {"minutes": minutes}


def next_due(ticket: Ticket, *, now: datetime | None = None) -> Due:
    """The earliest open SLA deadline (first response, next response, resolution) of an unsolved ticket."""
    if ticket.status_kind not in UNSOLVED_KINDS:
        return Due(None, "", "")
    candidates = [
        at
        for at in (ticket.first_response_due_at, ticket.next_response_due_at, ticket.resolution_due_at)
        if at is not None
    ]
    if not candidates:
        return Due(None, "", "danger" if ticket.sla_breached else "")
    at = min(candidates)
    remaining = int((at - (now or clock.now())).total_seconds())
    if remaining < 0:
        return Due(at, _("overdue %(time)s") % {"time": _duration(-remaining)}, "danger")
    level = (
        "danger"
        if ticket.sla_breached
        else ("warning" if remaining <= DUE_SOON.total_seconds() else "secondary")
    )
    return Due(at, _duration(remaining), level)


def remaining_text(seconds: int) -> str:
    return _duration(seconds)


def statuses() -> QuerySet[TicketStatus]:
    return TicketStatus.objects.filter(active=True)


def ticket_types() -> QuerySet[TicketType]:
    return TicketType.objects.filter(active=True)


def categories() -> QuerySet[Category]:
    return Category.objects.filter(active=True)


def team_model() -> type[Model]:
    """accounts.Team without importing accounts' models (the boundary allows its facade only)."""
    model: type[Model] = Ticket._meta.get_field("team").related_model
    return model


def teams() -> list[Any]:
    return list(team_model().objects.order_by("name"))  # type: ignore[attr-defined]


def agents() -> list[Any]:
    """Active internal users who may work tickets (through their role groups), by name."""
    users = get_user_model().objects.filter(is_active=True)
    permitted = users.filter(
        groups__permissions__codename="work_tickets", groups__permissions__content_type__app_label="support"
    )
    return list(
        (permitted | users.filter(is_superuser=True)).distinct().order_by("first_name", "last_name", "email")
    )


def choice_labels(rows: QuerySet[Any] | list[Any]) -> list[tuple[str, str]]:
    return [(row.code, name_of(row)) for row in rows]

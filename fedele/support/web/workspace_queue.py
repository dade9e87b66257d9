"""The queue page: built-in and saved views with counts, filters, sort, search, bulk actions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from fedele.accounts.facade import Actor
from fedele.customers.facade import customer_summaries
from fedele.shared import clock
from fedele.shared.errors import ApplicationError, NotFound, ValidationFailed
from fedele.support.models import PRIORITY_RANK, Priority, SavedView, StatusKind, Ticket
from fedele.support.web import workspace_common as common

PAGE_SIZE = 50
SOLVED_RECENTLY = timedelta(days=7)
FILTER_KEYS = (
    "status_kind",
    "priority",
    "assignee",
    "team",
    "tag",
    "type",
    "category",
    "channel",
    "sla",
    "customer",
)
BULK_ACTIONS = ("assign_me", "assign", "team", "status", "priority", "add_tag")


@dataclass(frozen=True, slots=True)
class BuiltInView:
    key: str
    label: Any


BUILT_IN_VIEWS = (
    BuiltInView("mine", gettext_lazy("My open tickets")),
    BuiltInView("unassigned", gettext_lazy("Unassigned")),
    BuiltInView("open", gettext_lazy("All open")),
    BuiltInView("pending", gettext_lazy("Pending")),
    BuiltInView("sla", gettext_lazy("SLA breached / due soon")),
    BuiltInView("solved", gettext_lazy("Solved recently")),
)
ORDERINGS: dict[str, Any] = {
    "-updated_at": gettext_lazy("Recently updated"),
    "updated_at": gettext_lazy("Least recently updated"),
    "-created_at": gettext_lazy("Newest"),
    "created_at": gettext_lazy("Oldest"),
    "due": gettext_lazy("SLA due soonest"),
    "-priority": gettext_lazy("Highest priority"),
}
# The page's sort names → the names saved views store (those of the ticket list API), and back.
SAVED_ORDERING = {
    "-updated_at": "-updated",
    "updated_at": "updated",
    "-created_at": "-id",
    "created_at": "id",
    "due": "due",
    "-priority": "-priority",
}
PAGE_ORDERING = {saved: page for page, saved in SAVED_ORDERING.items()}


def built_in_filter(key: str, actor: Actor, now: datetime) -> Q:
    soon = now + common.DUE_SOON
    unsolved = Q(status_kind__in=common.UNSOLVED_KINDS)
    if key == "mine":
        return unsolved & Q(assignee_id=actor.user_id)
    if key == "unassigned":
        return Q(status_kind__in=common.ACTIVE_KINDS, assignee__isnull=True)
    if key == "open":
        return Q(status_kind__in=common.ACTIVE_KINDS)
    if key == "pending":
        return Q(status_kind=StatusKind.PENDING)
    if key == "sla":
        return unsolved & (
            Q(sla_breached=True)
            | Q(first_response_due_at__lte=soon)
            | Q(next_response_due_at__lte=soon)
            | Q(resolution_due_at__lte=soon)
        )
    if key == "solved":
        return Q(status_kind=StatusKind.SOLVED, solved_at__gte=now - SOLVED_RECENTLY)
    raise NotFound(_("This view does not exist."))


def _visible(actor: Actor, filters: dict[str, str]) -> QuerySet[Ticket]:
    from fedele.support.selectors.tickets import ticket_list

    return ticket_list(actor=actor, filters=filters)


def saved_views_for(actor: Actor) -> QuerySet[SavedView]:
    return SavedView.objects.filter(Q(owner_id=actor.user_id) | Q(shared=True)).order_by("position", "id")


def _ordered(queryset: QuerySet[Ticket], ordering: str) -> QuerySet[Ticket]:
    if ordering == "due":
        return queryset.order_by(F("resolution_due_at").asc(nulls_last=True), "id")
    if ordering == "-priority":
        rank = Case(
            *[When(priority=code, then=Value(value)) for code, value in PRIORITY_RANK.items()],
            default=Value(0),
            output_field=IntegerField(),
        )
        return queryset.annotate(priority_rank=rank).order_by("-priority_rank", "-id")
    return queryset.order_by(ordering, "-id")


@dataclass(frozen=True, slots=True)
class QueueRow:
    ticket: Ticket
    status_label: str
    status_colour: str
    customer_name: str
    assignee_name: str
    due: common.Due


def _rows(tickets: list[Ticket], now: datetime) -> list[QueueRow]:
    customers = customer_summaries([t.customer_id for t in tickets if t.customer_id is not None])
    rows = []
    for ticket in tickets:
        customer = customers.get(ticket.customer_id) if ticket.customer_id is not None else None
        rows.append(
            QueueRow(
                ticket=ticket,
                status_label=common.name_of(ticket.status),
                status_colour=common.STATUS_COLOURS.get(ticket.status_kind, "secondary"),
                customer_name=customer.display_name if customer else "",
                assignee_name=common.person_name(ticket.assignee),
                due=common.next_due(ticket, now=now),
            )
        )
    return rows


def _request_filters(request: HttpRequest) -> dict[str, str]:
    filters = {key: request.GET.get(key, "").strip()[:80] for key in FILTER_KEYS}
    query = request.GET.get("q", "").strip()[:200]
    if query:
        filters["q"] = query
    return {key: value for key, value in filters.items() if value}


def _view_counts(actor: Actor, now: datetime, saved: list[SavedView]) -> dict[str, int]:
    base = _visible(actor, {})
    aggregates = {
        view.key: Count("id", filter=built_in_filter(view.key, actor, now)) for view in BUILT_IN_VIEWS
    }
    counts: dict[str, int] = dict(base.aggregate(**aggregates))
    from fedele.support.selectors.tickets import view_counts

    counts.update(view_counts(actor=actor, views=saved))
    return counts


def _string_filters(filters: Any) -> dict[str, str]:
    if not isinstance(filters, dict):
        return {}
    return {str(key): str(value) for key, value in filters.items() if value not in (None, "")}


def _queue(request: HttpRequest, *, saved_view: SavedView | None = None) -> HttpResponse:
    actor = common.agent(request)
    now = clock.now()
    view_key = "" if saved_view else request.GET.get("view", "open")
    if view_key and view_key not in {view.key for view in BUILT_IN_VIEWS}:
        view_key = "open"
    filters = _request_filters(request)
    default_ordering = PAGE_ORDERING.get(saved_view.ordering, "-updated_at") if saved_view else "-updated_at"
    ordering = request.GET.get("ordering", default_ordering)
    if ordering not in ORDERINGS:
        ordering = default_ordering
    if saved_view is not None:
        queryset = _visible(actor, {**_string_filters(saved_view.filters), **filters})
    else:
        queryset = _visible(actor, filters).filter(built_in_filter(view_key, actor, now))
    queryset = _ordered(queryset.select_related("status", "assignee", "team"), ordering)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = _rows(list(page.object_list), now)
    query = request.GET.copy()
    query.pop("page", None)
    context: dict[str, Any] = {
        "rows": rows,
        "page": page,
        "page_query": query.urlencode(),
        "view_key": view_key,
        "saved_view": saved_view,
        "filters": filters,
        "ordering": ordering,
        "can_work": actor.can("support.work_tickets"),
    }
    if request.headers.get("HX-Target") == "queue-results":
        return render(request, "support/workspace/_queue_table.html", context)
    saved = list(saved_views_for(actor)[:30])
    counts = _view_counts(actor, now, saved)
    context.update(
        {
            "built_in_views": [(view, counts.get(view.key, 0)) for view in BUILT_IN_VIEWS],
            "saved_views": [(view, counts.get(str(view.public_id), 0)) for view in saved],
            "orderings": ORDERINGS,
            "statuses": common.statuses(),
            "status_kinds": StatusKind.choices,
            "priorities": Priority.choices,
            "teams": common.teams(),
            "agents": common.agents() if actor.can("support.work_tickets") else [],
            "filter_query": _filter_query(filters, ordering),
        }
    )
    return render(request, "support/workspace/queue.html", context)


def _filter_query(filters: dict[str, str], ordering: str) -> str:
    from urllib.parse import urlencode

    return urlencode({**filters, "ordering": ordering})


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    return _queue(request)


@login_required
def view_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = common.agent(request)
    saved_view = saved_views_for(actor).filter(public_id=public_id).first()
    if saved_view is None:
        raise NotFound(_("This view does not exist."))
    return _queue(request, saved_view=saved_view)


@login_required
@require_POST
def view_save(request: HttpRequest) -> HttpResponse:
    """Save the current filters and sort as a named view (personal, or shared by a supervisor)."""
    from fedele.support.services.saved_views import saved_view_create

    actor = common.agent(request)
    name = request.POST.get("name", "").strip()
    filters = {key: request.POST.get(key, "").strip()[:80] for key in (*FILTER_KEYS, "q")}
    filters = {key: value for key, value in filters.items() if value}
    ordering = SAVED_ORDERING.get(request.POST.get("ordering", ""), "-updated")
    shared = request.POST.get("shared") == "on"
    try:
        view = saved_view_create(actor=actor, name=name, filters=filters, ordering=ordering, shared=shared)
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect(reverse("support:queue"))
    messages.success(request, _("View saved."))
    return redirect(reverse("support:view_detail", args=[view.public_id]))


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _bulk_changes(request: HttpRequest, actor: Actor) -> dict[str, Any]:
    action = "assign_me" if request.POST.get("assign_me") else request.POST.get("action", "")
    value = request.POST.get("value", "").strip()
    if action not in BULK_ACTIONS:
        raise ValidationFailed(_("Choose an action."), fields={"action": _("Choose an action.")})
    if action == "assign_me":
        return {"assignee": str(actor.public_id)}
    if not value and action not in ("assign", "team"):
        raise ValidationFailed(_("Choose a value."), fields={"value": _("Choose a value.")})
    key = {"assign": "assignee", "team": "team", "status": "status", "priority": "priority"}.get(action)
    if key is not None:
        return {key: value or None}
    return {"add_tags": [value]}


@login_required
@require_POST
def queue_bulk(request: HttpRequest) -> HttpResponse:
    """Apply one change to the selected tickets: all of them, or none when one fails."""
    from fedele.support.services.ticket_ops import tickets_bulk_update

    actor = common.worker(request)
    chosen = list(dict.fromkeys(value.strip().lower() for value in request.POST.getlist("tickets") if value))[
        :200
    ]
    back = request.POST.get("next", "")
    back = back if back.startswith("/support/") else reverse("support:queue")
    try:
        if not chosen:
            raise ValidationFailed(_("Select at least one ticket."), fields={"tickets": _("Select tickets.")})
        changes = _bulk_changes(request, actor)
        if any(not _is_uuid(value) for value in chosen):
            raise NotFound(_("Ticket not found."))
        visible = {
            str(value)
            for value in _visible(actor, {}).filter(public_id__in=chosen).values_list("public_id", flat=True)
        }
        if visible != set(chosen):
            # The same answer as for a ticket that does not exist: no hint about other teams' tickets.
            raise NotFound(_("Ticket not found."))
        tickets_bulk_update(actor=actor, public_ids=chosen, changes=changes)
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect(back)
    messages.success(request, _("%(count)d tickets updated.") % {"count": len(chosen)})
    return redirect(back)

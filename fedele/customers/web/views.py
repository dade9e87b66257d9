"""Customer pages: list with search and filters, create, detail with the 360 timeline."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from fedele.accounts.facade import actor_for
from fedele.customers import selectors
from fedele.customers.contracts import ConsentChannel, ConsentPurpose, CustomerKind, CustomerStatus
from fedele.customers.models import ConsentRecord, Customer, TimelineEntry
from fedele.customers.services import customers as customer_services
from fedele.customers.web.forms import (
    CHANNEL_LABELS,
    KIND_LABELS,
    PURPOSE_LABELS,
    SEGMENT_LABELS,
    STATUS_BADGES,
    STATUS_LABELS,
    CustomerForm,
    translated_service_message,
)
from fedele.shared import audit
from fedele.shared.errors import ApplicationError, PermissionDenied
from fedele.shared.pagination import paginate
from fedele.shared.search import SearchHit
from fedele.shared.web import dashboard, panels
from fedele.shared.web.forms import apply_service_errors

PAGE_SIZE = 25
SORTABLE_COLUMNS = ("name", "number", "city", "created_at")
TABLE_TARGET = "customer-results"


def _wants_table(request: HttpRequest) -> bool:
    details = getattr(request, "htmx", None)
    return bool(details) and not details.history_restore_request and details.target == TABLE_TARGET  # type: ignore[union-attr]


def _query(params: QueryDict, **changes: str | None) -> str:
    query = params.copy()
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return query.urlencode()


@dataclass(frozen=True, slots=True)
class SortLink:
    query: str
    direction: str  # "asc", "desc" or "" when the table is not sorted by this column


def _sort_links(params: QueryDict, ordering: str) -> dict[str, SortLink]:
    links = {}
    for column in SORTABLE_COLUMNS:
        if ordering == column:
            links[column] = SortLink(_query(params, ordering=f"-{column}", cursor=None), "asc")
        elif ordering == f"-{column}":
            links[column] = SortLink(_query(params, ordering=column, cursor=None), "desc")
        else:
            links[column] = SortLink(_query(params, ordering=column, cursor=None), "")
    return links


@login_required
def customer_list(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request.user)
    if not actor.can("customers.view_customer"):
        raise PermissionDenied(_("You do not have permission to see customers."))
    filters = selectors.CustomerFilters(
        search=request.GET.get("q", "").strip()[:100],
        segment=request.GET.get("segment", "")[:32],
        kind=request.GET.get("kind", "")[:16],
        city=request.GET.get("city", "").strip()[:100],
    )
    ordering = request.GET.get("ordering", "name")
    if ordering.lstrip("-") not in selectors.ORDERINGS:
        ordering = "name"
    cursor = request.GET.get("cursor") or None
    page = paginate(
        selectors.customer_list(actor=actor, filters=filters),
        ordering=ordering,
        allowed=selectors.ORDERINGS,
        cursor=cursor,
        limit=PAGE_SIZE,
    )
    params = request.GET.copy()
    context = {
        "page": page,
        "rows": [(customer, _row_labels(customer)) for customer in page.items],
        "filters": filters,
        "filtered": bool(filters.search or filters.segment or filters.kind or filters.city),
        "ordering": ordering,
        "sort_links": _sort_links(params, ordering),
        "next_query": _query(params, cursor=page.next_cursor) if page.next_cursor else "",
        "first_query": _query(params, cursor=None) if cursor else "",
        "stats": selectors.customer_stats(actor=actor),
        "can_add": actor.can("customers.add_customer"),
        "segment_choices": list(SEGMENT_LABELS.items()),
        "kind_choices": list(KIND_LABELS.items()),
        "table_target": TABLE_TARGET,
    }
    template = "customers/partials/_table.html" if _wants_table(request) else "customers/list.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


def _row_labels(customer: Customer) -> dict[str, Any]:
    return {
        "kind": KIND_LABELS.get(customer.kind, customer.kind),
        "segment": SEGMENT_LABELS.get(customer.segment, customer.segment),
    }


@login_required
@require_http_methods(["GET", "POST"])
def customer_create(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request.user)
    if not actor.can("customers.add_customer"):
        raise PermissionDenied(_("You do not have permission to add customers."))
    form = CustomerForm(
        request.POST or None,
        initial={"kind": CustomerKind.PERSON.value, "country": "IT", "language": "it", "segment": "consumer"},
    )
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            customer = customer_services.customer_create(actor=actor, data=form.service_data(), source="web")
        except ApplicationError as failure:
            apply_service_errors(form, failure, translated_service_message)
            status = 422
        else:
            messages.success(
                request, _("Customer %(number)s has been created.") % {"number": customer.number}
            )
            return redirect(reverse("customers:detail", args=[customer.public_id]))
    elif request.method == "POST":
        status = 422
    if status == 422:
        form.mark_errors()
    return render(
        request,
        "customers/form.html",
        {
            "form": form,
            "error_count": sum(len(errors) for errors in form.errors.values()),
            "error_fields": [
                (name, field.label) for name, field in form.fields.items() if name in form.errors
            ],
        },
        status=status,
    )


@dataclass(frozen=True, slots=True)
class ConsentCell:
    purpose: str
    label: str
    record: ConsentRecord | None


@dataclass(frozen=True, slots=True)
class ConsentRow:
    channel: str
    label: str
    cells: list[ConsentCell]


def _consent_matrix(current: dict[tuple[str, str], ConsentRecord]) -> list[ConsentRow]:
    """Consent in force as channels x purposes; channels with no record at all are left out."""
    rows = []
    for channel in ConsentChannel:
        cells = [
            ConsentCell(
                purpose.value, str(PURPOSE_LABELS[purpose.value]), current.get((channel.value, purpose.value))
            )
            for purpose in ConsentPurpose
        ]
        if any(cell.record is not None for cell in cells):
            rows.append(ConsentRow(channel.value, str(CHANNEL_LABELS[channel.value]), cells))
    return rows


@dataclass(frozen=True, slots=True)
class TimelineRow:
    entry: TimelineEntry
    title: str
    summary: str


_CONSENT_SUMMARY = re.compile(r"^(?P<purpose>\w+) via (?P<channel>\w+): (?P<state>granted|withdrawn)$")


def _timeline_rows(entries: Iterable[TimelineEntry]) -> list[TimelineRow]:
    """Entries with their titles in the user's language (known titles and consent summaries)."""
    rows = []
    for entry in entries:
        summary = entry.summary
        match = _CONSENT_SUMMARY.match(summary) if entry.kind == "consent.changed" else None
        if match:
            values = {
                "purpose": PURPOSE_LABELS.get(match["purpose"], match["purpose"]),
                "channel": CHANNEL_LABELS.get(match["channel"], match["channel"]),
            }
            summary = (
                _("%(purpose)s via %(channel)s: given") % values
                if match["state"] == "granted"
                else _("%(purpose)s via %(channel)s: withdrawn") % values
            )
        rows.append(TimelineRow(entry, _(entry.title) if entry.title else "", summary))
    return rows


@login_required
def customer_detail(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor = actor_for(request.user)
    customer = selectors.customer_get(actor=actor, public_id=str(public_id))
    audit.record(action="customer.pii_viewed", object_type="customer", object_id=str(customer.public_id))
    current = selectors.consent_current(customer=customer)
    is_active = customer.status == CustomerStatus.ACTIVE
    context = {
        "customer": customer,
        "kind_label": KIND_LABELS.get(customer.kind, customer.kind),
        "segment_label": SEGMENT_LABELS.get(customer.segment, customer.segment),
        "status_label": STATUS_LABELS.get(customer.status, customer.status),
        "status_badge": STATUS_BADGES.get(customer.status, "secondary"),
        "contacts": customer.contacts.all(),
        "consents": sorted(current.values(), key=lambda r: (r.channel, r.purpose)),
        "consent_rows": _consent_matrix(current),
        "purpose_labels": [str(PURPOSE_LABELS[purpose.value]) for purpose in ConsentPurpose],
        "timeline": _timeline_rows(selectors.timeline_list(customer=customer)),
        "panels": panels.panels_for_customer(request, str(customer.public_id)) if is_active else [],
        "can_export": actor.can("customers.export_personal_data"),
        "can_merge": is_active and actor.can("customers.merge_customers"),
        "can_erase": customer.status != CustomerStatus.ERASED and actor.can("customers.erase_personal_data"),
    }
    return render(request, "customers/detail.html", context)


def search_customers(request: HttpRequest, query: str, limit: int) -> list[SearchHit]:
    """Global search source: customers by name, number, e-mail, phone, codes."""
    if not request.user.is_authenticated:
        return []
    actor = actor_for(request.user)
    rows = selectors.customer_list(actor=actor, filters=selectors.CustomerFilters(search=query)).order_by(
        "display_name"
    )[:limit]
    return [
        SearchHit(
            "customers",
            c.display_name,
            " · ".join(part for part in (c.number, c.email or c.phone, c.city) if part),
            reverse("customers:detail", args=[c.public_id]),
        )
        for c in rows
    ]


def portal_widget(request: HttpRequest) -> dashboard.DashboardWidget | None:
    """A portal customer's home: the customer record they belong to, its contacts and consent."""
    if not request.user.is_authenticated:
        return None
    actor = actor_for(request.user)
    if not actor.is_portal_customer:
        return None
    customer = selectors.customer_queryset_for(actor).order_by("id").first()
    if customer is None:
        return None
    consents = sorted(
        selectors.consent_current(customer=customer).values(), key=lambda r: (r.channel, r.purpose)
    )
    return dashboard.DashboardWidget(
        "customers/partials/_portal_card.html", {"customer": customer, "consents": consents}, order=5
    )


def dashboard_widget(request: HttpRequest) -> dashboard.DashboardWidget | None:
    """Home dashboard: customer counts and customers by segment, as numbers and as a chart."""
    if not request.user.is_authenticated:
        return None
    actor = actor_for(request.user)
    if not actor.can("customers.view_customer"):
        return None
    by_segment = selectors.customer_count_by_segment(actor)
    total = sum(by_segment.values())
    segments = [
        {
            "key": key,
            "label": str(SEGMENT_LABELS.get(key, key)),
            "count": count,
            "percent": number_format(round(count * 100 / total, 1) if total else 0, 1),
        }
        for key, count in by_segment.items()
    ]
    return dashboard.DashboardWidget(
        "customers/partials/_dashboard.html",
        {
            "stats": selectors.customer_stats(actor=actor),
            "segments": segments,
            "segment_chart": {
                "labels": [row["label"] for row in segments],
                "values": [row["count"] for row in segments],
            },
            "can_add": actor.can("customers.add_customer"),
        },
        order=10,
    )

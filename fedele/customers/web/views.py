"""Customer pages: list with search and filters, create, detail with the 360 timeline."""

from __future__ import annotations

from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from fedele.accounts.facade import actor_for
from fedele.customers import selectors
from fedele.customers.services import customers as customer_services
from fedele.customers.web.forms import CustomerForm
from fedele.shared import audit
from fedele.shared.errors import ApplicationError, PermissionDenied
from fedele.shared.pagination import paginate
from fedele.shared.search import SearchHit


@login_required
def customer_list(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request.user)
    filters = selectors.CustomerFilters(
        search=request.GET.get("q", "").strip()[:100],
        segment=request.GET.get("segment", "")[:32],
        kind=request.GET.get("kind", "")[:16],
        city=request.GET.get("city", "").strip()[:100],
    )
    ordering = request.GET.get("ordering", "name")
    if ordering.lstrip("-") not in selectors.ORDERINGS:
        ordering = "name"
    page = paginate(
        selectors.customer_list(actor=actor, filters=filters),
        ordering=ordering,
        allowed=selectors.ORDERINGS,
        cursor=request.GET.get("cursor") or None,
        limit=25,
    )
    context = {
        "page": page,
        "filters": filters,
        "ordering": ordering,
        "stats": selectors.customer_stats(actor=actor),
        "can_add": actor.can("customers.add_customer"),
    }
    template = "customers/partials/_table.html" if request.htmx else "customers/list.html"  # type: ignore[attr-defined]
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
def customer_create(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request.user)
    if not actor.can("customers.add_customer"):
        raise PermissionDenied("You do not have permission to add customers.")
    form = CustomerForm(
        request.POST or None, initial={"country": "IT", "language": "it", "segment": "consumer"}
    )
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            customer = customer_services.customer_create(actor=actor, data=form.cleaned_data, source="web")
        except ApplicationError as failure:
            for field, messages in failure.fields.items():
                for message in messages:
                    form.add_error(field if field in form.fields else None, message)
            if not failure.fields:
                form.add_error(None, failure.message)
            status = 422
        else:
            return redirect(reverse("customers:detail", args=[customer.public_id]))
    elif request.method == "POST":
        status = 422
    return render(request, "customers/form.html", {"form": form}, status=status)


@login_required
def customer_detail(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor = actor_for(request.user)
    customer = selectors.customer_get(actor=actor, public_id=str(public_id))
    audit.record(action="customer.pii_viewed", object_type="customer", object_id=str(customer.public_id))
    context = {
        "customer": customer,
        "contacts": customer.contacts.all(),
        "consents": sorted(
            selectors.consent_current(customer=customer).values(), key=lambda r: (r.channel, r.purpose)
        ),
        "timeline": selectors.timeline_list(customer=customer),
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
            f"{c.number} · {c.email or c.phone}",
            reverse("customers:detail", args=[c.public_id]),
        )
        for c in rows
    ]

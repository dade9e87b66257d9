"""Every read of the customers module, scoped to what the actor may see."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from fedele.accounts.facade import Actor
from fedele.customers.contracts import CustomerStatus, Segment
from fedele.customers.models import ConsentRecord, Contact, Customer, TimelineEntry
from fedele.shared.errors import NotFound

ORDERINGS = {"name": "display_name", "created_at": "created_at", "number": "number", "city": "city"}


def customer_queryset_for(actor: Actor | None) -> QuerySet[Customer]:
    """The customers this actor may see: all for staff with the permission, own for portal and partners."""
    queryset = Customer.objects.all()
    if actor is None:
        return queryset.none()
    if actor.is_internal and actor.can("customers.view_customer"):
        return queryset
    if actor.is_portal_customer:
        # A subquery, not a join + DISTINCT: PostgreSQL refuses SELECT ... FOR UPDATE with DISTINCT.
        own = Contact.objects.filter(portal_user_id=actor.user_id).values("customer_id")
        return queryset.filter(pk__in=own)
    if actor.is_partner and actor.organisation_id is not None and actor.can("customers.view_customer"):
        return queryset.filter(managed_by_id=actor.organisation_id)
    return queryset.none()


def contact_queryset_for(actor: Actor | None) -> QuerySet[Contact]:
    return Contact.objects.filter(customer__in=customer_queryset_for(actor)).select_related("customer")


@dataclass(frozen=True, slots=True)
class CustomerFilters:
    search: str = ""
    segment: str = ""
    kind: str = ""
    city: str = ""
    status: str = CustomerStatus.ACTIVE.value


def customer_list(*, actor: Actor, filters: CustomerFilters | None = None) -> QuerySet[Customer]:
    filters = filters or CustomerFilters()
    queryset = customer_queryset_for(actor)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.segment:
        queryset = queryset.filter(segment=filters.segment)
    if filters.kind:
        queryset = queryset.filter(kind=filters.kind)
    if filters.city:
        queryset = queryset.filter(city__iexact=filters.city)
    if filters.search:
        for term in filters.search.lower().split()[:5]:
            queryset = queryset.filter(search_text__contains=term)
    return queryset


def customer_get(*, actor: Actor, public_id: str) -> Customer:
    customer = customer_queryset_for(actor).filter(public_id=public_id).first()
    if customer is None:
        raise NotFound("Customer not found.")
    return customer


def customer_stats(*, actor: Actor) -> dict[str, int]:
    queryset = customer_queryset_for(actor)
    result = queryset.aggregate(
        total=Count("pk", filter=Q(status=CustomerStatus.ACTIVE)),
        companies=Count("pk", filter=Q(status=CustomerStatus.ACTIVE, kind="company")),
        persons=Count("pk", filter=Q(status=CustomerStatus.ACTIVE, kind="person")),
    )
    return {key: int(value or 0) for key, value in result.items()}


def customer_count_by_segment(actor: Actor) -> dict[str, int]:
    """Active customers per segment, every segment present (zero when empty), in the segments' order."""
    rows = (
        customer_queryset_for(actor)
        .filter(status=CustomerStatus.ACTIVE)
        .order_by()
        .values_list("segment")
        .annotate(total=Count("pk"))
    )
    counts = {str(segment): int(total) for segment, total in rows}
    return {segment.value: counts.get(segment.value, 0) for segment in Segment}


def contact_list(*, actor: Actor, customer_public_id: str) -> QuerySet[Contact]:
    customer = customer_get(actor=actor, public_id=customer_public_id)
    return customer.contacts.all()


def consent_current(*, customer: Customer) -> dict[tuple[str, str], ConsentRecord]:
    """The consent in force per (channel, purpose): the latest record of each."""
    current: dict[tuple[str, str], ConsentRecord] = {}
    for record in customer.consents.order_by("-recorded_at", "-id"):
        current.setdefault((record.channel, record.purpose), record)
    return current


def consent_history(*, customer: Customer) -> QuerySet[ConsentRecord]:
    return customer.consents.select_related("contact").order_by("-recorded_at", "-id")


def timeline_list(*, customer: Customer, module: str = "", limit: int = 100) -> QuerySet[TimelineEntry]:
    queryset = customer.timeline.all()
    if module:
        queryset = queryset.filter(module=module)
    return queryset.order_by("-occurred_at", "-id")[:limit]

"""Subscription reads, scoped to what the caller may see: billing staff see every subscription, a
portal customer only their own; anything else is not found (no hint that it exists)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, QuerySet

from fedele.accounts.facade import Actor
from fedele.billing.models import Subscription, SubscriptionChange
from fedele.customers.facade import customer_for_user
from fedele.shared.errors import NotFound, PermissionDenied
from fedele.shared.subjects import SubjectRef

ORDERINGS = {"created_at": "created_at", "number": "number"}


@dataclass(frozen=True, slots=True)
class SubscriptionFilters:
    status: str = ""
    plan: str = ""
    """A plan code."""
    customer: str = ""
    """A customer's public id."""
    search: str = ""


def _base() -> QuerySet[Subscription]:
    return Subscription.objects.select_related(
        "plan", "plan_version", "account", "account__customer", "coupon"
    )


def subscription_queryset_for(actor: Actor) -> QuerySet[Subscription]:
    if actor.is_internal and actor.can("billing.view_billing"):
        return _base()
    if actor.is_portal_customer:
        customer = customer_for_user(actor.user_id)
        if customer is None:
            return Subscription.objects.none()
        return _base().filter(account__customer_id=customer.customer_id)
    raise PermissionDenied("You do not have permission to see subscriptions.")


def subscription_list(*, actor: Actor, filters: SubscriptionFilters | None = None) -> QuerySet[Subscription]:
    filters = filters or SubscriptionFilters()
    queryset = subscription_queryset_for(actor)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.plan:
        queryset = queryset.filter(plan__code=filters.plan)
    if filters.customer:
        try:
            customer = UUID(filters.customer)
        except ValueError:
            return queryset.none()
        queryset = queryset.filter(account__customer__public_id=customer)
    if filters.search:
        term = filters.search.strip()
        queryset = queryset.filter(number__icontains=term) | queryset.filter(
            account__customer__display_name__icontains=term
        )
    return queryset


def subscription_get(*, actor: Actor, public_id: str) -> Subscription:
    try:
        subscription = subscription_queryset_for(actor).filter(public_id=public_id).first()
    except DjangoValidationError:
        subscription = None
    if subscription is None:
        raise NotFound("Subscription not found.", code="subscription_not_found")
    return subscription


def subscription_history(*, subscription: Subscription) -> QuerySet[SubscriptionChange]:
    return SubscriptionChange.objects.filter(subscription=subscription).order_by("-occurred_at", "-id")


def subscription_counts(*, actor: Actor) -> dict[str, int]:
    counts = dict.fromkeys(("trialing", "active", "past_due", "paused", "cancelled"), 0)
    rows = subscription_queryset_for(actor).order_by().values("status").annotate(total=Count("pk"))
    for row in rows:
        counts[row["status"]] = row["total"]
    return counts


def entitlement_subject(reference: str) -> SubjectRef | None:
    """An entitlement (by public id) as a ticket's subject: registered in ``fedele.shared.subjects``."""
    from fedele.billing.models import Entitlement

    try:
        UUID(str(reference))
    except ValueError:
        return None
    row = (
        Entitlement.objects.select_related("account__customer", "product").filter(public_id=reference).first()
    )
    if row is None:
        return None
    label = " · ".join(part for part in (row.product.name, row.identifier) if part)
    return SubjectRef(
        kind="entitlement",
        reference=str(row.public_id),
        customer_public_id=str(row.account.customer.public_id),
        label=label or row.kind,
        status=row.status,
    )

"""Quote, order and entitlement reads, scoped to what the caller may see: billing staff see every
row, a portal customer only their own account's; anything else is not found (no hint it exists)."""

from __future__ import annotations

from uuid import UUID

from django.db.models import Prefetch, QuerySet

from fedele.accounts.facade import Actor
from fedele.billing.models import Entitlement, Order, OrderLine, ProvisioningStep, Quote, QuoteLine
from fedele.customers.facade import customer_for_user
from fedele.shared.errors import NotFound, PermissionDenied

ORDERINGS = {"created_at": "created_at", "number": "number"}
ENTITLEMENT_ORDERINGS = {"created_at": "created_at"}


def _customer_id(actor: Actor) -> int | None:
    """The portal customer's internal id; None for staff (who see all); PermissionDenied otherwise."""
    if actor.is_internal and actor.can("billing.view_billing"):
        return None
    if actor.is_portal_customer:
        customer = customer_for_user(actor.user_id)
        return customer.customer_id if customer is not None else 0
    raise PermissionDenied("You do not have permission to see quotes and orders.")


def quote_queryset_for(actor: Actor) -> QuerySet[Quote]:
    queryset = Quote.objects.select_related("account__customer")
    customer_id = _customer_id(actor)
    if customer_id is None:
        return queryset
    # Portal customers never see drafts: a draft is the clerk's work in progress.
    return queryset.filter(account__customer_id=customer_id).exclude(status=Quote.Status.DRAFT)


def order_queryset_for(actor: Actor) -> QuerySet[Order]:
    queryset = Order.objects.select_related("account__customer", "quote")
    customer_id = _customer_id(actor)
    return queryset if customer_id is None else queryset.filter(account__customer_id=customer_id)


def entitlement_queryset_for(actor: Actor) -> QuerySet[Entitlement]:
    queryset = Entitlement.objects.select_related("account__customer", "product", "subscription")
    customer_id = _customer_id(actor)
    return queryset if customer_id is None else queryset.filter(account__customer_id=customer_id)


def _uuid(public_id: str, what: str) -> UUID:
    try:
        return UUID(str(public_id))
    except ValueError as error:
        raise NotFound(f"{what} not found.") from error


def quote_list(*, actor: Actor, status: str = "", customer: str = "", search: str = "") -> QuerySet[Quote]:
    queryset = quote_queryset_for(actor)
    if status:
        queryset = queryset.filter(status=status)
    if customer:
        try:
            queryset = queryset.filter(account__customer__public_id=UUID(customer))
        except ValueError:
            return queryset.none()
    if search:
        queryset = queryset.filter(number__icontains=search) | queryset.filter(
            account__customer__display_name__icontains=search
        )
    return queryset


def quote_get(*, actor: Actor, public_id: str) -> Quote:
    quote = (
        quote_queryset_for(actor)
        .prefetch_related(
            Prefetch("lines", queryset=QuoteLine.objects.select_related("plan_version__plan", "product"))
        )
        .filter(public_id=_uuid(public_id, "Quote"))
        .first()
    )
    if quote is None:
        raise NotFound("Quote not found.")
    return quote


def order_list(*, actor: Actor, status: str = "", customer: str = "", search: str = "") -> QuerySet[Order]:
    queryset = order_queryset_for(actor)
    if status:
        queryset = queryset.filter(status=status)
    if customer:
        try:
            queryset = queryset.filter(account__customer__public_id=UUID(customer))
        except ValueError:
            return queryset.none()
    if search:
        queryset = queryset.filter(number__icontains=search) | queryset.filter(
            external_reference__icontains=search
        )
    return queryset


def order_get(*, actor: Actor, public_id: str) -> Order:
    lines = OrderLine.objects.select_related(
        "plan_version__plan", "product", "subscription", "entitlement"
    ).prefetch_related(Prefetch("steps", queryset=ProvisioningStep.objects.order_by("position", "id")))
    order = (
        order_queryset_for(actor)
        .prefetch_related(Prefetch("lines", queryset=lines))
        .filter(public_id=_uuid(public_id, "Order"))
        .first()
    )
    if order is None:
        raise NotFound("Order not found.")
    return order


def step_get(*, actor: Actor, public_id: str) -> ProvisioningStep:
    """A provisioning step the caller may see (through its entitlement's account)."""
    visible = entitlement_queryset_for(actor).values("pk")
    step = (
        ProvisioningStep.objects.select_related("order_line__order")
        .filter(public_id=_uuid(public_id, "Step"), entitlement_id__in=visible)
        .first()
    )
    if step is None:
        raise NotFound("Provisioning step not found.")
    return step


def entitlement_list(*, actor: Actor, customer: str = "", status: str = "") -> QuerySet[Entitlement]:
    queryset = entitlement_queryset_for(actor)
    if customer:
        try:
            queryset = queryset.filter(account__customer__public_id=UUID(customer))
        except ValueError:
            return queryset.none()
    if status:
        queryset = queryset.filter(status=status)
    return queryset

"""Catalog reads for billing staff (the portal sees plans only through its own pages)."""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Prefetch, QuerySet

from fedele.accounts.facade import Actor
from fedele.billing.models import Coupon, Metric, Plan, PlanCharge, PlanVersion, Product
from fedele.shared.errors import NotFound, PermissionDenied


def require_catalog_reader(actor: Actor) -> None:
    if not (actor.is_internal and actor.can("billing.view_billing")):
        raise PermissionDenied("You do not have permission to see the catalog.")


def require_catalog_manager(actor: Actor) -> None:
    if not (actor.is_internal and actor.can("billing.manage_catalog")):
        raise PermissionDenied("You do not have permission to change the catalog.")


ModelT = TypeVar("ModelT", Product, Plan, PlanVersion, Coupon, Metric)


def _by_public_id(queryset: QuerySet[ModelT], public_id: str, what: str) -> ModelT:
    try:
        row = queryset.filter(public_id=public_id).first()
    except DjangoValidationError:
        row = None
    if row is None:
        raise NotFound(f"{what} not found.", code=f"{what.lower().replace(' ', '_')}_not_found")
    return row


def product_list(*, actor: Actor, active_only: bool = False) -> QuerySet[Product]:
    require_catalog_reader(actor)
    queryset = Product.objects.annotate(plan_count=Count("plans"))
    return queryset.filter(is_active=True) if active_only else queryset


def product_get(*, actor: Actor, public_id: str) -> Product:
    require_catalog_reader(actor)
    return _by_public_id(Product.objects.all(), public_id, "Product")


def metric_list(*, actor: Actor) -> QuerySet[Metric]:
    require_catalog_reader(actor)
    return Metric.objects.all()


def metric_get(*, actor: Actor, public_id: str) -> Metric:
    require_catalog_reader(actor)
    return _by_public_id(Metric.objects.all(), public_id, "Metric")


def versions_with_charges() -> Any:
    charges = PlanCharge.objects.select_related("metric").order_by("position", "id")
    return Prefetch(
        "versions",
        queryset=PlanVersion.objects.order_by("currency", "-version").prefetch_related(
            Prefetch("charges", queryset=charges)
        ),
    )


def plan_list(*, actor: Actor, product: str = "", active_only: bool = False) -> QuerySet[Plan]:
    require_catalog_reader(actor)
    queryset = Plan.objects.select_related("product").prefetch_related(versions_with_charges())
    if product:
        queryset = queryset.filter(product__code=product)
    return queryset.filter(is_active=True) if active_only else queryset


def plan_get(*, actor: Actor, public_id: str) -> Plan:
    require_catalog_reader(actor)
    return _by_public_id(
        Plan.objects.select_related("product").prefetch_related(versions_with_charges()), public_id, "Plan"
    )


def plan_version_get(*, actor: Actor, public_id: str) -> PlanVersion:
    require_catalog_reader(actor)
    charges = PlanCharge.objects.select_related("metric").order_by("position", "id")
    queryset = PlanVersion.objects.select_related("plan", "plan__product").prefetch_related(
        Prefetch("charges", queryset=charges)
    )
    return _by_public_id(queryset, public_id, "Plan version")


def sellable_versions(*, currency: str | None = None) -> QuerySet[PlanVersion]:
    """Published versions of active plans, highest version first per plan and currency."""
    queryset = PlanVersion.objects.filter(published_at__isnull=False, plan__is_active=True).select_related(
        "plan"
    )
    if currency:
        queryset = queryset.filter(currency=currency)
    return queryset.order_by("plan__name", "currency", "-version")


def latest_sellable(plan: Plan, currency: str) -> PlanVersion | None:
    return (
        PlanVersion.objects.filter(plan=plan, currency=currency, published_at__isnull=False)
        .order_by("-version")
        .first()
    )


def coupon_list(*, actor: Actor) -> QuerySet[Coupon]:
    require_catalog_reader(actor)
    return Coupon.objects.all()


def coupon_get(*, actor: Actor, public_id: str) -> Coupon:
    require_catalog_reader(actor)
    return _by_public_id(Coupon.objects.all(), public_id, "Coupon")

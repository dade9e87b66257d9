"""Billing API: catalog (products, metrics, plans, plan versions with charges, coupons).

Reads need ``billing.view_billing``; writes need ``billing.manage_catalog`` and the write scope.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from fedele.accounts.facade import Actor, actor_for
from fedele.billing.models import Coupon, Metric, Plan, PlanCharge, PlanVersion, Product, Subscription
from fedele.billing.selectors import catalog as selectors
from fedele.billing.services import catalog as services
from fedele.billing.services.subscriptions import subscription_migrate_version
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import NotFound, ValidationFailed

router = Router(tags=["billing: catalog"])


def _manager(request: HttpRequest) -> Actor:
    require_scope(request, "write")
    actor = actor_for(request.user)
    selectors.require_catalog_manager(actor)
    return actor


def _reader(request: HttpRequest) -> Actor:
    require_scope(request, "read")
    return actor_for(request.user)


# schemas ---------------------------------------------------------------------------------------------


class ProductIn(StrictSchema):
    code: str = Field(..., max_length=64)
    name: str = Field(..., max_length=200)
    description: str = Field("", max_length=5000)
    vat_rate: Decimal = Decimal(22)
    vat_nature: str = Field("", max_length=8)
    provisioning_kind: str = Field("", max_length=64)


class ProductPatch(StrictSchema):
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=5000)
    vat_rate: Decimal | None = None
    vat_nature: str | None = Field(None, max_length=8)
    provisioning_kind: str | None = Field(None, max_length=64)
    is_active: bool | None = None


class ProductOut(Schema):
    id: UUID = Field(..., alias="public_id")
    code: str
    name: str
    description: str
    vat_rate: Decimal
    vat_nature: str
    provisioning_kind: str
    is_active: bool


class MetricIn(StrictSchema):
    code: str = Field(..., max_length=64)
    name: str = Field(..., max_length=200)
    unit: str = Field("unit", max_length=32)
    aggregation: Literal["sum", "max", "unique_count", "last"] = "sum"
    unique_property: str = Field("", max_length=64)


class MetricOut(Schema):
    id: UUID = Field(..., alias="public_id")
    code: str
    name: str
    unit: str
    aggregation: str
    unique_property: str


class TierIn(StrictSchema):
    up_to: int | None = None
    unit_amount: Decimal = Decimal(0)
    flat_amount: Decimal = Decimal(0)


class ChargeIn(StrictSchema):
    code: str = Field(..., max_length=64)
    name: str = Field(..., max_length=200)
    kind: Literal["recurring", "usage"] = "recurring"
    model: Literal["flat", "per_unit", "graduated", "volume", "package"]
    metric_id: UUID | None = None
    unit_amount: Decimal | None = None
    flat_amount: Decimal | None = None
    tiers: list[TierIn] = Field(default_factory=list, max_length=50)
    package_size: int | None = None
    minimum_amount: Decimal | None = None
    position: int = Field(0, ge=0, le=1000)


class ChargeOut(Schema):
    id: int
    code: str
    name: str
    kind: str
    model: str
    metric: str | None
    unit_amount: Decimal | None
    flat_amount: Decimal | None
    tiers: list[dict[str, Any]]
    package_size: int | None
    minimum_amount: Decimal | None
    position: int


class VersionIn(StrictSchema):
    currency: str = Field("EUR", min_length=3, max_length=3)
    setup_fee: Decimal = Decimal(0)
    copy_latest: bool = True


class VersionPatch(StrictSchema):
    setup_fee: Decimal


class VersionOut(Schema):
    id: UUID
    plan_code: str
    currency: str
    version: int
    setup_fee: Decimal
    published_at: datetime | None
    charges: list[ChargeOut]


class PlanIn(StrictSchema):
    product_id: UUID
    code: str = Field(..., max_length=64)
    name: str = Field(..., max_length=200)
    description: str = Field("", max_length=5000)
    billing_period: Literal["month", "quarter", "year"] = "month"
    trial_days: int = Field(0, ge=0, le=365)
    is_addon: bool = False


class PlanPatch(StrictSchema):
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=5000)
    trial_days: int | None = Field(None, ge=0, le=365)
    is_active: bool | None = None


class PlanOut(Schema):
    id: UUID
    product_code: str
    code: str
    name: str
    description: str
    billing_period: str
    trial_days: int
    is_addon: bool
    is_active: bool
    versions: list[VersionOut]


class MigrateIn(StrictSchema):
    from_version_id: UUID
    at: Literal["now", "period_end"] = "period_end"


class MigrateOut(Schema):
    migrated: int
    skipped: list[str]


class CouponIn(StrictSchema):
    code: str = Field(..., max_length=64)
    name: str = Field(..., max_length=200)
    percent_off: Decimal | None = None
    amount_off: Decimal | None = None
    currency: str = Field("", max_length=3)
    duration: Literal["once", "repeating", "forever"] = "once"
    duration_periods: int | None = Field(None, ge=1, le=1200)
    max_redemptions: int | None = Field(None, ge=1)
    valid_until: date | None = None


class CouponOut(Schema):
    id: UUID = Field(..., alias="public_id")
    code: str
    name: str
    percent_off: Decimal | None
    amount_off: Decimal | None
    currency: str
    duration: str
    duration_periods: int | None
    max_redemptions: int | None
    times_redeemed: int
    valid_until: date | None
    is_active: bool


def charge_row(charge: PlanCharge) -> dict[str, Any]:
    return {
        "id": charge.pk,
        "code": charge.code,
        "name": charge.name,
        "kind": charge.kind,
        "model": charge.model,
        "metric": charge.metric.code if charge.metric_id and charge.metric else None,
        "unit_amount": charge.unit_amount,
        "flat_amount": charge.flat_amount,
        "tiers": charge.tiers or [],
        "package_size": charge.package_size,
        "minimum_amount": charge.minimum_amount,
        "position": charge.position,
    }


def version_row(version: PlanVersion) -> dict[str, Any]:
    return {
        "id": version.public_id,
        "plan_code": version.plan.code,
        "currency": version.currency,
        "version": version.version,
        "setup_fee": version.setup_fee,
        "published_at": version.published_at,
        "charges": [charge_row(charge) for charge in version.charges.all()],
    }


def plan_row(plan: Plan) -> dict[str, Any]:
    return {
        "id": plan.public_id,
        "product_code": plan.product.code,
        "code": plan.code,
        "name": plan.name,
        "description": plan.description,
        "billing_period": plan.billing_period,
        "trial_days": plan.trial_days,
        "is_addon": plan.is_addon,
        "is_active": plan.is_active,
        "versions": [version_row(version) for version in plan.versions.all()],
    }


def _charge_input(payload: ChargeIn) -> services.ChargeInput:
    metric = None
    if payload.metric_id is not None:
        metric = Metric.objects.filter(public_id=payload.metric_id).first()
        if metric is None:
            raise ValidationFailed("Unknown metric.", fields={"metric_id": "No such metric."})
    return services.ChargeInput(
        code=payload.code,
        name=payload.name,
        kind=payload.kind,
        model=payload.model,
        metric=metric,
        unit_amount=payload.unit_amount,
        flat_amount=payload.flat_amount,
        tiers=tuple(tier.model_dump() for tier in payload.tiers),
        package_size=payload.package_size,
        minimum_amount=payload.minimum_amount,
        position=payload.position,
    )


def _charge_of(version: PlanVersion, charge_id: int) -> PlanCharge:
    charge = PlanCharge.objects.filter(plan_version=version, pk=charge_id).first()
    if charge is None:
        raise NotFound("Charge not found.", code="charge_not_found")
    return charge


# products and metrics ----------------------------------------------------------------------------------


@router.get("/products", response={200: list[ProductOut], **ERROR_RESPONSES}, summary="List products")
def list_products(request: HttpRequest) -> list[Product]:
    return list(selectors.product_list(actor=_reader(request)))


@router.post("/products", response={201: ProductOut, **ERROR_RESPONSES}, summary="Create a product")
def create_product(request: HttpRequest, payload: ProductIn) -> Status[Product]:
    actor = _manager(request)
    return Status(201, services.product_create(**payload.model_dump(), actor_id=actor.user_id))


@router.get("/products/{product_id}", response={200: ProductOut, **ERROR_RESPONSES}, summary="Get a product")
def get_product(request: HttpRequest, product_id: UUID) -> Product:
    return selectors.product_get(actor=_reader(request), public_id=str(product_id))


@router.patch(
    "/products/{product_id}", response={200: ProductOut, **ERROR_RESPONSES}, summary="Change a product"
)
def update_product(request: HttpRequest, product_id: UUID, payload: ProductPatch) -> Product:
    actor = _manager(request)
    product = selectors.product_get(actor=actor, public_id=str(product_id))
    changes = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if v is not None}
    return services.product_update(product=product, changes=changes, actor_id=actor.user_id)


@router.get("/metrics", response={200: list[MetricOut], **ERROR_RESPONSES}, summary="List metrics")
def list_metrics(request: HttpRequest) -> list[Metric]:
    return list(selectors.metric_list(actor=_reader(request)))


@router.post("/metrics", response={201: MetricOut, **ERROR_RESPONSES}, summary="Create a metric")
def create_metric(request: HttpRequest, payload: MetricIn) -> Status[Metric]:
    actor = _manager(request)
    return Status(201, services.metric_create(**payload.model_dump(), actor_id=actor.user_id))


# plans and versions ----------------------------------------------------------------------------------


@router.get("/plans", response={200: list[PlanOut], **ERROR_RESPONSES}, summary="List plans with versions")
def list_plans(request: HttpRequest, product: str = "") -> list[dict[str, Any]]:
    return [plan_row(plan) for plan in selectors.plan_list(actor=_reader(request), product=product[:64])]


@router.post("/plans", response={201: PlanOut, **ERROR_RESPONSES}, summary="Create a plan")
def create_plan(request: HttpRequest, payload: PlanIn) -> Status[dict[str, Any]]:
    actor = _manager(request)
    product = selectors.product_get(actor=actor, public_id=str(payload.product_id))
    data = payload.model_dump(exclude={"product_id"})
    plan = services.plan_create(product=product, **data, actor_id=actor.user_id)
    return Status(201, plan_row(selectors.plan_get(actor=actor, public_id=str(plan.public_id))))


@router.get("/plans/{plan_id}", response={200: PlanOut, **ERROR_RESPONSES}, summary="Get a plan")
def get_plan(request: HttpRequest, plan_id: UUID) -> dict[str, Any]:
    return plan_row(selectors.plan_get(actor=_reader(request), public_id=str(plan_id)))


@router.patch("/plans/{plan_id}", response={200: PlanOut, **ERROR_RESPONSES}, summary="Change a plan")
def update_plan(request: HttpRequest, plan_id: UUID, payload: PlanPatch) -> dict[str, Any]:
    actor = _manager(request)
    plan = selectors.plan_get(actor=actor, public_id=str(plan_id))
    changes = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if v is not None}
    services.plan_update(plan=plan, changes=changes, actor_id=actor.user_id)
    return plan_row(selectors.plan_get(actor=actor, public_id=str(plan_id)))


@router.post(
    "/plans/{plan_id}/versions",
    response={201: VersionOut, **ERROR_RESPONSES},
    summary="Start a draft version N+1 (copying the latest charges)",
)
def create_version(request: HttpRequest, plan_id: UUID, payload: VersionIn) -> Status[dict[str, Any]]:
    actor = _manager(request)
    plan = selectors.plan_get(actor=actor, public_id=str(plan_id))
    version = services.plan_version_create(plan=plan, **payload.model_dump(), actor_id=actor.user_id)
    return Status(201, version_row(selectors.plan_version_get(actor=actor, public_id=str(version.public_id))))


@router.get(
    "/plan-versions/{version_id}", response={200: VersionOut, **ERROR_RESPONSES}, summary="Get a version"
)
def get_version(request: HttpRequest, version_id: UUID) -> dict[str, Any]:
    return version_row(selectors.plan_version_get(actor=_reader(request), public_id=str(version_id)))


@router.patch(
    "/plan-versions/{version_id}", response={200: VersionOut, **ERROR_RESPONSES}, summary="Change a draft"
)
def update_version(request: HttpRequest, version_id: UUID, payload: VersionPatch) -> dict[str, Any]:
    actor = _manager(request)
    version = selectors.plan_version_get(actor=actor, public_id=str(version_id))
    services.plan_version_update(version=version, setup_fee=payload.setup_fee, actor_id=actor.user_id)
    return version_row(selectors.plan_version_get(actor=actor, public_id=str(version_id)))


@router.post(
    "/plan-versions/{version_id}/publish",
    response={200: VersionOut, **ERROR_RESPONSES},
    summary="Publish (freeze) a draft version",
)
def publish_version(request: HttpRequest, version_id: UUID) -> dict[str, Any]:
    actor = _manager(request)
    version = selectors.plan_version_get(actor=actor, public_id=str(version_id))
    services.plan_version_publish(version=version, actor_id=actor.user_id)
    return version_row(selectors.plan_version_get(actor=actor, public_id=str(version_id)))


@router.post(
    "/plan-versions/{version_id}/charges",
    response={201: ChargeOut, **ERROR_RESPONSES},
    summary="Add a charge to a draft version",
)
def add_charge(request: HttpRequest, version_id: UUID, payload: ChargeIn) -> Status[dict[str, Any]]:
    actor = _manager(request)
    version = selectors.plan_version_get(actor=actor, public_id=str(version_id))
    charge = services.plan_charge_add(version=version, data=_charge_input(payload), actor_id=actor.user_id)
    return Status(201, charge_row(charge))


@router.put(
    "/plan-versions/{version_id}/charges/{charge_id}",
    response={200: ChargeOut, **ERROR_RESPONSES},
    summary="Replace a charge of a draft version",
)
def update_charge(
    request: HttpRequest, version_id: UUID, charge_id: int, payload: ChargeIn
) -> dict[str, Any]:
    actor = _manager(request)
    version = selectors.plan_version_get(actor=actor, public_id=str(version_id))
    charge = services.plan_charge_update(
        charge=_charge_of(version, charge_id), data=_charge_input(payload), actor_id=actor.user_id
    )
    return charge_row(charge)


@router.delete(
    "/plan-versions/{version_id}/charges/{charge_id}",
    response={204: None, **ERROR_RESPONSES},
    summary="Remove a charge of a draft version",
)
def remove_charge(request: HttpRequest, version_id: UUID, charge_id: int) -> Status[None]:
    actor = _manager(request)
    version = selectors.plan_version_get(actor=actor, public_id=str(version_id))
    services.plan_charge_remove(charge=_charge_of(version, charge_id), actor_id=actor.user_id)
    return Status(204, None)


@router.post(
    "/plan-versions/{version_id}/migrate",
    response={200: MigrateOut, **ERROR_RESPONSES},
    summary="Move the live subscribers of another version of the plan to this one",
)
def migrate_subscribers(request: HttpRequest, version_id: UUID, payload: MigrateIn) -> dict[str, Any]:
    actor = _manager(request)
    selectors.require_catalog_manager(actor)
    target = selectors.plan_version_get(actor=actor, public_id=str(version_id))
    source = selectors.plan_version_get(actor=actor, public_id=str(payload.from_version_id))
    migrated, skipped = 0, []
    live = Subscription.objects.filter(plan_version=source, status__in=("trialing", "active", "past_due"))
    for subscription in live.order_by("pk"):
        try:
            subscription_migrate_version(
                subscription=subscription, plan_version=target, at=payload.at, actor_id=actor.user_id
            )
            migrated += 1
        except (ValidationFailed, NotFound) as error:
            skipped.append(f"{subscription.number}: {error.message}")
        except Exception as error:
            skipped.append(f"{subscription.number}: {error}")
    return {"migrated": migrated, "skipped": skipped}


# coupons ---------------------------------------------------------------------------------------------


@router.get("/coupons", response={200: list[CouponOut], **ERROR_RESPONSES}, summary="List coupons")
def list_coupons(request: HttpRequest) -> list[Coupon]:
    return list(selectors.coupon_list(actor=_reader(request)))


@router.post("/coupons", response={201: CouponOut, **ERROR_RESPONSES}, summary="Create a coupon")
def create_coupon(request: HttpRequest, payload: CouponIn) -> Status[Coupon]:
    actor = _manager(request)
    return Status(201, services.coupon_create(**payload.model_dump(), actor_id=actor.user_id))


@router.get("/coupons/{coupon_id}", response={200: CouponOut, **ERROR_RESPONSES}, summary="Get a coupon")
def get_coupon(request: HttpRequest, coupon_id: UUID) -> Coupon:
    return selectors.coupon_get(actor=_reader(request), public_id=str(coupon_id))


@router.post(
    "/coupons/{coupon_id}/deactivate", response={200: CouponOut, **ERROR_RESPONSES}, summary="Stop a coupon"
)
def deactivate_coupon(request: HttpRequest, coupon_id: UUID) -> Coupon:
    actor = _manager(request)
    coupon = selectors.coupon_get(actor=actor, public_id=str(coupon_id))
    return services.coupon_deactivate(coupon=coupon, actor_id=actor.user_id)

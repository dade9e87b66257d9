"""Catalog writes: products, metrics, plans, plan versions (price books) with their charges, coupons.

A published PlanVersion is frozen: its charges and setup fee never change again, because invoices and
subscriptions refer to it. New prices are a new draft version (N+1, copied from the latest one),
edited and then published; subscribers move to it only through an explicit migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Max

from fedele.billing.contracts import (
    ITALIAN_VAT_RATES,
    BillingPeriod,
    ChargeKind,
    PriceModel,
    UsageAggregation,
    VatNature,
)
from fedele.billing.models import Coupon, Metric, Plan, PlanCharge, PlanVersion, Product
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, ValidationFailed
from fedele.shared.money import Money

CODE_MAX = 64


def _require_code(code: str, errors: dict[str, str]) -> str:
    value = (code or "").strip()
    if not value:
        errors["code"] = "is required."
    elif len(value) > CODE_MAX or not all(ch.isalnum() or ch in "-_" for ch in value) or not value.isascii():
        errors["code"] = "use up to 64 letters, digits, - or _."
    return value


def _require_name(name: str, errors: dict[str, str]) -> str:
    value = (name or "").strip()
    if not value:
        errors["name"] = "is required."
    elif len(value) > 200:
        errors["name"] = "at most 200 characters."
    return value


def _raise(errors: dict[str, str], message: str) -> None:
    if errors:
        raise ValidationFailed(message, fields=errors)


def _decimal(value: Any, field: str, errors: dict[str, str], *, allow_none: bool = True) -> Decimal | None:
    if value is None or value == "":
        if not allow_none:
            errors[field] = "is required."
        return None
    if isinstance(value, (bool, float)):
        errors[field] = "must be a decimal amount written as text or an integer."
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        errors[field] = f"'{value}' is not a number."
        return None
    if not amount.is_finite():
        errors[field] = "must be finite."
        return None
    return amount


# products ------------------------------------------------------------------------------------------


def _validate_vat(vat_rate: Any, vat_nature: str, errors: dict[str, str]) -> Decimal | None:
    rate = _decimal(vat_rate, "vat_rate", errors, allow_none=False)
    if rate is not None and rate not in ITALIAN_VAT_RATES:
        errors["vat_rate"] = "must be one of 22, 10, 5, 4 or 0."
    natures = {nature.value for nature in VatNature}
    if vat_nature and vat_nature not in natures:
        errors["vat_nature"] = f"'{vat_nature}' is not a FatturaPA nature code."
    elif rate == 0 and not vat_nature:
        errors["vat_nature"] = "is required when the VAT rate is zero."
    elif rate is not None and rate != 0 and vat_nature:
        errors["vat_nature"] = "applies only to a zero VAT rate; leave it empty."
    return rate


def _product_snapshot(product: Product) -> dict[str, Any]:
    return {
        "code": product.code,
        "name": product.name,
        "vat_rate": product.vat_rate,
        "vat_nature": product.vat_nature,
        "provisioning_kind": product.provisioning_kind,
        "is_active": product.is_active,
    }


def product_create(
    *,
    code: str,
    name: str,
    description: str = "",
    vat_rate: Decimal | int | str = Decimal(22),
    vat_nature: str = "",
    provisioning_kind: str = "",
    actor_id: int | None = None,
) -> Product:
    errors: dict[str, str] = {}
    code = _require_code(code, errors)
    name = _require_name(name, errors)
    rate = _validate_vat(vat_rate, vat_nature, errors)
    if "code" not in errors and Product.objects.filter(code=code).exists():
        errors["code"] = "is already used by another product."
    _raise(errors, "The product is not valid.")
    assert rate is not None
    now = clock.now()
    with transaction.atomic():
        product = Product.objects.create(
            code=code,
            name=name,
            description=description.strip(),
            vat_rate=rate,
            vat_nature=vat_nature,
            provisioning_kind=provisioning_kind.strip(),
            created_at=now,
            updated_at=now,
        )
        audit.record(
            action="billing.product.created",
            object_type="product",
            object_id=str(product.public_id),
            after=_product_snapshot(product),
            actor_id=actor_id,
        )
    return product


def product_update(*, product: Product, changes: dict[str, Any], actor_id: int | None = None) -> Product:
    """Change name, description, VAT treatment, provisioning kind or the active flag (not the code)."""
    allowed = {"name", "description", "vat_rate", "vat_nature", "provisioning_kind", "is_active"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationFailed(
            "These product fields cannot be changed.", fields=dict.fromkeys(sorted(unknown), "Not editable.")
        )
    with transaction.atomic():
        locked = Product.objects.select_for_update().get(pk=product.pk)
        before = _product_snapshot(locked)
        errors: dict[str, str] = {}
        name = _require_name(changes.get("name", locked.name), errors)
        nature = str(changes.get("vat_nature", locked.vat_nature))
        rate = _validate_vat(changes.get("vat_rate", locked.vat_rate), nature, errors)
        _raise(errors, "The product is not valid.")
        locked.name = name
        locked.description = str(changes.get("description", locked.description)).strip()
        locked.vat_rate = rate if rate is not None else locked.vat_rate
        locked.vat_nature = nature
        locked.provisioning_kind = str(changes.get("provisioning_kind", locked.provisioning_kind)).strip()
        locked.is_active = bool(changes.get("is_active", locked.is_active))
        locked.updated_at = clock.now()
        locked.save()
        audit.record(
            action="billing.product.updated",
            object_type="product",
            object_id=str(locked.public_id),
            before=before,
            after=_product_snapshot(locked),
            actor_id=actor_id,
        )
    return locked


# metrics -------------------------------------------------------------------------------------------


def metric_create(
    *,
    code: str,
    name: str,
    unit: str = "unit",
    aggregation: str = UsageAggregation.SUM.value,
    unique_property: str = "",
    actor_id: int | None = None,
) -> Metric:
    errors: dict[str, str] = {}
    code = _require_code(code, errors)
    name = _require_name(name, errors)
    if aggregation not in {a.value for a in UsageAggregation}:
        errors["aggregation"] = "must be sum, max, unique_count or last."
    if aggregation == UsageAggregation.UNIQUE_COUNT and not unique_property.strip():
        errors["unique_property"] = "is required for a unique count."
    if not unit.strip() or len(unit) > 32:
        errors["unit"] = "is required (at most 32 characters)."
    if "code" not in errors and Metric.objects.filter(code=code).exists():
        errors["code"] = "is already used by another metric."
    _raise(errors, "The metric is not valid.")
    with transaction.atomic():
        metric = Metric.objects.create(
            code=code,
            name=name,
            unit=unit.strip(),
            aggregation=aggregation,
            unique_property=unique_property.strip(),
            created_at=clock.now(),
        )
        audit.record(
            action="billing.metric.created",
            object_type="metric",
            object_id=str(metric.public_id),
            after={"code": code, "aggregation": aggregation, "unit": metric.unit},
            actor_id=actor_id,
        )
    return metric


# plans ---------------------------------------------------------------------------------------------


def plan_create(
    *,
    product: Product,
    code: str,
    name: str,
    description: str = "",
    billing_period: str = BillingPeriod.MONTH.value,
    trial_days: int = 0,
    is_addon: bool = False,
    actor_id: int | None = None,
) -> Plan:
    errors: dict[str, str] = {}
    code = _require_code(code, errors)
    name = _require_name(name, errors)
    if billing_period not in {p.value for p in BillingPeriod}:
        errors["billing_period"] = "must be month, quarter or year."
    if isinstance(trial_days, bool) or not isinstance(trial_days, int) or not 0 <= trial_days <= 365:
        errors["trial_days"] = "must be between 0 and 365."
    if not product.is_active:
        errors["product"] = "is not active."
    if "code" not in errors and Plan.objects.filter(code=code).exists():
        errors["code"] = "is already used by another plan."
    _raise(errors, "The plan is not valid.")
    now = clock.now()
    with transaction.atomic():
        plan = Plan.objects.create(
            product=product,
            code=code,
            name=name,
            description=description.strip(),
            billing_period=billing_period,
            trial_days=trial_days,
            is_addon=is_addon,
            created_at=now,
            updated_at=now,
        )
        audit.record(
            action="billing.plan.created",
            object_type="plan",
            object_id=str(plan.public_id),
            after={"code": code, "billing_period": billing_period, "trial_days": trial_days},
            actor_id=actor_id,
        )
    return plan


def plan_update(*, plan: Plan, changes: dict[str, Any], actor_id: int | None = None) -> Plan:
    """Name, description, trial days and the active flag. The billing period never changes: it is what
    subscribers were sold; a different period is a different plan."""
    allowed = {"name", "description", "trial_days", "is_active"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationFailed(
            "These plan fields cannot be changed.", fields=dict.fromkeys(sorted(unknown), "Not editable.")
        )
    errors: dict[str, str] = {}
    trial_days = changes.get("trial_days", plan.trial_days)
    if isinstance(trial_days, bool) or not isinstance(trial_days, int) or not 0 <= trial_days <= 365:
        errors["trial_days"] = "must be between 0 and 365."
    name = _require_name(changes.get("name", plan.name), errors)
    _raise(errors, "The plan is not valid.")
    with transaction.atomic():
        locked = Plan.objects.select_for_update().get(pk=plan.pk)
        before = {"name": locked.name, "trial_days": locked.trial_days, "is_active": locked.is_active}
        locked.name = name
        locked.description = str(changes.get("description", locked.description)).strip()
        locked.trial_days = trial_days
        locked.is_active = bool(changes.get("is_active", locked.is_active))
        locked.updated_at = clock.now()
        locked.save()
        audit.record(
            action="billing.plan.updated",
            object_type="plan",
            object_id=str(locked.public_id),
            before=before,
            after={"name": locked.name, "trial_days": locked.trial_days, "is_active": locked.is_active},
            actor_id=actor_id,
        )
    return locked


# plan versions and charges ---------------------------------------------------------------------------


def _ensure_draft(version: PlanVersion) -> None:
    if version.published_at is not None:
        raise Conflict(
            f"Version {version.version} of {version.plan.code} ({version.currency}) is published and "
            "cannot change; create a new version instead.",
            code="version_published",
        )


def plan_version_create(
    *,
    plan: Plan,
    currency: str = "EUR",
    setup_fee: Decimal | str | int = Decimal(0),
    copy_latest: bool = True,
    actor_id: int | None = None,
) -> PlanVersion:
    """A draft version N+1 of the plan's price book in ``currency``, copying the charges of the latest
    version in that currency (when ``copy_latest``). One draft at a time per plan and currency."""
    errors: dict[str, str] = {}
    try:
        currency = Money.zero(currency).currency
    except ValidationFailed:
        errors["currency"] = "must be an ISO-4217 code such as EUR."
    fee = _decimal(setup_fee, "setup_fee", errors, allow_none=False)
    if fee is not None and (fee < 0 or fee != fee.quantize(Decimal("0.01"))):
        errors["setup_fee"] = "must be a non-negative amount with at most two decimals."
    _raise(errors, "The plan version is not valid.")
    with transaction.atomic():
        Plan.objects.select_for_update().get(pk=plan.pk)
        versions = PlanVersion.objects.filter(plan=plan, currency=currency)
        if versions.filter(published_at__isnull=True).exists():
            raise Conflict(
                f"{plan.code} already has a draft version in {currency}; edit or publish it first.",
                code="draft_exists",
            )
        latest = versions.order_by("-version").first()
        number = (versions.aggregate(highest=Max("version"))["highest"] or 0) + 1
        version = PlanVersion.objects.create(
            plan=plan,
            currency=currency,
            version=number,
            setup_fee=fee if fee is not None else Decimal(0),
            created_at=clock.now(),
        )
        if copy_latest and latest is not None:
            for charge in latest.charges.all():
                charge.pk = None
                charge.plan_version = version
                charge.save(force_insert=True)
        audit.record(
            action="billing.plan_version.created",
            object_type="plan_version",
            object_id=str(version.public_id),
            after={
                "plan": plan.code,
                "currency": currency,
                "version": number,
                "setup_fee": version.setup_fee,
            },
            actor_id=actor_id,
        )
    return version


def plan_version_update(
    *, version: PlanVersion, setup_fee: Decimal | str | int, actor_id: int | None = None
) -> PlanVersion:
    errors: dict[str, str] = {}
    fee = _decimal(setup_fee, "setup_fee", errors, allow_none=False)
    if fee is not None and (fee < 0 or fee != fee.quantize(Decimal("0.01"))):
        errors["setup_fee"] = "must be a non-negative amount with at most two decimals."
    _raise(errors, "The plan version is not valid.")
    with transaction.atomic():
        locked = PlanVersion.objects.select_for_update().select_related("plan").get(pk=version.pk)
        _ensure_draft(locked)
        before = {"setup_fee": locked.setup_fee}
        locked.setup_fee = fee if fee is not None else locked.setup_fee
        locked.save(update_fields=["setup_fee"])
        audit.record(
            action="billing.plan_version.updated",
            object_type="plan_version",
            object_id=str(locked.public_id),
            before=before,
            after={"setup_fee": locked.setup_fee},
            actor_id=actor_id,
        )
    return locked


def plan_version_publish(*, version: PlanVersion, actor_id: int | None = None) -> PlanVersion:
    """Freeze the version; from now on it is what new subscribers in its currency are sold."""
    with transaction.atomic():
        locked = PlanVersion.objects.select_for_update().select_related("plan").get(pk=version.pk)
        _ensure_draft(locked)
        charges = list(locked.charges.all())
        if not charges:
            raise ValidationFailed(
                "A version needs at least one charge before it is published.",
                code="version_without_charges",
                fields={"charges": "Add at least one charge."},
            )
        for charge in charges:
            charge.as_charge()
        locked.published_at = clock.now()
        locked.save(update_fields=["published_at"])
        audit.record(
            action="billing.plan_version.published",
            object_type="plan_version",
            object_id=str(locked.public_id),
            after={"plan": locked.plan.code, "version": locked.version, "currency": locked.currency},
            actor_id=actor_id,
        )
    return locked


@dataclass(frozen=True, slots=True)
class ChargeInput:
    """The fields of a PlanCharge as a clerk or an API client sends them."""

    code: str
    name: str
    kind: str
    model: str
    metric: Metric | None = None
    unit_amount: Decimal | str | None = None
    flat_amount: Decimal | str | None = None
    tiers: tuple[dict[str, Any], ...] = ()
    package_size: int | None = None
    minimum_amount: Decimal | str | None = None
    position: int = 0


def _normalised_tiers(rows: tuple[dict[str, Any], ...], errors: dict[str, str]) -> list[dict[str, Any]]:
    tiers: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        up_to = row.get("up_to")
        if up_to in ("", None):
            up_to = None
        elif isinstance(up_to, str) and up_to.strip().isdigit():
            up_to = int(up_to.strip())
        elif isinstance(up_to, bool) or not isinstance(up_to, int):
            errors[f"tiers[{index}].up_to"] = "must be a whole number of units or empty (no limit)."
            continue
        amounts: dict[str, str] = {}
        for name in ("unit_amount", "flat_amount"):
            value = _decimal(row.get(name) or "0", f"tiers[{index}].{name}", errors)
            amounts[name] = str(value) if value is not None else "0"
        tiers.append({"up_to": up_to, **amounts})
    return tiers


def _build_charge(version: PlanVersion, data: ChargeInput, existing: PlanCharge | None) -> PlanCharge:
    errors: dict[str, str] = {}
    code = _require_code(data.code, errors)
    name = _require_name(data.name, errors)
    if data.kind not in {kind.value for kind in ChargeKind}:
        errors["kind"] = "must be recurring or usage."
    if data.model not in {model.value for model in PriceModel}:
        errors["model"] = "must be flat, per_unit, graduated, volume or package."
    if data.kind == ChargeKind.USAGE and data.metric is None:
        errors["metric"] = "is required for a usage charge."
    if data.kind == ChargeKind.RECURRING and data.metric is not None:
        errors["metric"] = "applies only to usage charges."
    amounts = {
        name: _decimal(getattr(data, name), name, errors)
        for name in ("unit_amount", "flat_amount", "minimum_amount")
    }
    tiers = _normalised_tiers(data.tiers, errors)
    duplicate = PlanCharge.objects.filter(plan_version=version, code=code)
    if existing is not None:
        duplicate = duplicate.exclude(pk=existing.pk)
    if "code" not in errors and duplicate.exists():
        errors["code"] = "is already used by another charge of this version."
    charge = existing or PlanCharge(plan_version=version)
    charge.plan_version = version
    charge.code = code
    charge.name = name
    charge.kind = data.kind
    charge.model = data.model
    charge.metric = data.metric
    charge.unit_amount = amounts["unit_amount"]
    charge.flat_amount = amounts["flat_amount"]
    charge.minimum_amount = amounts["minimum_amount"]
    charge.tiers = tiers
    charge.package_size = data.package_size
    charge.position = data.position
    # The pricing contract is the one validation of prices and tiers; report its problems together
    # with the ones found above, so the clerk sees everything at once.
    if "model" not in errors:
        try:
            charge.as_charge()
        except ValidationFailed as error:
            for field, messages in error.fields.items():
                errors.setdefault(field, " ".join(messages))
    _raise(errors, "The charge is not valid.")
    return charge


def plan_charge_add(*, version: PlanVersion, data: ChargeInput, actor_id: int | None = None) -> PlanCharge:
    with transaction.atomic():
        locked = PlanVersion.objects.select_for_update().select_related("plan").get(pk=version.pk)
        _ensure_draft(locked)
        charge = _build_charge(locked, data, None)
        charge.save()
        audit.record(
            action="billing.plan_charge.added",
            object_type="plan_version",
            object_id=str(locked.public_id),
            after={"code": charge.code, "kind": charge.kind, "model": charge.model},
            actor_id=actor_id,
        )
    return charge


def plan_charge_update(*, charge: PlanCharge, data: ChargeInput, actor_id: int | None = None) -> PlanCharge:
    with transaction.atomic():
        locked = PlanVersion.objects.select_for_update().select_related("plan").get(pk=charge.plan_version_id)
        _ensure_draft(locked)
        current = PlanCharge.objects.get(pk=charge.pk)
        before = {"code": current.code, "model": current.model, "tiers": current.tiers}
        updated = _build_charge(locked, data, current)
        updated.save()
        audit.record(
            action="billing.plan_charge.updated",
            object_type="plan_version",
            object_id=str(locked.public_id),
            before=before,
            after={"code": updated.code, "model": updated.model, "tiers": updated.tiers},
            actor_id=actor_id,
        )
    return updated


def plan_charge_remove(*, charge: PlanCharge, actor_id: int | None = None) -> None:
    with transaction.atomic():
        locked = PlanVersion.objects.select_for_update().select_related("plan").get(pk=charge.plan_version_id)
        _ensure_draft(locked)
        code = charge.code
        PlanCharge.objects.filter(pk=charge.pk).delete()
        audit.record(
            action="billing.plan_charge.removed",
            object_type="plan_version",
            object_id=str(locked.public_id),
            before={"code": code},
            actor_id=actor_id,
        )


# coupons -------------------------------------------------------------------------------------------


def coupon_create(
    *,
    code: str,
    name: str,
    percent_off: Decimal | str | None = None,
    amount_off: Decimal | str | None = None,
    currency: str = "",
    duration: str = Coupon.Duration.ONCE.value,
    duration_periods: int | None = None,
    max_redemptions: int | None = None,
    valid_until: date | None = None,
    actor_id: int | None = None,
) -> Coupon:
    errors: dict[str, str] = {}
    code = (code or "").strip().upper()
    if not code or len(code) > 64 or not all(ch.isalnum() or ch in "-_" for ch in code):
        errors["code"] = "use up to 64 letters, digits, - or _."
    name = _require_name(name, errors)
    percent = _decimal(percent_off, "percent_off", errors)
    amount = _decimal(amount_off, "amount_off", errors)
    if (percent is None) == (amount is None) and "percent_off" not in errors and "amount_off" not in errors:
        errors["percent_off"] = "give either a percentage or an amount off, not both or neither."
    if percent is not None and not Decimal(0) < percent <= Decimal(100):
        errors["percent_off"] = "must be more than 0 and at most 100."
    if amount is not None:
        if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
            errors["amount_off"] = "must be a positive amount with at most two decimals."
        try:
            currency = Money.zero(currency or "-").currency
        except ValidationFailed:
            errors["currency"] = "is required for an amount off (ISO-4217 code)."
    elif currency:
        errors["currency"] = "applies only to an amount off."
    if duration not in Coupon.Duration.values:
        errors["duration"] = "must be once, repeating or forever."
    if duration == Coupon.Duration.REPEATING and (duration_periods is None or duration_periods < 1):
        errors["duration_periods"] = "is required (at least 1) for a repeating coupon."
    if duration != Coupon.Duration.REPEATING and duration_periods is not None:
        errors["duration_periods"] = "applies only to a repeating coupon."
    if max_redemptions is not None and max_redemptions < 1:
        errors["max_redemptions"] = "must be at least 1 (or empty for no limit)."
    if valid_until is not None and valid_until < clock.today():
        errors["valid_until"] = "is in the past."
    if "code" not in errors and Coupon.objects.filter(code=code).exists():
        errors["code"] = "is already used by another coupon."
    _raise(errors, "The coupon is not valid.")
    with transaction.atomic():
        coupon = Coupon.objects.create(
            code=code,
            name=name,
            percent_off=percent,
            amount_off=amount,
            currency=currency if amount is not None else "",
            duration=duration,
            duration_periods=duration_periods,
            max_redemptions=max_redemptions,
            valid_until=valid_until,
            created_at=clock.now(),
        )
        audit.record(
            action="billing.coupon.created",
            object_type="coupon",
            object_id=str(coupon.public_id),
            after=coupon.snapshot(),
            actor_id=actor_id,
        )
    return coupon


def coupon_deactivate(*, coupon: Coupon, actor_id: int | None = None) -> Coupon:
    """No new redemptions; subscriptions that already have it keep it for its duration."""
    with transaction.atomic():
        locked = Coupon.objects.select_for_update().get(pk=coupon.pk)
        if locked.is_active:
            locked.is_active = False
            locked.save(update_fields=["is_active"])
            audit.record(
                action="billing.coupon.deactivated",
                object_type="coupon",
                object_id=str(locked.public_id),
                before={"is_active": True},
                after={"is_active": False},
                actor_id=actor_id,
            )
    return locked

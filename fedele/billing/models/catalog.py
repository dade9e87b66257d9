"""Catalog: products, plans, plan versions per currency (the price books) with their charges, metrics
and coupons.

A plan's prices live in an immutable PlanVersion: editing prices publishes a new version, and a
subscription keeps the version it was sold on until it is migrated explicitly.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, TypedDict

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fedele.billing.contracts import (
    BillingPeriod,
    Charge,
    ChargeKind,
    PriceModel,
    Tier,
    UsageAggregation,
    VatNature,
)


class Digits(TypedDict):
    max_digits: int
    decimal_places: int


AMOUNT: Digits = {"max_digits": 18, "decimal_places": 6}
"""Catalog prices may carry sub-cent precision (0.0004 EUR per API call); invoices never do."""
MONEY: Digits = {"max_digits": 16, "decimal_places": 2}
QUANTITY: Digits = {"max_digits": 20, "decimal_places": 6}


def enum_choices(enum: type) -> list[tuple[str, str]]:
    return [(member.value, member.value.replace("_", " ")) for member in enum]  # type: ignore[attr-defined]


class Product(models.Model):
    """What is sold: a service, a licence, a device, a fee. Carries the VAT treatment."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    vat_rate = models.DecimalField(_("VAT rate %"), max_digits=5, decimal_places=2, default=Decimal("22"))
    vat_nature = models.CharField(
        _("VAT nature"),
        max_length=8,
        blank=True,
        choices=enum_choices(VatNature),
        help_text=_("FatturaPA nature code, required when the VAT rate is zero."),
    )
    provisioning_kind = models.SlugField(
        _("provisioning kind"),
        max_length=64,
        blank=True,
        help_text=_("The entitlement a sale creates, e.g. fibre_line or licence_seat; empty for none."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["name", "id"]
        permissions = [("manage_catalog", "Can manage the billing catalog")]

    def __str__(self) -> str:
        return self.name


class Metric(models.Model):
    """A usage meter: how events of one kind add up over a billing period."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    unit = models.CharField(_("unit"), max_length=32, default="unit")
    aggregation = models.CharField(
        _("aggregation"), max_length=16, choices=enum_choices(UsageAggregation), default="sum"
    )
    unique_property = models.CharField(
        _("unique property"),
        max_length=64,
        blank=True,
        help_text=_("For unique count: the event property whose distinct values are counted."),
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Plan(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="plans")
    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    billing_period = models.CharField(
        _("billing period"), max_length=16, choices=enum_choices(BillingPeriod), default="month"
    )
    trial_days = models.PositiveIntegerField(_("trial days"), default=0)
    is_addon = models.BooleanField(_("add-on"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class PlanVersion(models.Model):
    """The prices of a plan in one currency, frozen once published. (plan, currency) is a price book
    entry; the highest published version is the one sold to new subscribers."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="versions")
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    version = models.PositiveIntegerField(_("version"))
    setup_fee = models.DecimalField(_("setup fee"), **MONEY, default=Decimal(0))
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["plan_id", "currency", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "currency", "version"], name="uniq_plan_currency_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan.code} v{self.version} {self.currency}"


class PlanCharge(models.Model):
    """One priced component of a plan version: a recurring fee or a usage charge on a metric."""

    plan_version = models.ForeignKey(PlanVersion, on_delete=models.CASCADE, related_name="charges")
    code = models.SlugField(_("code"), max_length=64)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=16, choices=enum_choices(ChargeKind))
    metric = models.ForeignKey(Metric, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    model = models.CharField(_("price model"), max_length=16, choices=enum_choices(PriceModel))
    unit_amount = models.DecimalField(_("unit amount"), **AMOUNT, null=True, blank=True)
    flat_amount = models.DecimalField(_("flat amount"), **AMOUNT, null=True, blank=True)
    tiers = models.JSONField(
        _("tiers"),
        default=list,
        blank=True,
        help_text='[{"up_to": 100 or null, "unit_amount": "0.10", "flat_amount": "0"}, ...]',
    )
    package_size = models.PositiveIntegerField(_("package size"), null=True, blank=True)
    minimum_amount = models.DecimalField(_("minimum commitment"), **AMOUNT, null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["plan_version_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["plan_version", "code"], name="uniq_charge_code_per_version"),
            models.CheckConstraint(
                condition=Q(kind="recurring", metric__isnull=True) | Q(kind="usage", metric__isnull=False),
                name="usage_charge_has_metric",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.model})"

    def as_charge(self) -> Charge:
        """The validated pricing contract of this row (raises ValidationFailed if the row is malformed)."""
        tiers = tuple(
            Tier(
                up_to=row.get("up_to"),
                unit_amount=Decimal(str(row.get("unit_amount", "0"))),
                flat_amount=Decimal(str(row.get("flat_amount", "0"))),
            )
            for row in (self.tiers or [])
        )
        return Charge(
            model=PriceModel(self.model),
            currency=self.plan_version.currency,
            unit_amount=self.unit_amount,
            flat_amount=self.flat_amount,
            tiers=tiers,
            package_size=self.package_size,
            minimum_amount=self.minimum_amount,
        )


class Coupon(models.Model):
    """A discount on recurring charges: percent or fixed amount, once, for N periods or forever."""

    class Duration(models.TextChoices):
        ONCE = "once", _("once")
        REPEATING = "repeating", _("for a number of periods")
        FOREVER = "forever", _("forever")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    code = models.CharField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    percent_off = models.DecimalField(_("percent off"), max_digits=5, decimal_places=2, null=True, blank=True)
    amount_off = models.DecimalField(_("amount off"), **MONEY, null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    duration = models.CharField(_("duration"), max_length=16, choices=Duration.choices, default="once")
    duration_periods = models.PositiveIntegerField(_("periods"), null=True, blank=True)
    max_redemptions = models.PositiveIntegerField(_("maximum redemptions"), null=True, blank=True)
    times_redeemed = models.PositiveIntegerField(default=0)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(percent_off__isnull=False, amount_off__isnull=True)
                    | Q(percent_off__isnull=True, amount_off__isnull=False)
                ),
                name="coupon_percent_xor_amount",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def snapshot(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "percent_off": self.percent_off,
            "amount_off": self.amount_off,
            "currency": self.currency,
            "duration": self.duration,
            "duration_periods": self.duration_periods,
        }

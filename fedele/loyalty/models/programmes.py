"""Programmes (each with its own currency of points) and their tiers."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class ProgrammeStatus(models.TextChoices):
    DRAFT = "draft", _("draft")
    ACTIVE = "active", _("active")
    CLOSED = "closed", _("closed")


class Rounding(models.TextChoices):
    """How fractional points from spend become whole points (per transaction)."""

    DOWN = "down", _("round down")
    HALF_UP = "half_up", _("round half up")
    UP = "up", _("round up")


class ExpiryPolicy(models.TextChoices):
    NONE = "none", _("points never expire")
    ROLLING_MONTHS = "rolling_months", _("N months after earning")
    END_OF_YEAR = "end_of_year", _("31 December of the year N after earning")


class NegativeBalancePolicy(models.TextChoices):
    """What happens when a reversal takes more points than the member has left."""

    DEBT = "debt", _("record the remainder as debt, settled by the next earnings")
    FORFEIT = "forfeit", _("write the remainder off")


class TierMetric(models.TextChoices):
    QUALIFYING_POINTS = "qualifying_points", _("qualifying points")
    SPEND = "spend", _("spend (EUR)")
    COUNT = "count", _("number of qualifying purchases/stays")


class TierWindow(models.TextChoices):
    ROLLING_12_MONTHS = "rolling_12_months", _("rolling 12 months")
    CALENDAR_YEAR = "calendar_year", _("calendar year")


class Programme(models.Model):
    """A loyalty programme with its own currency (points, miles, cashback credit).

    ``point_value`` is the operator's liability per point in EUR (what a point costs when it is
    redeemed); the outstanding liability is outstanding points × ``point_value``.
    Expiry: ``rolling_months`` → a lot expires ``expiry_months`` after it was earned (at the end of
    that day, programme time zone); ``end_of_year`` → on 31 December of the year
    ``earned.year + expiry_years``. ``pending_days`` is the return window: points from a purchase stay
    pending that many days and are cancelled if the purchase is refunded meanwhile.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_it = models.CharField(_("name (Italian)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120)
    currency_name_it = models.CharField(_("currency name (Italian)"), max_length=40, default="punti")
    currency_name_en = models.CharField(_("currency name (English)"), max_length=40, default="points")
    status = models.CharField(_("status"), max_length=12, choices=ProgrammeStatus.choices, default="draft")
    timezone = models.CharField(_("time zone"), max_length=64, default="Europe/Rome")
    point_value = models.DecimalField(
        _("value of one point (EUR)"),
        max_digits=12,
        decimal_places=6,
        default=Decimal("0.010000"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    rounding = models.CharField(_("rounding"), max_length=8, choices=Rounding.choices, default="down")
    points_per_euro = models.DecimalField(
        _("base points per euro spent"), max_digits=10, decimal_places=4, default=Decimal("1")
    )
    expiry_policy = models.CharField(
        _("expiry"), max_length=16, choices=ExpiryPolicy.choices, default=ExpiryPolicy.ROLLING_MONTHS
    )
    expiry_months = models.PositiveSmallIntegerField(_("expiry after (months)"), default=24)
    expiry_years = models.PositiveSmallIntegerField(_("expiry at the end of year N+"), default=1)
    expiry_notice_days = models.PositiveSmallIntegerField(_("notice before expiry (days)"), default=30)
    pending_days = models.PositiveSmallIntegerField(_("return window (days)"), default=14)
    negative_balance_policy = models.CharField(
        _("negative balance"), max_length=8, choices=NegativeBalancePolicy.choices, default="debt"
    )
    max_points_per_transaction = models.BigIntegerField(
        _("maximum points in one transaction"), default=10_000_000, validators=[MinValueValidator(1)]
    )
    tier_metric = models.CharField(
        _("tier metric"), max_length=20, choices=TierMetric.choices, default=TierMetric.QUALIFYING_POINTS
    )
    tier_window = models.CharField(
        _("tier window"), max_length=20, choices=TierWindow.choices, default=TierWindow.ROLLING_12_MONTHS
    )
    transfer_max_points = models.BigIntegerField(
        _("maximum points per transfer"), default=50_000, validators=[MinValueValidator(0)]
    )
    transfer_max_points_per_month = models.BigIntegerField(
        _("maximum points transferred per member per month"),
        default=100_000,
        validators=[MinValueValidator(0)],
    )
    household_max_members = models.PositiveSmallIntegerField(_("maximum members per household"), default=6)
    reservation_minutes = models.PositiveSmallIntegerField(_("reservation hold (minutes)"), default=15)
    velocity_max_earns_per_hour = models.PositiveIntegerField(
        _("fraud guard: earn transactions per member per hour"), default=20
    )
    velocity_max_points_per_day = models.BigIntegerField(
        _("fraud guard: points earned per member per day"), default=100_000
    )
    forfeit_on_cancellation = models.BooleanField(
        _("forfeit points when the customer's last subscription ends"), default=False
    )
    is_coalition = models.BooleanField(_("coalition (partners earn and burn)"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        permissions = [
            ("view_loyalty", "Can see loyalty programmes, members and their ledgers"),
            ("operate_loyalty", "Can enrol members, adjust points and redeem on a member's behalf"),
            ("manage_loyalty", "Can configure programmes, tiers, rules, campaigns and rewards"),
            ("manage_partners", "Can manage coalition partners and settlements"),
            ("view_loyalty_reports", "Can see programme evaluation reports"),
            ("review_loyalty_fraud", "Can review fraud flags and reverse fraudulent transactions"),
        ]

    def __str__(self) -> str:
        return self.code

    def name(self, language: str) -> str:
        return self.name_it if language == "it" else self.name_en

    def currency_name(self, language: str) -> str:
        return self.currency_name_it if language == "it" else self.currency_name_en


class Tier(models.Model):
    """Bronze/Silver/Gold... ``rank`` 0 is the base tier every member starts in.

    A member qualifies for the highest tier whose ``threshold`` the programme's tier metric reaches
    over the tier window. ``benefits`` is a list of codes (``free_shipping``, ``priority_support``,
    ``lounge``...); ``support_priority`` (0 normal … 3 highest) is what support and the contact center
    read through the facade.
    """

    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="tiers")
    code = models.SlugField(_("code"), max_length=40)
    name_it = models.CharField(_("name (Italian)"), max_length=80)
    name_en = models.CharField(_("name (English)"), max_length=80)
    rank = models.PositiveSmallIntegerField(_("rank"))
    threshold = models.DecimalField(
        _("qualifying threshold"),
        max_digits=14,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    earn_multiplier = models.DecimalField(
        _("earn multiplier"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    support_priority = models.PositiveSmallIntegerField(_("support priority (0-3)"), default=0)
    benefits = models.JSONField(_("benefits"), default=list, blank=True)
    color = models.CharField(_("colour"), max_length=7, default="#8c6d46")

    class Meta:
        ordering = ["programme_id", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["programme", "code"], name="loyalty_tier_code"),
            models.UniqueConstraint(fields=["programme", "rank"], name="loyalty_tier_rank"),
            models.CheckConstraint(
                condition=Q(support_priority__lte=3), name="loyalty_tier_support_priority"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.programme_id}:{self.code}"

    def name(self, language: str) -> str:
        return self.name_it if language == "it" else self.name_en

"""Coalition partners and their monthly settlement statements."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from fedele.loyalty.models.programmes import Programme


class Partner(models.Model):
    """A retailer, airline, fuel station... that lets members earn and/or burn the programme's points.

    The partner buys every point it issues at ``earn_price_per_point`` (EUR) and is reimbursed
    ``burn_price_per_point`` for every point it accepts. Its staff and API credentials are users of
    the accounts ``Organisation`` (kind partner) with the partner role; API tokens carry the scopes
    ``loyalty:partner:earn``, ``loyalty:partner:burn``, ``loyalty:partner:read``.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        SUSPENDED = "suspended", _("suspended")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, related_name="partners")
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=120)
    category = models.CharField(max_length=40, blank=True)
    organisation = models.ForeignKey(
        "accounts.Organisation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    earn_price_per_point = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        default=Decimal("0.010000"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    burn_price_per_point = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        default=Decimal("0.008000"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    can_earn = models.BooleanField(default=True)
    can_burn = models.BooleanField(default=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    contact_email = models.EmailField(blank=True)
    vat_number = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["programme", "code"], name="loyalty_partner_code")]

    def __str__(self) -> str:
        return self.name


class PartnerSettlement(models.Model):
    """A partner's statement for one calendar month (programme time zone).

    ``amount_due_from_partner`` = Σ ``partner_amount`` of its earn transactions (net of reversals),
    ``amount_due_to_partner`` = Σ of its burns; ``net`` = from − to (positive: the partner pays).
    ``lines`` keeps the per-day, per-kind breakdown that sums to the totals to the cent.
    """

    class State(models.TextChoices):
        DRAFT = "draft", _("draft")
        ISSUED = "issued", _("issued")
        PAID = "paid", _("paid")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="settlements")
    period_start = models.DateField()
    period_end = models.DateField()
    state = models.CharField(max_length=8, choices=State.choices, default=State.DRAFT)
    points_issued = models.BigIntegerField(default=0)
    points_accepted = models.BigIntegerField(default=0)
    amount_due_from_partner = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    amount_due_to_partner = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    net = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    transaction_count = models.PositiveIntegerField(default=0)
    lines = models.JSONField(default=list, blank=True)
    generated_at = models.DateTimeField()
    issued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start", "partner_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "period_start"], name="loyalty_settlement_once_per_month"
            )
        ]

    def __str__(self) -> str:
        return f"{self.partner_id} {self.period_start:%Y-%m}"

"""The rewards catalogue, voucher code pools and redemptions (what a confirmed reservation bought)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fedele.loyalty.models.ledger import Reservation
from fedele.loyalty.models.members import Member
from fedele.loyalty.models.programmes import Programme


class RewardKind(models.TextChoices):
    VOUCHER = "voucher", _("voucher / coupon code")
    BILLING_CREDIT = "billing_credit", _("discount on the next invoice")
    PHYSICAL = "physical", _("physical item")
    PARTNER = "partner", _("partner reward")
    DONATION = "donation", _("charity donation")


class Reward(models.Model):
    """A catalogue item. ``points_cost`` (+ ``cash_price`` for points-plus-cash) buys one.
    ``stock`` null = unlimited; ``per_member_limit`` null = no limit. ``credit_amount`` is the net
    EUR credit a ``billing_credit`` reward puts on the next invoice through the billing facade.
    ``eligible_tiers``/``eligible_segments``: lists of codes; empty = everyone."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="rewards")
    code = models.SlugField(max_length=40)
    kind = models.CharField(max_length=16, choices=RewardKind.choices)
    name_it = models.CharField(max_length=120)
    name_en = models.CharField(max_length=120)
    description_it = models.TextField(blank=True)
    description_en = models.TextField(blank=True)
    image_url = models.CharField(max_length=300, blank=True)
    points_cost = models.BigIntegerField()
    cash_price = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    credit_amount = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    stock = models.IntegerField(null=True, blank=True)
    per_member_limit = models.PositiveIntegerField(null=True, blank=True)
    eligible_tiers = models.JSONField(default=list, blank=True)
    eligible_segments = models.JSONField(default=list, blank=True)
    partner = models.ForeignKey(
        "loyalty.Partner", null=True, blank=True, on_delete=models.PROTECT, related_name="rewards"
    )
    charity_name = models.CharField(max_length=120, blank=True)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["programme_id", "position", "points_cost", "id"]
        constraints = [
            models.UniqueConstraint(fields=["programme", "code"], name="loyalty_reward_code"),
            models.CheckConstraint(condition=Q(points_cost__gt=0), name="loyalty_reward_cost_positive"),
            models.CheckConstraint(
                condition=Q(stock__isnull=True) | Q(stock__gte=0), name="loyalty_reward_stock"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class VoucherCode(models.Model):
    """One unique code of a voucher reward's pool (generated or imported)."""

    class State(models.TextChoices):
        AVAILABLE = "available", _("available")
        RESERVED = "reserved", _("reserved")
        ISSUED = "issued", _("issued")
        VOID = "void", _("void")

    reward = models.ForeignKey(Reward, on_delete=models.CASCADE, related_name="codes")
    code = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=State.choices, default=State.AVAILABLE)
    reservation = models.ForeignKey(
        Reservation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    imported = models.BooleanField(default=False)
    issued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["reward", "code"], name="loyalty_voucher_code")]
        indexes = [models.Index(fields=["reward", "state", "id"], name="loyalty_voucher_free")]

    def __str__(self) -> str:
        return self.code


class Redemption(models.Model):
    """What a reservation bought: the reward and its fulfilment (code issued, credit posted, item
    shipped, donation made)."""

    class State(models.TextChoices):
        RESERVED = "reserved", _("reserved")
        FULFILLED = "fulfilled", _("fulfilled")
        AWAITING_SHIPMENT = "awaiting_shipment", _("awaiting shipment")
        SHIPPED = "shipped", _("shipped")
        CANCELLED = "cancelled", _("cancelled")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    reservation = models.OneToOneField(Reservation, on_delete=models.PROTECT, related_name="redemption")
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="redemptions")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="redemptions")
    state = models.CharField(max_length=20, choices=State.choices, default=State.RESERVED)
    points = models.BigIntegerField()
    cash_amount = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    voucher = models.OneToOneField(
        VoucherCode, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    billing_charge_id = models.CharField(max_length=64, blank=True)
    shipping_address = models.JSONField(default=dict, blank=True)
    tracking = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField()
    fulfilled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["reward", "member", "state"], name="loyalty_redemption_limit")]

    def __str__(self) -> str:
        return f"{self.reward_id} ({self.state})"

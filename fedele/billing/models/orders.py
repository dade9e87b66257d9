"""Quotes, the orders they turn into, and the provisioning steps that fulfil an order's entitlements."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fedele.billing.models.catalog import AMOUNT, MONEY, QUANTITY, Digits

PERCENT: Digits = {"max_digits": 5, "decimal_places": 2}


class Quote(models.Model):
    """A priced offer to a customer, valid until a date; accepting it creates an Order.

    The number (Q-<year>-NNNNNN) is taken from a gapless series when the quote is created.
    ``subtotal`` is the sum of the rounded line amounts; ``discount_amount`` the quote-level discount
    (rounded once on the subtotal); ``total = subtotal - discount_amount`` (net of VAT).
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        SENT = "sent", _("sent")
        ACCEPTED = "accepted", _("accepted")
        DECLINED = "declined", _("declined")
        EXPIRED = "expired", _("expired")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number = models.CharField(_("number"), max_length=32, unique=True)
    account = models.ForeignKey("billing.BillingAccount", on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(_("currency"), max_length=3)
    language = models.CharField(_("language"), max_length=2, default="it")
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default="draft", db_index=True
    )
    valid_until = models.DateField(_("valid until"))
    discount_percent = models.DecimalField(_("quote discount %"), **PERCENT, default=Decimal(0))
    subtotal = models.DecimalField(**MONEY, default=Decimal(0))
    discount_amount = models.DecimalField(**MONEY, default=Decimal(0))
    total = models.DecimalField(**MONEY, default=Decimal(0))
    notes = models.TextField(_("notes"), blank=True)
    renewal_of = models.ForeignKey(
        "billing.Subscription", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    sent_to = models.EmailField(blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=300, blank=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.number


class QuoteLine(models.Model):
    """A plan (recurring per period, priced from the plan version) or a product line (one-off or
    recurring, priced by hand). ``amount = round(quantity * unit_amount * (1 - discount_percent/100))``."""

    quote = models.ForeignKey(Quote, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(
        max_length=16,
        choices=[("plan", _("plan")), ("setup_fee", _("setup fee")), ("product", _("product"))],
        default="plan",
    )
    plan_version = models.ForeignKey("billing.PlanVersion", null=True, blank=True, on_delete=models.PROTECT)
    product = models.ForeignKey("billing.Product", null=True, blank=True, on_delete=models.PROTECT)
    description = models.CharField(_("description"), max_length=300)
    quantity = models.DecimalField(_("quantity"), **QUANTITY, default=Decimal(1))
    list_unit_amount = models.DecimalField(**AMOUNT, null=True, blank=True)
    unit_amount = models.DecimalField(_("unit price"), **AMOUNT)
    discount_percent = models.DecimalField(_("line discount %"), **PERCENT, default=Decimal(0))
    recurring = models.BooleanField(_("recurring"), default=False)
    amount = models.DecimalField(**MONEY, default=Decimal(0))

    class Meta:
        ordering = ["quote_id", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(plan_version__isnull=False) | Q(product__isnull=False),
                name="quote_line_sells_something",
            ),
        ]

    def __str__(self) -> str:
        return self.description


class Order(models.Model):
    """What the customer bought; fulfilment starts subscriptions and provisions entitlements."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        FULFILLING = "fulfilling", _("fulfilling")
        COMPLETED = "completed", _("completed")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number = models.CharField(_("number"), max_length=32, unique=True)
    account = models.ForeignKey("billing.BillingAccount", on_delete=models.PROTECT, related_name="+")
    quote = models.OneToOneField(Quote, null=True, blank=True, on_delete=models.PROTECT, related_name="order")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices, default="pending", db_index=True)
    external_reference = models.CharField(max_length=100, blank=True)
    start_on = models.DateField(null=True, blank=True)
    total = models.DecimalField(**MONEY, default=Decimal(0))
    last_error = models.CharField(max_length=500, blank=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "external_reference"],
                condition=~Q(external_reference=""),
                name="uniq_order_external_reference",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class OrderLine(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        PROVISIONING = "provisioning", _("provisioning")
        COMPLETED = "completed", _("completed")
        FAILED = "failed", _("failed")

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(
        max_length=16,
        choices=[("plan", _("plan")), ("setup_fee", _("setup fee")), ("product", _("product"))],
        default="plan",
    )
    plan_version = models.ForeignKey("billing.PlanVersion", null=True, blank=True, on_delete=models.PROTECT)
    product = models.ForeignKey("billing.Product", null=True, blank=True, on_delete=models.PROTECT)
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(**QUANTITY, default=Decimal(1))
    list_unit_amount = models.DecimalField(**AMOUNT, null=True, blank=True)
    unit_amount = models.DecimalField(**AMOUNT)
    discount_percent = models.DecimalField(**PERCENT, default=Decimal(0))
    recurring = models.BooleanField(default=False)
    amount = models.DecimalField(**MONEY, default=Decimal(0))
    status = models.CharField(max_length=16, choices=Status.choices, default="pending")
    subscription = models.ForeignKey(
        "billing.Subscription", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    entitlement = models.ForeignKey(
        "billing.Entitlement", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    one_off_charge = models.ForeignKey(
        "billing.OneOffCharge", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["order_id", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(plan_version__isnull=False) | Q(product__isnull=False),
                name="order_line_sells_something",
            ),
        ]

    def __str__(self) -> str:
        return self.description


class ProvisioningStep(models.Model):
    """One step of provisioning an entitlement (reserve_port, configure_ont, activate ...)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        RUNNING = "running", _("running")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    entitlement = models.ForeignKey("billing.Entitlement", on_delete=models.CASCADE, related_name="+")
    order_line = models.ForeignKey(
        OrderLine, null=True, blank=True, on_delete=models.CASCADE, related_name="steps"
    )
    position = models.PositiveSmallIntegerField()
    name = models.SlugField(max_length=64)
    handler = models.CharField(max_length=16)
    status = models.CharField(max_length=16, choices=Status.choices, default="pending", db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    last_error = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    result = models.JSONField(default=dict, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["entitlement_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["entitlement", "name"], name="uniq_provisioning_step_name"),
        ]

    def __str__(self) -> str:
        return self.name

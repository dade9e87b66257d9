"""Payments and everything that moves money in: payment methods, SEPA mandates and batches, payments
and their allocation to invoices, refunds, inbound gateway events and bank statement imports."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fedele.billing.models.catalog import MONEY


class Gateway(models.TextChoices):
    MANUAL = "manual", _("manual")
    BANK = "bank", _("bank transfer")
    SEPA = "sepa", _("SEPA direct debit")
    STRIPE = "stripe", _("Stripe")


class MethodKind(models.TextChoices):
    BANK_TRANSFER = "bank_transfer", _("bank transfer")
    CASH = "cash", _("cash")
    CHEQUE = "cheque", _("cheque")
    CARD = "card", _("card")
    SEPA_DEBIT = "sepa_debit", _("SEPA direct debit")


AUTOMATIC_KINDS = frozenset({MethodKind.CARD, MethodKind.SEPA_DEBIT})
"""Methods the gateway can charge without the customer (dunning retries them)."""


class SepaMandate(models.Model):
    """A SEPA Core direct-debit mandate: the debtor's signed authorisation to collect from an IBAN.

    ``sequence`` is FRST until the first collection is sent, then RCUR (SEPA rulebook)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        REVOKED = "revoked", _("revoked")

    class Sequence(models.TextChoices):
        FIRST = "FRST", _("first")
        RECURRENT = "RCUR", _("recurrent")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey(
        "billing.BillingAccount", on_delete=models.PROTECT, related_name="sepa_mandates"
    )
    reference = models.CharField(_("mandate reference"), max_length=35, unique=True)
    iban = models.CharField(_("IBAN"), max_length=34)
    bic = models.CharField(_("BIC"), max_length=11, blank=True)
    debtor_name = models.CharField(_("debtor name"), max_length=70)
    signed_on = models.DateField(_("signature date"))
    sequence = models.CharField(max_length=4, choices=Sequence.choices, default="FRST")
    status = models.CharField(max_length=8, choices=Status.choices, default="active", db_index=True)
    revoked_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["account_id", "-id"]

    def __str__(self) -> str:
        return self.reference


class PaymentMethod(models.Model):
    """How an account pays: a card saved at Stripe, a SEPA mandate, or a manual method."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey(
        "billing.BillingAccount", on_delete=models.PROTECT, related_name="payment_methods"
    )
    kind = models.CharField(_("kind"), max_length=16, choices=MethodKind.choices)
    gateway = models.CharField(max_length=16, choices=Gateway.choices)
    label = models.CharField(_("label"), max_length=100, blank=True)
    external_id = models.CharField(
        max_length=100, blank=True, help_text="The gateway's id (Stripe pm_..., customer cus_...)."
    )
    external_customer_id = models.CharField(max_length=100, blank=True)
    mandate = models.ForeignKey(
        SepaMandate, null=True, blank=True, on_delete=models.PROTECT, related_name="payment_methods"
    )
    is_default = models.BooleanField(_("default"), default=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["account_id", "-is_default", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(is_default=True, is_active=True),
                name="one_default_payment_method",
            ),
        ]

    def __str__(self) -> str:
        return self.label or self.kind


class Payment(models.Model):
    """Money received (or attempted) from a customer. ``external_id`` is unique per gateway, so a
    retried request or a replayed webhook records it once."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey("billing.BillingAccount", on_delete=models.PROTECT, related_name="payments")
    invoice = models.ForeignKey(
        "billing.Invoice",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payments",
        help_text="The invoice the payer named (or the gateway charged for); allocations say where it went.",
    )
    method = models.ForeignKey(
        PaymentMethod, null=True, blank=True, on_delete=models.SET_NULL, related_name="payments"
    )
    gateway = models.CharField(max_length=16, choices=Gateway.choices)
    method_kind = models.CharField(max_length=16, choices=MethodKind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    received_on = models.DateField(_("received on"))
    external_id = models.CharField(_("reference"), max_length=120)
    attempt = models.PositiveSmallIntegerField(default=1)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_reason = models.CharField(max_length=300, blank=True)
    amount_refunded = models.DecimalField(**MONEY, default=Decimal(0))
    amount_to_credit = models.DecimalField(
        **MONEY, default=Decimal(0), help_text="The part no invoice absorbed, kept as customer credit."
    )
    note = models.CharField(max_length=300, blank=True)
    sepa_batch = models.ForeignKey(
        "billing.SepaBatch", null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    actor_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["gateway", "external_id"], name="uniq_payment_external_id"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
        ]
        indexes = [models.Index(fields=["account", "status"], name="payment_account_status")]

    def __str__(self) -> str:
        return f"{self.gateway} {self.external_id}"

    @property
    def refundable(self) -> Decimal:
        return self.amount - self.amount_refunded if self.status == self.Status.SUCCEEDED else Decimal(0)


class PaymentAllocation(models.Model):
    """The part of a payment that settled one invoice (a payment may settle several, oldest first)."""

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="allocations")
    invoice = models.ForeignKey("billing.Invoice", on_delete=models.PROTECT, related_name="allocations")
    amount = models.DecimalField(**MONEY)
    amount_reversed = models.DecimalField(**MONEY, default=Decimal(0))
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["payment_id", "id"]

    def __str__(self) -> str:
        return f"{self.amount} to invoice {self.invoice_id}"


class Refund(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    reason = models.CharField(_("reason"), max_length=300)
    status = models.CharField(max_length=16, choices=Status.choices)
    gateway = models.CharField(max_length=16, choices=Gateway.choices)
    external_id = models.CharField(max_length=120)
    credit_note = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    amount_from_credit = models.DecimalField(
        **MONEY, default=Decimal(0), help_text="Refunded out of the customer's credit balance."
    )
    actor_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["gateway", "external_id"], name="uniq_refund_external_id"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"refund {self.amount} of payment {self.payment_id}"


class GatewayEvent(models.Model):
    """An inbound gateway notification, stored once per event id: a replay finds it and stops."""

    gateway = models.CharField(max_length=16, choices=Gateway.choices)
    event_id = models.CharField(max_length=120)
    event_type = models.CharField(max_length=100)
    payload = models.JSONField()
    outcome = models.CharField(max_length=300, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["gateway", "event_id"], name="uniq_gateway_event"),
        ]

    def __str__(self) -> str:
        return f"{self.gateway} {self.event_type} {self.event_id}"


class SepaBatch(models.Model):
    """One pain.008.001.02 collection file sent to the bank."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    message_id = models.CharField(max_length=35, unique=True)
    collection_date = models.DateField()
    transactions = models.PositiveIntegerField(default=0)
    control_sum = models.DecimalField(**MONEY, default=Decimal(0))
    xml = models.TextField()
    actor_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.message_id


class BankStatementImport(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    filename = models.CharField(max_length=200)
    file_hash = models.CharField(max_length=64, db_index=True)
    format = models.CharField(max_length=8)
    lines_total = models.PositiveIntegerField(default=0)
    lines_new = models.PositiveIntegerField(default=0)
    lines_duplicate = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    actor_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.filename


class BankStatementLine(models.Model):
    class Status(models.TextChoices):
        UNMATCHED = "unmatched", _("unmatched")
        MATCHED = "matched", _("matched")
        PARTIAL = "partial", _("partial match")
        CONFIRMED = "confirmed", _("confirmed")
        IGNORED = "ignored", _("ignored")
        DEBIT = "debit", _("debit")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    statement = models.ForeignKey(BankStatementImport, on_delete=models.CASCADE, related_name="lines")
    line_number = models.PositiveIntegerField()
    booked_on = models.DateField()
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, default="EUR")
    description = models.CharField(max_length=500, blank=True)
    reference = models.CharField(max_length=200, blank=True)
    line_hash = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    matched_invoice = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["statement_id", "line_number"]

    def __str__(self) -> str:
        return f"line {self.line_number}: {self.amount}"

"""Invoices, credit notes, their lines and VAT summaries, one-off charges and billing runs."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fedele.billing.contracts import InvoiceKind, InvoiceLineKind, InvoiceStatus, VatNature
from fedele.billing.models.catalog import AMOUNT, MONEY, QUANTITY, enum_choices


class BillingRun(models.Model):
    """One pass of the billing run over every subscription due on or before ``as_of``.

    Resumable: each invoice it creates carries a unique ``billing_key`` (subscription + period), so
    running it again after a crash skips what was already invoiced and creates only what is missing.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        RUNNING = "running", _("running")
        COMPLETED = "completed", _("completed")
        FAILED = "failed", _("failed")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    as_of = models.DateField()
    status = models.CharField(max_length=16, choices=Status.choices, default="pending", db_index=True)
    finalise = models.BooleanField(default=True, help_text="Finalise (number) invoices as they are created.")
    subscriptions_due = models.PositiveIntegerField(default=0)
    subscriptions_processed = models.PositiveIntegerField(default=0)
    invoices_created = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    started_by_id = models.BigIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"billing run {self.pk} as of {self.as_of}"


class Invoice(models.Model):
    """An invoice or credit note. Drafts have no number; finalising assigns the next number of the
    fiscal year (gapless) and freezes lines, totals and the customer snapshot."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=16, choices=enum_choices(InvoiceKind), default="invoice")
    number = models.CharField(_("number"), max_length=32, null=True, blank=True, unique=True)
    fiscal_year = models.PositiveSmallIntegerField(null=True, blank=True)
    sequence_number = models.PositiveIntegerField(null=True, blank=True)
    account = models.ForeignKey("billing.BillingAccount", on_delete=models.PROTECT, related_name="invoices")
    subscription = models.ForeignKey(
        "billing.Subscription", null=True, blank=True, on_delete=models.PROTECT, related_name="invoices"
    )
    credit_note_for = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes"
    )
    billing_run = models.ForeignKey(
        BillingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="invoices"
    )
    billing_key = models.CharField(
        max_length=100,
        null=True,
        blank=True,
        unique=True,
        help_text="Idempotency key of what this invoice bills (e.g. sub:<id>:<period start>).",
    )
    status = models.CharField(
        _("status"), max_length=16, choices=enum_choices(InvoiceStatus), default="draft", db_index=True
    )
    currency = models.CharField(max_length=3)
    issue_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True, db_index=True)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    subtotal = models.DecimalField(**MONEY, default=Decimal(0))
    tax_total = models.DecimalField(**MONEY, default=Decimal(0))
    total = models.DecimalField(**MONEY, default=Decimal(0))
    amount_paid = models.DecimalField(**MONEY, default=Decimal(0))
    amount_credited = models.DecimalField(
        **MONEY, default=Decimal(0), help_text="Settled by credit notes and applied customer credit."
    )
    reverse_charge = models.BooleanField(default=False)
    customer_snapshot = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True)
    finalised_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    first_paid_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When it was paid the first time: InvoicePaid is published once, even if a refund "
        "or a returned debit reopens it and it is paid again.",
    )
    voided_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "fiscal_year", "sequence_number"],
                condition=Q(sequence_number__isnull=False),
                name="uniq_invoice_sequence_per_year",
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(number__isnull=False), name="finalised_invoice_has_number"
            ),
        ]
        indexes = [models.Index(fields=["account", "status"], name="invoice_account_status")]

    def __str__(self) -> str:
        return self.number or f"draft {self.public_id}"

    @property
    def amount_due(self) -> Decimal:
        return self.total - self.amount_paid - self.amount_credited


class InvoiceLine(models.Model):
    """A line, rounded on its own (ROUND_HALF_UP); ``amount`` is net of VAT."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    kind = models.CharField(max_length=24, choices=enum_choices(InvoiceLineKind))
    description = models.CharField(max_length=500)
    quantity = models.DecimalField(**QUANTITY)
    unit_amount = models.DecimalField(**AMOUNT)
    amount = models.DecimalField(**MONEY)
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2)
    vat_nature = models.CharField(max_length=8, blank=True, choices=enum_choices(VatNature))
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    product = models.ForeignKey(
        "billing.Product", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    plan_charge = models.ForeignKey(
        "billing.PlanCharge", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["invoice_id", "position", "id"]

    def __str__(self) -> str:
        return self.description


class InvoiceTaxSummary(models.Model):
    """VAT per rate/nature (FatturaPA DatiRiepilogo): VAT is computed on each group's taxable total."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="tax_summaries")
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2)
    vat_nature = models.CharField(max_length=8, blank=True)
    taxable_amount = models.DecimalField(**MONEY)
    tax_amount = models.DecimalField(**MONEY)
    legal_reference = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["invoice_id", "-vat_rate", "vat_nature"]

    def __str__(self) -> str:
        return f"VAT {self.vat_rate}% {self.vat_nature}".strip()


class OneOffCharge(models.Model):
    """A charge waiting for the account's next invoice (field-service parts, a penalty, a fee).

    Created through the facade's ``charge_customer``; ``idempotency_key`` makes a retried request
    create it once.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey(
        "billing.BillingAccount", on_delete=models.PROTECT, related_name="one_off_charges"
    )
    subscription = models.ForeignKey(
        "billing.Subscription", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    description = models.CharField(max_length=500)
    quantity = models.DecimalField(**QUANTITY, default=Decimal(1))
    unit_amount = models.DecimalField(**AMOUNT)
    currency = models.CharField(max_length=3)
    kind = models.CharField(max_length=24, choices=enum_choices(InvoiceLineKind), default="one_time")
    product = models.ForeignKey(
        "billing.Product", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("22"))
    vat_nature = models.CharField(max_length=8, blank=True)
    idempotency_key = models.CharField(max_length=120, unique=True)
    source = models.CharField(max_length=64, blank=True, help_text="Which module asked for it.")
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.description

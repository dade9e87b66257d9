"""Billing accounts, subscriptions, their change history and the entitlements they provision."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fedele.billing.contracts import BillingPeriod, SubscriptionStatus
from fedele.billing.models.catalog import MONEY, QUANTITY, enum_choices


class BillingAccount(models.Model):
    """The billing side of one customer: currency, terms, and the credit balance.

    ``credit_balance`` is a cache of the sum of CreditEntry rows (overpayments, refunds kept as
    credit, manual credits), changed only under a row lock together with the entry it reflects.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    customer = models.OneToOneField("customers.Customer", on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    payment_terms_days = models.PositiveIntegerField(_("payment terms (days)"), default=30)
    billing_email = models.EmailField(_("billing e-mail"), blank=True)
    credit_balance = models.DecimalField(_("credit balance"), **MONEY, default=Decimal(0))
    is_suspended = models.BooleanField(_("suspended for non-payment"), default=False)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        permissions = [
            ("manage_billing", "Can manage subscriptions, invoices and payments"),
            ("view_billing", "Can view billing data"),
            ("run_billing", "Can start billing runs"),
            ("view_revenue", "Can view revenue analytics"),
        ]

    def __str__(self) -> str:
        return f"account {self.pk} ({self.currency})"


class CreditEntry(models.Model):
    """Append-only movements of an account's credit balance (positive adds credit)."""

    class Reason(models.TextChoices):
        OVERPAYMENT = "overpayment", _("overpayment")
        APPLIED = "applied", _("applied to an invoice")
        CREDIT_NOTE = "credit_note", _("credit note")
        REFUND = "refund", _("refunded")
        MANUAL = "manual", _("manual adjustment")

    account = models.ForeignKey(BillingAccount, on_delete=models.PROTECT, related_name="credit_entries")
    amount = models.DecimalField(**MONEY)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    invoice = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["account_id", "id"]

    def __str__(self) -> str:
        return f"{self.reason} {self.amount}"


class Subscription(models.Model):
    """A customer's subscription to one plan version, billed per period in advance.

    Periods are [current_period_start, current_period_end): the end date is exclusive and is the
    next period's start. ``billing_anchor_day`` keeps monthly periods on the same day of the month
    (an anchor of 31 bills on the 30th in April and on the 28th/29th in February).
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number = models.CharField(_("number"), max_length=32, unique=True)
    account = models.ForeignKey(BillingAccount, on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey("billing.Plan", on_delete=models.PROTECT, related_name="subscriptions")
    plan_version = models.ForeignKey(
        "billing.PlanVersion", on_delete=models.PROTECT, related_name="subscriptions"
    )
    quantity = models.DecimalField(_("quantity"), **QUANTITY, default=Decimal(1))
    status = models.CharField(
        _("status"), max_length=16, choices=enum_choices(SubscriptionStatus), db_index=True
    )
    billing_period = models.CharField(max_length=16, choices=enum_choices(BillingPeriod))
    billing_anchor_day = models.PositiveSmallIntegerField()
    started_on = models.DateField(_("start date"))
    trial_end = models.DateField(_("trial end"), null=True, blank=True)
    current_period_start = models.DateField()
    current_period_end = models.DateField(db_index=True)
    next_billing_on = models.DateField(
        db_index=True,
        null=True,
        blank=True,
        help_text="The date the billing run next invoices this subscription; null when nothing is due.",
    )
    auto_renew = models.BooleanField(_("renews automatically"), default=True)
    term_end = models.DateField(_("contract term end"), null=True, blank=True)
    renewal_reminder_days = models.PositiveSmallIntegerField(_("renewal reminder (days before)"), default=0)
    cancel_at_period_end = models.BooleanField(default=False)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    ended_on = models.DateField(null=True, blank=True)
    cancellation_reason = models.CharField(max_length=300, blank=True)
    paused_on = models.DateField(null=True, blank=True)
    resume_on = models.DateField(null=True, blank=True)
    pending_change = models.JSONField(
        null=True, blank=True, help_text="A plan/quantity change scheduled for the period end."
    )
    coupon = models.ForeignKey(
        "billing.Coupon", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    coupon_periods_remaining = models.PositiveIntegerField(null=True, blank=True)
    external_reference = models.CharField(max_length=100, blank=True, db_index=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=0), name="subscription_quantity_not_negative"),
            models.CheckConstraint(
                condition=Q(current_period_end__gt=models.F("current_period_start")),
                name="subscription_period_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class SubscriptionChange(models.Model):
    """Complete history: one row per change, with what it was before and after and its money effect."""

    class Kind(models.TextChoices):
        CREATED = "created", _("created")
        PLAN_CHANGED = "plan_changed", _("plan changed")
        QUANTITY_CHANGED = "quantity_changed", _("quantity changed")
        CHANGE_SCHEDULED = "change_scheduled", _("change scheduled")
        CHANGE_UNSCHEDULED = "change_unscheduled", _("scheduled change withdrawn")
        PAUSED = "paused", _("paused")
        RESUMED = "resumed", _("resumed")
        CANCEL_SCHEDULED = "cancel_scheduled", _("cancellation scheduled")
        CANCELLED = "cancelled", _("cancelled")
        REACTIVATED = "reactivated", _("reactivated")
        RENEWED = "renewed", _("renewed")
        TRIAL_ENDED = "trial_ended", _("trial ended")
        COUPON_APPLIED = "coupon_applied", _("coupon applied")
        MIGRATED = "migrated", _("migrated to a new plan version")
        PAST_DUE = "past_due", _("past due")
        ADDON_ADDED = "addon_added", _("add-on added")
        ADDON_REMOVED = "addon_removed", _("add-on removed")

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    effective_on = models.DateField()
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    proration_credit = models.DecimalField(**MONEY, default=Decimal(0))
    proration_charge = models.DecimalField(**MONEY, default=Decimal(0))
    actor_id = models.BigIntegerField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["subscription_id", "id"]

    def __str__(self) -> str:
        return f"{self.kind} on {self.effective_on}"


class SubscriptionAddOn(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="addons")
    plan_version = models.ForeignKey("billing.PlanVersion", on_delete=models.PROTECT, related_name="+")
    quantity = models.DecimalField(**QUANTITY, default=Decimal(1))
    added_on = models.DateField()
    removed_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["subscription_id", "id"]

    def __str__(self) -> str:
        return f"add-on {self.plan_version_id} x {self.quantity}"


class Entitlement(models.Model):
    """A provisioned service instance (a fibre line, a licence seat) a customer is entitled to."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        PROVISIONING = "provisioning", _("provisioning")
        ACTIVE = "active", _("active")
        SUSPENDED = "suspended", _("suspended")
        TERMINATED = "terminated", _("terminated")
        FAILED = "failed", _("failed")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey(BillingAccount, on_delete=models.PROTECT, related_name="entitlements")
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.PROTECT, related_name="entitlements"
    )
    product = models.ForeignKey("billing.Product", on_delete=models.PROTECT, related_name="+")
    kind = models.SlugField(max_length=64)
    identifier = models.CharField(_("identifier"), max_length=120, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default="pending", db_index=True)
    attributes = models.JSONField(default=dict, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    terminated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.identifier}".strip()

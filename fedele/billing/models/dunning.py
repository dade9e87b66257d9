"""Dunning: the policy for chasing overdue invoices, one case per overdue invoice, and the log of
every action taken on it (each action runs once: the log row is unique per case, kind and step)."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


def default_retry_days() -> list[int]:
    return [1, 3, 7]


class DunningPolicy(models.Model):
    """``retry_days``: days after the due date when the payment is retried and a reminder is sent.
    The case is escalated to collections after ``escalate_after_days`` and the account's services
    are suspended after ``suspend_after_days`` (0 disables either)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=100, unique=True)
    retry_days = models.JSONField(_("retry schedule (days after due date)"), default=default_retry_days)
    send_reminders = models.BooleanField(_("send reminder e-mails"), default=True)
    escalate_after_days = models.PositiveIntegerField(_("escalate after (days)"), default=14)
    suspend_after_days = models.PositiveIntegerField(_("suspend after (days)"), default=21)
    is_default = models.BooleanField(_("default policy"), default=False)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_dunning_policy"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DunningCase(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("open")
        ESCALATED = "escalated", _("escalated to collections")
        CLOSED = "closed", _("closed")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    invoice = models.OneToOneField("billing.Invoice", on_delete=models.PROTECT, related_name="dunning_case")
    account = models.ForeignKey(
        "billing.BillingAccount", on_delete=models.PROTECT, related_name="dunning_cases"
    )
    policy = models.ForeignKey(DunningPolicy, on_delete=models.PROTECT, related_name="cases")
    status = models.CharField(max_length=16, choices=Status.choices, default="open", db_index=True)
    due_date = models.DateField()
    steps_done = models.PositiveSmallIntegerField(default=0)
    next_action_on = models.DateField(null=True, blank=True, db_index=True)
    suspended = models.BooleanField(default=False)
    escalated_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=100, blank=True)
    opened_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["due_date", "id"]

    def __str__(self) -> str:
        return f"dunning case {self.pk} for invoice {self.invoice_id}"


class DunningAction(models.Model):
    class Kind(models.TextChoices):
        RETRY = "retry", _("payment retried")
        REMINDER = "reminder", _("reminder sent")
        ESCALATE = "escalate", _("escalated to collections")
        SUSPEND = "suspend", _("services suspended")
        REACTIVATE = "reactivate", _("services reactivated")
        CLOSE = "close", _("case closed")

    case = models.ForeignKey(DunningCase, on_delete=models.CASCADE, related_name="actions")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    step = models.PositiveSmallIntegerField(default=0)
    outcome = models.CharField(max_length=32)
    detail = models.CharField(max_length=500, blank=True)
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["case_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["case", "kind", "step"], name="uniq_dunning_action_step"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} step {self.step}: {self.outcome}"

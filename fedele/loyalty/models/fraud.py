"""Fraud and abuse: flags raised by the guards (velocity, unusual earn patterns) for review."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fedele.loyalty.models.ledger import PointsTransaction
from fedele.loyalty.models.members import Member


class FraudFlag(models.Model):
    class Rule(models.TextChoices):
        VELOCITY_COUNT = "velocity_count", _("too many earn transactions in an hour")
        VELOCITY_POINTS = "velocity_points", _("too many points in a day")
        UNUSUAL_AMOUNT = "unusual_amount", _("earn far above the member's usual")
        TRANSFER_PATTERN = "transfer_pattern", _("unusual transfers")
        MANUAL = "manual", _("flagged by staff")

    class State(models.TextChoices):
        OPEN = "open", _("open")
        CLEARED = "cleared", _("cleared")
        CONFIRMED = "confirmed", _("confirmed fraud (reversed)")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="fraud_flags")
    transaction = models.ForeignKey(
        PointsTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="fraud_flags"
    )
    rule = models.CharField(max_length=20, choices=Rule.choices)
    details = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    created_at = models.DateTimeField()
    reviewed_by_id = models.BigIntegerField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["state", "-id"], name="loyalty_fraud_open", condition=Q(state="open"))
        ]

    def __str__(self) -> str:
        return f"{self.rule} ({self.state})"

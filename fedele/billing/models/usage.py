"""Usage events as ingested: deduplicated on (account, external id), billed once."""

from __future__ import annotations

from django.db import models

from fedele.billing.models.catalog import QUANTITY


class UsageEvent(models.Model):
    """One usage event. ``invoice`` is set when an invoice bills it, so no event is billed twice and a
    late event (its timestamp in a period already invoiced) is picked up by the next invoice."""

    account = models.ForeignKey("billing.BillingAccount", on_delete=models.PROTECT, related_name="+")
    subscription = models.ForeignKey(
        "billing.Subscription", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    metric = models.ForeignKey("billing.Metric", on_delete=models.PROTECT, related_name="+")
    external_id = models.CharField(max_length=120)
    quantity = models.DecimalField(**QUANTITY)
    occurred_at = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField()
    invoice = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "external_id"], name="uniq_usage_event_per_account"),
        ]
        indexes = [
            models.Index(fields=["subscription", "metric", "occurred_at"], name="usage_sub_metric_time"),
        ]

    def __str__(self) -> str:
        return self.external_id

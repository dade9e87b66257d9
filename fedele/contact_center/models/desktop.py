"""The agent desktop's tables: canned replies (it/en text, a ``/shortcut`` to expand them in the chat
console) and wallboard thresholds (when a wallboard cell turns amber or red)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fedele.contact_center.models.core import Queue

__all__ = ["CannedReply", "WallboardMetric", "WallboardThreshold"]


class CannedReply(models.Model):
    """A ready-made answer an agent inserts in a chat, SMS or social conversation. ``{{customer.name}}``
    style placeholders are filled from the conversation's customer when it is inserted. A reply with a
    queue is offered only on that queue's conversations; one without a queue everywhere."""

    shortcut = models.SlugField(_("shortcut"), max_length=40, unique=True, help_text=_("typed as /shortcut"))
    title = models.CharField(_("title"), max_length=120)
    body_it = models.TextField(_("text (Italian)"))
    body_en = models.TextField(_("text (English)"))
    queue = models.ForeignKey(
        Queue, on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("queue")
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["shortcut"]

    def __str__(self) -> str:
        return self.shortcut


class WallboardMetric(models.TextChoices):
    WAITING = "waiting", _("waiting")
    LONGEST_WAIT = "longest_wait_seconds", _("longest wait (s)")
    SERVICE_LEVEL = "service_level_percent", _("service level (%)")
    ASA = "average_speed_of_answer_seconds", _("average speed of answer (s)")
    ABANDON_RATE = "abandon_rate_percent", _("abandon rate (%)")


class WallboardThreshold(models.Model):
    """Where a wallboard cell turns amber (``warning_at``) and red (``alert_at``). For the service level
    lower is worse (alert_at <= warning_at); for every other metric higher is worse. A row without a
    queue is the default for every queue; a queue's own row wins."""

    queue = models.ForeignKey(
        Queue, on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("queue")
    )
    metric = models.CharField(_("metric"), max_length=40, choices=WallboardMetric.choices)
    warning_at = models.FloatField(_("amber at"))
    alert_at = models.FloatField(_("red at"))

    class Meta:
        ordering = ["metric", "queue_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "metric"], condition=Q(queue__isnull=False), name="cc_threshold_queue_metric"
            ),
            models.UniqueConstraint(
                fields=["metric"], condition=Q(queue__isnull=True), name="cc_threshold_default_metric"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.queue_id or '*'}:{self.metric}"

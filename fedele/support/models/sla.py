"""Business calendars, SLA policies with targets per priority, and the per-ticket SLA clocks."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class BusinessCalendar(models.Model):
    """Working hours in the calendar's own time zone, national holidays from ``holidays`` (country +
    optional subdivision, e.g. IT/RM adds Rome's patron day) plus the calendar's own holidays."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=80, unique=True)
    timezone = models.CharField(_("time zone"), max_length=64, default="Europe/Rome")
    holiday_country = models.CharField(_("public holidays of"), max_length=2, blank=True, default="IT")
    holiday_subdivision = models.CharField(_("province/region"), max_length=8, blank=True)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="support_one_default_calendar"
            )
        ]

    def __str__(self) -> str:
        return self.name


class CalendarHours(models.Model):
    """One working interval on a weekday (0 = Monday); several per day allow a lunch break."""

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField()
    starts_at = models.TimeField()
    ends_at = models.TimeField()

    class Meta:
        ordering = ["weekday", "starts_at"]
        constraints = [
            models.CheckConstraint(condition=Q(weekday__lte=6), name="support_hours_weekday"),
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="support_hours_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.weekday} {self.starts_at}-{self.ends_at}"


class CalendarHoliday(models.Model):
    """A closed day of this calendar: a patron saint's day (recurring every year) or a one-off closure."""

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="holidays")
    name = models.CharField(max_length=120)
    day = models.DateField()
    recurring = models.BooleanField(default=False)  # same month/day every year

    class Meta:
        ordering = ["day"]

    def __str__(self) -> str:
        return f"{self.day} {self.name}"


class SlaPolicy(models.Model):
    """The first active policy (by position) whose conditions match a ticket applies to it.

    ``conditions`` (all must hold; an absent key matches anything)::

        {"priorities": ["high", "urgent"], "segments": ["enterprise"], "tiers": ["gold"],
         "ticket_types": ["incident"], "categories": ["network"], "channels": ["email"],
         "customers": ["<customer public_id>", ...]}

    ``tiers`` are loyalty tiers read through shared.customer_attributes (key "loyalty_tier").
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=120)
    position = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)
    conditions = models.JSONField(default=dict, blank=True)
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.PROTECT, related_name="+")
    warn_before_minutes = models.PositiveIntegerField(_("warn before breach (business minutes)"), default=30)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class SlaTarget(models.Model):
    """Targets in business minutes for one priority; a null target means "no target" for it."""

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="targets")
    priority = models.CharField(max_length=8)
    first_response_minutes = models.PositiveIntegerField(null=True, blank=True)
    next_response_minutes = models.PositiveIntegerField(null=True, blank=True)
    resolution_minutes = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["policy", "priority"], name="support_sla_target_unique")
        ]

    def __str__(self) -> str:
        return f"{self.policy_id} {self.priority}"


class EscalationRule(models.Model):
    """What happens on an SLA warning or breach of one metric.

    ``actions``: [{"type": "assign_team", "team": "<team public_id>"},
    {"type": "assign_user", "user": "<user public_id>"}, {"type": "raise_priority"},
    {"type": "notify_supervisors"}, {"type": "notify_user", "user": "<public_id>"}]
    """

    class When(models.TextChoices):
        WARNING = "warning", _("warning")
        BREACH = "breach", _("breach")

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="escalations")
    metric = models.CharField(max_length=16, blank=True)  # "" = any metric
    when = models.CharField(max_length=8, choices=When.choices)
    actions = models.JSONField(default=list)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.policy_id} {self.when}"


class SlaClock(models.Model):
    """One running SLA measure on a ticket: first_response, next_response (one per customer message
    awaiting an answer) or resolution. Business time only; pauses (pending statuses) accumulate in
    ``paused_business_seconds`` and push ``due_at`` out.

    status: running → paused ↔ running → fulfilled (met or late) | cancelled.
    """

    class Metric(models.TextChoices):
        FIRST_RESPONSE = "first_response", _("first response")
        NEXT_RESPONSE = "next_response", _("next response")
        RESOLUTION = "resolution", _("resolution")

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        PAUSED = "paused", _("paused")
        FULFILLED = "fulfilled", _("fulfilled")
        CANCELLED = "cancelled", _("cancelled")

    ticket = models.ForeignKey("support.Ticket", on_delete=models.CASCADE, related_name="sla_clocks")
    policy = models.ForeignKey(SlaPolicy, null=True, on_delete=models.SET_NULL, related_name="+")
    metric = models.CharField(max_length=16, choices=Metric.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING, db_index=True)
    target_minutes = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    due_at = models.DateTimeField(db_index=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_business_seconds = models.PositiveBigIntegerField(default=0)
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    warned_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    # Denormalised for reports (who/what the clock was for when it stopped).
    team_id_at_stop = models.BigIntegerField(null=True, blank=True)
    assignee_id_at_stop = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "due_at"], name="support_clock_due")]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.metric} {self.status}"

    @property
    def met(self) -> bool | None:
        if self.fulfilled_at is None:
            return None
        return self.fulfilled_at <= self.due_at

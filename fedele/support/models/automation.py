"""Triggers, time rules, agent capacity/availability and team assignment settings."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Trigger(models.Model):
    """Runs its actions when ``event`` happens and every condition holds.

    events: created, updated, customer_replied, agent_replied, status_changed, sla_warning, sla_breached.
    ``conditions``: [{"field": "priority|status_kind|status|channel|ticket_type|category|team|
    assignee|tag|subject|body|customer_segment|loyalty_tier|requester_email",
    "operator": "is|is_not|in|not_in|contains|not_contains|is_set|is_not_set", "value": ...}]
    ``actions``: [{"type": "set_priority", "value": "high"}, {"type": "set_status", "value": "<code>"},
    {"type": "assign_team", "value": "<team public_id>"},
    {"type": "assign_user", "value": "<user public_id>"},
    {"type": "auto_assign"}, {"type": "add_tag", "value": "vip"}, {"type": "remove_tag", "value": "x"},
    {"type": "set_field", "field": "<custom key>", "value": ...},
    {"type": "send_template", "to": "requester|assignee|team", "subject_it": ..., "subject_en": ...,
     "body_it": ..., "body_en": ...}, {"type": "webhook", "url": "https://..."},
    {"type": "add_note", "value": "..."}]
    A trigger's own changes do not re-fire triggers (no loops).
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=120)
    event = models.CharField(_("event"), max_length=24)
    conditions = models.JSONField(default=list, blank=True)
    actions = models.JSONField(default=list)
    position = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)
    run_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class TimeRule(models.Model):
    """Fires once per ticket when the ticket has been in ``status_kind`` (and matches ``conditions``)
    for ``hours`` since ``since_field`` — e.g. auto-close solved after 72 h, remind a pending customer
    after 48 h. ``business_hours`` counts business hours of the default calendar instead."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=120)
    status_kind = models.CharField(max_length=16)
    since_field = models.CharField(
        max_length=32, default="updated_at"
    )  # solved_at | last_agent_message_at | ...
    hours = models.PositiveIntegerField()
    business_hours = models.BooleanField(default=False)
    conditions = models.JSONField(default=list, blank=True)
    actions = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class TimeRuleFiring(models.Model):
    """A rule fired once for a ticket at a given reference time (a new reference fires it again)."""

    rule = models.ForeignKey(TimeRule, on_delete=models.CASCADE, related_name="firings")
    ticket = models.ForeignKey("support.Ticket", on_delete=models.CASCADE, related_name="+")
    reference_at = models.DateTimeField()
    fired_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "ticket", "reference_at"], name="support_rule_fired_once")
        ]

    def __str__(self) -> str:
        return f"{self.rule_id}:{self.ticket_id}"


class AgentProfile(models.Model):
    """Support settings of an agent: how many open tickets they can hold and whether they take new ones."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="support_profile"
    )
    capacity = models.PositiveIntegerField(_("maximum open tickets"), default=25)
    available = models.BooleanField(_("takes new tickets"), default=True)
    signature = models.TextField(blank=True)
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"agent {self.user_id}"


class AgentAbsence(models.Model):
    """Holidays and leave: an absent agent receives no automatic assignments."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="support_absences"
    )
    starts_on = models.DateField()
    ends_on = models.DateField()
    reason = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["starts_on"]

    def __str__(self) -> str:
        return f"{self.user_id} {self.starts_on}–{self.ends_on}"


class TeamSettings(models.Model):
    """Support settings per accounts.Team: automatic assignment mode, supervisors, business calendar."""

    class Assignment(models.TextChoices):
        MANUAL = "manual", _("manual")
        ROUND_ROBIN = "round_robin", _("round robin")
        LOAD = "load", _("least loaded")

    team = models.OneToOneField("accounts.Team", on_delete=models.CASCADE, related_name="support_settings")
    assignment = models.CharField(max_length=12, choices=Assignment.choices, default=Assignment.MANUAL)
    supervisors = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    calendar = models.ForeignKey("support.BusinessCalendar", null=True, blank=True, on_delete=models.SET_NULL)
    round_robin_cursor = models.BigIntegerField(default=0)  # user id of the last round-robin pick

    def __str__(self) -> str:
        return f"team {self.team_id}"

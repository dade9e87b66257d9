"""Earning rules, bonus campaigns (with a random holdout group), cap usage and inbound loyalty events."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fedele.loyalty.models.members import Member
from fedele.loyalty.models.programmes import Programme


class EventType(models.TextChoices):
    SPEND = "spend", _("purchase (spend)")
    INVOICE_PAID = "invoice_paid", _("invoice paid")
    SIGN_UP = "sign_up", _("sign-up")
    BIRTHDAY = "birthday", _("birthday")
    REFERRAL = "referral", _("referral")
    REVIEW = "review", _("review")
    SURVEY_COMPLETED = "survey_completed", _("survey completed")
    CUSTOM = "custom", _("custom event")


class RuleStatus(models.TextChoices):
    DRAFT = "draft", _("draft")
    ACTIVE = "active", _("active")
    PAUSED = "paused", _("paused")
    ARCHIVED = "archived", _("archived")


class Campaign(models.Model):
    """A time-boxed bonus campaign. ``holdout_percent`` of the eligible members are drawn at random
    (deterministically from the member and campaign ids) into a holdout group that does not get the
    bonus, so the evaluation can measure the campaign's uplift against it."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="campaigns")
    code = models.SlugField(max_length=40)
    name_it = models.CharField(max_length=120)
    name_en = models.CharField(max_length=120)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    holdout_percent = models.PositiveSmallIntegerField(default=10)
    budget_points = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=RuleStatus.choices, default=RuleStatus.DRAFT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.UniqueConstraint(fields=["programme", "code"], name="loyalty_campaign_code"),
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="loyalty_campaign_dates"
            ),
            models.CheckConstraint(condition=Q(holdout_percent__lte=90), name="loyalty_campaign_holdout"),
        ]

    def __str__(self) -> str:
        return self.code


class CampaignAssignment(models.Model):
    """Which group a member fell in for a campaign (recorded the first time the member is evaluated)."""

    class Group(models.TextChoices):
        TREATMENT = "treatment", _("treatment")
        HOLDOUT = "holdout", _("holdout")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="assignments")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    group = models.CharField(max_length=10, choices=Group.choices)
    assigned_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "member"], name="loyalty_campaign_assignment")
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.member_id} {self.group}"


class EarningRule(models.Model):
    """A rule evaluated on an event. Data, editable in the UI, tried in the simulator before activation.

    ``conditions``: a list of ``{"field": ..., "op": ..., "value": ...}`` all of which must hold.
    Fields: ``segment``, ``product_category``, ``channel``, ``tier``, ``amount``, ``first_purchase``,
    ``partner``, ``custom_event``, ``attributes.<name>``; ops: ``eq``, ``ne``, ``in``, ``not_in``,
    ``gte``, ``lte``, ``gt``, ``lt``, ``contains``, ``is_true``, ``is_false``.
    Award: ``points_per_euro`` × amount (rounded as the programme says) + ``fixed_points``; a rule
    with ``multiplier`` ≠ 1 multiplies the base points of the other matching rules instead (bonus).
    Caps: per member per day, per member in total, across everyone (campaign/programme budget).
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="rules")
    code = models.SlugField(max_length=40)
    name_it = models.CharField(max_length=120)
    name_en = models.CharField(max_length=120)
    event_type = models.CharField(max_length=20, choices=EventType.choices)
    custom_event = models.SlugField(max_length=60, blank=True)
    status = models.CharField(max_length=12, choices=RuleStatus.choices, default=RuleStatus.DRAFT)
    position = models.PositiveSmallIntegerField(default=0)
    conditions = models.JSONField(default=list, blank=True)
    points_per_euro = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    fixed_points = models.BigIntegerField(default=0)
    multiplier = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("1.00"))
    qualifying = models.BooleanField(_("counts towards tiers"), default=True)
    pending = models.BooleanField(_("pending during the return window"), default=False)
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="rules"
    )
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    cap_per_member_per_day = models.BigIntegerField(null=True, blank=True)
    cap_per_member_total = models.BigIntegerField(null=True, blank=True)
    cap_total = models.BigIntegerField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["programme_id", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["programme", "code"], name="loyalty_rule_code")]

    def __str__(self) -> str:
        return self.code


class RuleUsage(models.Model):
    """Points a rule has awarded, per member and day (``member`` null = everyone), for the caps.
    Updated with a row lock in the earn transaction."""

    rule = models.ForeignKey(EarningRule, on_delete=models.CASCADE, related_name="usage")
    member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    day = models.DateField(null=True, blank=True)
    points = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "member", "day"], name="loyalty_rule_usage", nulls_distinct=False
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} {self.day} {self.points}"


class LoyaltyEvent(models.Model):
    """An inbound event (API, partner, another module's domain event) and what it earned.
    ``(programme, source, external_id)`` is unique: the same event is never processed twice."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="events")
    event_type = models.CharField(max_length=20, choices=EventType.choices)
    custom_event = models.SlugField(max_length=60, blank=True)
    source = models.CharField(max_length=24)
    external_id = models.CharField(max_length=120)
    amount_eur = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    transaction = models.ForeignKey(
        "loyalty.PointsTransaction", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["programme", "source", "external_id"], name="loyalty_event_once")
        ]
        indexes = [models.Index(fields=["member", "event_type", "occurred_at"], name="loyalty_event_member")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.external_id}"

"""The outbound dialer's tables: campaigns with their calling windows and retry rules, contact lists
and their contacts, the do-not-call list (internal entries and imports of the Registro Pubblico delle
Opposizioni), and one DialAttempt per call placed (what the regulatory meter counts)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fedele.contact_center.models.core import Agent, Interaction, Queue

__all__ = [
    "AbandonRuleChoice",
    "AmdResult",
    "Campaign",
    "CampaignContact",
    "CampaignState",
    "CampaignWindow",
    "ContactList",
    "ContactState",
    "DialAttempt",
    "DialAttemptState",
    "DialMode",
    "DialOutcome",
    "DoNotCallEntry",
    "DoNotCallSource",
    "RetryRule",
    "RpoImportBatch",
]


class DialMode(models.TextChoices):
    PREVIEW = "preview", _("preview")
    PROGRESSIVE = "progressive", _("progressive")
    PREDICTIVE = "predictive", _("predictive")


class CampaignState(models.TextChoices):
    DRAFT = "draft", _("draft")
    RUNNING = "running", _("running")
    PAUSED = "paused", _("paused")
    FINISHED = "finished", _("finished")


class AbandonRuleChoice(models.TextChoices):
    ROLLING_30_DAYS = "rolling_30_days", _("3 per cent of live answers over a rolling 30 days")
    ROLLING_24_HOURS = "rolling_24_hours", _("3 per cent of live answers over a rolling 24 hours")


class Campaign(models.Model):
    """An outbound campaign. Answered calls are offered to the agents of ``queue``; rates are fractions
    (0.03 = 3 %)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=120)
    mode = models.CharField(
        _("dialling mode"), max_length=12, choices=DialMode.choices, default=DialMode.PROGRESSIVE
    )
    state = models.CharField(
        _("state"), max_length=10, choices=CampaignState.choices, default=CampaignState.DRAFT
    )
    queue = models.ForeignKey(
        Queue, on_delete=models.PROTECT, related_name="campaigns", verbose_name=_("queue")
    )
    provider = models.CharField(_("telephony provider"), max_length=20, default="simulator")
    caller_id = models.CharField(_("caller id (E.164)"), max_length=20, blank=True, default="")
    default_region = models.CharField(_("default country of numbers"), max_length=2, default="IT")
    consent_purpose = models.CharField(_("consent purpose"), max_length=20, default="marketing")
    check_rpo = models.BooleanField(_("check the Registro delle Opposizioni"), default=True)
    target_abandon_rate = models.DecimalField(
        _("target abandon rate"),
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.0150"),
        validators=[MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal("0.0300"))],
    )
    abandon_cap_rate = models.DecimalField(
        _("abandon rate cap"), max_digits=5, decimal_places=4, default=Decimal("0.0300")
    )
    abandon_rule = models.CharField(
        _("abandon rule"),
        max_length=20,
        choices=AbandonRuleChoice.choices,
        default=AbandonRuleChoice.ROLLING_30_DAYS,
    )
    near_cap_ratio = models.DecimalField(
        _("fall back to 1:1 at this share of the cap"),
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.80"),
    )
    max_attempts = models.PositiveSmallIntegerField(_("maximum attempts per contact"), default=5)
    max_lines_per_agent = models.PositiveSmallIntegerField(_("maximum lines per agent"), default=4)
    prior_live_rate = models.DecimalField(
        _("expected live-answer rate"), max_digits=4, decimal_places=3, default=Decimal("0.250")
    )
    mean_ring_seconds = models.PositiveSmallIntegerField(_("mean time to answer (s)"), default=12)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(_("created"))
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    last_tick_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(target_abandon_rate__gt=0)
                & Q(target_abandon_rate__lte=models.F("abandon_cap_rate")),
                name="cc_campaign_target_within_cap",
            ),
            models.CheckConstraint(condition=Q(max_attempts__gte=1), name="cc_campaign_attempts_positive"),
        ]

    def __str__(self) -> str:
        return self.code


class CampaignWindow(models.Model):
    """A calling window in the contact's local time: weekday 0 = Monday … 6 = Sunday."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="windows")
    weekday = models.PositiveSmallIntegerField(_("weekday"), validators=[MaxValueValidator(6)])
    start_time = models.TimeField(_("from"))
    end_time = models.TimeField(_("to"))

    class Meta:
        ordering = ["weekday", "start_time"]
        constraints = [
            models.CheckConstraint(
                condition=Q(start_time__lt=models.F("end_time")), name="cc_window_start_before_end"
            ),
            models.CheckConstraint(condition=Q(weekday__lte=6), name="cc_window_weekday_0_6"),
        ]

    def __str__(self) -> str:
        return f"{self.weekday} {self.start_time:%H:%M}-{self.end_time:%H:%M}"


class DialOutcome(models.TextChoices):
    CONNECTED = "connected", _("connected to an agent")
    ABANDONED = "abandoned", _("abandoned (no agent within 2 s)")
    BUSY = "busy", _("busy")
    NO_ANSWER = "no_answer", _("no answer")
    MACHINE = "machine", _("answering machine")
    FAILED = "failed", _("failed")


class RetryRule(models.Model):
    """When to try a contact again after an outcome: after ``delay_minutes``, or (``next_day``) at the
    first calling window of the next day; ``max_attempts`` (0 = the campaign's) caps this outcome."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="retry_rules")
    outcome = models.CharField(_("outcome"), max_length=12, choices=DialOutcome.choices)
    delay_minutes = models.PositiveIntegerField(_("retry after (minutes)"), default=0)
    next_day = models.BooleanField(_("retry the next day"), default=False)
    max_attempts = models.PositiveSmallIntegerField(_("maximum attempts for this outcome"), default=0)

    class Meta:
        ordering = ["outcome"]
        constraints = [models.UniqueConstraint(fields=["campaign", "outcome"], name="cc_retry_rule_once")]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.outcome}"


class ContactList(models.Model):
    """One import of numbers into a campaign, with its line-numbered report."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="contact_lists")
    name = models.CharField(_("name"), max_length=200)
    mode = models.CharField(max_length=12, default="all_or_none")
    rows_total = models.PositiveIntegerField(default=0)
    rows_imported = models.PositiveIntegerField(default=0)
    rows_duplicate = models.PositiveIntegerField(default=0)
    rows_blocked = models.PositiveIntegerField(default=0)
    rows_invalid = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    imported_by_id = models.BigIntegerField(null=True, blank=True)
    imported_at = models.DateTimeField()

    class Meta:
        ordering = ["-imported_at", "-id"]

    def __str__(self) -> str:
        return self.name


class ContactState(models.TextChoices):
    PENDING = "pending", _("to call")
    PREVIEW = "preview", _("in preview with an agent")
    DIALING = "dialing", _("being dialled")
    CALLBACK = "callback", _("callback scheduled")
    COMPLETED = "completed", _("reached")
    EXHAUSTED = "exhausted", _("attempts used up")
    BLOCKED = "blocked", _("do not call")


class CampaignContact(models.Model):
    """A number to call in a campaign (E.164, unique per campaign) with its local time zone."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="contacts")
    contact_list = models.ForeignKey(
        ContactList, on_delete=models.SET_NULL, null=True, blank=True, related_name="contacts"
    )
    phone = models.CharField(_("phone (E.164)"), max_length=20)
    region = models.CharField(_("country"), max_length=2, default="IT")
    time_zone = models.CharField(_("time zone"), max_length=64, default="Europe/Rome")
    name = models.CharField(_("name"), max_length=200, blank=True, default="")
    external_ref = models.CharField(_("reference"), max_length=100, blank=True, default="")
    customer_public_id = models.CharField(max_length=36, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    state = models.CharField(
        _("state"), max_length=10, choices=ContactState.choices, default=ContactState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    outcome_attempts = models.JSONField(default=dict, blank=True, help_text="outcome → attempts ended so")
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=12, choices=DialOutcome.choices, blank=True, default="")
    abandoned_at = models.DateTimeField(
        null=True, blank=True, help_text="last abandoned call; no predictive redial within 72 h"
    )
    agent = models.ForeignKey(
        Agent,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="callback/preview agent",
    )
    blocked_reason = models.CharField(max_length=40, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "phone"], name="cc_campaign_contact_once")]
        indexes = [
            models.Index(fields=["campaign", "state", "next_attempt_at"], name="cc_contact_due"),
            models.Index(fields=["phone"], name="cc_contact_phone"),
        ]

    def __str__(self) -> str:
        return self.phone


class DoNotCallSource(models.TextChoices):
    INTERNAL = "internal", _("internal list")
    RPO = "rpo", _("Registro Pubblico delle Opposizioni")


class RpoImportBatch(models.Model):
    """One result file of the Registro Pubblico delle Opposizioni: for the numbers we submitted, which
    are registered, as of ``checked_on``. The latest batch that mentions a number decides."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("file"), max_length=200)
    checked_on = models.DateField(_("checked on"))
    rows_total = models.PositiveIntegerField(default=0)
    registered = models.PositiveIntegerField(default=0)
    not_registered = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    imported_by_id = models.BigIntegerField(null=True, blank=True)
    imported_at = models.DateTimeField()

    class Meta:
        ordering = ["-checked_on", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.checked_on})"


class DoNotCallEntry(models.Model):
    """A number not to call: an internal entry (opt-out asked on a call, complaint…) or a line of an
    RPO batch (``registered`` False records that the registry said the number is free)."""

    phone = models.CharField(_("phone (E.164)"), max_length=20)
    source = models.CharField(_("source"), max_length=10, choices=DoNotCallSource.choices)
    batch = models.ForeignKey(
        RpoImportBatch, on_delete=models.CASCADE, null=True, blank=True, related_name="entries"
    )
    registered = models.BooleanField(default=True)
    registered_on = models.DateField(_("registered on"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True, default="")
    added_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["phone"], condition=Q(source="internal"), name="cc_dnc_internal_once"
            ),
            models.UniqueConstraint(fields=["batch", "phone"], name="cc_dnc_batch_phone_once"),
        ]
        indexes = [models.Index(fields=["phone", "source"], name="cc_dnc_phone")]

    def __str__(self) -> str:
        return f"{self.source}:{self.phone}"


class DialAttemptState(models.TextChoices):
    DIALING = "dialing", _("dialling")
    ANSWERED = "answered", _("answered, waiting for an agent")
    CONNECTED = "connected", _("connected to an agent")
    ENDED = "ended", _("ended")


class AmdResult(models.TextChoices):
    UNKNOWN = "", _("not reported")
    HUMAN = "human", _("human")
    MACHINE = "machine", _("machine")


class DialAttempt(models.Model):
    """One call placed by the dialer. ``abandoned`` is set when a live answer was not connected to an
    agent within 2 s; the regulatory meter counts these over the campaign's live answers."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="attempts")
    contact = models.ForeignKey(CampaignContact, on_delete=models.CASCADE, related_name="dial_attempts")
    interaction = models.ForeignKey(
        Interaction, on_delete=models.SET_NULL, null=True, blank=True, related_name="dial_attempts"
    )
    agent = models.ForeignKey(Agent, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    mode = models.CharField(max_length=12, choices=DialMode.choices)
    provider = models.CharField(max_length=20)
    call_ref = models.CharField(max_length=120, blank=True, default="")
    phone = models.CharField(max_length=20)
    state = models.CharField(
        max_length=10, choices=DialAttemptState.choices, default=DialAttemptState.DIALING
    )
    outcome = models.CharField(max_length=12, choices=DialOutcome.choices, blank=True, default="")
    amd_result = models.CharField(max_length=8, choices=AmdResult.choices, blank=True, default="")
    abandoned = models.BooleanField(default=False)
    dialed_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-dialed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "call_ref"], condition=~Q(call_ref=""), name="cc_dial_attempt_call_once"
            )
        ]
        indexes = [
            models.Index(fields=["campaign", "answered_at"], name="cc_attempt_answered"),
            models.Index(fields=["campaign", "state"], name="cc_attempt_state"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.phone}@{self.dialed_at:%Y-%m-%d %H:%M:%S}"

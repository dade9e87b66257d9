"""The core of the contact center: channels, queues, skills, agents and the one Interaction record
every contact becomes (a call in or out, an e-mail, a chat, an SMS, a social message).

Areas add their own tables in their own files (routing, telephony, ivr, messaging, dialer, desktop)
and their own migration in the fixed chain 0002…0007, so they never collide.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

__all__ = [
    "Agent",
    "AgentSkill",
    "AgentState",
    "Channel",
    "Direction",
    "Interaction",
    "InteractionEvent",
    "InteractionMessage",
    "InteractionState",
    "Outcome",
    "Queue",
    "Skill",
    "WrapUpCode",
]


class Channel(models.TextChoices):
    VOICE = "voice", _("voice")
    EMAIL = "email", _("e-mail")
    CHAT = "chat", _("web chat")
    SMS = "sms", _("SMS")
    SOCIAL = "social", _("social")


# How many interactions of a channel an agent handles at once unless their profile says otherwise.
DEFAULT_CAPACITY = {"voice": 1, "chat": 3, "email": 5, "sms": 3, "social": 3}


class Direction(models.TextChoices):
    INBOUND = "inbound", _("inbound")
    OUTBOUND = "outbound", _("outbound")


class InteractionState(models.TextChoices):
    """Where a contact is in its life. ``outcome`` says how it ended."""

    IVR = "ivr", _("in IVR")
    QUEUED = "queued", _("queued")
    OFFERED = "offered", _("offered")
    CONNECTED = "connected", _("connected")
    WRAP_UP = "wrap_up", _("wrap-up")
    ENDED = "ended", _("ended")


class Outcome(models.TextChoices):
    NONE = "", _("none yet")
    HANDLED = "handled", _("handled")
    ABANDONED = "abandoned", _("abandoned")
    VOICEMAIL = "voicemail", _("voicemail")
    CALLBACK = "callback", _("callback requested")
    SELF_SERVICE = "self_service", _("self-service")
    NO_ANSWER = "no_answer", _("no answer")
    BUSY = "busy", _("busy")
    MACHINE = "machine", _("answering machine")
    FAILED = "failed", _("failed")
    TRANSFERRED = "transferred", _("transferred out")


class AgentState(models.TextChoices):
    OFFLINE = "offline", _("offline")
    AVAILABLE = "available", _("available")
    BUSY = "busy", _("busy")
    WRAP_UP = "wrap_up", _("wrap-up")
    BREAK = "break", _("on break")


class Skill(models.Model):
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_it = models.CharField(_("name (Italian)"), max_length=80)
    name_en = models.CharField(_("name (English)"), max_length=80)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Queue(models.Model):
    """Where interactions wait for an agent. Business hours come from a support business calendar
    (by code, through the support facade); an empty code means always open."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_it = models.CharField(_("name (Italian)"), max_length=80)
    name_en = models.CharField(_("name (English)"), max_length=80)
    channels = models.JSONField(_("channels"), default=list, help_text=_("channels this queue serves"))
    calendar_code = models.CharField(_("business calendar"), max_length=40, blank=True, default="")
    service_level_seconds = models.PositiveIntegerField(_("service level threshold (s)"), default=20)
    service_level_target = models.PositiveSmallIntegerField(_("service level target (%)"), default=80)
    wrap_up_seconds = models.PositiveIntegerField(_("wrap-up time (s)"), default=30)
    max_wait_seconds = models.PositiveIntegerField(_("maximum wait before overflow (s)"), default=0)
    overflow_queue = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("overflow to"),
    )
    priority = models.SmallIntegerField(_("base priority"), default=0)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Agent(models.Model):
    """A user who takes contacts. ``capacity`` maps channel → how many at once (DEFAULT_CAPACITY
    when missing). State changes and assignments lock this row."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="contact_center_agent"
    )
    display_name = models.CharField(_("name"), max_length=120)
    extension = models.CharField(_("extension / SIP user"), max_length=40, blank=True, default="")
    phone_number = models.CharField(_("phone (E.164)"), max_length=20, blank=True, default="")
    capacity = models.JSONField(_("capacity per channel"), default=dict, blank=True)
    state = models.CharField(
        _("state"), max_length=16, choices=AgentState.choices, default=AgentState.OFFLINE
    )
    break_reason = models.CharField(_("break reason"), max_length=40, blank=True, default="")
    state_since = models.DateTimeField(_("in this state since"), null=True, blank=True)
    queues = models.ManyToManyField(Queue, related_name="agents", blank=True, verbose_name=_("queues"))
    active = models.BooleanField(_("active"), default=True)
    # Routing bookkeeping (the routing area's migration adds these): when the agent last became free
    # (longest-idle), when they were last offered a contact (round robin), when automatic wrap-up ends.
    idle_since = models.DateTimeField(null=True, blank=True)
    last_offered_at = models.DateTimeField(null=True, blank=True)
    wrap_up_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["display_name", "id"]

    def __str__(self) -> str:
        return self.display_name

    def capacity_for(self, channel: str) -> int:
        value = (self.capacity or {}).get(channel)
        return int(value) if value is not None else DEFAULT_CAPACITY.get(channel, 1)


class AgentSkill(models.Model):
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="skills")
    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="agents")
    proficiency = models.PositiveSmallIntegerField(_("proficiency (1–5)"), default=3)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "skill"], name="cc_agentskill_unique"),
            models.CheckConstraint(
                condition=Q(proficiency__gte=1) & Q(proficiency__lte=5), name="cc_agentskill_proficiency_1_5"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id}:{self.skill_id}={self.proficiency}"


class WrapUpCode(models.Model):
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_it = models.CharField(_("name (Italian)"), max_length=80)
    name_en = models.CharField(_("name (English)"), max_length=80)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Interaction(models.Model):
    """One contact on any channel. Customer identity is the customers module's public id (resolved
    from E.164 phone, e-mail or social handle through the customers facade); the ticket is the
    support module's public id (through the support facade). Durations are whole seconds."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number = models.CharField(_("number"), max_length=20, unique=True)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    network = models.CharField(
        _("network"), max_length=20, blank=True, default="", help_text=_("whatsapp, telegram, facebook…")
    )
    direction = models.CharField(_("direction"), max_length=10, choices=Direction.choices)
    state = models.CharField(_("state"), max_length=12, choices=InteractionState.choices)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices, blank=True, default="")
    from_address = models.CharField(_("from"), max_length=200, blank=True, default="")
    to_address = models.CharField(_("to"), max_length=200, blank=True, default="")
    subject = models.CharField(_("subject"), max_length=200, blank=True, default="")
    customer_public_id = models.CharField(max_length=36, blank=True, default="", db_index=True)
    ticket_public_id = models.CharField(max_length=36, blank=True, default="")
    queue = models.ForeignKey(
        Queue, on_delete=models.PROTECT, null=True, blank=True, related_name="interactions"
    )
    agent = models.ForeignKey(
        Agent, on_delete=models.PROTECT, null=True, blank=True, related_name="interactions"
    )
    required_skills = models.JSONField(default=dict, blank=True, help_text="skill code → minimum proficiency")
    priority = models.IntegerField(_("priority"), default=0)
    language = models.CharField(_("language"), max_length=8, blank=True, default="")
    provider = models.CharField(max_length=20, blank=True, default="", help_text="twilio, sip, simulator…")
    provider_ref = models.CharField(
        max_length=120, blank=True, default="", help_text="e.g. the Twilio CallSid"
    )
    wrap_up_code = models.ForeignKey(WrapUpCode, on_delete=models.PROTECT, null=True, blank=True)
    wrap_up_notes = models.TextField(_("wrap-up notes"), blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(_("created"))
    queued_at = models.DateTimeField(_("queued"), null=True, blank=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    wrap_up_ended_at = models.DateTimeField(_("wrap-up ended"), null=True, blank=True)
    wait_seconds = models.PositiveIntegerField(_("wait (s)"), default=0)
    talk_seconds = models.PositiveIntegerField(_("talk (s)"), default=0)
    hold_seconds = models.PositiveIntegerField(_("hold (s)"), default=0)
    after_call_seconds = models.PositiveIntegerField(_("after-call work (s)"), default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("handle_interactions", "Can take and handle contacts as an agent"),
            ("view_all_interactions", "Can see every agent's contacts"),
            ("view_wallboards", "Can see wallboards and contact-center reports"),
            ("listen_recordings", "Can play call recordings"),
            ("run_campaigns", "Can run outbound dialer campaigns"),
            ("manage_contact_center", "Can configure queues, skills, flows and channels"),
        ]
        indexes = [
            models.Index(fields=["state", "queue", "priority", "queued_at"], name="cc_interaction_waiting"),
            models.Index(fields=["queue", "created_at"], name="cc_interaction_queue_time"),
            models.Index(fields=["agent", "state"], name="cc_interaction_agent_state"),
            models.Index(fields=["provider", "provider_ref"], name="cc_interaction_provider_ref"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def handle_seconds(self) -> int:
        return self.talk_seconds + self.hold_seconds + self.after_call_seconds


class InteractionMessage(models.Model):
    """One message of a chat, SMS, social or e-mail conversation (the transcript)."""

    class Sender(models.TextChoices):
        CUSTOMER = "customer", _("customer")
        AGENT = "agent", _("agent")
        SYSTEM = "system", _("system")
        BOT = "bot", _("bot")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    interaction = models.ForeignKey(Interaction, on_delete=models.CASCADE, related_name="messages")
    sender = models.CharField(max_length=10, choices=Sender.choices)
    agent = models.ForeignKey(Agent, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    body = models.TextField(blank=True, default="")
    attachments = models.JSONField(default=list, blank=True)
    provider_ref = models.CharField(max_length=120, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["interaction", "provider_ref"],
                condition=~Q(provider_ref=""),
                name="cc_message_provider_ref_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.sender}@{self.created_at:%Y-%m-%d %H:%M:%S}"


class InteractionEvent(models.Model):
    """The interaction's timeline: normalised call events (call.new, ringing, answered, hold,
    transfer, hangup, recording.ready, voicemail.ready, dtmf) and routing/desktop events (queued,
    offered, accepted, rejected, wrap_up…). ``provider_event_id`` dedupes provider retries."""

    interaction = models.ForeignKey(Interaction, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=40)
    data = models.JSONField(default=dict, blank=True)
    provider_event_id = models.CharField(max_length=120, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider_event_id"],
                condition=~Q(provider_event_id=""),
                name="cc_event_provider_id_once",
            )
        ]

    def __str__(self) -> str:
        return self.kind

"""Telephony tables: per-queue voice settings (recording, consent announcement, retention), the
numbers that ring into a queue, call recordings with their PCI pause intervals, and voicemail boxes
and messages.

Audio files live in Django's default storage (``STORAGES["default"]``): the local file system by
default, an S3-compatible bucket when django-storages is configured there. Rows keep the storage
name, so moving storage needs no schema change.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fedele.contact_center.models.core import Agent, Interaction, Queue

__all__ = [
    "QueueTelephonySettings",
    "Recording",
    "RecordingPause",
    "VoiceNumber",
    "VoicemailBox",
    "VoicemailMessage",
]


class QueueTelephonySettings(models.Model):
    """Voice behaviour of one queue. A queue without a row records nothing and keeps nothing."""

    queue = models.OneToOneField(Queue, on_delete=models.CASCADE, related_name="telephony_settings")
    record_calls = models.BooleanField(_("record calls"), default=False)
    announce_recording = models.BooleanField(
        _("announce the recording"),
        default=True,
        help_text=_("play the consent announcement before a recorded call reaches an agent"),
    )
    announcement_it = models.CharField(
        _("announcement (Italian)"),
        max_length=300,
        blank=True,
        default="La chiamata potrebbe essere registrata per finalità di qualità e formazione.",
    )
    announcement_en = models.CharField(
        _("announcement (English)"),
        max_length=300,
        blank=True,
        default="This call may be recorded for quality and training purposes.",
    )
    recording_retention_days = models.PositiveIntegerField(
        _("keep recordings for (days)"), null=True, blank=True, help_text=_("empty = keep forever")
    )
    voicemail_retention_days = models.PositiveIntegerField(
        _("keep voicemail for (days)"), null=True, blank=True, help_text=_("empty = keep forever")
    )

    class Meta:
        verbose_name = _("queue voice settings")
        verbose_name_plural = _("queue voice settings")

    def __str__(self) -> str:
        return f"voice:{self.queue_id}"

    def announcement(self, language: str) -> str:
        return self.announcement_en if language == "en" else self.announcement_it


class VoiceNumber(models.Model):
    """A phone number callers dial, and the queue its calls go to when no IVR flow answers it."""

    number = models.CharField(_("number (E.164)"), max_length=20, unique=True)
    provider = models.CharField(_("provider"), max_length=20, default="twilio")
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="voice_numbers")
    language = models.CharField(_("language"), max_length=8, default="it")
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return self.number


def recording_upload_to(instance: Recording, filename: str) -> str:
    return f"contact_center/recordings/{instance.created_at:%Y/%m/%d}/{instance.public_id}-{filename}"


class Recording(models.Model):
    """One call recording. ``pending`` until its audio is in storage (a provider announces a URL we
    fetch after commit); ``retain_until`` comes from the queue's retention when it is created."""

    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        STORED = "stored", _("stored")
        FAILED = "failed", _("failed")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    interaction = models.ForeignKey(Interaction, on_delete=models.CASCADE, related_name="recordings")
    provider = models.CharField(max_length=20)
    provider_ref = models.CharField(max_length=120, blank=True, default="")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    source_url = models.URLField(max_length=500, blank=True, default="")
    audio = models.FileField(upload_to=recording_upload_to, max_length=300, blank=True, default="")
    content_type = models.CharField(max_length=60, blank=True, default="")
    size_bytes = models.PositiveBigIntegerField(default=0)
    duration_seconds = models.PositiveIntegerField(default=0)
    failure = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField()
    stored_at = models.DateTimeField(null=True, blank=True)
    retain_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_ref"],
                condition=~Q(provider_ref=""),
                name="cc_recording_provider_ref_once",
            )
        ]
        indexes = [models.Index(fields=["retain_until"], name="cc_recording_retention")]

    def __str__(self) -> str:
        return str(self.public_id)


class RecordingPause(models.Model):
    """An interval the agent paused the recording for (card numbers and other PCI data). An open
    interval (no ``resumed_at``) is closed when the call ends."""

    interaction = models.ForeignKey(Interaction, on_delete=models.CASCADE, related_name="recording_pauses")
    agent = models.ForeignKey(Agent, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    paused_at = models.DateTimeField()
    resumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["paused_at", "id"]
        constraints = [
            # At most one open pause per call: a second "pause" while paused is refused by the service.
            models.UniqueConstraint(
                fields=["interaction"],
                condition=Q(resumed_at__isnull=True),
                name="cc_recording_pause_one_open",
            )
        ]

    def __str__(self) -> str:
        return f"{self.interaction_id}@{self.paused_at:%H:%M:%S}"

    @property
    def seconds(self) -> int | None:
        if self.resumed_at is None:
            return None
        return int((self.resumed_at - self.paused_at).total_seconds())


class VoicemailBox(models.Model):
    """A voicemail box of a queue or of an agent (exactly one of the two)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=120)
    queue = models.OneToOneField(
        Queue, on_delete=models.CASCADE, null=True, blank=True, related_name="voicemail_box"
    )
    agent = models.OneToOneField(
        Agent, on_delete=models.CASCADE, null=True, blank=True, related_name="voicemail_box"
    )
    greeting_it = models.CharField(
        _("greeting (Italian)"),
        max_length=300,
        default="Lasciate un messaggio dopo il segnale acustico. Vi richiameremo al più presto.",
    )
    greeting_en = models.CharField(
        _("greeting (English)"),
        max_length=300,
        default="Please leave a message after the tone. We will call you back as soon as possible.",
    )
    subscribers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="+", verbose_name=_("notify these users")
    )
    create_callback = models.BooleanField(_("create a callback task"), default=True)
    max_message_seconds = models.PositiveIntegerField(_("longest message (s)"), default=120)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(queue__isnull=False) & Q(agent__isnull=True))
                | (Q(queue__isnull=True) & Q(agent__isnull=False)),
                name="cc_voicemailbox_queue_xor_agent",
            )
        ]

    def __str__(self) -> str:
        return self.code

    def greeting(self, language: str) -> str:
        return self.greeting_en if language == "en" else self.greeting_it


def voicemail_upload_to(instance: VoicemailMessage, filename: str) -> str:
    return f"contact_center/voicemail/{instance.created_at:%Y/%m/%d}/{instance.public_id}-{filename}"


class VoicemailMessage(models.Model):
    """A message left in a box. ``callback_interaction`` is the callback task queued for it."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    box = models.ForeignKey(VoicemailBox, on_delete=models.CASCADE, related_name="messages")
    interaction = models.ForeignKey(Interaction, on_delete=models.CASCADE, related_name="voicemails")
    callback_interaction = models.ForeignKey(
        Interaction, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    provider = models.CharField(max_length=20)
    provider_ref = models.CharField(max_length=120, blank=True, default="")
    caller_number = models.CharField(max_length=40, blank=True, default="")
    state = models.CharField(max_length=10, choices=Recording.State.choices, default=Recording.State.PENDING)
    source_url = models.URLField(max_length=500, blank=True, default="")
    audio = models.FileField(upload_to=voicemail_upload_to, max_length=300, blank=True, default="")
    content_type = models.CharField(max_length=60, blank=True, default="")
    size_bytes = models.PositiveBigIntegerField(default=0)
    duration_seconds = models.PositiveIntegerField(default=0)
    transcription = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()
    listened_at = models.DateTimeField(null=True, blank=True)
    retain_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_ref"],
                condition=~Q(provider_ref=""),
                name="cc_voicemail_provider_ref_once",
            )
        ]
        indexes = [models.Index(fields=["retain_until"], name="cc_voicemail_retention")]

    def __str__(self) -> str:
        return str(self.public_id)

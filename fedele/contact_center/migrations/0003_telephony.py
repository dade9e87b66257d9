# The telephony area's tables: per-queue voice settings, voice numbers, recordings with PCI pauses,
# voicemail boxes and messages. Areas own one migration each in a fixed chain, so parallel work never
# produces two leaves.

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import fedele.contact_center.models.telephony


class Migration(migrations.Migration):
    dependencies = [
        ("contact_center", "0002_routing"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="QueueTelephonySettings",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("record_calls", models.BooleanField(default=False, verbose_name="record calls")),
                (
                    "announce_recording",
                    models.BooleanField(
                        default=True,
                        help_text="play the consent announcement before a recorded call reaches an agent",
                        verbose_name="announce the recording",
                    ),
                ),
                (
                    "announcement_it",
                    models.CharField(
                        blank=True,
                        default="La chiamata potrebbe essere registrata per finalità di qualità e formazione.",  # noqa: E501
                        max_length=300,
                        verbose_name="announcement (Italian)",
                    ),
                ),
                (
                    "announcement_en",
                    models.CharField(
                        blank=True,
                        default="This call may be recorded for quality and training purposes.",
                        max_length=300,
                        verbose_name="announcement (English)",
                    ),
                ),
                (
                    "recording_retention_days",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="empty = keep forever",
                        null=True,
                        verbose_name="keep recordings for (days)",
                    ),
                ),
                (
                    "voicemail_retention_days",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="empty = keep forever",
                        null=True,
                        verbose_name="keep voicemail for (days)",
                    ),
                ),
                (
                    "queue",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="telephony_settings",
                        to="contact_center.queue",
                    ),
                ),
            ],
            options={
                "verbose_name": "queue voice settings",
                "verbose_name_plural": "queue voice settings",
            },
        ),
        migrations.CreateModel(
            name="VoicemailBox",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("code", models.SlugField(max_length=40, unique=True, verbose_name="code")),
                ("name", models.CharField(max_length=120, verbose_name="name")),
                (
                    "greeting_it",
                    models.CharField(
                        default="Lasciate un messaggio dopo il segnale acustico. Vi richiameremo al più presto.",  # noqa: E501
                        max_length=300,
                        verbose_name="greeting (Italian)",
                    ),
                ),
                (
                    "greeting_en",
                    models.CharField(
                        default="Please leave a message after the tone. We will call you back as soon as possible.",  # noqa: E501
                        max_length=300,
                        verbose_name="greeting (English)",
                    ),
                ),
                ("create_callback", models.BooleanField(default=True, verbose_name="create a callback task")),
                (
                    "max_message_seconds",
                    models.PositiveIntegerField(default=120, verbose_name="longest message (s)"),
                ),
                ("active", models.BooleanField(default=True, verbose_name="active")),
                (
                    "agent",
                    models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="voicemail_box",
                        to="contact_center.agent",
                    ),
                ),
                (
                    "queue",
                    models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="voicemail_box",
                        to="contact_center.queue",
                    ),
                ),
                (
                    "subscribers",
                    models.ManyToManyField(
                        blank=True,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="notify these users",
                    ),
                ),
            ],
            options={
                "ordering": ["code"],
            },
        ),
        migrations.CreateModel(
            name="VoicemailMessage",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("provider", models.CharField(max_length=20)),
                ("provider_ref", models.CharField(blank=True, default="", max_length=120)),
                ("caller_number", models.CharField(blank=True, default="", max_length=40)),
                (
                    "state",
                    models.CharField(
                        choices=[("pending", "pending"), ("stored", "stored"), ("failed", "failed")],
                        default="pending",
                        max_length=10,
                    ),
                ),
                ("source_url", models.URLField(blank=True, default="", max_length=500)),
                (
                    "audio",
                    models.FileField(
                        blank=True,
                        default="",
                        max_length=300,
                        upload_to=fedele.contact_center.models.telephony.voicemail_upload_to,
                    ),
                ),
                ("content_type", models.CharField(blank=True, default="", max_length=60)),
                ("size_bytes", models.PositiveBigIntegerField(default=0)),
                ("duration_seconds", models.PositiveIntegerField(default=0)),
                ("transcription", models.TextField(blank=True, default="")),
                ("created_at", models.DateTimeField()),
                ("listened_at", models.DateTimeField(blank=True, null=True)),
                ("retain_until", models.DateTimeField(blank=True, null=True)),
                (
                    "box",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="contact_center.voicemailbox",
                    ),
                ),
                (
                    "callback_interaction",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="contact_center.interaction",
                    ),
                ),
                (
                    "interaction",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="voicemails",
                        to="contact_center.interaction",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="VoiceNumber",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("number", models.CharField(max_length=20, unique=True, verbose_name="number (E.164)")),
                ("provider", models.CharField(default="twilio", max_length=20, verbose_name="provider")),
                ("language", models.CharField(default="it", max_length=8, verbose_name="language")),
                ("active", models.BooleanField(default=True, verbose_name="active")),
                (
                    "queue",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="voice_numbers",
                        to="contact_center.queue",
                    ),
                ),
            ],
            options={
                "ordering": ["number"],
            },
        ),
        migrations.CreateModel(
            name="Recording",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("provider", models.CharField(max_length=20)),
                ("provider_ref", models.CharField(blank=True, default="", max_length=120)),
                (
                    "state",
                    models.CharField(
                        choices=[("pending", "pending"), ("stored", "stored"), ("failed", "failed")],
                        default="pending",
                        max_length=10,
                    ),
                ),
                ("source_url", models.URLField(blank=True, default="", max_length=500)),
                (
                    "audio",
                    models.FileField(
                        blank=True,
                        default="",
                        max_length=300,
                        upload_to=fedele.contact_center.models.telephony.recording_upload_to,
                    ),
                ),
                ("content_type", models.CharField(blank=True, default="", max_length=60)),
                ("size_bytes", models.PositiveBigIntegerField(default=0)),
                ("duration_seconds", models.PositiveIntegerField(default=0)),
                ("failure", models.CharField(blank=True, default="", max_length=300)),
                ("created_at", models.DateTimeField()),
                ("stored_at", models.DateTimeField(blank=True, null=True)),
                ("retain_until", models.DateTimeField(blank=True, null=True)),
                (
                    "interaction",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="recordings",
                        to="contact_center.interaction",
                    ),
                ),
            ],
            options={
                "ordering": ["created_at", "id"],
                "indexes": [models.Index(fields=["retain_until"], name="cc_recording_retention")],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("provider_ref", ""), _negated=True),
                        fields=("provider", "provider_ref"),
                        name="cc_recording_provider_ref_once",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="RecordingPause",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("paused_at", models.DateTimeField()),
                ("resumed_at", models.DateTimeField(blank=True, null=True)),
                (
                    "agent",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="contact_center.agent",
                    ),
                ),
                (
                    "interaction",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="recording_pauses",
                        to="contact_center.interaction",
                    ),
                ),
            ],
            options={
                "ordering": ["paused_at", "id"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("resumed_at__isnull", True)),
                        fields=("interaction",),
                        name="cc_recording_pause_one_open",
                    )
                ],
            },
        ),
        migrations.AddConstraint(
            model_name="voicemailbox",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("queue__isnull", False), ("agent__isnull", True)),
                    models.Q(("queue__isnull", True), ("agent__isnull", False)),
                    _connector="OR",
                ),
                name="cc_voicemailbox_queue_xor_agent",
            ),
        ),
        migrations.AddIndex(
            model_name="voicemailmessage",
            index=models.Index(fields=["retain_until"], name="cc_voicemail_retention"),
        ),
        migrations.AddConstraint(
            model_name="voicemailmessage",
            constraint=models.UniqueConstraint(
                condition=models.Q(("provider_ref", ""), _negated=True),
                fields=("provider", "provider_ref"),
                name="cc_voicemail_provider_ref_once",
            ),
        ),
    ]

# The dialer area's tables. Areas own one migration each in a fixed chain, so parallel work never
# produces two leaves; an area adds operations to its own file while it is being built.

import uuid
from decimal import Decimal

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("contact_center", "0005_messaging")]

    operations: list[migrations.operations.base.Operation] = [
        migrations.CreateModel(
            name="RpoImportBatch",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("name", models.CharField(max_length=200, verbose_name="file")),
                ("checked_on", models.DateField(verbose_name="checked on")),
                ("rows_total", models.PositiveIntegerField(default=0)),
                ("registered", models.PositiveIntegerField(default=0)),
                ("not_registered", models.PositiveIntegerField(default=0)),
                ("errors", models.JSONField(blank=True, default=list)),
                ("imported_by_id", models.BigIntegerField(blank=True, null=True)),
                ("imported_at", models.DateTimeField()),
            ],
            options={
                "ordering": ["-checked_on", "-id"],
            },
        ),
        migrations.CreateModel(
            name="Campaign",
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
                    "mode",
                    models.CharField(
                        choices=[
                            ("preview", "preview"),
                            ("progressive", "progressive"),
                            ("predictive", "predictive"),
                        ],
                        default="progressive",
                        max_length=12,
                        verbose_name="dialling mode",
                    ),
                ),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("draft", "draft"),
                            ("running", "running"),
                            ("paused", "paused"),
                            ("finished", "finished"),
                        ],
                        default="draft",
                        max_length=10,
                        verbose_name="state",
                    ),
                ),
                (
                    "provider",
                    models.CharField(default="simulator", max_length=20, verbose_name="telephony provider"),
                ),
                (
                    "caller_id",
                    models.CharField(blank=True, default="", max_length=20, verbose_name="caller id (E.164)"),
                ),
                (
                    "default_region",
                    models.CharField(default="IT", max_length=2, verbose_name="default country of numbers"),
                ),
                (
                    "consent_purpose",
                    models.CharField(default="marketing", max_length=20, verbose_name="consent purpose"),
                ),
                (
                    "check_rpo",
                    models.BooleanField(default=True, verbose_name="check the Registro delle Opposizioni"),
                ),
                (
                    "target_abandon_rate",
                    models.DecimalField(
                        decimal_places=4,
                        default=Decimal("0.0150"),
                        max_digits=5,
                        validators=[
                            django.core.validators.MinValueValidator(Decimal("0.0001")),
                            django.core.validators.MaxValueValidator(Decimal("0.0300")),
                        ],
                        verbose_name="target abandon rate",
                    ),
                ),
                (
                    "abandon_cap_rate",
                    models.DecimalField(
                        decimal_places=4,
                        default=Decimal("0.0300"),
                        max_digits=5,
                        verbose_name="abandon rate cap",
                    ),
                ),
                (
                    "abandon_rule",
                    models.CharField(
                        choices=[
                            ("rolling_30_days", "3 per cent of live answers over a rolling 30 days"),
                            ("rolling_24_hours", "3 per cent of live answers over a rolling 24 hours"),
                        ],
                        default="rolling_30_days",
                        max_length=20,
                        verbose_name="abandon rule",
                    ),
                ),
                (
                    "near_cap_ratio",
                    models.DecimalField(
                        decimal_places=2,
                        default=Decimal("0.80"),
                        max_digits=3,
                        verbose_name="fall back to 1:1 at this share of the cap",
                    ),
                ),
                (
                    "max_attempts",
                    models.PositiveSmallIntegerField(default=5, verbose_name="maximum attempts per contact"),
                ),
                (
                    "max_lines_per_agent",
                    models.PositiveSmallIntegerField(default=4, verbose_name="maximum lines per agent"),
                ),
                (
                    "prior_live_rate",
                    models.DecimalField(
                        decimal_places=3,
                        default=Decimal("0.250"),
                        max_digits=4,
                        verbose_name="expected live-answer rate",
                    ),
                ),
                (
                    "mean_ring_seconds",
                    models.PositiveSmallIntegerField(default=12, verbose_name="mean time to answer (s)"),
                ),
                ("created_by_id", models.BigIntegerField(blank=True, null=True)),
                ("created_at", models.DateTimeField(verbose_name="created")),
                ("started_at", models.DateTimeField(blank=True, null=True, verbose_name="started")),
                ("last_tick_at", models.DateTimeField(blank=True, null=True)),
                (
                    "queue",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="campaigns",
                        to="contact_center.queue",
                        verbose_name="queue",
                    ),
                ),
            ],
            options={
                "ordering": ["code"],
            },
        ),
        migrations.CreateModel(
            name="CampaignWindow",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "weekday",
                    models.PositiveSmallIntegerField(
                        validators=[django.core.validators.MaxValueValidator(6)], verbose_name="weekday"
                    ),
                ),
                ("start_time", models.TimeField(verbose_name="from")),
                ("end_time", models.TimeField(verbose_name="to")),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="windows",
                        to="contact_center.campaign",
                    ),
                ),
            ],
            options={
                "ordering": ["weekday", "start_time"],
            },
        ),
        migrations.CreateModel(
            name="ContactList",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("name", models.CharField(max_length=200, verbose_name="name")),
                ("mode", models.CharField(default="all_or_none", max_length=12)),
                ("rows_total", models.PositiveIntegerField(default=0)),
                ("rows_imported", models.PositiveIntegerField(default=0)),
                ("rows_duplicate", models.PositiveIntegerField(default=0)),
                ("rows_blocked", models.PositiveIntegerField(default=0)),
                ("rows_invalid", models.PositiveIntegerField(default=0)),
                ("errors", models.JSONField(blank=True, default=list)),
                ("imported_by_id", models.BigIntegerField(blank=True, null=True)),
                ("imported_at", models.DateTimeField()),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="contact_lists",
                        to="contact_center.campaign",
                    ),
                ),
            ],
            options={
                "ordering": ["-imported_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="CampaignContact",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("phone", models.CharField(max_length=20, verbose_name="phone (E.164)")),
                ("region", models.CharField(default="IT", max_length=2, verbose_name="country")),
                (
                    "time_zone",
                    models.CharField(default="Europe/Rome", max_length=64, verbose_name="time zone"),
                ),
                ("name", models.CharField(blank=True, default="", max_length=200, verbose_name="name")),
                (
                    "external_ref",
                    models.CharField(blank=True, default="", max_length=100, verbose_name="reference"),
                ),
                ("customer_public_id", models.CharField(blank=True, default="", max_length=36)),
                ("data", models.JSONField(blank=True, default=dict)),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("pending", "to call"),
                            ("preview", "in preview with an agent"),
                            ("dialing", "being dialled"),
                            ("callback", "callback scheduled"),
                            ("completed", "reached"),
                            ("exhausted", "attempts used up"),
                            ("blocked", "do not call"),
                        ],
                        default="pending",
                        max_length=10,
                        verbose_name="state",
                    ),
                ),
                ("attempts", models.PositiveSmallIntegerField(default=0, verbose_name="attempts")),
                (
                    "outcome_attempts",
                    models.JSONField(blank=True, default=dict, help_text="outcome → attempts ended so"),
                ),
                ("next_attempt_at", models.DateTimeField(blank=True, null=True, verbose_name="next attempt")),
                ("last_attempt_at", models.DateTimeField(blank=True, null=True)),
                (
                    "last_outcome",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("connected", "connected to an agent"),
                            ("abandoned", "abandoned (no agent within 2 s)"),
                            ("busy", "busy"),
                            ("no_answer", "no answer"),
                            ("machine", "answering machine"),
                            ("failed", "failed"),
                        ],
                        default="",
                        max_length=12,
                    ),
                ),
                (
                    "abandoned_at",
                    models.DateTimeField(
                        blank=True,
                        help_text="last abandoned call; no predictive redial within 72 h",
                        null=True,
                    ),
                ),
                ("blocked_reason", models.CharField(blank=True, default="", max_length=40)),
                ("created_at", models.DateTimeField()),
                (
                    "agent",
                    models.ForeignKey(
                        blank=True,
                        help_text="callback/preview agent",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="contact_center.agent",
                    ),
                ),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="contacts",
                        to="contact_center.campaign",
                    ),
                ),
                (
                    "contact_list",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="contacts",
                        to="contact_center.contactlist",
                    ),
                ),
            ],
            options={
                "ordering": ["id"],
            },
        ),
        migrations.CreateModel(
            name="DialAttempt",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                (
                    "mode",
                    models.CharField(
                        choices=[
                            ("preview", "preview"),
                            ("progressive", "progressive"),
                            ("predictive", "predictive"),
                        ],
                        max_length=12,
                    ),
                ),
                ("provider", models.CharField(max_length=20)),
                ("call_ref", models.CharField(blank=True, default="", max_length=120)),
                ("phone", models.CharField(max_length=20)),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("dialing", "dialling"),
                            ("answered", "answered, waiting for an agent"),
                            ("connected", "connected to an agent"),
                            ("ended", "ended"),
                        ],
                        default="dialing",
                        max_length=10,
                    ),
                ),
                (
                    "outcome",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("connected", "connected to an agent"),
                            ("abandoned", "abandoned (no agent within 2 s)"),
                            ("busy", "busy"),
                            ("no_answer", "no answer"),
                            ("machine", "answering machine"),
                            ("failed", "failed"),
                        ],
                        default="",
                        max_length=12,
                    ),
                ),
                (
                    "amd_result",
                    models.CharField(
                        blank=True,
                        choices=[("", "not reported"), ("human", "human"), ("machine", "machine")],
                        default="",
                        max_length=8,
                    ),
                ),
                ("abandoned", models.BooleanField(default=False)),
                ("dialed_at", models.DateTimeField()),
                ("answered_at", models.DateTimeField(blank=True, null=True)),
                ("connected_at", models.DateTimeField(blank=True, null=True)),
                ("ended_at", models.DateTimeField(blank=True, null=True)),
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
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="attempts",
                        to="contact_center.campaign",
                    ),
                ),
                (
                    "contact",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="dial_attempts",
                        to="contact_center.campaigncontact",
                    ),
                ),
                (
                    "interaction",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="dial_attempts",
                        to="contact_center.interaction",
                    ),
                ),
            ],
            options={
                "ordering": ["-dialed_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="RetryRule",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("connected", "connected to an agent"),
                            ("abandoned", "abandoned (no agent within 2 s)"),
                            ("busy", "busy"),
                            ("no_answer", "no answer"),
                            ("machine", "answering machine"),
                            ("failed", "failed"),
                        ],
                        max_length=12,
                        verbose_name="outcome",
                    ),
                ),
                (
                    "delay_minutes",
                    models.PositiveIntegerField(default=0, verbose_name="retry after (minutes)"),
                ),
                ("next_day", models.BooleanField(default=False, verbose_name="retry the next day")),
                (
                    "max_attempts",
                    models.PositiveSmallIntegerField(
                        default=0, verbose_name="maximum attempts for this outcome"
                    ),
                ),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="retry_rules",
                        to="contact_center.campaign",
                    ),
                ),
            ],
            options={
                "ordering": ["outcome"],
            },
        ),
        migrations.CreateModel(
            name="DoNotCallEntry",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("phone", models.CharField(max_length=20, verbose_name="phone (E.164)")),
                (
                    "source",
                    models.CharField(
                        choices=[
                            ("internal", "internal list"),
                            ("rpo", "Registro Pubblico delle Opposizioni"),
                        ],
                        max_length=10,
                        verbose_name="source",
                    ),
                ),
                ("registered", models.BooleanField(default=True)),
                ("registered_on", models.DateField(blank=True, null=True, verbose_name="registered on")),
                ("reason", models.CharField(blank=True, default="", max_length=200, verbose_name="reason")),
                ("added_by_id", models.BigIntegerField(blank=True, null=True)),
                ("created_at", models.DateTimeField()),
                (
                    "batch",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="entries",
                        to="contact_center.rpoimportbatch",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.AddConstraint(
            model_name="campaign",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("target_abandon_rate__gt", 0), ("target_abandon_rate__lte", models.F("abandon_cap_rate"))
                ),
                name="cc_campaign_target_within_cap",
            ),
        ),
        migrations.AddConstraint(
            model_name="campaign",
            constraint=models.CheckConstraint(
                condition=models.Q(("max_attempts__gte", 1)), name="cc_campaign_attempts_positive"
            ),
        ),
        migrations.AddConstraint(
            model_name="campaignwindow",
            constraint=models.CheckConstraint(
                condition=models.Q(("start_time__lt", models.F("end_time"))),
                name="cc_window_start_before_end",
            ),
        ),
        migrations.AddConstraint(
            model_name="campaignwindow",
            constraint=models.CheckConstraint(
                condition=models.Q(("weekday__lte", 6)), name="cc_window_weekday_0_6"
            ),
        ),
        migrations.AddIndex(
            model_name="campaigncontact",
            index=models.Index(fields=["campaign", "state", "next_attempt_at"], name="cc_contact_due"),
        ),
        migrations.AddIndex(
            model_name="campaigncontact",
            index=models.Index(fields=["phone"], name="cc_contact_phone"),
        ),
        migrations.AddConstraint(
            model_name="campaigncontact",
            constraint=models.UniqueConstraint(fields=("campaign", "phone"), name="cc_campaign_contact_once"),
        ),
        migrations.AddIndex(
            model_name="dialattempt",
            index=models.Index(fields=["campaign", "answered_at"], name="cc_attempt_answered"),
        ),
        migrations.AddIndex(
            model_name="dialattempt",
            index=models.Index(fields=["campaign", "state"], name="cc_attempt_state"),
        ),
        migrations.AddConstraint(
            model_name="dialattempt",
            constraint=models.UniqueConstraint(
                condition=models.Q(("call_ref", ""), _negated=True),
                fields=("provider", "call_ref"),
                name="cc_dial_attempt_call_once",
            ),
        ),
        migrations.AddConstraint(
            model_name="retryrule",
            constraint=models.UniqueConstraint(fields=("campaign", "outcome"), name="cc_retry_rule_once"),
        ),
        migrations.AddIndex(
            model_name="donotcallentry",
            index=models.Index(fields=["phone", "source"], name="cc_dnc_phone"),
        ),
        migrations.AddConstraint(
            model_name="donotcallentry",
            constraint=models.UniqueConstraint(
                condition=models.Q(("source", "internal")), fields=("phone",), name="cc_dnc_internal_once"
            ),
        ),
        migrations.AddConstraint(
            model_name="donotcallentry",
            constraint=models.UniqueConstraint(fields=("batch", "phone"), name="cc_dnc_batch_phone_once"),
        ),
    ]

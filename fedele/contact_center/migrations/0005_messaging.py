# The messaging area's tables: web chat widgets and visitor sessions, SMS/social channels, their
# inbound receipts, outbound log and opt-outs. Areas own one migration each in a fixed chain, so
# parallel work never produces two leaves.

import uuid

import django.db.models.deletion
from django.db import migrations, models

import fedele.contact_center.models.messaging


class Migration(migrations.Migration):
    dependencies = [("contact_center", "0004_ivr")]

    operations = [
        migrations.CreateModel(
            name="ChatWidget",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "public_key",
                    models.CharField(
                        default=fedele.contact_center.models.messaging.new_widget_key,
                        max_length=40,
                        unique=True,
                        verbose_name="public key",
                    ),
                ),
                ("name", models.CharField(max_length=120, verbose_name="name")),
                (
                    "allowed_origins",
                    models.JSONField(blank=True, default=list, verbose_name="allowed origins"),
                ),
                (
                    "topics",
                    models.JSONField(
                        blank=True,
                        default=list,
                        help_text="each with code, label_it, label_en, queue_code and skills (code → level)",
                        verbose_name="topics",
                    ),
                ),
                ("require_email", models.BooleanField(default=True, verbose_name="e-mail required")),
                (
                    "greeting_it",
                    models.CharField(
                        blank=True, default="", max_length=300, verbose_name="greeting (Italian)"
                    ),
                ),
                (
                    "greeting_en",
                    models.CharField(
                        blank=True, default="", max_length=300, verbose_name="greeting (English)"
                    ),
                ),
                (
                    "consent_text_it",
                    models.CharField(
                        blank=True, default="", max_length=500, verbose_name="consent text (Italian)"
                    ),
                ),
                (
                    "consent_text_en",
                    models.CharField(
                        blank=True, default="", max_length=500, verbose_name="consent text (English)"
                    ),
                ),
                ("primary_colour", models.CharField(default="#1f6feb", max_length=7, verbose_name="colour")),
                (
                    "max_message_chars",
                    models.PositiveIntegerField(default=2000, verbose_name="longest message (characters)"),
                ),
                (
                    "max_upload_bytes",
                    models.PositiveIntegerField(default=5242880, verbose_name="largest file (bytes)"),
                ),
                (
                    "allowed_upload_types",
                    models.JSONField(
                        blank=True,
                        default=fedele.contact_center.models.messaging.default_upload_types,
                        verbose_name="file types allowed",
                    ),
                ),
                (
                    "calendar_code",
                    models.CharField(
                        blank=True,
                        default="",
                        help_text="empty: the queue's",
                        max_length=40,
                        verbose_name="business calendar",
                    ),
                ),
                (
                    "offline_when_no_agent",
                    models.BooleanField(default=True, verbose_name="offline when no agent is signed in"),
                ),
                ("active", models.BooleanField(default=True, verbose_name="active")),
                ("created_at", models.DateTimeField(verbose_name="created")),
                (
                    "queue",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="contact_center.queue",
                        verbose_name="queue",
                    ),
                ),
            ],
            options={
                "ordering": ["name", "id"],
            },
        ),
        migrations.CreateModel(
            name="ChatSession",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("visitor_name", models.CharField(max_length=120, verbose_name="name")),
                (
                    "visitor_email",
                    models.EmailField(blank=True, default="", max_length=254, verbose_name="e-mail"),
                ),
                ("consent", models.BooleanField(default=False, verbose_name="consent given")),
                ("topic", models.CharField(blank=True, default="", max_length=40, verbose_name="topic")),
                ("language", models.CharField(blank=True, default="", max_length=8, verbose_name="language")),
                (
                    "origin",
                    models.CharField(blank=True, default="", max_length=200, verbose_name="page origin"),
                ),
                ("token_nonce", models.CharField(max_length=64)),
                (
                    "state",
                    models.CharField(
                        choices=[("active", "active"), ("ended", "ended")], default="active", max_length=10
                    ),
                ),
                ("created_at", models.DateTimeField(verbose_name="started")),
                ("last_seen_at", models.DateTimeField(verbose_name="last seen")),
                ("ended_at", models.DateTimeField(blank=True, null=True, verbose_name="ended")),
                ("transcript_sent_to", models.EmailField(blank=True, default="", max_length=254)),
                ("transcript_sent_at", models.DateTimeField(blank=True, null=True)),
                (
                    "interaction",
                    models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="chat_session",
                        to="contact_center.interaction",
                    ),
                ),
                (
                    "widget",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="sessions",
                        to="contact_center.chatwidget",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="MessagingChannel",
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
                    "kind",
                    models.CharField(
                        choices=[
                            ("twilio", "Twilio (SMS, WhatsApp)"),
                            ("generic", "generic JSON webhook (WhatsApp Cloud, Telegram…)"),
                        ],
                        max_length=10,
                        verbose_name="provider format",
                    ),
                ),
                (
                    "network",
                    models.CharField(
                        default="sms",
                        help_text="sms, whatsapp, telegram, facebook…",
                        max_length=20,
                        verbose_name="network",
                    ),
                ),
                (
                    "address",
                    models.CharField(
                        blank=True, default="", max_length=120, verbose_name="our number or account"
                    ),
                ),
                (
                    "secret_env",
                    models.CharField(
                        blank=True,
                        default="",
                        max_length=80,
                        verbose_name="environment variable with the signing secret",
                    ),
                ),
                ("outbound_url", models.URLField(blank=True, default="", verbose_name="outbound API URL")),
                (
                    "outbound_token_env",
                    models.CharField(
                        blank=True,
                        default="",
                        max_length=80,
                        verbose_name="environment variable with the outbound API token",
                    ),
                ),
                ("active", models.BooleanField(default=True, verbose_name="active")),
                ("created_at", models.DateTimeField(verbose_name="created")),
                (
                    "queue",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
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
            name="MessagingOptOut",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("network", models.CharField(max_length=20)),
                ("address", models.CharField(max_length=120)),
                ("keyword", models.CharField(max_length=20)),
                ("customer_public_id", models.CharField(blank=True, default="", max_length=36)),
                ("created_at", models.DateTimeField()),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("network", "address"), name="cc_messaging_optout_once"),
                    models.CheckConstraint(
                        condition=models.Q(("address", ""), _negated=True), name="cc_messaging_optout_address"
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="MessagingReceipt",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("provider_message_id", models.CharField(max_length=120)),
                (
                    "kind",
                    models.CharField(
                        default="message", help_text="message, opt_out, document", max_length=20
                    ),
                ),
                ("received_at", models.DateTimeField()),
                (
                    "channel",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="receipts",
                        to="contact_center.messagingchannel",
                    ),
                ),
                (
                    "interaction",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="contact_center.interaction",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="OutboundMessage",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("to_address", models.CharField(max_length=120)),
                ("body", models.TextField()),
                (
                    "purpose",
                    models.CharField(
                        choices=[("service", "service"), ("marketing", "marketing")], max_length=10
                    ),
                ),
                ("customer_public_id", models.CharField(blank=True, default="", max_length=36)),
                ("provider_ref", models.CharField(blank=True, default="", max_length=120)),
                ("sent_at", models.DateTimeField()),
                (
                    "channel",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="outbound",
                        to="contact_center.messagingchannel",
                    ),
                ),
                (
                    "interaction",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="contact_center.interaction",
                    ),
                ),
            ],
            options={
                "ordering": ["-sent_at", "-id"],
            },
        ),
        migrations.AddIndex(
            model_name="outboundmessage",
            index=models.Index(fields=["to_address", "sent_at"], name="cc_outbound_to_time"),
        ),
        migrations.AddConstraint(
            model_name="messagingreceipt",
            constraint=models.UniqueConstraint(
                fields=("channel", "provider_message_id"), name="cc_messaging_receipt_once"
            ),
        ),
    ]

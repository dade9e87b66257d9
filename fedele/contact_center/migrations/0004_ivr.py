# The ivr area's tables. Areas own one migration each in a fixed chain, so parallel work never
# produces two leaves; an area adds operations to its own file while it is being built.

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contact_center", "0003_telephony"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="IvrFlow",
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
                ("description", models.TextField(blank=True, default="", verbose_name="description")),
                ("created_at", models.DateTimeField(verbose_name="created")),
            ],
            options={"ordering": ["code"]},
        ),
        migrations.CreateModel(
            name="Document",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("code", models.SlugField(max_length=40, unique=True, verbose_name="code")),
                ("title_it", models.CharField(max_length=120, verbose_name="title (Italian)")),
                ("title_en", models.CharField(max_length=120, verbose_name="title (English)")),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("file", "uploaded file (contract terms, manual…)"),
                            ("invoice_copy", "copy of the customer's latest invoice"),
                        ],
                        default="file",
                        max_length=16,
                        verbose_name="kind",
                    ),
                ),
                (
                    "file",
                    models.FileField(blank=True, upload_to="contact_center/documents/", verbose_name="file"),
                ),
                ("content_type", models.CharField(default="application/pdf", max_length=100)),
                (
                    "sms_keyword",
                    models.CharField(
                        blank=True,
                        default="",
                        help_text="e.g. FATTURA, MANUALE",
                        max_length=20,
                        verbose_name="SMS keyword",
                    ),
                ),
                (
                    "requires_customer",
                    models.BooleanField(
                        default=False,
                        help_text="always on for invoice copies",
                        verbose_name="only for identified customers",
                    ),
                ),
                ("active", models.BooleanField(default=True, verbose_name="active")),
                ("created_at", models.DateTimeField(verbose_name="created")),
            ],
            options={
                "ordering": ["code"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("sms_keyword", ""), _negated=True),
                        fields=("sms_keyword",),
                        name="cc_document_keyword_once",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="DocumentRequest",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("customer_public_id", models.CharField(blank=True, default="", max_length=36)),
                (
                    "channel",
                    models.CharField(
                        choices=[("email", "e-mail"), ("sms_link", "SMS link"), ("fax", "fax")],
                        max_length=10,
                        verbose_name="sent by",
                    ),
                ),
                ("destination", models.CharField(max_length=200, verbose_name="to")),
                ("language", models.CharField(default="it", max_length=8)),
                (
                    "source",
                    models.CharField(
                        choices=[("ivr", "IVR"), ("sms_keyword", "SMS keyword"), ("agent", "agent")],
                        max_length=12,
                    ),
                ),
                ("idempotency_key", models.CharField(max_length=120, unique=True)),
                (
                    "status",
                    models.CharField(
                        choices=[("pending", "pending"), ("sent", "sent"), ("failed", "failed")],
                        default="pending",
                        max_length=10,
                        verbose_name="status",
                    ),
                ),
                ("attempts", models.PositiveSmallIntegerField(default=0)),
                ("provider_ref", models.CharField(blank=True, default="", max_length=120)),
                ("last_error", models.CharField(blank=True, default="", max_length=300)),
                ("created_at", models.DateTimeField(verbose_name="requested")),
                ("sent_at", models.DateTimeField(blank=True, null=True, verbose_name="sent")),
                (
                    "document",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="requests",
                        to="contact_center.document",
                    ),
                ),
                (
                    "interaction",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="document_requests",
                        to="contact_center.interaction",
                    ),
                ),
            ],
            options={"ordering": ["-created_at", "-id"]},
        ),
        migrations.CreateModel(
            name="DocumentSendLog",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("attempt", models.PositiveSmallIntegerField()),
                (
                    "status",
                    models.CharField(
                        choices=[("pending", "pending"), ("sent", "sent"), ("failed", "failed")],
                        max_length=10,
                    ),
                ),
                ("detail", models.CharField(blank=True, default="", max_length=300)),
                ("created_at", models.DateTimeField()),
                (
                    "request",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="log",
                        to="contact_center.documentrequest",
                    ),
                ),
            ],
            options={"ordering": ["created_at", "id"]},
        ),
        migrations.CreateModel(
            name="IvrFlowVersion",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("number", models.PositiveIntegerField(verbose_name="version")),
                (
                    "status",
                    models.CharField(
                        choices=[("draft", "draft"), ("published", "published"), ("retired", "retired")],
                        default="draft",
                        max_length=10,
                        verbose_name="status",
                    ),
                ),
                ("definition", models.JSONField(default=dict, verbose_name="definition")),
                ("source", models.TextField(blank=True, default="", verbose_name="source")),
                ("source_format", models.CharField(default="json", max_length=4, verbose_name="format")),
                ("note", models.CharField(blank=True, default="", max_length=200, verbose_name="note")),
                ("created_at", models.DateTimeField(verbose_name="created")),
                ("published_at", models.DateTimeField(blank=True, null=True, verbose_name="published")),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "flow",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="versions",
                        to="contact_center.ivrflow",
                    ),
                ),
                (
                    "published_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"ordering": ["flow", "-number"]},
        ),
        migrations.AddField(
            model_name="ivrflow",
            name="published_version",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="contact_center.ivrflowversion",
                verbose_name="published version",
            ),
        ),
        migrations.CreateModel(
            name="IvrNumber",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("number", models.CharField(max_length=20, unique=True, verbose_name="number (E.164)")),
                ("created_at", models.DateTimeField(verbose_name="created")),
                (
                    "flow",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="numbers",
                        to="contact_center.ivrflow",
                    ),
                ),
            ],
            options={"ordering": ["number"]},
        ),
        migrations.CreateModel(
            name="IvrSession",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("active", "in the IVR"),
                            ("queued", "handed to a queue"),
                            ("finished", "finished"),
                        ],
                        default="active",
                        max_length=10,
                        verbose_name="state",
                    ),
                ),
                ("current_node", models.CharField(blank=True, default="", max_length=60)),
                ("awaiting", models.CharField(blank=True, default="", max_length=60)),
                ("attempts", models.PositiveSmallIntegerField(default=0)),
                ("language", models.CharField(default="it", max_length=8)),
                ("variables", models.JSONField(blank=True, default=dict)),
                ("digits_history", models.JSONField(blank=True, default=list)),
                ("history", models.JSONField(blank=True, default=list)),
                ("started_at", models.DateTimeField()),
                ("updated_at", models.DateTimeField()),
                (
                    "flow_version",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="sessions",
                        to="contact_center.ivrflowversion",
                    ),
                ),
                (
                    "interaction",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="ivr_session",
                        to="contact_center.interaction",
                    ),
                ),
            ],
        ),
        migrations.AddConstraint(
            model_name="ivrflowversion",
            constraint=models.UniqueConstraint(fields=("flow", "number"), name="cc_ivrversion_number_once"),
        ),
        migrations.AddConstraint(
            model_name="ivrflowversion",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "draft")), fields=("flow",), name="cc_ivrversion_one_draft"
            ),
        ),
    ]

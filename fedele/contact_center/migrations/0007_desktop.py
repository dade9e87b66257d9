# The desktop area's tables. Areas own one migration each in a fixed chain, so parallel work never
# produces two leaves; an area adds operations to its own file while it is being built.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("contact_center", "0006_dialer")]

    operations: list[migrations.operations.base.Operation] = [
        migrations.CreateModel(
            name="CannedReply",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "shortcut",
                    models.SlugField(
                        help_text="typed as /shortcut", max_length=40, unique=True, verbose_name="shortcut"
                    ),
                ),
                ("title", models.CharField(max_length=120, verbose_name="title")),
                ("body_it", models.TextField(verbose_name="text (Italian)")),
                ("body_en", models.TextField(verbose_name="text (English)")),
                ("active", models.BooleanField(default=True, verbose_name="active")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "queue",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="contact_center.queue",
                        verbose_name="queue",
                    ),
                ),
            ],
            options={"ordering": ["shortcut"]},
        ),
        migrations.CreateModel(
            name="WallboardThreshold",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "metric",
                    models.CharField(
                        choices=[
                            ("waiting", "waiting"),
                            ("longest_wait_seconds", "longest wait (s)"),
                            ("service_level_percent", "service level (%)"),
                            ("average_speed_of_answer_seconds", "average speed of answer (s)"),
                            ("abandon_rate_percent", "abandon rate (%)"),
                        ],
                        max_length=40,
                        verbose_name="metric",
                    ),
                ),
                ("warning_at", models.FloatField(verbose_name="amber at")),
                ("alert_at", models.FloatField(verbose_name="red at")),
                (
                    "queue",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="contact_center.queue",
                        verbose_name="queue",
                    ),
                ),
            ],
            options={"ordering": ["metric", "queue_id"]},
        ),
        migrations.AddConstraint(
            model_name="wallboardthreshold",
            constraint=models.UniqueConstraint(
                condition=models.Q(("queue__isnull", False)),
                fields=("queue", "metric"),
                name="cc_threshold_queue_metric",
            ),
        ),
        migrations.AddConstraint(
            model_name="wallboardthreshold",
            constraint=models.UniqueConstraint(
                condition=models.Q(("queue__isnull", True)), fields=("metric",), name="cc_threshold_default_metric"
            ),
        ),
    ]

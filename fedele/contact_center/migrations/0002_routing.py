# The routing area's tables. Areas own one migration each in a fixed chain, so parallel work never
# produces two leaves; an area adds operations to its own file while it is being built.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("contact_center", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="agent",
            name="idle_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="agent",
            name="last_offered_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="agent",
            name="wrap_up_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="CallbackRequest",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("public_id", models.UUIDField(unique=True)),
                ("phone", models.CharField(max_length=20)),
                ("state", models.CharField(choices=[("waiting", "waiting"), ("dialling", "outbound created"), ("cancelled", "cancelled")], default="waiting", max_length=10)),
                ("requested_at", models.DateTimeField()),
                ("callback_interaction", models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="contact_center.interaction")),
                ("original_interaction", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="callback_request", to="contact_center.interaction")),
                ("queue", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="callback_requests", to="contact_center.queue")),
            ],
            options={"ordering": ["requested_at", "id"]},
        ),
        migrations.CreateModel(
            name="RoutingTask",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("channel", models.CharField(max_length=10)),
                ("state", models.CharField(choices=[("waiting", "waiting"), ("offered", "offered"), ("assigned", "assigned"), ("cancelled", "cancelled")], default="waiting", max_length=10)),
                ("base_priority", models.IntegerField(default=0)),
                ("effective_priority", models.IntegerField(default=0)),
                ("enqueued_at", models.DateTimeField()),
                ("targets", models.JSONField(blank=True, default=list)),
                ("target_index", models.PositiveSmallIntegerField(default=0)),
                ("target_started_at", models.DateTimeField()),
                ("target_deadline", models.DateTimeField(blank=True, null=True)),
                ("required_skills", models.JSONField(blank=True, default=dict)),
                ("strategy", models.CharField(default="longest_idle", max_length=20)),
                ("relaxation", models.JSONField(blank=True, default=list)),
                ("offer_timeout_seconds", models.PositiveIntegerField(default=15)),
                ("preferred_agent_id", models.BigIntegerField(blank=True, null=True)),
                ("excluded_agents", models.JSONField(blank=True, default=dict)),
                ("is_callback", models.BooleanField(default=False)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("interaction", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="routing_tasks", to="contact_center.interaction")),
                ("queue", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="routing_tasks", to="contact_center.queue")),
            ],
            options={"ordering": ["-effective_priority", "enqueued_at", "id"]},
        ),
        migrations.CreateModel(
            name="Offer",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("public_id", models.UUIDField(unique=True)),
                ("state", models.CharField(choices=[("pending", "pending"), ("accepted", "accepted"), ("rejected", "rejected"), ("timed_out", "timed out"), ("cancelled", "cancelled")], default="pending", max_length=10)),
                ("offered_at", models.DateTimeField()),
                ("expires_at", models.DateTimeField()),
                ("responded_at", models.DateTimeField(blank=True, null=True)),
                ("agent", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="offers", to="contact_center.agent")),
                ("interaction", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="offers", to="contact_center.interaction")),
                ("task", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="offers", to="contact_center.routingtask")),
            ],
            options={"ordering": ["-offered_at", "-id"]},
        ),
        migrations.CreateModel(
            name="RoutingWorkflow",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("code", models.SlugField(max_length=40, unique=True, verbose_name="code")),
                ("name", models.CharField(max_length=120, verbose_name="name")),
                ("definition", models.JSONField(default=dict, verbose_name="definition")),
                ("active", models.BooleanField(default=True, verbose_name="active")),
                ("version", models.PositiveIntegerField(default=1)),
                ("updated_at", models.DateTimeField()),
                ("queue", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="workflow", to="contact_center.queue", verbose_name="entry queue")),
            ],
            options={"ordering": ["code"]},
        ),
        migrations.CreateModel(
            name="AgentStateLog",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("state", models.CharField(choices=[("offline", "offline"), ("available", "available"), ("busy", "busy"), ("wrap_up", "wrap-up"), ("break", "on break")], max_length=16)),
                ("reason", models.CharField(blank=True, default="", max_length=40)),
                ("started_at", models.DateTimeField()),
                ("ended_at", models.DateTimeField(blank=True, null=True)),
                ("duration_seconds", models.PositiveIntegerField(blank=True, null=True)),
                ("agent", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="state_log", to="contact_center.agent")),
            ],
            options={
                "ordering": ["started_at", "id"],
                "indexes": [models.Index(fields=["agent", "started_at"], name="cc_agentstatelog_agent_time")],
                "constraints": [models.UniqueConstraint(condition=models.Q(("ended_at__isnull", True)), fields=("agent",), name="cc_agentstatelog_one_open")],
            },
        ),
        migrations.AddIndex(
            model_name="routingtask",
            index=models.Index(condition=models.Q(("state", "waiting")), fields=["state", "-effective_priority", "enqueued_at", "id"], name="cc_routingtask_order"),
        ),
        migrations.AddIndex(
            model_name="routingtask",
            index=models.Index(fields=["queue", "state"], name="cc_routingtask_queue_state"),
        ),
        migrations.AddIndex(
            model_name="routingtask",
            index=models.Index(condition=models.Q(("state", "waiting")), fields=["target_deadline"], name="cc_routingtask_deadline"),
        ),
        migrations.AddConstraint(
            model_name="routingtask",
            constraint=models.UniqueConstraint(condition=models.Q(("state__in", ["waiting", "offered"])), fields=("interaction",), name="cc_routingtask_one_open"),
        ),
        migrations.AddIndex(
            model_name="offer",
            index=models.Index(fields=["state", "expires_at"], name="cc_offer_state_expiry"),
        ),
        migrations.AddIndex(
            model_name="offer",
            index=models.Index(fields=["agent", "state"], name="cc_offer_agent_state"),
        ),
        migrations.AddConstraint(
            model_name="offer",
            constraint=models.UniqueConstraint(condition=models.Q(("state", "pending")), fields=("interaction",), name="cc_offer_one_pending"),
        ),
    ]

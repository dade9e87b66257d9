"""Routing tables: workflows (TaskRouter-style filters → targets), the waiting task of each queued
contact, offers (reservations) to agents, callback-in-queue requests and the agent state log."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fedele.contact_center.models.core import Agent, AgentState, Interaction, Queue

__all__ = [
    "AgentStateLog",
    "CallbackRequest",
    "Offer",
    "OfferState",
    "RoutingTask",
    "RoutingTaskState",
    "RoutingWorkflow",
]


class RoutingWorkflow(models.Model):
    """How contacts entering ``queue`` are routed. ``definition`` is validated JSON (see
    services/routing_workflows.py): ordered filters, each with targets tried in order, plus the
    strategy, the skill-relaxation rings, the offer timeout and the closed-hours branch."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=120)
    queue = models.OneToOneField(
        Queue, on_delete=models.CASCADE, related_name="workflow", verbose_name=_("entry queue")
    )
    definition = models.JSONField(_("definition"), default=dict)
    active = models.BooleanField(_("active"), default=True)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class RoutingTaskState(models.TextChoices):
    WAITING = "waiting", _("waiting")
    OFFERED = "offered", _("offered")
    ASSIGNED = "assigned", _("assigned")
    CANCELLED = "cancelled", _("cancelled")


class RoutingTask(models.Model):
    """One contact waiting for an agent. The router locks these rows (SKIP LOCKED on PostgreSQL) in
    order of ``effective_priority`` (highest first) then ``enqueued_at`` (oldest first).
    ``enqueued_at`` is the customer's place in line: a callback request or an overflow keeps it."""

    interaction = models.ForeignKey(Interaction, on_delete=models.CASCADE, related_name="routing_tasks")
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="routing_tasks")
    channel = models.CharField(max_length=10)
    state = models.CharField(
        max_length=10, choices=RoutingTaskState.choices, default=RoutingTaskState.WAITING
    )
    # interaction priority + loyalty boost; effective = base + queue priority + target priority.
    base_priority = models.IntegerField(default=0)
    effective_priority = models.IntegerField(default=0)
    enqueued_at = models.DateTimeField()
    # The current target of the workflow (index into ``targets``) and when it started.
    targets = models.JSONField(default=list, blank=True)
    target_index = models.PositiveSmallIntegerField(default=0)
    target_started_at = models.DateTimeField()
    # When the current target times out and the next one is tried (none: the last target waits on).
    target_deadline = models.DateTimeField(null=True, blank=True)
    required_skills = models.JSONField(default=dict, blank=True)
    strategy = models.CharField(max_length=20, default="longest_idle")
    relaxation = models.JSONField(default=list, blank=True)
    offer_timeout_seconds = models.PositiveIntegerField(default=15)
    preferred_agent_id = models.BigIntegerField(null=True, blank=True)
    # agent id (as text) → ISO time until which that agent is not offered this contact again.
    excluded_agents = models.JSONField(default=dict, blank=True)
    is_callback = models.BooleanField(default=False)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-effective_priority", "enqueued_at", "id"]
        constraints = [
            # One open routing task per contact: a second enqueue cannot make it wait twice.
            models.UniqueConstraint(
                fields=["interaction"],
                condition=Q(state__in=["waiting", "offered"]),
                name="cc_routingtask_one_open",
            )
        ]
        indexes = [
            models.Index(
                fields=["state", "-effective_priority", "enqueued_at", "id"],
                name="cc_routingtask_order",
                condition=Q(state="waiting"),
            ),
            models.Index(fields=["queue", "state"], name="cc_routingtask_queue_state"),
            models.Index(
                fields=["target_deadline"], name="cc_routingtask_deadline", condition=Q(state="waiting")
            ),
        ]

    def __str__(self) -> str:
        return f"task {self.pk} ({self.state})"


class OfferState(models.TextChoices):
    PENDING = "pending", _("pending")
    ACCEPTED = "accepted", _("accepted")
    REJECTED = "rejected", _("rejected")
    TIMED_OUT = "timed_out", _("timed out")
    CANCELLED = "cancelled", _("cancelled")


class Offer(models.Model):
    """A reservation of one agent for one contact until the agent accepts, rejects or it expires.
    The partial unique constraint is the database's own guarantee that a contact never has two
    pending offers, whatever the routers do."""

    public_id = models.UUIDField(unique=True)
    task = models.ForeignKey(RoutingTask, on_delete=models.CASCADE, related_name="offers")
    interaction = models.ForeignKey(Interaction, on_delete=models.CASCADE, related_name="offers")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="offers")
    state = models.CharField(max_length=10, choices=OfferState.choices, default=OfferState.PENDING)
    offered_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-offered_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["interaction"], condition=Q(state="pending"), name="cc_offer_one_pending"
            )
        ]
        indexes = [
            models.Index(fields=["state", "expires_at"], name="cc_offer_state_expiry"),
            models.Index(fields=["agent", "state"], name="cc_offer_agent_state"),
        ]

    def __str__(self) -> str:
        return f"offer {self.pk} ({self.state})"


class CallbackRequest(models.Model):
    """Callback-in-queue: the caller hung up but keeps their place; when the waiting task reaches an
    agent, an outbound interaction to ``phone`` is created and offered."""

    class State(models.TextChoices):
        WAITING = "waiting", _("waiting")
        DIALLING = "dialling", _("outbound created")
        CANCELLED = "cancelled", _("cancelled")

    public_id = models.UUIDField(unique=True)
    original_interaction = models.OneToOneField(
        Interaction, on_delete=models.CASCADE, related_name="callback_request"
    )
    callback_interaction = models.OneToOneField(
        Interaction, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="callback_requests")
    phone = models.CharField(max_length=20)
    state = models.CharField(max_length=10, choices=State.choices, default=State.WAITING)
    requested_at = models.DateTimeField()

    class Meta:
        ordering = ["requested_at", "id"]

    def __str__(self) -> str:
        return f"callback {self.phone}"


class AgentStateLog(models.Model):
    """One row per stretch of time an agent spent in one state (WFM adherence reads these).
    ``ended_at``/``duration_seconds`` are filled when the next state starts; exactly one open row
    per agent."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="state_log")
    state = models.CharField(max_length=16, choices=AgentState.choices)
    reason = models.CharField(max_length=40, blank=True, default="")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent"], condition=Q(ended_at__isnull=True), name="cc_agentstatelog_one_open"
            )
        ]
        indexes = [models.Index(fields=["agent", "started_at"], name="cc_agentstatelog_agent_time")]

    def __str__(self) -> str:
        return f"{self.agent_id}:{self.state}"

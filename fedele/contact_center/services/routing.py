"""ACD / universal routing: contacts wait as RoutingTasks; the router offers each, highest priority
then longest waiting first, to one agent chosen by the workflow's target, the skills (relaxed over
waiting time, Genesys bullseye style), the agent's free capacity and the strategy.

Race-freedom (several routers at once, PostgreSQL): a decision locks the contact and its task with
``FOR UPDATE SKIP LOCKED`` (another router skips them), then the chosen agent's row, then recounts
that agent's open contacts from the contact rows before reserving. The partial unique indexes (one
pending offer per contact, one open task per contact) are the database's backstop. Lock order is
always Interaction → RoutingTask → Agent. On SQLite the same code runs serialised by the database's
write lock (transactions begin IMMEDIATE).

Each decision works from an in-memory snapshot of the routable agents (four queries per router
run), scored in Python, so one decision costs a handful of indexed statements.
"""

from __future__ import annotations

import heapq
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils.translation import gettext as _

from fedele.contact_center import realtime as cc_realtime
from fedele.contact_center.models import (
    Agent,
    AgentSkill,
    CallbackRequest,
    Channel,
    Direction,
    Interaction,
    InteractionEvent,
    InteractionState,
    Offer,
    OfferState,
    Outcome,
    Queue,
    RoutingTask,
    RoutingTaskState,
    Skill,
)
from fedele.contact_center.services import presence, routing_sql
from fedele.contact_center.services.routing_expressions import compile_expression
from fedele.contact_center.services.routing_workflows import (
    Strategy,
    workflow_for_queue,
)
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, NotFound, ValidationFailed

logger = logging.getLogger(__name__)

# Each loyalty routing-priority step (0…3) is worth this much queue priority.
LOYALTY_PRIORITY_STEP = 10
# An agent who rejected or missed a contact is not offered it again for this long.
REOFFER_COOLDOWN = timedelta(seconds=60)
# Waiting tasks one router run looks at (in priority order).
SCAN_LIMIT = 5000
MAX_PRIORITY = 1000
MAX_AGENT_TRIES = 5
_EPOCH = datetime(1970, 1, 1).astimezone()


# --- triggering ---------------------------------------------------------------------------------


def _route_after_commit() -> None:
    from fedele.contact_center.tasks import route_pending_task

    try:
        route_pending_task.delay()
    except Exception:
        # Routing after a commit is a courtesy: the scheduler's run a few seconds later does the same.
        logger.exception("The router could not be started after a commit")


def route_soon() -> None:
    """Run the router once after the current transaction commits (once per transaction, however
    many contacts it queued or agents it freed; nothing when it rolls back)."""
    if not getattr(settings, "CONTACT_CENTER_ROUTE_ON_COMMIT", True):
        return
    connection_ = transaction.get_connection()
    if connection_.in_atomic_block and any(
        callback[1] is _route_after_commit for callback in connection_.run_on_commit
    ):
        return
    transaction.on_commit(_route_after_commit)


# --- enqueue -------------------------------------------------------------------------------------


def _queue(code: str) -> Queue:
    queue = Queue.objects.filter(code=str(code or "").strip(), active=True).first()
    if queue is None:
        raise ValidationFailed(
            _("Unknown or inactive queue %(code)s.") % {"code": code},
            code="unknown_queue",
            fields={"queue": _("No active queue with this code.")},
        )
    return queue


def validate_required_skills(required: Mapping[str, Any] | None) -> dict[str, int]:
    """Skill code → minimum proficiency 1–5; every skill must exist."""
    result: dict[str, int] = {}
    problems: list[str] = []
    for code, level in (required or {}).items():
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 5:
            problems.append(
                _("%(skill)s: the proficiency must be a whole number from 1 to 5.") % {"skill": code}
            )
            continue
        result[str(code)] = level
    if result:
        known = set(Skill.objects.filter(code__in=list(result)).values_list("code", flat=True))
        problems.extend(
            _("Unknown skill %(skill)s.") % {"skill": code} for code in result if code not in known
        )
    if problems:
        raise ValidationFailed(
            _("The required skills are not valid."),
            code="invalid_required_skills",
            fields={"required_skills": problems},
        )
    return result


def queue_is_open(queue: Queue, at: datetime) -> bool:
    """Business hours and holidays from the queue's support calendar (empty: always open). A
    calendar that no longer exists counts as open (the contact is routed, the error logged)."""
    if not queue.calendar_code:
        return True
    from fedele.support.facade import calendar_is_open

    try:
        return calendar_is_open(queue.calendar_code, at)
    except NotFound:
        logger.error("Queue %s names the missing business calendar %r", queue.code, queue.calendar_code)
        return True


def _customer_context(customer_public_id: str) -> tuple[str | None, int]:
    if not customer_public_id:
        return None, 0
    from fedele.loyalty.facade import loyalty_tier, routing_priority

    return loyalty_tier(customer_public_id), routing_priority(customer_public_id)


def _last_agent_of(customer_public_id: str, *, days: int, at: datetime) -> int | None:
    if not customer_public_id or days <= 0:
        return None
    return (
        Interaction.objects.filter(
            customer_public_id=customer_public_id,
            agent__isnull=False,
            answered_at__isnull=False,
            created_at__gte=at - timedelta(days=days),
        )
        .order_by("-created_at", "-id")
        .values_list("agent_id", flat=True)
        .first()
    )


def _resolved_targets(targets: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    result = []
    for target in targets:
        queue = _queue(str(target.get("queue", "")))
        result.append(
            {
                "queue": queue.code,
                "queue_id": queue.pk,
                "queue_priority": queue.priority,
                "expression": str(target.get("expression", "") or ""),
                "priority": int(target.get("priority", 0) or 0),
                "timeout": int(target["timeout"]) if target.get("timeout") else None,
            }
        )
    return result


def enqueue(
    *,
    interaction: Interaction,
    queue_code: str,
    required_skills: Mapping[str, int] | None = None,
    priority: int | None = None,
    at: datetime | None = None,
    _closed_depth: int = 0,
) -> Interaction:
    """See ``services.interactions.interaction_enqueue``."""
    at = at or clock.now()
    queue = _queue(queue_code)
    skills = validate_required_skills(required_skills)
    if priority is not None and (
        isinstance(priority, bool) or not -MAX_PRIORITY <= int(priority) <= MAX_PRIORITY
    ):
        raise ValidationFailed(
            _("The priority must be between -1000 and 1000."),
            code="invalid_priority",
            fields={"priority": str(priority)},
        )
    if queue.channels and interaction.channel not in queue.channels:
        raise ValidationFailed(
            _("Queue %(queue)s does not serve the %(channel)s channel.")
            % {"queue": queue.code, "channel": interaction.channel},
            code="channel_not_served",
            fields={"queue": queue.code},
        )
    workflow = workflow_for_queue(queue)
    if not queue_is_open(queue, at):
        closed = workflow.closed
        action = closed.get("action", "voicemail")
        target = closed.get("queue")
        if action == "overflow" and target and _closed_depth < 3:
            return enqueue(
                interaction=interaction,
                queue_code=target,
                required_skills=skills,
                priority=priority,
                at=at,
                _closed_depth=_closed_depth + 1,
            )
        with transaction.atomic():
            locked = Interaction.objects.select_for_update().get(pk=interaction.pk)
            locked.attributes = {**locked.attributes, "closed_action": action, "closed_queue": queue.code}
            locked.save(update_fields=["attributes"])
            InteractionEvent.objects.create(
                interaction=locked,
                kind="queue.closed",
                data={"queue": queue.code, "action": action},
                created_at=at,
            )
        return locked

    tier, loyalty_steps = _customer_context(interaction.customer_public_id)
    own_priority = int(priority or 0)
    context = {
        "channel": interaction.channel,
        "direction": interaction.direction,
        "network": interaction.network,
        "language": interaction.language,
        "queue": queue.code,
        "tier": tier,
        "vip": loyalty_steps > 0,
        "loyalty": loyalty_steps,
        "priority": own_priority,
        "customer_known": bool(interaction.customer_public_id),
        "skills": sorted(skills),
        **{f"attributes.{key}": value for key, value in (interaction.attributes or {}).items()},
    }
    targets = _resolved_targets(workflow.targets_for(context, queue_code=queue.code))
    first = targets[0]
    base_priority = own_priority + loyalty_steps * LOYALTY_PRIORITY_STEP
    preferred = (
        _last_agent_of(interaction.customer_public_id, days=workflow.preferred_agent_days, at=at)
        if workflow.strategy == Strategy.PREFERRED
        else None
    )
    with transaction.atomic():
        locked = Interaction.objects.select_for_update().get(pk=interaction.pk)
        if locked.state not in (InteractionState.IVR, InteractionState.QUEUED):
            raise Conflict(
                _("Only a new or waiting contact can be queued (this one is %(state)s).")
                % {"state": locked.state},
                code="interaction_not_queueable",
            )
        enqueued_at = at
        for old in RoutingTask.objects.select_for_update().filter(
            interaction=locked, state=RoutingTaskState.WAITING
        ):
            # Moving to another queue: the customer keeps their place in line.
            enqueued_at = min(enqueued_at, old.enqueued_at)
            old.state = RoutingTaskState.CANCELLED
            old.finished_at = at
            old.save(update_fields=["state", "finished_at"])
        task = RoutingTask.objects.create(
            interaction=locked,
            queue_id=first["queue_id"],
            channel=locked.channel,
            base_priority=base_priority,
            effective_priority=base_priority + first["queue_priority"] + first["priority"],
            enqueued_at=enqueued_at,
            targets=targets,
            target_index=0,
            target_started_at=at,
            target_deadline=at + timedelta(seconds=first["timeout"])
            if first["timeout"] and len(targets) > 1
            else None,
            required_skills=skills,
            strategy=workflow.strategy,
            relaxation=workflow.relaxation,
            offer_timeout_seconds=workflow.offer_timeout_seconds,
            preferred_agent_id=preferred,
        )
        locked.state = InteractionState.QUEUED
        locked.queue_id = first["queue_id"]
        locked.required_skills = skills
        locked.priority = own_priority
        if locked.queued_at is None:
            locked.queued_at = at
        attributes = dict(locked.attributes)
        attributes.pop("closed_action", None)
        attributes.pop("closed_queue", None)
        locked.attributes = attributes
        locked.save(
            update_fields=["state", "queue", "required_skills", "priority", "queued_at", "attributes"]
        )
        InteractionEvent.objects.create(
            interaction=locked,
            kind="queued",
            data={
                "queue": first["queue"],
                "priority": task.effective_priority,
                "required_skills": skills,
                "workflow": workflow.code,
            },
            created_at=at,
        )
        route_soon()
    return locked


# --- the router ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _AgentView:
    agent_id: int
    capacity: dict[str, int]
    skills: dict[str, int]
    queue_ids: frozenset[int]
    load: dict[str, int]
    idle_since: datetime
    last_offered_at: datetime


@dataclass(slots=True)
class _Snapshot:
    agents: dict[int, _AgentView] = field(default_factory=dict)
    by_queue: dict[int, list[int]] = field(default_factory=dict)
    # The agents with room for one more contact of some channel (kept exact by ``refresh``).
    roomy: set[int] = field(default_factory=set)
    # Queue id → code for the desktop push, read once per router run (again for a queue created since).
    queue_codes: dict[int, str] | None = None

    def queue_code(self, queue_id: int) -> str:
        if self.queue_codes is None or queue_id not in self.queue_codes:
            self.queue_codes = dict(Queue.objects.values_list("pk", "code"))
        return self.queue_codes.get(queue_id, "")

    @classmethod
    def load(cls) -> _Snapshot:
        snapshot = cls()
        routable = Agent.objects.filter(active=True, state__in=presence.ROUTABLE_STATES)
        rows = routable.values_list("pk", "capacity", "idle_since", "last_offered_at")
        skills: dict[int, dict[str, int]] = {}
        for agent_id, code, level in AgentSkill.objects.filter(
            agent__active=True, agent__state__in=presence.ROUTABLE_STATES
        ).values_list("agent_id", "skill__code", "proficiency"):
            skills.setdefault(agent_id, {})[code] = level
        queues: dict[int, set[int]] = {}
        for agent_id, queue_id in Agent.queues.through.objects.filter(
            agent__active=True, agent__state__in=presence.ROUTABLE_STATES
        ).values_list("agent_id", "queue_id"):
            queues.setdefault(agent_id, set()).add(queue_id)
        loads: dict[int, dict[str, int]] = {}
        for agent_id, channel, count in (
            Interaction.objects.filter(
                agent__active=True, agent__state__in=presence.ROUTABLE_STATES, state__in=presence.LOAD_STATES
            )
            .values_list("agent_id", "channel")
            .annotate(count=Count("id"))
            .order_by()
        ):
            loads.setdefault(agent_id, {})[channel] = count
        for agent_id, capacity, idle_since, last_offered_at in rows:
            snapshot.agents[agent_id] = _AgentView(
                agent_id=agent_id,
                capacity=presence.capacity_from(capacity),
                skills=skills.get(agent_id, {}),
                queue_ids=frozenset(queues.get(agent_id, set())),
                load=loads.get(agent_id, {}),
                idle_since=idle_since or _EPOCH,
                last_offered_at=last_offered_at or _EPOCH,
            )
            for queue_id in queues.get(agent_id, set()):
                snapshot.by_queue.setdefault(queue_id, []).append(agent_id)
        snapshot.queue_codes = dict(Queue.objects.values_list("pk", "code"))
        # Here, once per run, not in the run's first decision (it looks at every agent).
        snapshot.roomy = {agent_id for agent_id, view in snapshot.agents.items() if cls.with_room(view)}
        return snapshot

    def has_any_room(self) -> bool:
        return bool(self.roomy)

    @staticmethod
    def with_room(view: _AgentView) -> bool:
        return any(
            presence.has_room(capacity=view.capacity, load=view.load, channel=channel)
            for channel in view.capacity
        )

    def refresh(self, view: _AgentView) -> None:
        """After an agent's load changed: keep the set of agents with any room left exact."""
        if view.agent_id in self.agents and self.with_room(view):
            self.roomy.add(view.agent_id)
        else:
            self.roomy.discard(view.agent_id)


def effective_requirements(task: Mapping[str, Any], at: datetime) -> dict[str, int]:
    """The required skills after relaxation: the widest ring the contact's waiting time reached
    lowers every minimum by ``lower_by`` (never below 1) or drops the skills altogether."""
    required: dict[str, int] = dict(task["required_skills"] or {})
    if not required:
        return required
    waited = (at - task["enqueued_at"]).total_seconds()
    ring: Mapping[str, Any] | None = None
    for candidate in task["relaxation"] or []:
        if waited >= float(candidate.get("after_seconds", 0)):
            ring = candidate
    if ring is None:
        return required
    if ring.get("drop_skills"):
        return {}
    lower = int(ring.get("lower_by", 0) or 0)
    return {code: max(1, level - lower) for code, level in required.items()}


def _eligible(
    task: Mapping[str, Any], snapshot: _Snapshot, at: datetime, required: Mapping[str, int] | None = None
) -> list[_AgentView]:
    target = task["targets"][task["target_index"]] if task["targets"] else {"queue_id": task["queue_id"]}
    queue_id = target.get("queue_id", task["queue_id"])
    if required is None:
        required = effective_requirements(task, at)
    expression = str(target.get("expression", "") or "")
    check = compile_expression(expression) if expression.strip() else None
    excluded = {
        int(agent_id)
        for agent_id, until in (task["excluded_agents"] or {}).items()
        if datetime.fromisoformat(until) > at
    }
    channel = task["channel"]
    # presence.has_room, inlined: this loop runs over every agent of the queue for each decision
    # (plain loops and locals: it is most of the CPU a decision spends in Python).
    voice = str(Channel.VOICE.value)
    blocked_by_voice = channel != voice and presence.voice_blocks_other_channels()
    needs = list(required.items())
    agents = snapshot.agents
    result = []
    for agent_id in snapshot.by_queue.get(queue_id, ()):
        if agent_id in excluded:
            continue
        view = agents[agent_id]
        load = view.load
        if view.capacity.get(channel, 0) <= load.get(channel, 0):
            continue
        if blocked_by_voice and load.get(voice, 0) > 0:
            continue
        skills = view.skills
        for code, level in needs:
            if skills.get(code, 0) < level:
                break
        else:
            if check is None or check(skills, 0):
                result.append(view)
    return result


def rank_agents(
    candidates: list[_AgentView],
    *,
    strategy: str,
    required: Mapping[str, int],
    preferred_agent_id: int | None,
    limit: int | None = None,
) -> list[_AgentView]:
    """Candidates best first by the strategy; ties go to the longest idle, then the lowest id.
    ``limit``: only the best so many (the same as the first ones of the whole ranking)."""
    if strategy == Strategy.LEAST_OCCUPIED:

        def key(view: _AgentView) -> tuple[Any, ...]:
            occupancy = sum(
                view.load.get(channel, 0) / view.capacity[channel]
                for channel in view.capacity
                if view.capacity[channel]
            )
            return (occupancy, view.idle_since, view.agent_id)

    elif strategy == Strategy.ROUND_ROBIN:

        def key(view: _AgentView) -> tuple[Any, ...]:
            return (view.last_offered_at, view.agent_id)

    elif strategy == Strategy.BEST_SKILL:

        def key(view: _AgentView) -> tuple[Any, ...]:
            return (-sum(view.skills.get(code, 0) for code in required), view.idle_since, view.agent_id)

    else:

        def key(view: _AgentView) -> tuple[Any, ...]:
            return (view.idle_since, view.agent_id)

    if strategy == Strategy.PREFERRED and preferred_agent_id is not None:
        by_strategy = key

        def key(view: _AgentView) -> tuple[Any, ...]:
            return (view.agent_id != preferred_agent_id, *by_strategy(view))

    # Every key ends with the agent id, so the order is total and nsmallest equals a sorted prefix.
    if limit is not None and limit < len(candidates):
        return heapq.nsmallest(limit, candidates, key=key)
    return sorted(candidates, key=key)


_TASK_FIELDS = (
    "pk",
    "interaction_id",
    "queue_id",
    "channel",
    "targets",
    "target_index",
    "required_skills",
    "relaxation",
    "strategy",
    "excluded_agents",
    "preferred_agent_id",
    "enqueued_at",
)


def route_pending(
    *,
    limit: int = 200,
    at: datetime | None = None,
    timings: list[float] | None = None,
    cpu_timings: list[float] | None = None,
) -> int:
    """One router run: housekeeping (expired offers, target timeouts, overflow, automatic wrap-up
    ends), then up to ``limit`` offers in priority order. Returns the offers made. Safe to run in
    several processes at once. ``timings`` and ``cpu_timings`` (if given) receive each decision's
    seconds, elapsed and of this process's CPU (the benchmark's figures)."""
    at = at or clock.now()
    offers_expire_due(at=at)
    targets_advance_due(at=at)
    overflow_due(at=at)
    presence.wrap_up_expire_due(at=at)
    snapshot = _Snapshot.load()
    if not snapshot.agents or limit <= 0:
        return 0
    made = 0
    rows = (
        RoutingTask.objects.filter(state=RoutingTaskState.WAITING)
        .order_by("-effective_priority", "enqueued_at", "id")
        .values(*_TASK_FIELDS)[:SCAN_LIMIT]
    )
    # Within one run loads only grow, so a kind of contact no agent could take stays untakeable:
    # the rest of its kind is skipped without scanning the agents again.
    untakeable: set[tuple[Any, ...]] = set()
    for row in rows:
        started = time.perf_counter()
        started_cpu = time.process_time()
        required = effective_requirements(row, at)
        kind = _kind(row, at, required)
        if kind is not None and kind in untakeable:
            continue
        candidates = _eligible(row, snapshot, at, required)
        if not candidates and kind is not None:
            untakeable.add(kind)
        if candidates:
            ranked = rank_agents(
                candidates,
                strategy=row["strategy"],
                required=required,
                preferred_agent_id=row["preferred_agent_id"],
                limit=MAX_AGENT_TRIES,
            )
            if _assign(row["pk"], ranked, snapshot, at):
                made += 1
            if timings is not None:
                timings.append(time.perf_counter() - started)
            if cpu_timings is not None:
                cpu_timings.append(time.process_time() - started_cpu)
            if made >= limit or not snapshot.has_any_room():
                break
    cc_realtime.flush()
    return made


def _kind(
    task: Mapping[str, Any], at: datetime, required: Mapping[str, int] | None = None
) -> tuple[Any, ...] | None:
    """What decides which agents may take a contact; None when agent exclusions make it unique."""
    if task["excluded_agents"]:
        return None
    target = task["targets"][task["target_index"]] if task["targets"] else {}
    return (
        target.get("queue_id", task["queue_id"]),
        task["channel"],
        tuple(sorted((effective_requirements(task, at) if required is None else required).items())),
        str(target.get("expression", "") or ""),
    )


def _assign(task_id: int, ranked: list[_AgentView], snapshot: _Snapshot, at: datetime) -> bool:
    """Lock the task (skipping it if another router holds it), then try the ranked agents one by
    one under their row lock with their load recounted. Returns whether an offer was made."""
    if connection.vendor == "postgresql":
        return _assign_postgresql(task_id, ranked, snapshot, at)
    with transaction.atomic():
        task = (
            RoutingTask.objects.select_for_update(skip_locked=True, of=("self", "interaction"))
            .select_related("interaction", "queue")
            .filter(pk=task_id, state=RoutingTaskState.WAITING)
            .first()
        )
        if task is None:
            return False
        return _offer_to_first_with_room(task, ranked, snapshot, at)


def _offer_to_first_with_room(
    task: RoutingTask, ranked: list[_AgentView], snapshot: _Snapshot, at: datetime
) -> bool:
    """Through the ORM (SQLite, and a callback's first offer, which creates its outbound contact)."""
    for view in ranked[:MAX_AGENT_TRIES]:
        agent = Agent.objects.select_for_update().filter(pk=view.agent_id).first()
        if agent is None or not agent.active or agent.state not in presence.ROUTABLE_STATES:
            _drop(snapshot, view)
            continue
        load = presence.agent_load(agent.pk)
        view.load = load
        if not presence.has_room(capacity=presence.capacity_of(agent), load=load, channel=task.channel):
            snapshot.refresh(view)
            continue
        _offer(task, agent, at)
        view.load = {**load, task.channel: load.get(task.channel, 0) + 1}
        view.last_offered_at = at
        snapshot.refresh(view)
        return True
    return False


def _assign_postgresql(task_id: int, ranked: list[_AgentView], snapshot: _Snapshot, at: datetime) -> bool:
    """``_assign`` in two prepared statements per agent tried (``routing_sql``). An offer is a
    short-lived reservation: if the server crashed before it reached the disk, the contact would
    simply still be waiting and be offered again, so these commits don't wait for the WAL flush
    (``synchronous_commit`` off for the transaction, set in the lock statement)."""
    tries = ranked[:MAX_AGENT_TRIES]
    if not tries:
        return False
    with transaction.atomic():
        statements = routing_sql.Statements()
        locked = statements.lock_task_and_agent(task_id=task_id, agent_id=tries[0].agent_id)
        if locked is None:
            return False
        task, agent = locked
        if task.is_callback:
            # Rare: the callback's outbound contact is created by the services (rows already locked).
            orm_task = RoutingTask.objects.select_related("interaction", "queue").get(pk=task_id)
            return _offer_to_first_with_room(orm_task, tries, snapshot, at)
        for index, view in enumerate(tries):
            if index:
                agent = statements.lock_agent(view.agent_id)
            if agent is None or not agent.routable:
                _drop(snapshot, view)
                continue
            offer_public_id = uuid.uuid4()
            expires_at = at + timedelta(seconds=task.offer_timeout_seconds)
            written = statements.offer_if_room(
                task=task,
                agent=agent,
                offer_public_id=offer_public_id,
                at=at,
                expires_at=expires_at,
                event_data={
                    "agent_id": agent.agent_id,
                    "offer": str(offer_public_id),
                    "priority": task.effective_priority,
                },
            )
            if written.offer_id is None:
                view.load = written.load
                snapshot.refresh(view)
                continue
            view.load = {**written.load, task.channel: written.load.get(task.channel, 0) + 1}
            view.last_offered_at = at
            snapshot.refresh(view)
            # Sent while the router decides the next contact (route_pending flushes at the end).
            cc_realtime.notify_group(
                presence.agent_group(agent.agent_id),
                "cc.offer",
                wait=False,
                data=_payload(
                    offer_public_id=offer_public_id,
                    interaction_public_id=task.interaction_public_id,
                    number=task.number,
                    channel=task.channel,
                    network=task.network,
                    direction=task.direction,
                    from_address=task.from_address,
                    to_address=task.to_address,
                    subject=task.subject,
                    queue_code=snapshot.queue_code(task.queue_id),
                    customer_public_id=task.customer_public_id,
                    priority=task.effective_priority,
                    callback=task.callback,
                    offered_at=at,
                    expires_at=expires_at,
                    timeout_seconds=task.offer_timeout_seconds,
                ),
            )
            return True
    return False


def _drop(snapshot: _Snapshot, view: _AgentView) -> None:
    """The agent is no longer routable (deactivated, on break, offline): out of this run."""
    snapshot.agents.pop(view.agent_id, None)
    _forget(snapshot, view.agent_id)
    snapshot.refresh(view)


def _forget(snapshot: _Snapshot, agent_id: int) -> None:
    for members in snapshot.by_queue.values():
        if agent_id in members:
            members.remove(agent_id)


def _offer(task: RoutingTask, agent: Agent, at: datetime) -> Offer:
    interaction = task.interaction
    if task.is_callback:
        interaction = _callback_interaction(task, at)
    offer = Offer(
        public_id=uuid.uuid4(),
        task=task,
        interaction=interaction,
        agent=agent,
        state=OfferState.PENDING,
        offered_at=at,
        expires_at=at + timedelta(seconds=task.offer_timeout_seconds),
    )
    task.state = RoutingTaskState.OFFERED
    offer.save(force_insert=True)
    task.save(update_fields=["state", "interaction"])
    Interaction.objects.filter(pk=interaction.pk).update(state=InteractionState.OFFERED, agent=agent)
    Agent.objects.filter(pk=agent.pk).update(last_offered_at=at)
    InteractionEvent.objects.create(
        interaction=interaction,
        kind="offered",
        data={"agent_id": agent.pk, "offer": str(offer.public_id), "priority": task.effective_priority},
        created_at=at,
    )
    cc_realtime.notify_group(
        presence.agent_group(agent.pk), "cc.offer", offer_payload(offer, interaction, task), wait=False
    )
    return offer


def offer_payload(offer: Offer, interaction: Interaction, task: RoutingTask) -> dict[str, Any]:
    """What the agent desktop shows for an offer (the desktop renders it; keep keys stable)."""
    return _payload(
        offer_public_id=offer.public_id,
        interaction_public_id=interaction.public_id,
        number=interaction.number,
        channel=interaction.channel,
        network=interaction.network,
        direction=interaction.direction,
        from_address=interaction.from_address,
        to_address=interaction.to_address,
        subject=interaction.subject,
        queue_code=task.queue.code,
        customer_public_id=interaction.customer_public_id,
        priority=task.effective_priority,
        # A callback's outbound contact is created when it is offered: the desktop dials it.
        callback=bool((interaction.attributes or {}).get("callback_of")),
        offered_at=offer.offered_at,
        expires_at=offer.expires_at,
        timeout_seconds=task.offer_timeout_seconds,
    )


def _payload(
    *,
    offer_public_id: uuid.UUID,
    interaction_public_id: uuid.UUID,
    number: str,
    channel: str,
    network: str,
    direction: str,
    from_address: str,
    to_address: str,
    subject: str,
    queue_code: str,
    customer_public_id: str,
    priority: int,
    callback: bool,
    offered_at: datetime,
    expires_at: datetime,
    timeout_seconds: int,
) -> dict[str, Any]:
    return {
        "offer_id": str(offer_public_id),
        "interaction_id": str(interaction_public_id),
        "number": number,
        "channel": channel,
        "network": network,
        "direction": direction,
        "from": from_address,
        "to": to_address,
        "subject": subject,
        "queue": queue_code,
        "customer_public_id": customer_public_id,
        "priority": priority,
        "callback": callback,
        "offered_at": offered_at.isoformat(),
        "expires_at": expires_at.isoformat(),
        "timeout_seconds": timeout_seconds,
    }


def _callback_interaction(task: RoutingTask, at: datetime) -> Interaction:
    """A callback reached an agent: the outbound contact to the customer is created now."""
    from fedele.contact_center.services.interactions import interaction_create

    request = CallbackRequest.objects.select_for_update().get(original_interaction_id=task.interaction_id)
    original = task.interaction
    outbound = interaction_create(
        channel=Channel.VOICE,
        direction=Direction.OUTBOUND,
        from_address=original.to_address,
        to_address=request.phone,
        customer_public_id=original.customer_public_id,
        attributes={"callback_of": original.number, "callback_request": str(request.public_id)},
        language=original.language,
        at=at,
    )
    outbound.queue = task.queue
    outbound.queued_at = task.enqueued_at
    outbound.required_skills = task.required_skills
    outbound.state = InteractionState.QUEUED
    outbound.save(update_fields=["queue", "queued_at", "required_skills", "state"])
    request.callback_interaction = outbound
    request.state = CallbackRequest.State.DIALLING
    request.save(update_fields=["callback_interaction", "state"])
    task.interaction = outbound
    task.is_callback = False
    task.save(update_fields=["interaction", "is_callback"])
    return outbound


# --- offers --------------------------------------------------------------------------------------


def _lock_offer(offer: Offer) -> tuple[Interaction, RoutingTask, Offer]:
    interaction = Interaction.objects.select_for_update().get(pk=offer.interaction_id)
    task = RoutingTask.objects.select_for_update().select_related("queue").get(pk=offer.task_id)
    locked = Offer.objects.select_for_update().get(pk=offer.pk)
    return interaction, task, locked


def offer_get(*, public_id: str, agent: Agent) -> Offer:
    try:
        offer = Offer.objects.filter(public_id=uuid.UUID(str(public_id)), agent=agent).first()
    except ValueError:
        offer = None
    if offer is None:
        raise NotFound(_("This offer does not exist."), code="offer_not_found")
    return offer


def offer_accept(*, offer: Offer, agent: Agent, at: datetime | None = None) -> Interaction:
    """The agent takes the contact: the offer is accepted, the task assigned, the contact connected
    and the agent busy. An expired, withdrawn or someone else's offer is refused (nothing changes)."""
    at = at or clock.now()
    if offer.agent_id != agent.pk:
        raise NotFound(_("This offer does not exist."), code="offer_not_found")
    with transaction.atomic():
        interaction, task, locked = _lock_offer(offer)
        if locked.state != OfferState.PENDING:
            raise Conflict(_("This offer is no longer open."), code="offer_not_pending")
        if locked.expires_at <= at:
            raise Conflict(_("This offer has expired."), code="offer_expired")
        locked_agent = Agent.objects.select_for_update().get(pk=agent.pk)
        locked.state = OfferState.ACCEPTED
        locked.responded_at = at
        locked.save(update_fields=["state", "responded_at"])
        task.state = RoutingTaskState.ASSIGNED
        task.finished_at = at
        task.save(update_fields=["state", "finished_at"])
        interaction.state = InteractionState.CONNECTED
        interaction.agent = locked_agent
        interaction.answered_at = at
        if interaction.queued_at is not None:
            interaction.wait_seconds = max(0, int((at - interaction.queued_at).total_seconds()))
        interaction.save(update_fields=["state", "agent", "answered_at", "wait_seconds"])
        InteractionEvent.objects.create(
            interaction=interaction, kind="accepted", data={"agent_id": agent.pk}, created_at=at
        )
        presence.agent_after_load_change(agent=locked_agent, at=at)
        audit.record(
            action="contact_center.offer_accepted",
            object_type="contact_center.interaction",
            object_id=str(interaction.public_id),
            after={"agent": str(agent.public_id), "wait_seconds": interaction.wait_seconds},
        )
        cc_realtime.notify_group(
            presence.agent_group(agent.pk),
            "cc.offer.accepted",
            {"offer_id": str(locked.public_id), "interaction_id": str(interaction.public_id)},
        )
    return interaction


def _release(
    interaction: Interaction, task: RoutingTask, offer: Offer, *, state: str, at: datetime, exclude: bool
) -> None:
    """The offer ends without the agent taking the contact: back in line, same place."""
    offer.state = state
    offer.responded_at = at
    offer.save(update_fields=["state", "responded_at"])
    if exclude:
        task.excluded_agents = {
            **task.excluded_agents,
            str(offer.agent_id): (at + REOFFER_COOLDOWN).isoformat(),
        }
    task.state = RoutingTaskState.WAITING
    task.save(update_fields=["state", "excluded_agents"])
    interaction.state = InteractionState.QUEUED
    interaction.agent = None
    interaction.save(update_fields=["state", "agent"])
    InteractionEvent.objects.create(
        interaction=interaction, kind=f"offer.{state}", data={"agent_id": offer.agent_id}, created_at=at
    )
    cc_realtime.notify_group(
        presence.agent_group(offer.agent_id),
        "cc.offer.withdrawn",
        {"offer_id": str(offer.public_id), "interaction_id": str(interaction.public_id), "reason": state},
    )


def offer_reject(*, offer: Offer, agent: Agent, at: datetime | None = None) -> Offer:
    """The agent declines: the contact goes back in line and is offered to someone else (this agent
    is skipped for a minute)."""
    at = at or clock.now()
    if offer.agent_id != agent.pk:
        raise NotFound(_("This offer does not exist."), code="offer_not_found")
    with transaction.atomic():
        interaction, task, locked = _lock_offer(offer)
        if locked.state != OfferState.PENDING:
            raise Conflict(_("This offer is no longer open."), code="offer_not_pending")
        _release(interaction, task, locked, state=OfferState.REJECTED, at=at, exclude=True)
        locked_agent = Agent.objects.select_for_update().get(pk=agent.pk)
        Agent.objects.filter(pk=locked_agent.pk).update(idle_since=at)
        audit.record(
            action="contact_center.offer_rejected",
            object_type="contact_center.interaction",
            object_id=str(interaction.public_id),
            after={"agent": str(agent.public_id)},
        )
        route_soon()
    return locked


def offers_expire_due(*, at: datetime | None = None) -> int:
    """Pending offers past their timeout: timed out, the contact back in line for another agent."""
    at = at or clock.now()
    expired = 0
    for offer in Offer.objects.filter(state=OfferState.PENDING, expires_at__lte=at).order_by(
        "interaction_id"
    ):
        with transaction.atomic():
            interaction, task, locked = _lock_offer(offer)
            if locked.state != OfferState.PENDING:
                continue
            _release(interaction, task, locked, state=OfferState.TIMED_OUT, at=at, exclude=True)
            expired += 1
    return expired


def lock_pending_offers_of(agent_id: int) -> list[int]:
    """Lock (in order) the contacts and tasks of an agent's pending offers; returns the contact ids.
    Called before the agent row is locked, to keep the lock order."""
    interaction_ids = sorted(
        Offer.objects.filter(agent_id=agent_id, state=OfferState.PENDING).values_list(
            "interaction_id", flat=True
        )
    )
    if not interaction_ids:
        return []
    list(
        Interaction.objects.select_for_update()
        .filter(pk__in=interaction_ids)
        .order_by("pk")
        .values_list("pk")
    )
    list(
        RoutingTask.objects.select_for_update()
        .filter(interaction_id__in=interaction_ids, state=RoutingTaskState.OFFERED)
        .order_by("pk")
        .values_list("pk")
    )
    return interaction_ids


def cancel_offers(*, interaction_ids: list[int], agent_id: int, at: datetime) -> int:
    """Withdraw an agent's pending offers (break, offline): the contacts go back in line."""
    cancelled = 0
    for offer in Offer.objects.filter(
        agent_id=agent_id, state=OfferState.PENDING, interaction_id__in=interaction_ids
    ).select_related("interaction", "task"):
        _release(offer.interaction, offer.task, offer, state=OfferState.CANCELLED, at=at, exclude=False)
        cancelled += 1
    if cancelled:
        route_soon()
    return cancelled


def close_open_task(
    *, interaction: Interaction, at: datetime, keep_agent_id: int | None, cancelled: bool = False
) -> None:
    """A locked contact is connected or ended outside the offer flow (answered directly, hung up
    while waiting): its open task finishes and pending offers are accepted (same agent) or withdrawn."""
    for task in RoutingTask.objects.select_for_update().filter(
        interaction=interaction, state__in=(RoutingTaskState.WAITING, RoutingTaskState.OFFERED)
    ):
        for offer in Offer.objects.select_for_update().filter(task=task, state=OfferState.PENDING):
            accepted = keep_agent_id is not None and offer.agent_id == keep_agent_id and not cancelled
            offer.state = OfferState.ACCEPTED if accepted else OfferState.CANCELLED
            offer.responded_at = at
            offer.save(update_fields=["state", "responded_at"])
            if not accepted:
                cc_realtime.notify_group(
                    presence.agent_group(offer.agent_id),
                    "cc.offer.withdrawn",
                    {
                        "offer_id": str(offer.public_id),
                        "interaction_id": str(interaction.public_id),
                        "reason": "ended",
                    },
                )
        task.state = RoutingTaskState.CANCELLED if cancelled else RoutingTaskState.ASSIGNED
        task.finished_at = at
        task.save(update_fields=["state", "finished_at"])


# --- waiting-time rules --------------------------------------------------------------------------


def targets_advance_due(*, at: datetime | None = None) -> int:
    """Targets whose timeout passed: the contact moves on to the workflow's next target."""
    at = at or clock.now()
    moved = 0
    for task_id, interaction_id in RoutingTask.objects.filter(
        state=RoutingTaskState.WAITING, target_deadline__lte=at
    ).values_list("pk", "interaction_id"):
        with transaction.atomic():
            interaction = (
                Interaction.objects.select_for_update(skip_locked=True).filter(pk=interaction_id).first()
            )
            task = (
                RoutingTask.objects.select_for_update(skip_locked=True)
                .filter(pk=task_id, state=RoutingTaskState.WAITING, target_deadline__lte=at)
                .first()
            )
            if interaction is None or task is None:
                continue
            index = task.target_index + 1
            target = task.targets[index]
            task.target_index = index
            task.queue_id = target["queue_id"]
            task.target_started_at = at
            task.effective_priority = task.base_priority + target["queue_priority"] + target["priority"]
            has_next = index + 1 < len(task.targets)
            task.target_deadline = (
                at + timedelta(seconds=target["timeout"]) if target["timeout"] and has_next else None
            )
            task.save()
            interaction.queue_id = target["queue_id"]
            interaction.save(update_fields=["queue"])
            InteractionEvent.objects.create(
                interaction=interaction,
                kind="target.next",
                data={"queue": target["queue"], "index": index},
                created_at=at,
            )
            moved += 1
    return moved


def overflow_due(*, at: datetime | None = None) -> int:
    """Contacts that waited longer than their queue's maximum move to its overflow queue, keeping
    their place in line."""
    at = at or clock.now()
    moved = 0
    for queue in Queue.objects.filter(max_wait_seconds__gt=0, overflow_queue__isnull=False).select_related(
        "overflow_queue"
    ):
        overflow = queue.overflow_queue
        assert overflow is not None
        limit = at - timedelta(seconds=queue.max_wait_seconds)
        for task_id, interaction_id in RoutingTask.objects.filter(
            state=RoutingTaskState.WAITING, queue=queue, target_started_at__lte=limit
        ).values_list("pk", "interaction_id"):
            with transaction.atomic():
                interaction = (
                    Interaction.objects.select_for_update(skip_locked=True).filter(pk=interaction_id).first()
                )
                task = (
                    RoutingTask.objects.select_for_update(skip_locked=True)
                    .filter(pk=task_id, state=RoutingTaskState.WAITING, queue=queue)
                    .first()
                )
                if interaction is None or task is None:
                    continue
                target = {
                    "queue": overflow.code,
                    "queue_id": overflow.pk,
                    "queue_priority": overflow.priority,
                    "expression": "",
                    "priority": 0,
                    "timeout": None,
                }
                task.targets = [*task.targets[: task.target_index + 1], target]
                task.target_index = len(task.targets) - 1
                task.queue = overflow
                task.target_started_at = at
                task.target_deadline = None
                task.effective_priority = task.base_priority + overflow.priority
                task.save()
                interaction.queue = overflow
                interaction.save(update_fields=["queue"])
                InteractionEvent.objects.create(
                    interaction=interaction,
                    kind="overflow",
                    data={"from": queue.code, "to": overflow.code},
                    created_at=at,
                )
                moved += 1
    return moved


# --- callback-in-queue ---------------------------------------------------------------------------


def e164(value: str, region: str = "IT") -> str:
    """A phone number in E.164 ("" when it is not a valid number)."""
    import phonenumbers

    text = (value or "").strip()
    for scheme in ("tel:", "whatsapp:"):
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_valid_number(parsed):
        return ""
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def interaction_callback_request(
    *, interaction: Interaction, phone: str = "", at: datetime | None = None
) -> CallbackRequest:
    """The waiting caller asks to be called back and hangs up, keeping their place in line: the
    call ends (outcome callback), its task waits on; at the head of the line, an outbound call to
    ``phone`` (the caller's number by default) is created and offered to the agent."""
    from fedele.contact_center.services.interactions import interaction_end

    at = at or clock.now()
    number = e164(phone or interaction.from_address)
    if not number:
        raise ValidationFailed(
            _("A callback needs a valid phone number."),
            code="invalid_callback_phone",
            fields={"phone": phone},
        )
    with transaction.atomic():
        locked = Interaction.objects.select_for_update().get(pk=interaction.pk)
        task = (
            RoutingTask.objects.select_for_update()
            .filter(interaction=locked, state=RoutingTaskState.WAITING)
            .first()
        )
        if task is None or locked.channel != Channel.VOICE:
            raise Conflict(_("Only a waiting call can ask for a callback."), code="not_waiting")
        if CallbackRequest.objects.filter(original_interaction=locked).exists():
            raise Conflict(_("A callback was already requested."), code="callback_exists")
        request = CallbackRequest.objects.create(
            public_id=uuid.uuid4(),
            original_interaction=locked,
            queue=task.queue,
            phone=number,
            requested_at=at,
        )
        task.is_callback = True
        task.save(update_fields=["is_callback"])
        interaction_end(interaction=locked, outcome=Outcome.CALLBACK, at=at, keep_routing=True)
        audit.record(
            action="contact_center.callback_requested",
            object_type="contact_center.interaction",
            object_id=str(locked.public_id),
            after={"phone": number, "queue": task.queue.code},
        )
    return request

"""Routing workflows (Twilio TaskRouter style) and their validation.

A workflow belongs to an entry queue. Its JSON definition:

    {
      "filters": [
        {"name": "VIP billing",
         "expression": "tier in ['gold', 'platinum'] and channel == 'voice'",
         "targets": [
           {"queue": "billing", "expression": "billing >= 4", "priority": 20, "timeout": 30},
           {"queue": "billing", "expression": "billing >= 2"}
         ]}
      ],
      "default_targets": [{"queue": "general"}],
      "strategy": "longest_idle",            # least_occupied | round_robin | preferred | best_skill
      "relaxation": [{"after_seconds": 30, "lower_by": 1}, {"after_seconds": 120, "drop_skills": true}],
      "offer_timeout_seconds": 15,
      "preferred_agent_days": 7,
      "closed": {"action": "voicemail"}      # callback | overflow (+ "queue": "...")
    }

Filters are tried in order; the first whose expression holds over the contact (channel, direction,
network, language, queue, tier, vip, loyalty, priority, customer_known, skills, attributes.<key>)
gives the targets, tried in order: each target waits ``timeout`` seconds, then the next is tried.
A target's expression is over the agent's skills (skill code → proficiency, 0 when missing).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from fedele.contact_center.models import Queue, RoutingWorkflow
from fedele.contact_center.services.routing_expressions import ExpressionError, compile_expression
from fedele.shared import audit, clock
from fedele.shared.errors import ValidationFailed


class Strategy(enum.StrEnum):
    LONGEST_IDLE = "longest_idle"
    LEAST_OCCUPIED = "least_occupied"
    ROUND_ROBIN = "round_robin"
    PREFERRED = "preferred"
    BEST_SKILL = "best_skill"


DEFAULT_STRATEGY = Strategy.LONGEST_IDLE
DEFAULT_OFFER_TIMEOUT = 15
DEFAULT_PREFERRED_DAYS = 7
CLOSED_ACTIONS = ("voicemail", "callback", "overflow")
_TOP_KEYS = {
    "filters",
    "default_targets",
    "strategy",
    "relaxation",
    "offer_timeout_seconds",
    "preferred_agent_days",
    "closed",
}


@dataclass(frozen=True, slots=True)
class Workflow:
    code: str
    filters: tuple[Mapping[str, Any], ...] = ()
    default_targets: tuple[Mapping[str, Any], ...] = ()
    strategy: str = DEFAULT_STRATEGY
    relaxation: list[dict[str, Any]] = field(default_factory=list)
    offer_timeout_seconds: int = DEFAULT_OFFER_TIMEOUT
    preferred_agent_days: int = DEFAULT_PREFERRED_DAYS
    closed: Mapping[str, Any] = field(default_factory=lambda: {"action": "voicemail"})

    def targets_for(self, context: Mapping[str, Any], *, queue_code: str) -> list[Mapping[str, Any]]:
        for routing_filter in self.filters:
            expression = str(routing_filter.get("expression", "") or "")
            if not expression.strip() or compile_expression(expression)(context, None):
                return list(routing_filter["targets"])
        return list(self.default_targets) or [{"queue": queue_code}]


def workflow_for_queue(queue: Queue) -> Workflow:
    """The queue's active workflow, or the default: the queue itself, longest idle, no relaxation."""
    row = RoutingWorkflow.objects.filter(queue=queue, active=True).first()
    if row is None:
        return Workflow(code="")
    definition = row.definition or {}
    return Workflow(
        code=row.code,
        filters=tuple(definition.get("filters", [])),
        default_targets=tuple(definition.get("default_targets", [])),
        strategy=definition.get("strategy", DEFAULT_STRATEGY),
        relaxation=list(definition.get("relaxation", [])),
        offer_timeout_seconds=int(definition.get("offer_timeout_seconds", DEFAULT_OFFER_TIMEOUT)),
        preferred_agent_days=int(definition.get("preferred_agent_days", DEFAULT_PREFERRED_DAYS)),
        closed=definition.get("closed", {"action": "voicemail"}),
    )


def _whole(value: Any, *, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def validate_definition(definition: Any) -> dict[str, Any]:
    """Every problem at once, each with the path where it is ('filters[0].targets[1].queue: …')."""
    problems: list[str] = []
    if not isinstance(definition, dict):
        raise ValidationFailed(
            _("The workflow must be a JSON object."),
            code="invalid_workflow",
            fields={"definition": _("Not an object.")},
        )
    for key in sorted(set(definition) - _TOP_KEYS):
        problems.append(_("%(key)s: unknown key.") % {"key": key})
    known_queues = set(Queue.objects.filter(active=True).values_list("code", flat=True))

    def check_expression(path: str, value: Any) -> None:
        if value in (None, ""):
            return
        if not isinstance(value, str):
            problems.append(_("%(path)s: must be text.") % {"path": path})
            return
        try:
            compile_expression(value)
        except ExpressionError as error:
            problems.append(f"{path}: {error.message}")

    def check_targets(path: str, targets: Any) -> None:
        if not isinstance(targets, list) or not targets:
            problems.append(_("%(path)s: needs at least one target.") % {"path": path})
            return
        for index, target in enumerate(targets):
            where = f"{path}[{index}]"
            if not isinstance(target, dict):
                problems.append(_("%(path)s: must be an object.") % {"path": where})
                continue
            for key in sorted(set(target) - {"queue", "expression", "priority", "timeout"}):
                problems.append(_("%(path)s.%(key)s: unknown key.") % {"path": where, "key": key})
            if target.get("queue") not in known_queues:
                problems.append(
                    _("%(path)s.queue: unknown queue %(queue)s.")
                    % {"path": where, "queue": target.get("queue")}
                )
            check_expression(f"{where}.expression", target.get("expression"))
            if "priority" in target and not _whole(target["priority"], low=-1000, high=1000):
                problems.append(_("%(path)s.priority: a whole number from -1000 to 1000.") % {"path": where})
            if target.get("timeout") is not None and not _whole(target["timeout"], low=1, high=86400):
                problems.append(_("%(path)s.timeout: seconds from 1 to 86400.") % {"path": where})

    filters = definition.get("filters", [])
    if not isinstance(filters, list):
        problems.append(_("filters: must be a list."))
        filters = []
    for index, routing_filter in enumerate(filters):
        where = f"filters[{index}]"
        if not isinstance(routing_filter, dict):
            problems.append(_("%(path)s: must be an object.") % {"path": where})
            continue
        for key in sorted(set(routing_filter) - {"name", "expression", "targets"}):
            problems.append(_("%(path)s.%(key)s: unknown key.") % {"path": where, "key": key})
        check_expression(f"{where}.expression", routing_filter.get("expression"))
        check_targets(f"{where}.targets", routing_filter.get("targets"))
    if "default_targets" in definition:
        check_targets("default_targets", definition["default_targets"])
    strategy = definition.get("strategy", DEFAULT_STRATEGY)
    if strategy not in Strategy.__members__.values():
        problems.append(
            _("strategy: one of %(choices)s.") % {"choices": ", ".join(s.value for s in Strategy)}
        )
    relaxation = definition.get("relaxation", [])
    if not isinstance(relaxation, list):
        problems.append(_("relaxation: must be a list."))
        relaxation = []
    previous = -1
    for index, ring in enumerate(relaxation):
        where = f"relaxation[{index}]"
        if not isinstance(ring, dict):
            problems.append(_("%(path)s: must be an object.") % {"path": where})
            continue
        after = ring.get("after_seconds")
        if not isinstance(after, int) or not _whole(after, low=0, high=86400):
            problems.append(_("%(path)s.after_seconds: seconds from 0 to 86400.") % {"path": where})
        elif after <= previous:
            problems.append(
                _("%(path)s.after_seconds: rings must widen over time (increasing).") % {"path": where}
            )
        else:
            previous = after
        if "lower_by" in ring and not _whole(ring["lower_by"], low=0, high=4):
            problems.append(_("%(path)s.lower_by: a whole number from 0 to 4.") % {"path": where})
        if "drop_skills" in ring and not isinstance(ring["drop_skills"], bool):
            problems.append(_("%(path)s.drop_skills: true or false.") % {"path": where})
        for key in sorted(set(ring) - {"after_seconds", "lower_by", "drop_skills"}):
            problems.append(_("%(path)s.%(key)s: unknown key.") % {"path": where, "key": key})
    if not _whole(definition.get("offer_timeout_seconds", DEFAULT_OFFER_TIMEOUT), low=5, high=600):
        problems.append(_("offer_timeout_seconds: seconds from 5 to 600."))
    if not _whole(definition.get("preferred_agent_days", DEFAULT_PREFERRED_DAYS), low=0, high=365):
        problems.append(_("preferred_agent_days: days from 0 to 365."))
    closed = definition.get("closed", {"action": "voicemail"})
    if not isinstance(closed, dict) or closed.get("action") not in CLOSED_ACTIONS:
        problems.append(_("closed.action: one of voicemail, callback, overflow."))
    elif closed["action"] == "overflow" and closed.get("queue") not in known_queues:
        problems.append(_("closed.queue: an overflow needs an existing queue."))
    if problems:
        raise ValidationFailed(
            _("The workflow has %(count)d problem(s).") % {"count": len(problems)},
            code="invalid_workflow",
            fields={"definition": problems},
        )
    return definition


def workflow_save(
    *, queue: Queue, code: str, name: str, definition: Any, active: bool = True, actor_id: int | None = None
) -> RoutingWorkflow:
    """Create or replace the queue's workflow after validation (nothing is written on a problem)."""
    definition = validate_definition(definition)
    code = (code or "").strip()
    name = (name or "").strip()
    problems: dict[str, str] = {}
    if not code or len(code) > 40 or not all(c.isalnum() or c in "-_" for c in code):
        problems["code"] = _("Letters, digits, - and _ (1-40).")
    if not name or len(name) > 120:
        problems["name"] = _("A name of 1-120 characters.")
    if problems:
        raise ValidationFailed(_("The workflow cannot be saved."), code="invalid_workflow", fields=problems)
    with transaction.atomic():
        existing = RoutingWorkflow.objects.select_for_update().filter(queue=queue).first()
        clash = RoutingWorkflow.objects.filter(code=code).exclude(queue=queue).exists()
        if clash:
            raise ValidationFailed(
                _("Another queue's workflow has this code."), code="duplicate_code", fields={"code": code}
            )
        now = clock.now()
        if existing is None:
            workflow = RoutingWorkflow.objects.create(
                queue=queue, code=code, name=name, definition=definition, active=active, updated_at=now
            )
            before: dict[str, Any] | None = None
        else:
            before = {"code": existing.code, "definition": existing.definition, "active": existing.active}
            existing.code = code
            existing.name = name
            existing.definition = definition
            existing.active = active
            existing.version += 1
            existing.updated_at = now
            existing.save()
            workflow = existing
        audit.record(
            action="contact_center.workflow_saved",
            object_type="contact_center.workflow",
            object_id=workflow.code,
            before=before,
            after={"code": workflow.code, "definition": workflow.definition, "active": workflow.active},
            actor_id=actor_id,
        )
    return workflow

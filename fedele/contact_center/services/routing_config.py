"""Routing settings: queues, skills, agents' skills (proficiency 1–5), capacity per channel and
queue membership. Validated, atomic and audited; a refused change writes nothing."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from fedele.contact_center.models import Agent, AgentSkill, Channel, Queue, Skill
from fedele.shared import audit
from fedele.shared.errors import NotFound, ValidationFailed

_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_CAPACITY = 50


def _code_problem(code: str) -> str | None:
    return None if _CODE.match(code or "") else _("Lower-case letters, digits, - and _ (1-40).")


def _names(data: Mapping[str, Any], problems: dict[str, str]) -> tuple[str, str]:
    name_it = str(data.get("name_it", "") or "").strip()
    name_en = str(data.get("name_en", "") or "").strip()
    for key, value in (("name_it", name_it), ("name_en", name_en)):
        if not value or len(value) > 80:
            problems[key] = _("A name of 1-80 characters.")
    return name_it, name_en


def _whole(
    data: Mapping[str, Any], key: str, default: int, low: int, high: int, problems: dict[str, str]
) -> int:
    raw = data.get(key, default)
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        problems[key] = _("A whole number.")
        return default
    if not low <= value <= high:
        problems[key] = _("From %(low)d to %(high)d.") % {"low": low, "high": high}
    return value


def queue_save(*, data: Mapping[str, Any], queue: Queue | None = None, actor_id: int | None = None) -> Queue:
    """Create or update a queue: channels, business calendar, service level, wrap-up, overflow."""
    from fedele.support.facade import calendar_exists

    problems: dict[str, str] = {}
    code = str(data.get("code", queue.code if queue else "") or "").strip()
    if (problem := _code_problem(code)) is not None:
        problems["code"] = problem
    name_it, name_en = _names(data, problems)
    channels = [str(c) for c in (data.get("channels") or [])]
    if not channels or any(c not in Channel.values for c in channels):
        problems["channels"] = _("Choose at least one known channel.")
    calendar_code = str(data.get("calendar_code", "") or "").strip()
    if calendar_code and not calendar_exists(calendar_code):
        problems["calendar_code"] = _("No business calendar with this name.")
    service_level_seconds = _whole(data, "service_level_seconds", 20, 1, 3600, problems)
    service_level_target = _whole(data, "service_level_target", 80, 1, 100, problems)
    wrap_up_seconds = _whole(data, "wrap_up_seconds", 30, 0, 3600, problems)
    max_wait_seconds = _whole(data, "max_wait_seconds", 0, 0, 86400, problems)
    priority = _whole(data, "priority", 0, -100, 100, problems)
    overflow_code = str(data.get("overflow_queue", "") or "").strip()
    overflow = None
    if overflow_code:
        overflow = Queue.objects.filter(code=overflow_code).first()
        if overflow is None or (queue is not None and overflow.pk == queue.pk) or overflow_code == code:
            problems["overflow_queue"] = _("Choose another existing queue.")
    if max_wait_seconds and overflow is None and "overflow_queue" not in problems:
        problems["overflow_queue"] = _("A maximum wait needs a queue to overflow to.")
    clash = Queue.objects.filter(code=code)
    if queue is not None:
        clash = clash.exclude(pk=queue.pk)
    if code and clash.exists():
        problems["code"] = _("Another queue has this code.")
    if problems:
        raise ValidationFailed(_("The queue cannot be saved."), code="invalid_queue", fields=problems)
    values = {
        "code": code,
        "name_it": name_it,
        "name_en": name_en,
        "channels": channels,
        "calendar_code": calendar_code,
        "service_level_seconds": service_level_seconds,
        "service_level_target": service_level_target,
        "wrap_up_seconds": wrap_up_seconds,
        "max_wait_seconds": max_wait_seconds,
        "priority": priority,
        "active": bool(data.get("active", True)),
    }
    with transaction.atomic():
        before = None
        if queue is None:
            queue = Queue.objects.create(overflow_queue=overflow, **values)
        else:
            queue = Queue.objects.select_for_update().get(pk=queue.pk)
            before = {key: getattr(queue, key) for key in values} | {
                "overflow_queue": queue.overflow_queue_id
            }
            for key, value in values.items():
                setattr(queue, key, value)
            queue.overflow_queue = overflow
            queue.save()
        audit.record(
            action="contact_center.queue_saved",
            object_type="contact_center.queue",
            object_id=str(queue.public_id),
            before=before,
            after=values | {"overflow_queue": overflow.pk if overflow else None},
            actor_id=actor_id,
        )
    return queue


def skill_save(*, data: Mapping[str, Any], skill: Skill | None = None, actor_id: int | None = None) -> Skill:
    problems: dict[str, str] = {}
    code = str(data.get("code", skill.code if skill else "") or "").strip()
    if (problem := _code_problem(code)) is not None:
        problems["code"] = problem
    name_it, name_en = _names(data, problems)
    clash = Skill.objects.filter(code=code)
    if skill is not None:
        clash = clash.exclude(pk=skill.pk)
    if code and clash.exists():
        problems["code"] = _("Another skill has this code.")
    if problems:
        raise ValidationFailed(_("The skill cannot be saved."), code="invalid_skill", fields=problems)
    with transaction.atomic():
        if skill is None:
            skill = Skill.objects.create(code=code, name_it=name_it, name_en=name_en)
        else:
            skill.code, skill.name_it, skill.name_en = code, name_it, name_en
            skill.save()
        audit.record(
            action="contact_center.skill_saved",
            object_type="contact_center.skill",
            object_id=skill.code,
            after={"code": code, "name_it": name_it, "name_en": name_en},
            actor_id=actor_id,
        )
    return skill


def agent_profile_set(
    *,
    agent: Agent,
    skills: Mapping[str, Any],
    capacity: Mapping[str, Any],
    queue_codes: Iterable[str],
    actor_id: int | None = None,
) -> Agent:
    """Replace an agent's skills (code → proficiency 1–5), capacity per channel (0–50; a missing
    channel keeps the default) and queues, all at once or not at all."""
    problems: dict[str, list[str]] = {}
    levels: dict[str, int] = {}
    for code, raw in skills.items():
        try:
            level = int(str(raw).strip())
        except ValueError:
            level = 0
        if not 1 <= level <= 5:
            problems.setdefault("skills", []).append(
                _("%(skill)s: the proficiency must be from 1 to 5.") % {"skill": code}
            )
        levels[str(code)] = level
    known_skills = {s.code: s for s in Skill.objects.filter(code__in=list(levels))}
    for code in levels:
        if code not in known_skills:
            problems.setdefault("skills", []).append(_("Unknown skill %(skill)s.") % {"skill": code})
    limits: dict[str, int] = {}
    for channel, raw in capacity.items():
        if raw in (None, ""):
            continue
        if channel not in Channel.values:
            problems.setdefault("capacity", []).append(
                _("Unknown channel %(channel)s.") % {"channel": channel}
            )
            continue
        try:
            value = int(str(raw).strip())
        except ValueError:
            value = -1
        if not 0 <= value <= MAX_CAPACITY:
            problems.setdefault("capacity", []).append(
                _("%(channel)s: from 0 to %(limit)d at once.") % {"channel": channel, "limit": MAX_CAPACITY}
            )
        limits[channel] = value
    codes = sorted({str(c).strip() for c in queue_codes if str(c).strip()})
    queues = list(Queue.objects.filter(code__in=codes))
    if len(queues) != len(codes):
        missing = sorted(set(codes) - {q.code for q in queues})
        problems.setdefault("queues", []).append(
            _("Unknown queues: %(codes)s.") % {"codes": ", ".join(missing)}
        )
    if problems:
        raise ValidationFailed(
            _("The agent's profile cannot be saved."), code="invalid_agent_profile", fields=problems
        )
    with transaction.atomic():
        locked = Agent.objects.select_for_update().filter(pk=agent.pk).first()
        if locked is None:
            raise NotFound(_("This agent does not exist."), code="agent_not_found")
        before = {
            "skills": dict(locked.skills.values_list("skill__code", "proficiency")),
            "capacity": locked.capacity,
            "queues": sorted(locked.queues.values_list("code", flat=True)),
        }
        AgentSkill.objects.filter(agent=locked).exclude(skill__code__in=list(levels)).delete()
        for code, level in levels.items():
            AgentSkill.objects.update_or_create(
                agent=locked, skill=known_skills[code], defaults={"proficiency": level}
            )
        locked.capacity = limits
        locked.save(update_fields=["capacity"])
        locked.queues.set(queues)
        audit.record(
            action="contact_center.agent_profile_saved",
            object_type="contact_center.agent",
            object_id=str(locked.public_id),
            before=before,
            after={"skills": levels, "capacity": limits, "queues": codes},
            actor_id=actor_id,
        )
    return locked

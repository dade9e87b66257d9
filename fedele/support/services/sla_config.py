"""Settings of the SLA/automation area: business calendars, SLA policies (targets, escalations),
triggers, time rules and macros. Every write checks support.manage_support, validates everything
before writing (a refused save changes nothing), runs in one transaction and is audited."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time
from typing import Any, TypeVar

from django.db import models, transaction
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fedele.support.calendars import (
    clock_cache_clear,
    validate_holiday_region,
    validate_hours,
    validate_timezone,
)
from fedele.support.models import (
    BusinessCalendar,
    CalendarHoliday,
    CalendarHours,
    EscalationRule,
    Macro,
    Priority,
    SlaPolicy,
    SlaTarget,
    StatusKind,
    Ticket,
    TimeRule,
    Trigger,
)
from fedele.support.selectors.sla import CONDITION_KEYS
from fedele.support.services.automations import (
    TIME_RULE_SINCE_FIELDS,
    TRIGGER_EVENTS,
    validate_actions,
    validate_conditions,
)

MANAGE = "support.manage_support"
ESCALATION_ACTIONS = ("assign_team", "assign_user", "raise_priority", "notify_supervisors", "notify_user")
METRICS = ("first_response", "next_response", "resolution")
MAX_TARGET_MINUTES = 525_600  # a year of minutes: anything above is a typo
ModelT = TypeVar("ModelT", bound=models.Model)


def require_manager(actor: Actor) -> None:
    if not (actor.is_internal and actor.can(MANAGE)):
        raise PermissionDenied(_("You may not configure support."), code="permission_denied")


def get_by_public_id(model: type[ModelT], public_id: str | uuid.UUID) -> ModelT:
    try:
        key = uuid.UUID(str(public_id))
    except ValueError as error:
        raise NotFound(_("Not found."), code="not_found") from error
    try:
        return model._default_manager.get(public_id=key)
    except model.DoesNotExist as error:  # type: ignore[attr-defined]
        raise NotFound(_("Not found."), code="not_found") from error


def _name(value: str, errors: dict[str, str], max_length: int = 120) -> str:
    value = (value or "").strip()
    if not value:
        errors["name"] = _("A name is required.")
    elif len(value) > max_length:
        errors["name"] = _("The name is too long.")
    return value


def _raise(errors: Mapping[str, str], message: str) -> None:
    if errors:
        raise ValidationFailed(message, code="validation_error", fields=dict(errors))


# -- calendars -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HolidayIn:
    name: str
    day: date
    recurring: bool = False


def calendar_save(
    *,
    actor: Actor,
    calendar: BusinessCalendar | None = None,
    name: str,
    timezone: str = "Europe/Rome",
    holiday_country: str = "IT",
    holiday_subdivision: str = "",
    is_default: bool = False,
    hours: Sequence[tuple[int, time, time]],
    holidays: Sequence[HolidayIn] = (),
) -> BusinessCalendar:
    """Create (calendar=None) or replace a calendar with its weekly hours and own holidays."""
    require_manager(actor)
    errors: dict[str, str] = {}
    name = _name(name, errors, 80)
    holiday_country = (holiday_country or "").strip().upper()
    holiday_subdivision = (holiday_subdivision or "").strip().upper()
    duplicate = BusinessCalendar.objects.filter(name=name)
    if calendar is not None:
        duplicate = duplicate.exclude(pk=calendar.pk)
    if name and duplicate.exists():
        errors["name"] = _("Another calendar has this name.")
    for position, holiday in enumerate(holidays):
        if not holiday.name.strip():
            errors[f"holidays.{position}"] = _("Every holiday needs a name.")
    _raise(errors, _("The calendar is not valid."))
    validate_timezone(timezone)
    validate_holiday_region(holiday_country, holiday_subdivision)
    validate_hours(hours)
    if calendar is not None and calendar.is_default and not is_default:
        raise ValidationFailed(
            _("Choose another default calendar instead of unsetting this one."),
            code="default_calendar_required",
            fields={"is_default": _("One calendar must be the default.")},
        )
    with transaction.atomic():
        before = _calendar_snapshot(calendar) if calendar is not None else None
        if is_default:
            others = BusinessCalendar.objects.select_for_update().filter(is_default=True)
            if calendar is not None:
                others = others.exclude(pk=calendar.pk)
            others.update(is_default=False)
        if calendar is None:
            calendar = BusinessCalendar(created_at=clock.now())
        else:
            calendar = BusinessCalendar.objects.select_for_update().get(pk=calendar.pk)
        calendar.name = name
        calendar.timezone = timezone
        calendar.holiday_country = holiday_country
        calendar.holiday_subdivision = holiday_subdivision
        calendar.is_default = is_default
        calendar.save()
        CalendarHours.objects.filter(calendar=calendar).delete()
        CalendarHours.objects.bulk_create(
            CalendarHours(calendar=calendar, weekday=weekday, starts_at=starts_at, ends_at=ends_at)
            for weekday, starts_at, ends_at in sorted(hours)
        )
        CalendarHoliday.objects.filter(calendar=calendar).delete()
        CalendarHoliday.objects.bulk_create(
            CalendarHoliday(calendar=calendar, name=h.name.strip()[:120], day=h.day, recurring=h.recurring)
            for h in holidays
        )
        audit.record(
            action="support.calendar_saved",
            object_type="support.calendar",
            object_id=str(calendar.public_id),
            before=before,
            after=_calendar_snapshot(calendar),
            actor_id=actor.user_id,
        )
        transaction.on_commit(clock_cache_clear)
    clock_cache_clear()
    return calendar


def _calendar_snapshot(calendar: BusinessCalendar) -> dict[str, Any]:
    return {
        "name": calendar.name,
        "timezone": calendar.timezone,
        "holiday_country": calendar.holiday_country,
        "holiday_subdivision": calendar.holiday_subdivision,
        "is_default": calendar.is_default,
        "hours": [
            [row.weekday, row.starts_at.isoformat(), row.ends_at.isoformat()] for row in calendar.hours.all()
        ],
        "holidays": [[row.name, row.day.isoformat(), row.recurring] for row in calendar.holidays.all()],
    }


def calendar_delete(*, actor: Actor, calendar: BusinessCalendar) -> None:
    require_manager(actor)
    if calendar.is_default:
        raise Conflict(_("The default calendar cannot be deleted."), code="calendar_is_default")
    if SlaPolicy.objects.filter(calendar=calendar).exists():
        raise Conflict(_("SLA policies use this calendar."), code="calendar_in_use")
    with transaction.atomic():
        audit.record(
            action="support.calendar_deleted",
            object_type="support.calendar",
            object_id=str(calendar.public_id),
            before=_calendar_snapshot(calendar),
            actor_id=actor.user_id,
        )
        calendar.delete()
    clock_cache_clear()


# -- SLA policies ----------------------------------------------------------------------------------


def _clean_conditions(conditions: Mapping[str, Any], errors: dict[str, str]) -> dict[str, list[str]]:
    cleaned: dict[str, list[str]] = {}
    for key, values in (conditions or {}).items():
        if key not in CONDITION_KEYS:
            errors[f"conditions.{key}"] = _("Unknown condition.")
            continue
        if isinstance(values, str):
            values = values.split(",")
        items = [str(item).strip() for item in values or [] if str(item).strip()]
        if key == "priorities" and set(items) - set(Priority.values):
            errors["conditions.priorities"] = _("Unknown priority.")
        if items:
            cleaned[key] = items
    return cleaned


def _clean_targets(
    targets: Mapping[str, Mapping[str, Any]], errors: dict[str, str]
) -> dict[str, dict[str, int | None]]:
    cleaned: dict[str, dict[str, int | None]] = {}
    for priority, values in (targets or {}).items():
        if priority not in Priority.values:
            errors[f"targets.{priority}"] = _("Unknown priority.")
            continue
        row: dict[str, int | None] = {}
        for metric in METRICS:
            raw = values.get(f"{metric}_minutes")
            if raw in (None, ""):
                row[metric] = None
                continue
            try:
                minutes = int(raw)
            except (TypeError, ValueError):
                errors[f"targets.{priority}.{metric}"] = _("Enter whole minutes.")
                continue
            if not 0 < minutes <= MAX_TARGET_MINUTES:
                errors[f"targets.{priority}.{metric}"] = _("Enter between 1 and 525600 minutes.")
                continue
            row[metric] = minutes
        cleaned[priority] = row
    return cleaned


def _clean_escalations(
    escalations: Sequence[Mapping[str, Any]], errors: dict[str, str]
) -> list[dict[str, Any]]:
    cleaned = []
    for position, rule in enumerate(escalations or []):
        metric = str(rule.get("metric", "") or "")
        when = str(rule.get("when", ""))
        actions = list(rule.get("actions") or [])
        if metric and metric not in METRICS:
            errors[f"escalations.{position}"] = _("Unknown metric.")
        elif when not in EscalationRule.When.values:
            errors[f"escalations.{position}"] = _("Choose warning or breach.")
        elif not actions or any(str(a.get("type")) not in ESCALATION_ACTIONS for a in actions):
            errors[f"escalations.{position}"] = _("Unknown or missing escalation action.")
        else:
            cleaned.append({"metric": metric, "when": when, "actions": [dict(a) for a in actions]})
    return cleaned


def policy_save(
    *,
    actor: Actor,
    policy: SlaPolicy | None = None,
    name: str,
    calendar_public_id: str,
    position: int = 0,
    active: bool = True,
    conditions: Mapping[str, Any] | None = None,
    warn_before_minutes: int = 30,
    targets: Mapping[str, Mapping[str, Any]],
    escalations: Sequence[Mapping[str, Any]] = (),
) -> SlaPolicy:
    """Create or replace a policy with its targets per priority and its escalation rules. Running
    clocks keep their targets until their ticket is re-evaluated (a priority or type change)."""
    require_manager(actor)
    errors: dict[str, str] = {}
    name = _name(name, errors)
    try:
        calendar = get_by_public_id(BusinessCalendar, calendar_public_id)
    except NotFound:
        errors["calendar"] = _("Choose a calendar.")
    if not 0 <= int(position) <= 32767:
        errors["position"] = _("Enter a position between 0 and 32767.")
    if not 0 <= int(warn_before_minutes) <= MAX_TARGET_MINUTES:
        errors["warn_before_minutes"] = _("Enter between 0 and 525600 minutes.")
    clean_conditions = _clean_conditions(conditions or {}, errors)
    clean_targets = _clean_targets(targets, errors)
    clean_escalations = _clean_escalations(escalations, errors)
    _raise(errors, _("The SLA policy is not valid."))
    with transaction.atomic():
        before = _policy_snapshot(policy) if policy is not None else None
        if policy is None:
            policy = SlaPolicy(created_at=clock.now())
        else:
            policy = SlaPolicy.objects.select_for_update().get(pk=policy.pk)
        policy.name = name
        policy.calendar = calendar
        policy.position = int(position)
        policy.active = active
        policy.conditions = clean_conditions
        policy.warn_before_minutes = int(warn_before_minutes)
        policy.save()
        SlaTarget.objects.filter(policy=policy).delete()
        SlaTarget.objects.bulk_create(
            SlaTarget(
                policy=policy,
                priority=priority,
                first_response_minutes=row["first_response"],
                next_response_minutes=row["next_response"],
                resolution_minutes=row["resolution"],
            )
            for priority, row in clean_targets.items()
        )
        EscalationRule.objects.filter(policy=policy).delete()
        EscalationRule.objects.bulk_create(
            EscalationRule(policy=policy, **rule) for rule in clean_escalations
        )
        audit.record(
            action="support.sla_policy_saved",
            object_type="support.sla_policy",
            object_id=str(policy.public_id),
            before=before,
            after=_policy_snapshot(policy),
            actor_id=actor.user_id,
        )
    return policy


def _policy_snapshot(policy: SlaPolicy) -> dict[str, Any]:
    return {
        "name": policy.name,
        "position": policy.position,
        "active": policy.active,
        "conditions": policy.conditions,
        "calendar": str(policy.calendar.public_id),
        "warn_before_minutes": policy.warn_before_minutes,
        "targets": {
            t.priority: [t.first_response_minutes, t.next_response_minutes, t.resolution_minutes]
            for t in policy.targets.all()
        },
        "escalations": [[e.metric, e.when, e.actions] for e in policy.escalations.all()],
    }


def policy_delete(*, actor: Actor, policy: SlaPolicy) -> None:
    require_manager(actor)
    with transaction.atomic():
        audit.record(
            action="support.sla_policy_deleted",
            object_type="support.sla_policy",
            object_id=str(policy.public_id),
            before=_policy_snapshot(policy),
            actor_id=actor.user_id,
        )
        policy.delete()  # clocks keep their due times (policy set to null)


# -- triggers, time rules, macros ------------------------------------------------------------------


def trigger_save(
    *,
    actor: Actor,
    trigger: Trigger | None = None,
    name: str,
    event: str,
    conditions: Sequence[Mapping[str, Any]] = (),
    actions: Sequence[Mapping[str, Any]],
    position: int = 0,
    active: bool = True,
) -> Trigger:
    require_manager(actor)
    errors: dict[str, str] = {}
    name = _name(name, errors)
    if event not in TRIGGER_EVENTS:
        errors["event"] = _("Unknown event.")
    if not actions:
        errors["actions"] = _("Add at least one action.")
    _raise(errors, _("The trigger is not valid."))
    validate_conditions(conditions)
    validate_actions(actions)
    with transaction.atomic():
        before = (
            _plain(trigger, ("name", "event", "conditions", "actions", "position", "active"))
            if trigger
            else None
        )
        trigger = (
            Trigger.objects.select_for_update().get(pk=trigger.pk)
            if trigger
            else Trigger(created_at=clock.now())
        )
        trigger.name = name
        trigger.event = event
        trigger.conditions = [dict(c) for c in conditions]
        trigger.actions = [dict(a) for a in actions]
        trigger.position = int(position)
        trigger.active = active
        trigger.save()
        audit.record(
            action="support.trigger_saved",
            object_type="support.trigger",
            object_id=str(trigger.public_id),
            before=before,
            after=_plain(trigger, ("name", "event", "conditions", "actions", "position", "active")),
            actor_id=actor.user_id,
        )
    return trigger


def time_rule_save(
    *,
    actor: Actor,
    rule: TimeRule | None = None,
    name: str,
    status_kind: str,
    since_field: str,
    hours: int,
    business_hours: bool = False,
    conditions: Sequence[Mapping[str, Any]] = (),
    actions: Sequence[Mapping[str, Any]],
    active: bool = True,
) -> TimeRule:
    require_manager(actor)
    errors: dict[str, str] = {}
    name = _name(name, errors)
    if status_kind not in StatusKind.values:
        errors["status_kind"] = _("Unknown status kind.")
    if since_field not in TIME_RULE_SINCE_FIELDS:
        errors["since_field"] = _("Unknown reference time.")
    if not 1 <= int(hours) <= 24 * 366:
        errors["hours"] = _("Enter between 1 and 8784 hours.")
    if not actions:
        errors["actions"] = _("Add at least one action.")
    _raise(errors, _("The time rule is not valid."))
    validate_conditions(conditions)
    validate_actions(actions)
    fields = (
        "name",
        "status_kind",
        "since_field",
        "hours",
        "business_hours",
        "conditions",
        "actions",
        "active",
    )
    with transaction.atomic():
        before = _plain(rule, fields) if rule else None
        rule = (
            TimeRule.objects.select_for_update().get(pk=rule.pk) if rule else TimeRule(created_at=clock.now())
        )
        rule.name = name
        rule.status_kind = status_kind
        rule.since_field = since_field
        rule.hours = int(hours)
        rule.business_hours = business_hours
        rule.conditions = [dict(c) for c in conditions]
        rule.actions = [dict(a) for a in actions]
        rule.active = active
        rule.save()
        audit.record(
            action="support.time_rule_saved",
            object_type="support.time_rule",
            object_id=str(rule.public_id),
            before=before,
            after=_plain(rule, fields),
            actor_id=actor.user_id,
        )
    return rule


def macro_save(
    *,
    actor: Actor,
    macro: Macro | None = None,
    name: str,
    team_public_id: str | None = None,
    reply_it: str = "",
    reply_en: str = "",
    reply_is_internal: bool = False,
    actions: Sequence[Mapping[str, Any]] = (),
    active: bool = True,
) -> Macro:
    require_manager(actor)
    errors: dict[str, str] = {}
    name = _name(name, errors)
    team_id: int | None = None
    if team_public_id:
        team_model: Any = Ticket._meta.get_field("team").related_model
        try:
            team_id = (
                team_model.objects.filter(public_id=uuid.UUID(str(team_public_id)))
                .values_list("pk", flat=True)
                .first()
            )
        except ValueError:
            team_id = None
        if team_id is None:
            errors["team"] = _("Unknown team.")
    if not (reply_it.strip() or reply_en.strip() or actions):
        errors["reply_it"] = _("Write a reply or add an action.")
    _raise(errors, _("The macro is not valid."))
    validate_actions(actions)
    fields = ("name", "team_id", "reply_it", "reply_en", "reply_is_internal", "actions", "active")
    with transaction.atomic():
        before = _plain(macro, fields) if macro else None
        macro = Macro.objects.select_for_update().get(pk=macro.pk) if macro else Macro(created_at=clock.now())
        macro.name = name
        macro.team_id = team_id
        macro.reply_it = reply_it
        macro.reply_en = reply_en
        macro.reply_is_internal = reply_is_internal
        macro.actions = [dict(a) for a in actions]
        macro.active = active
        macro.save()
        audit.record(
            action="support.macro_saved",
            object_type="support.macro",
            object_id=str(macro.public_id),
            before=before,
            after=_plain(macro, fields),
            actor_id=actor.user_id,
        )
    return macro


def automation_delete(*, actor: Actor, item: Trigger | TimeRule | Macro) -> None:
    require_manager(actor)
    with transaction.atomic():
        audit.record(
            action=f"support.{type(item).__name__.lower()}_deleted",
            object_type=f"support.{type(item).__name__.lower()}",
            object_id=str(item.public_id),
            before={"name": item.name},
            actor_id=actor.user_id,
        )
        item.delete()


def _plain(item: models.Model | None, fields: Sequence[str]) -> dict[str, Any]:
    return {field: getattr(item, field) for field in fields} if item is not None else {}

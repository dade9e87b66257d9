"""Support API: business calendars, SLA policies, triggers, time rules, macros (support.manage_support),
the SLA report (support.view_support_reports) and a due-time calculator for integrators."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from django.db.models import Model
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from fedele.accounts.facade import Actor, actor_for
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import PermissionDenied, ValidationFailed
from fedele.support.calendars import clock_for
from fedele.support.models import BusinessCalendar, Macro, SlaPolicy, TimeRule, Trigger
from fedele.support.selectors import reports
from fedele.support.services import sla_config
from fedele.support.services.sla_config import HolidayIn

router = Router(tags=["support: SLA and automations"])
MAX_DUE_MINUTES = 525_600


def _manager(request: HttpRequest, scope: str = "write") -> Actor:
    require_scope(request, scope)
    actor = actor_for(request.user)
    sla_config.require_manager(actor)
    return actor


def _internal_reader(request: HttpRequest) -> Actor:
    require_scope(request, "read")
    actor = actor_for(request.user)
    if not actor.is_internal:
        raise PermissionDenied(_("Only staff may use this endpoint."), code="permission_denied")
    return actor


# schemas -----------------------------------------------------------------------------------------


class HoursSchema(StrictSchema):
    weekday: int = Field(..., ge=0, le=6)
    starts_at: time
    ends_at: time


class HolidaySchema(StrictSchema):
    name: str = Field(..., min_length=1, max_length=120)
    day: date
    recurring: bool = False


class CalendarIn(StrictSchema):
    name: str = Field(..., max_length=80)
    timezone: str = Field("Europe/Rome", max_length=64)
    holiday_country: str = Field("IT", max_length=2)
    holiday_subdivision: str = Field("", max_length=8)
    is_default: bool = False
    hours: list[HoursSchema] = Field(..., max_length=70)
    holidays: list[HolidaySchema] = Field(default_factory=list, max_length=500)


class CalendarOut(Schema):
    id: UUID
    name: str
    timezone: str
    holiday_country: str
    holiday_subdivision: str
    is_default: bool
    hours: list[HoursSchema]
    holidays: list[HolidaySchema]


class DueOut(Schema):
    start: datetime
    minutes: int
    due_at: datetime
    due_at_local: datetime
    timezone: str


class TargetIn(StrictSchema):
    first_response_minutes: int | None = Field(None, ge=1, le=MAX_DUE_MINUTES)
    next_response_minutes: int | None = Field(None, ge=1, le=MAX_DUE_MINUTES)
    resolution_minutes: int | None = Field(None, ge=1, le=MAX_DUE_MINUTES)


class EscalationIn(StrictSchema):
    metric: Literal["", "first_response", "next_response", "resolution"] = ""
    when: Literal["warning", "breach"]
    actions: list[dict[str, Any]] = Field(..., min_length=1, max_length=10)


class PolicyIn(StrictSchema):
    name: str = Field(..., max_length=120)
    calendar_id: UUID
    position: int = Field(0, ge=0, le=32767)
    active: bool = True
    conditions: dict[str, list[str]] = Field(default_factory=dict)
    warn_before_minutes: int = Field(30, ge=0, le=MAX_DUE_MINUTES)
    targets: dict[str, TargetIn]
    escalations: list[EscalationIn] = Field(default_factory=list, max_length=50)


class PolicyOut(Schema):
    id: UUID
    name: str
    calendar_id: UUID
    position: int
    active: bool
    conditions: dict[str, Any]
    warn_before_minutes: int
    targets: dict[str, dict[str, int | None]]
    escalations: list[dict[str, Any]]


class TriggerIn(StrictSchema):
    name: str = Field(..., max_length=120)
    event: str = Field(..., max_length=24)
    conditions: list[dict[str, Any]] = Field(default_factory=list, max_length=50)
    actions: list[dict[str, Any]] = Field(..., max_length=50)
    position: int = Field(0, ge=0, le=32767)
    active: bool = True


class TriggerOut(Schema):
    id: UUID
    name: str
    event: str
    conditions: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    position: int
    active: bool
    run_count: int


class TimeRuleIn(StrictSchema):
    name: str = Field(..., max_length=120)
    status_kind: str = Field(..., max_length=16)
    since_field: str = Field("updated_at", max_length=32)
    hours: int = Field(..., ge=1, le=24 * 366)
    business_hours: bool = False
    conditions: list[dict[str, Any]] = Field(default_factory=list, max_length=50)
    actions: list[dict[str, Any]] = Field(..., max_length=50)
    active: bool = True


class TimeRuleOut(Schema):
    id: UUID
    name: str
    status_kind: str
    since_field: str
    hours: int
    business_hours: bool
    conditions: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    active: bool


class MacroIn(StrictSchema):
    name: str = Field(..., max_length=120)
    team_id: UUID | None = None
    reply_it: str = Field("", max_length=20000)
    reply_en: str = Field("", max_length=20000)
    reply_is_internal: bool = False
    actions: list[dict[str, Any]] = Field(default_factory=list, max_length=50)
    active: bool = True


class MacroOut(Schema):
    id: UUID
    name: str
    team_id: UUID | None
    reply_it: str
    reply_en: str
    reply_is_internal: bool
    actions: list[dict[str, Any]]
    active: bool
    usage_count: int


class MetricFiguresOut(Schema):
    fulfilled: int
    on_time: int
    attainment_percent: Decimal | None
    breaches: int


class ReportRowOut(Schema):
    key: str
    label: str
    metrics: dict[str, MetricFiguresOut]
    average_first_response_minutes: Decimal | None


class ReportOut(Schema):
    start: date
    end: date
    group_by: str
    rows: list[ReportRowOut]
    total: ReportRowOut


class ReportQuery(Schema):
    start: date
    end: date
    group_by: Literal["overall", "team", "agent", "category", "priority"] = "overall"


class DueQuery(Schema):
    start: datetime
    minutes: int = Field(..., ge=0, le=MAX_DUE_MINUTES)


# serialisers -------------------------------------------------------------------------------------


def _calendar_out(calendar: BusinessCalendar) -> dict[str, Any]:
    return {
        "id": calendar.public_id,
        "name": calendar.name,
        "timezone": calendar.timezone,
        "holiday_country": calendar.holiday_country,
        "holiday_subdivision": calendar.holiday_subdivision,
        "is_default": calendar.is_default,
        "hours": [
            {"weekday": row.weekday, "starts_at": row.starts_at, "ends_at": row.ends_at}
            for row in calendar.hours.all()
        ],
        "holidays": [
            {"name": h.name, "day": h.day, "recurring": h.recurring} for h in calendar.holidays.all()
        ],
    }


def _policy_out(policy: SlaPolicy) -> dict[str, Any]:
    return {
        "id": policy.public_id,
        "name": policy.name,
        "calendar_id": policy.calendar.public_id,
        "position": policy.position,
        "active": policy.active,
        "conditions": policy.conditions,
        "warn_before_minutes": policy.warn_before_minutes,
        "targets": {
            target.priority: {
                "first_response_minutes": target.first_response_minutes,
                "next_response_minutes": target.next_response_minutes,
                "resolution_minutes": target.resolution_minutes,
            }
            for target in policy.targets.all()
        },
        "escalations": [
            {"metric": rule.metric, "when": rule.when, "actions": rule.actions}
            for rule in policy.escalations.all()
        ],
    }


def _trigger_out(trigger: Trigger) -> dict[str, Any]:
    fields = ("name", "event", "conditions", "actions", "position", "active", "run_count")
    return {"id": trigger.public_id, **{field: getattr(trigger, field) for field in fields}}


def _time_rule_out(rule: TimeRule) -> dict[str, Any]:
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
    return {"id": rule.public_id, **{field: getattr(rule, field) for field in fields}}


def _macro_out(macro: Macro) -> dict[str, Any]:
    fields = ("name", "reply_it", "reply_en", "reply_is_internal", "actions", "active", "usage_count")
    return {
        "id": macro.public_id,
        "team_id": macro.team.public_id if macro.team is not None else None,
        **{field: getattr(macro, field) for field in fields},
    }


def _row_out(row: reports.SlaReportRow) -> dict[str, Any]:
    return {
        "key": row.key,
        "label": row.label,
        "metrics": {
            metric: {
                "fulfilled": figures.fulfilled,
                "on_time": figures.on_time,
                "attainment_percent": figures.attainment,
                "breaches": figures.breaches,
            }
            for metric, figures in row.metrics.items()
        },
        "average_first_response_minutes": row.average_first_response_minutes,
    }


def _get(model: type[Model], public_id: UUID) -> Any:
    return sla_config.get_by_public_id(model, public_id)


# calendars ---------------------------------------------------------------------------------------


@router.get(
    "/calendars", response={200: list[CalendarOut], **ERROR_RESPONSES}, summary="List business calendars"
)
def list_calendars(request: HttpRequest) -> list[dict[str, Any]]:
    _manager(request, "read")
    calendars = BusinessCalendar.objects.prefetch_related("hours", "holidays").order_by("name")
    return [_calendar_out(calendar) for calendar in calendars]


def _calendar_args(payload: CalendarIn) -> dict[str, Any]:
    return {
        "name": payload.name,
        "timezone": payload.timezone,
        "holiday_country": payload.holiday_country,
        "holiday_subdivision": payload.holiday_subdivision,
        "is_default": payload.is_default,
        "hours": [(row.weekday, row.starts_at, row.ends_at) for row in payload.hours],
        "holidays": [HolidayIn(h.name, h.day, h.recurring) for h in payload.holidays],
    }


@router.post(
    "/calendars", response={201: CalendarOut, **ERROR_RESPONSES}, summary="Create a business calendar"
)
def create_calendar(request: HttpRequest, payload: CalendarIn) -> Status[dict[str, Any]]:
    actor = _manager(request)
    return Status(201, _calendar_out(sla_config.calendar_save(actor=actor, **_calendar_args(payload))))


@router.get(
    "/calendars/{calendar_id}", response={200: CalendarOut, **ERROR_RESPONSES}, summary="Get a calendar"
)
def get_calendar(request: HttpRequest, calendar_id: UUID) -> dict[str, Any]:
    _manager(request, "read")
    return _calendar_out(_get(BusinessCalendar, calendar_id))


@router.put(
    "/calendars/{calendar_id}", response={200: CalendarOut, **ERROR_RESPONSES}, summary="Replace a calendar"
)
def replace_calendar(request: HttpRequest, calendar_id: UUID, payload: CalendarIn) -> dict[str, Any]:
    actor = _manager(request)
    calendar = _get(BusinessCalendar, calendar_id)
    return _calendar_out(sla_config.calendar_save(actor=actor, calendar=calendar, **_calendar_args(payload)))


@router.delete(
    "/calendars/{calendar_id}", response={204: None, **ERROR_RESPONSES}, summary="Delete a calendar"
)
def delete_calendar(request: HttpRequest, calendar_id: UUID) -> Status[None]:
    actor = _manager(request)
    sla_config.calendar_delete(actor=actor, calendar=_get(BusinessCalendar, calendar_id))
    return Status(204, None)


@router.get(
    "/calendars/{calendar_id}/due",
    response={200: DueOut, **ERROR_RESPONSES},
    summary="When a target of N business minutes from a start falls due on this calendar",
)
def calendar_due(request: HttpRequest, calendar_id: UUID, query: Query[DueQuery]) -> dict[str, Any]:
    _internal_reader(request)
    calendar = _get(BusinessCalendar, calendar_id)
    if query.start.tzinfo is None:
        raise ValidationFailed(
            _("Give the start with its UTC offset."),
            code="naive_datetime",
            fields={"start": _("Add an offset.")},
        )
    due = clock_for(calendar).add_business_minutes(query.start, query.minutes)
    from zoneinfo import ZoneInfo

    return {
        "start": query.start,
        "minutes": query.minutes,
        "due_at": due,
        "due_at_local": due.astimezone(ZoneInfo(calendar.timezone)),
        "timezone": calendar.timezone,
    }


# SLA policies ------------------------------------------------------------------------------------


def _policy_args(payload: PolicyIn) -> dict[str, Any]:
    return {
        "name": payload.name,
        "calendar_public_id": str(payload.calendar_id),
        "position": payload.position,
        "active": payload.active,
        "conditions": payload.conditions,
        "warn_before_minutes": payload.warn_before_minutes,
        "targets": {priority: target.model_dump() for priority, target in payload.targets.items()},
        "escalations": [rule.model_dump() for rule in payload.escalations],
    }


def _policies() -> Any:
    return SlaPolicy.objects.select_related("calendar").prefetch_related("targets", "escalations")


@router.get("/sla-policies", response={200: list[PolicyOut], **ERROR_RESPONSES}, summary="List SLA policies")
def list_policies(request: HttpRequest) -> list[dict[str, Any]]:
    _manager(request, "read")
    return [_policy_out(policy) for policy in _policies().order_by("position", "id")]


@router.post("/sla-policies", response={201: PolicyOut, **ERROR_RESPONSES}, summary="Create an SLA policy")
def create_policy(request: HttpRequest, payload: PolicyIn) -> Status[dict[str, Any]]:
    actor = _manager(request)
    policy = sla_config.policy_save(actor=actor, **_policy_args(payload))
    return Status(201, _policy_out(_policies().get(pk=policy.pk)))


@router.get(
    "/sla-policies/{policy_id}", response={200: PolicyOut, **ERROR_RESPONSES}, summary="Get an SLA policy"
)
def get_policy(request: HttpRequest, policy_id: UUID) -> dict[str, Any]:
    _manager(request, "read")
    return _policy_out(_get(SlaPolicy, policy_id))


@router.put(
    "/sla-policies/{policy_id}", response={200: PolicyOut, **ERROR_RESPONSES}, summary="Replace an SLA policy"
)
def replace_policy(request: HttpRequest, policy_id: UUID, payload: PolicyIn) -> dict[str, Any]:
    actor = _manager(request)
    policy = sla_config.policy_save(actor=actor, policy=_get(SlaPolicy, policy_id), **_policy_args(payload))
    return _policy_out(_policies().get(pk=policy.pk))


@router.delete(
    "/sla-policies/{policy_id}", response={204: None, **ERROR_RESPONSES}, summary="Delete an SLA policy"
)
def delete_policy(request: HttpRequest, policy_id: UUID) -> Status[None]:
    actor = _manager(request)
    sla_config.policy_delete(actor=actor, policy=_get(SlaPolicy, policy_id))
    return Status(204, None)


# triggers, time rules, macros --------------------------------------------------------------------


@router.get("/triggers", response={200: list[TriggerOut], **ERROR_RESPONSES}, summary="List triggers")
def list_triggers(request: HttpRequest) -> list[dict[str, Any]]:
    _manager(request, "read")
    return [_trigger_out(trigger) for trigger in Trigger.objects.order_by("position", "id")]


@router.post("/triggers", response={201: TriggerOut, **ERROR_RESPONSES}, summary="Create a trigger")
def create_trigger(request: HttpRequest, payload: TriggerIn) -> Status[dict[str, Any]]:
    actor = _manager(request)
    return Status(201, _trigger_out(sla_config.trigger_save(actor=actor, **payload.model_dump())))


@router.get("/triggers/{trigger_id}", response={200: TriggerOut, **ERROR_RESPONSES}, summary="Get a trigger")
def get_trigger(request: HttpRequest, trigger_id: UUID) -> dict[str, Any]:
    _manager(request, "read")
    return _trigger_out(_get(Trigger, trigger_id))


@router.put(
    "/triggers/{trigger_id}", response={200: TriggerOut, **ERROR_RESPONSES}, summary="Replace a trigger"
)
def replace_trigger(request: HttpRequest, trigger_id: UUID, payload: TriggerIn) -> dict[str, Any]:
    actor = _manager(request)
    trigger = _get(Trigger, trigger_id)
    return _trigger_out(sla_config.trigger_save(actor=actor, trigger=trigger, **payload.model_dump()))


@router.delete("/triggers/{trigger_id}", response={204: None, **ERROR_RESPONSES}, summary="Delete a trigger")
def delete_trigger(request: HttpRequest, trigger_id: UUID) -> Status[None]:
    actor = _manager(request)
    sla_config.automation_delete(actor=actor, item=_get(Trigger, trigger_id))
    return Status(204, None)


@router.get("/time-rules", response={200: list[TimeRuleOut], **ERROR_RESPONSES}, summary="List time rules")
def list_time_rules(request: HttpRequest) -> list[dict[str, Any]]:
    _manager(request, "read")
    return [_time_rule_out(rule) for rule in TimeRule.objects.order_by("id")]


@router.post("/time-rules", response={201: TimeRuleOut, **ERROR_RESPONSES}, summary="Create a time rule")
def create_time_rule(request: HttpRequest, payload: TimeRuleIn) -> Status[dict[str, Any]]:
    actor = _manager(request)
    return Status(201, _time_rule_out(sla_config.time_rule_save(actor=actor, **payload.model_dump())))


@router.get(
    "/time-rules/{rule_id}", response={200: TimeRuleOut, **ERROR_RESPONSES}, summary="Get a time rule"
)
def get_time_rule(request: HttpRequest, rule_id: UUID) -> dict[str, Any]:
    _manager(request, "read")
    return _time_rule_out(_get(TimeRule, rule_id))


@router.put(
    "/time-rules/{rule_id}", response={200: TimeRuleOut, **ERROR_RESPONSES}, summary="Replace a time rule"
)
def replace_time_rule(request: HttpRequest, rule_id: UUID, payload: TimeRuleIn) -> dict[str, Any]:
    actor = _manager(request)
    rule = _get(TimeRule, rule_id)
    return _time_rule_out(sla_config.time_rule_save(actor=actor, rule=rule, **payload.model_dump()))


@router.delete("/time-rules/{rule_id}", response={204: None, **ERROR_RESPONSES}, summary="Delete a time rule")
def delete_time_rule(request: HttpRequest, rule_id: UUID) -> Status[None]:
    actor = _manager(request)
    sla_config.automation_delete(actor=actor, item=_get(TimeRule, rule_id))
    return Status(204, None)


def _macro_args(payload: MacroIn) -> dict[str, Any]:
    values = payload.model_dump()
    team_id = values.pop("team_id")
    return {**values, "team_public_id": str(team_id) if team_id else None}


@router.get("/macros", response={200: list[MacroOut], **ERROR_RESPONSES}, summary="List macros")
def list_macros(request: HttpRequest) -> list[dict[str, Any]]:
    _manager(request, "read")
    return [_macro_out(macro) for macro in Macro.objects.select_related("team").order_by("name")]


@router.post("/macros", response={201: MacroOut, **ERROR_RESPONSES}, summary="Create a macro")
def create_macro(request: HttpRequest, payload: MacroIn) -> Status[dict[str, Any]]:
    actor = _manager(request)
    return Status(201, _macro_out(sla_config.macro_save(actor=actor, **_macro_args(payload))))


@router.get("/macros/{macro_id}", response={200: MacroOut, **ERROR_RESPONSES}, summary="Get a macro")
def get_macro(request: HttpRequest, macro_id: UUID) -> dict[str, Any]:
    _manager(request, "read")
    return _macro_out(_get(Macro, macro_id))


@router.put("/macros/{macro_id}", response={200: MacroOut, **ERROR_RESPONSES}, summary="Replace a macro")
def replace_macro(request: HttpRequest, macro_id: UUID, payload: MacroIn) -> dict[str, Any]:
    actor = _manager(request)
    macro = _get(Macro, macro_id)
    return _macro_out(sla_config.macro_save(actor=actor, macro=macro, **_macro_args(payload)))


@router.delete("/macros/{macro_id}", response={204: None, **ERROR_RESPONSES}, summary="Delete a macro")
def delete_macro(request: HttpRequest, macro_id: UUID) -> Status[None]:
    actor = _manager(request)
    sla_config.automation_delete(actor=actor, item=_get(Macro, macro_id))
    return Status(204, None)


# report ------------------------------------------------------------------------------------------


@router.get("/sla/report", response={200: ReportOut, **ERROR_RESPONSES}, summary="SLA attainment report")
def sla_report(request: HttpRequest, query: Query[ReportQuery]) -> dict[str, Any]:
    require_scope(request, "read")
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can("support.view_support_reports")):
        raise PermissionDenied(_("You may not see support reports."), code="permission_denied")
    report = reports.sla_report(start=query.start, end=query.end, group_by=query.group_by)
    return {
        "start": report.start,
        "end": report.end,
        "group_by": report.group_by,
        "rows": [_row_out(row) for row in report.rows],
        "total": _row_out(report.total),
    }

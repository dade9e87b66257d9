"""Pages of the sla area: business calendars, SLA policies, triggers, time rules, macros (settings,
support.manage_support) and the SLA report (support.view_support_reports)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, time, timedelta
from typing import Any, TypeVar

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fedele.accounts.facade import Actor, actor_for
from fedele.shared import clock
from fedele.shared.errors import ApplicationError, PermissionDenied, ValidationFailed
from fedele.support.calendars import clock_for
from fedele.support.models import (
    BusinessCalendar,
    EscalationRule,
    Macro,
    Priority,
    SlaPolicy,
    StatusKind,
    Ticket,
    TicketStatus,
    TimeRule,
    Trigger,
)
from fedele.support.selectors import reports
from fedele.support.services import sla_config
from fedele.support.services.automations import (
    ACTION_TYPES,
    CONDITION_FIELDS,
    OPERATORS,
    SUGGESTED_TIME_RULES,
    TIME_RULE_SINCE_FIELDS,
    TRIGGER_EVENTS,
)
from fedele.support.services.sla_config import ESCALATION_ACTIONS, METRICS, HolidayIn

REPORTS = "support.view_support_reports"
WEEKDAYS = (
    (0, "Monday"),
    (1, "Tuesday"),
    (2, "Wednesday"),
    (3, "Thursday"),
    (4, "Friday"),
    (5, "Saturday"),
    (6, "Sunday"),
)
View = TypeVar("View", bound=Callable[..., HttpResponse])


def _manager(request: HttpRequest) -> Actor:
    actor = actor_for(request.user)
    sla_config.require_manager(actor)
    return actor


def _report_reader(request: HttpRequest) -> Actor:
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can(REPORTS)):
        raise PermissionDenied(_("You may not see support reports."), code="permission_denied")
    return actor


def _errors(error: ApplicationError) -> dict[str, list[str]]:
    return error.fields or {"__all__": [error.message]}


def _rows(request: HttpRequest, *names: str) -> list[dict[str, str]]:
    """Parallel lists of repeated inputs (one per table row) as dicts; blank rows are dropped."""
    columns = {name: request.POST.getlist(name) for name in names}
    length = max((len(values) for values in columns.values()), default=0)
    rows = []
    for index in range(length):
        row = {
            name: (values[index] if index < len(values) else "").strip() for name, values in columns.items()
        }
        if any(row.values()):
            rows.append(row)
    return rows


def _teams() -> list[Any]:
    team_model: Any = Ticket._meta.get_field("team").related_model
    return list(team_model.objects.order_by("name"))


def _common_choices() -> dict[str, Any]:
    return {
        "condition_fields": CONDITION_FIELDS,
        "operators": OPERATORS,
        "action_types": ACTION_TYPES,
        "priorities": Priority.choices,
        "statuses": TicketStatus.objects.filter(active=True).order_by("position"),
        "teams": _teams(),
    }


def _conditions_from(request: HttpRequest) -> list[dict[str, Any]]:
    return [
        {"field": row["cond_field"], "operator": row["cond_operator"] or "is", "value": row["cond_value"]}
        for row in _rows(request, "cond_field", "cond_operator", "cond_value")
        if row["cond_field"]
    ]


def _actions_from(request: HttpRequest) -> list[dict[str, Any]]:
    actions: list[dict[str, Any]] = []
    for row in _rows(
        request,
        "action_type",
        "action_value",
        "action_field",
        "action_to",
        "action_subject_it",
        "action_subject_en",
        "action_body_it",
        "action_body_en",
    ):
        kind = row["action_type"]
        if not kind:
            continue
        if kind == "send_template":
            actions.append(
                {
                    "type": kind,
                    "to": row["action_to"] or "requester",
                    "subject_it": row["action_subject_it"],
                    "subject_en": row["action_subject_en"],
                    "body_it": row["action_body_it"],
                    "body_en": row["action_body_en"],
                }
            )
        elif kind == "webhook":
            actions.append({"type": kind, "url": row["action_value"]})
        elif kind == "set_field":
            actions.append({"type": kind, "field": row["action_field"], "value": row["action_value"]})
        elif kind == "auto_assign":
            actions.append({"type": kind})
        else:
            actions.append({"type": kind, "value": row["action_value"]})
    return actions


def _action_rows(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for action in actions or []:
        row = dict(action)
        if action.get("type") == "webhook":
            row["value"] = action.get("url", "")
        rows.append(row)
    return rows


# -- calendars -------------------------------------------------------------------------------------


@login_required
@require_GET
def calendar_list(request: HttpRequest) -> HttpResponse:
    _manager(request)
    calendars = BusinessCalendar.objects.prefetch_related("hours").order_by("name")
    return render(
        request, "support/settings/calendar_list.html", {"calendars": calendars, "weekdays": WEEKDAYS}
    )


def _parse_time(value: str, field: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError as error:
        raise ValidationFailed(
            _("Enter a time like 09:00."), fields={field: _("Enter a time like 09:00.")}
        ) from error


@login_required
@require_http_methods(["GET", "POST"])
def calendar_edit(request: HttpRequest, public_id: str | None = None) -> HttpResponse:
    actor = _manager(request)
    calendar = sla_config.get_by_public_id(BusinessCalendar, public_id) if public_id else None
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            hours = [
                (
                    int(row["weekday"]),
                    _parse_time(row["starts_at"], "hours"),
                    _parse_time(row["ends_at"], "hours"),
                )
                for row in _rows(request, "weekday", "starts_at", "ends_at")
                if row["starts_at"] or row["ends_at"]
            ]
            holidays = []
            for row in _rows(request, "holiday_name", "holiday_day", "holiday_recurring"):
                if not (row["holiday_name"] or row["holiday_day"]):
                    continue
                try:
                    day = date.fromisoformat(row["holiday_day"])
                except ValueError as error:
                    raise ValidationFailed(
                        _("Enter holiday dates as YYYY-MM-DD."), fields={"holidays": _("Invalid date.")}
                    ) from error
                holidays.append(HolidayIn(row["holiday_name"], day, row["holiday_recurring"] == "yes"))
            saved = sla_config.calendar_save(
                actor=actor,
                calendar=calendar,
                name=request.POST.get("name", ""),
                timezone=request.POST.get("timezone", "Europe/Rome").strip(),
                holiday_country=request.POST.get("holiday_country", ""),
                holiday_subdivision=request.POST.get("holiday_subdivision", ""),
                is_default=request.POST.get("is_default") == "on",
                hours=hours,
                holidays=holidays,
            )
            messages.success(request, _("Calendar saved."))
            return redirect("support:calendar_edit", public_id=saved.public_id)
        except ApplicationError as error:
            errors = _errors(error)
        except ValueError:
            errors = {"hours": [_("Choose a weekday.")]}
    closed: list[date] = []
    if calendar is not None and calendar.hours.exists():
        today = clock.today(calendar.timezone)
        closed = clock_for(calendar).closed_days(today, today + timedelta(days=365))
    context = {
        "calendar": calendar,
        "hours": list(calendar.hours.all()) if calendar else [],
        "holidays": list(calendar.holidays.all()) if calendar else [],
        "weekdays": WEEKDAYS,
        "closed_days": closed,
        "errors": errors,
    }
    return render(request, "support/settings/calendar_edit.html", context, status=422 if errors else 200)


# -- SLA policies ----------------------------------------------------------------------------------


@login_required
@require_GET
def sla_policy_list(request: HttpRequest) -> HttpResponse:
    _manager(request)
    policies = (
        SlaPolicy.objects.select_related("calendar").prefetch_related("targets").order_by("position", "id")
    )
    return render(request, "support/settings/sla_policy_list.html", {"policies": policies})


@login_required
@require_http_methods(["GET", "POST"])
def sla_policy_edit(request: HttpRequest, public_id: str | None = None) -> HttpResponse:
    actor = _manager(request)
    policy = sla_config.get_by_public_id(SlaPolicy, public_id) if public_id else None
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            targets = {
                priority: {
                    f"{metric}_minutes": request.POST.get(f"target_{priority}_{metric}", "")
                    for metric in METRICS
                }
                for priority in Priority.values
            }
            conditions = {
                key: request.POST.get(f"cond_{key}", "").split(",")
                for key in (
                    "priorities",
                    "segments",
                    "tiers",
                    "ticket_types",
                    "categories",
                    "channels",
                    "customers",
                )
            }
            escalations = []
            for row in _rows(request, "esc_metric", "esc_when", "esc_action", "esc_target"):
                if not row["esc_action"]:
                    continue
                action: dict[str, Any] = {"type": row["esc_action"]}
                if row["esc_action"] == "assign_team":
                    action["team"] = row["esc_target"]
                elif row["esc_action"] in ("assign_user", "notify_user"):
                    action["user"] = row["esc_target"]
                escalations.append(
                    {"metric": row["esc_metric"], "when": row["esc_when"], "actions": [action]}
                )
            saved = sla_config.policy_save(
                actor=actor,
                policy=policy,
                name=request.POST.get("name", ""),
                calendar_public_id=request.POST.get("calendar", ""),
                position=int(request.POST.get("position") or 0),
                active=request.POST.get("active") == "on",
                conditions=conditions,
                warn_before_minutes=int(request.POST.get("warn_before_minutes") or 0),
                targets=targets,
                escalations=escalations,
            )
            messages.success(request, _("SLA policy saved."))
            return redirect("support:sla_policy_edit", public_id=saved.public_id)
        except ApplicationError as error:
            errors = _errors(error)
        except ValueError:
            errors = {"position": [_("Enter whole numbers.")]}
    targets_by_priority = {t.priority: t for t in policy.targets.all()} if policy else {}
    target_rows = [(value, label, targets_by_priority.get(value)) for value, label in Priority.choices]
    escalation_rows = []
    for rule in EscalationRule.objects.filter(policy=policy) if policy else []:
        for action in rule.actions:
            escalation_rows.append(
                {
                    "metric": rule.metric,
                    "when": rule.when,
                    "action": action.get("type", ""),
                    "target": action.get("team") or action.get("user") or "",
                }
            )
    context = {
        "policy": policy,
        "calendars": BusinessCalendar.objects.order_by("name"),
        "target_rows": target_rows,
        "metrics": METRICS,
        "escalation_rows": escalation_rows,
        "escalation_actions": ESCALATION_ACTIONS,
        "conditions": {
            key: ", ".join(values) for key, values in (policy.conditions if policy else {}).items()
        },
        "condition_keys": (
            "priorities",
            "segments",
            "tiers",
            "ticket_types",
            "categories",
            "channels",
            "customers",
        ),
        "errors": errors,
    }
    return render(request, "support/settings/sla_policy_edit.html", context, status=422 if errors else 200)


# -- triggers, time rules, macros ------------------------------------------------------------------


@login_required
@require_GET
def trigger_list(request: HttpRequest) -> HttpResponse:
    _manager(request)
    return render(
        request,
        "support/settings/trigger_list.html",
        {"triggers": Trigger.objects.order_by("position", "id")},
    )


@login_required
@require_http_methods(["GET", "POST"])
def trigger_edit(request: HttpRequest, public_id: str | None = None) -> HttpResponse:
    actor = _manager(request)
    trigger = sla_config.get_by_public_id(Trigger, public_id) if public_id else None
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            saved = sla_config.trigger_save(
                actor=actor,
                trigger=trigger,
                name=request.POST.get("name", ""),
                event=request.POST.get("event", ""),
                conditions=_conditions_from(request),
                actions=_actions_from(request),
                position=int(request.POST.get("position") or 0),
                active=request.POST.get("active") == "on",
            )
            messages.success(request, _("Trigger saved."))
            return redirect("support:trigger_edit", public_id=saved.public_id)
        except ApplicationError as error:
            errors = _errors(error)
        except ValueError:
            errors = {"position": [_("Enter a whole number.")]}
    context = {
        "trigger": trigger,
        "events": TRIGGER_EVENTS,
        "condition_rows": (trigger.conditions if trigger else []),
        "action_rows": _action_rows(trigger.actions if trigger else []),
        "errors": errors,
        **_common_choices(),
    }
    return render(request, "support/settings/trigger_edit.html", context, status=422 if errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def time_rule_list(request: HttpRequest) -> HttpResponse:
    actor = _manager(request)
    if request.method == "POST":
        # Add one of the suggested standard rules (never created behind the administrator's back).
        try:
            suggestion = SUGGESTED_TIME_RULES[int(request.POST.get("suggestion", ""))]
        except (ValueError, IndexError):
            messages.error(request, _("Unknown suggestion."))
            return redirect("support:time_rule_list")
        sla_config.time_rule_save(
            actor=actor,
            name=_(str(suggestion["name_en"])),
            status_kind=str(suggestion["status_kind"]),
            since_field=str(suggestion["since_field"]),
            hours=int(suggestion["hours"]),
            actions=list(suggestion["actions"]),
        )
        messages.success(request, _("Time rule added."))
        return redirect("support:time_rule_list")
    suggestions = [(index, _(str(item["name_en"]))) for index, item in enumerate(SUGGESTED_TIME_RULES)]
    return render(
        request,
        "support/settings/time_rule_list.html",
        {"rules": TimeRule.objects.order_by("id"), "suggestions": suggestions},
    )


@login_required
@require_http_methods(["GET", "POST"])
def time_rule_edit(request: HttpRequest, public_id: str | None = None) -> HttpResponse:
    actor = _manager(request)
    rule = sla_config.get_by_public_id(TimeRule, public_id) if public_id else None
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            saved = sla_config.time_rule_save(
                actor=actor,
                rule=rule,
                name=request.POST.get("name", ""),
                status_kind=request.POST.get("status_kind", ""),
                since_field=request.POST.get("since_field", ""),
                hours=int(request.POST.get("hours") or 0),
                business_hours=request.POST.get("business_hours") == "on",
                conditions=_conditions_from(request),
                actions=_actions_from(request),
                active=request.POST.get("active") == "on",
            )
            messages.success(request, _("Time rule saved."))
            return redirect("support:time_rule_edit", public_id=saved.public_id)
        except ApplicationError as error:
            errors = _errors(error)
        except ValueError:
            errors = {"hours": [_("Enter a whole number.")]}
    context = {
        "rule": rule,
        "status_kinds": StatusKind.choices,
        "since_fields": TIME_RULE_SINCE_FIELDS,
        "condition_rows": (rule.conditions if rule else []),
        "action_rows": _action_rows(rule.actions if rule else []),
        "errors": errors,
        **_common_choices(),
    }
    return render(request, "support/settings/time_rule_edit.html", context, status=422 if errors else 200)


@login_required
@require_GET
def macro_list(request: HttpRequest) -> HttpResponse:
    _manager(request)
    macros = Macro.objects.select_related("team").order_by("name")
    return render(request, "support/settings/macro_list.html", {"macros": macros})


@login_required
@require_http_methods(["GET", "POST"])
def macro_edit(request: HttpRequest, public_id: str | None = None) -> HttpResponse:
    actor = _manager(request)
    macro = sla_config.get_by_public_id(Macro, public_id) if public_id else None
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            saved = sla_config.macro_save(
                actor=actor,
                macro=macro,
                name=request.POST.get("name", ""),
                team_public_id=request.POST.get("team") or None,
                reply_it=request.POST.get("reply_it", ""),
                reply_en=request.POST.get("reply_en", ""),
                reply_is_internal=request.POST.get("reply_is_internal") == "on",
                actions=_actions_from(request),
                active=request.POST.get("active") == "on",
            )
            messages.success(request, _("Macro saved."))
            return redirect("support:macro_edit", public_id=saved.public_id)
        except ApplicationError as error:
            errors = _errors(error)
    context = {
        "macro": macro,
        "action_rows": _action_rows(macro.actions if macro else []),
        "errors": errors,
        **_common_choices(),
    }
    return render(request, "support/settings/macro_edit.html", context, status=422 if errors else 200)


@login_required
@require_POST
def automation_delete(request: HttpRequest, kind: str, public_id: str) -> HttpResponse:
    actor = _manager(request)
    models: dict[str, tuple[type[Trigger] | type[TimeRule] | type[Macro], str]] = {
        "trigger": (Trigger, "support:trigger_list"),
        "time-rule": (TimeRule, "support:time_rule_list"),
        "macro": (Macro, "support:macro_list"),
    }
    if kind not in models:
        raise ValidationFailed(_("Unknown kind."))
    model, target = models[kind]
    sla_config.automation_delete(actor=actor, item=sla_config.get_by_public_id(model, public_id))
    messages.success(request, _("Deleted."))
    return redirect(target)


# -- SLA report ------------------------------------------------------------------------------------


def _report_from(request: HttpRequest) -> reports.SlaReport:
    today = clock.today()
    try:
        start = date.fromisoformat(request.GET.get("start") or (today - timedelta(days=29)).isoformat())
        end = date.fromisoformat(request.GET.get("end") or today.isoformat())
    except ValueError as error:
        raise ValidationFailed(_("Enter dates as YYYY-MM-DD."), code="bad_period") from error
    return reports.sla_report(start=start, end=end, group_by=request.GET.get("group_by") or "overall")


@login_required
@require_GET
def sla_report(request: HttpRequest) -> HttpResponse:
    _report_reader(request)
    errors: dict[str, list[str]] = {}
    report = None
    try:
        report = _report_from(request)
    except ApplicationError as error:
        errors = _errors(error)
    context = {
        "report": report,
        "groupings": reports.GROUPINGS,
        "metrics": METRICS,
        "chart_rows": _chart_rows(report) if report else [],
        "query": request.GET.urlencode(),
        "values": request.GET,
        "errors": errors,
    }
    return render(request, "support/reports/sla.html", context, status=422 if errors else 200)


def _chart_rows(report: reports.SlaReport) -> list[dict[str, Any]]:
    """Horizontal bars (inline SVG): one group per row, one bar per metric, width = attainment %."""
    rows = []
    for row in [*report.rows, report.total][:25]:
        bars = []
        for index, metric in enumerate(METRICS):
            value = row.metrics[metric].attainment
            bars.append({"metric": metric, "index": index, "value": value, "width": float(value or 0)})
        rows.append({"label": row.label, "bars": bars})
    return rows


@login_required
@require_GET
def sla_report_csv(request: HttpRequest) -> HttpResponse:
    _report_reader(request)
    report = _report_from(request)
    response = HttpResponse(reports.sla_report_csv(report), content_type="text/csv; charset=utf-8")
    filename = f"sla-{report.group_by}-{report.start.isoformat()}-{report.end.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


urlpatterns: list[URLPattern | URLResolver] = [
    path("settings/calendars/", calendar_list, name="calendar_list"),
    path("settings/calendars/new/", calendar_edit, name="calendar_new"),
    path("settings/calendars/<uuid:public_id>/", calendar_edit, name="calendar_edit"),
    path("settings/sla/", sla_policy_list, name="sla_policy_list"),
    path("settings/sla/new/", sla_policy_edit, name="sla_policy_new"),
    path("settings/sla/<uuid:public_id>/", sla_policy_edit, name="sla_policy_edit"),
    path("settings/triggers/", trigger_list, name="trigger_list"),
    path("settings/triggers/new/", trigger_edit, name="trigger_new"),
    path("settings/triggers/<uuid:public_id>/", trigger_edit, name="trigger_edit"),
    path("settings/time-rules/", time_rule_list, name="time_rule_list"),
    path("settings/time-rules/new/", time_rule_edit, name="time_rule_new"),
    path("settings/time-rules/<uuid:public_id>/", time_rule_edit, name="time_rule_edit"),
    path("settings/macros/", macro_list, name="macro_list"),
    path("settings/macros/new/", macro_edit, name="macro_new"),
    path("settings/macros/<uuid:public_id>/", macro_edit, name="macro_edit"),
    path("settings/<slug:kind>/<uuid:public_id>/delete/", automation_delete, name="automation_delete"),
    path("reports/sla/", sla_report, name="sla_report"),
    path("reports/sla.csv", sla_report_csv, name="sla_report_csv"),
]

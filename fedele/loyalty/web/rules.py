"""Loyalty pages: earning rules, bonus campaigns, the earning simulator and the inbound events log.

Under /loyalty/rules/ (``loyalty.view_loyalty`` to look and simulate, ``loyalty.manage_loyalty`` to
change): the rules of a programme; the rule editor (conditions as rows, a live preview of the unsaved
rule on a sample event); the simulator ("what would this member earn for this event?", never
writes); campaigns with their holdout share; the latest inbound events with what they earned.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fedele.accounts.facade import Actor, actor_for
from fedele.loyalty.models import (
    Campaign,
    CampaignAssignment,
    EarningRule,
    EventType,
    Member,
    Partner,
    Programme,
    RuleStatus,
    RuleUsage,
)
from fedele.loyalty.selectors import rules as selectors
from fedele.loyalty.services import campaigns as campaign_services
from fedele.loyalty.services import rules as services
from fedele.loyalty.services.rules_engine import (
    CONDITION_FIELDS,
    OPERATORS,
    SKIP_REASONS,
    EarnEvent,
    Quote,
)
from fedele.shared.errors import ApplicationError, NotFound, PermissionDenied
from fedele.shared.web.views import render_page_or_partial

VIEW = "loyalty.view_loyalty"
MANAGE = "loyalty.manage_loyalty"
INPUT_FORMAT = "%Y-%m-%dT%H:%M"
TEXT_FIELDS = ("code", "name_it", "name_en", "event_type", "custom_event", "campaign")
NUMBER_FIELDS = (
    "position",
    "points_per_euro",
    "fixed_points",
    "multiplier",
    "cap_per_member_per_day",
    "cap_per_member_total",
    "cap_total",
)
CAMPAIGN_FIELDS = ("code", "name_it", "name_en", "starts_at", "ends_at", "holdout_percent", "budget_points")


# -- helpers ---------------------------------------------------------------------------------------


def _reader(request: HttpRequest) -> Actor:
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can(VIEW)):
        raise PermissionDenied(_("You may not see the earning rules."), code="permission_denied")
    return actor


def _manager(request: HttpRequest) -> Actor:
    actor = _reader(request)
    if not actor.can(MANAGE):
        raise PermissionDenied(_("You may not change the earning rules."), code="permission_denied")
    return actor


def _errors(error: ApplicationError) -> dict[str, list[str]]:
    return error.fields or {"__all__": [error.message]}


def _programme(request: HttpRequest) -> Programme | None:
    """The programme named by ?programme= (or the form), else the first one."""
    code = (request.POST.get("programme") or request.GET.get("programme") or "").strip()
    if code:
        return selectors.programme_get(code)
    return Programme.objects.order_by("code").first()


def _local_input(moment: datetime | None, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime(INPUT_FORMAT) if moment else ""


def _common(programme: Programme | None, actor: Actor) -> dict[str, Any]:
    return {
        "programme": programme,
        "programmes": list(selectors.programmes()),
        "can_manage": actor.can(MANAGE),
    }


def _name(obj: EarningRule | Campaign) -> str:
    return obj.name_it if get_language() == "it" else obj.name_en


def _award(rule: EarningRule) -> str:
    """A short description of what a rule awards ("1.5 pt/€ + 10", "× 2.00")."""
    if Decimal(rule.multiplier) != 1:
        return f"× {rule.multiplier}"
    parts = []
    if Decimal(rule.points_per_euro):
        parts.append(f"{Decimal(rule.points_per_euro).normalize():f} pt/€")
    if rule.fixed_points:
        parts.append(f"+{rule.fixed_points}")
    return " ".join(parts) or "0"


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


# -- rules -----------------------------------------------------------------------------------------


@login_required
@require_GET
def rules_list(request: HttpRequest) -> HttpResponse:
    actor = _reader(request)
    programme = _programme(request)
    status = request.GET.get("status", "")
    rows: list[dict[str, Any]] = []
    if programme is not None:
        for rule in selectors.rule_list(
            programme=programme, status=status if status in RuleStatus.values else ""
        ):
            rows.append(
                {
                    "rule": rule,
                    "name": _name(rule),
                    "award": _award(rule),
                    "kind": "bonus" if Decimal(rule.multiplier) != 1 else "base",
                    "valid_from": _local_input(rule.valid_from, programme.timezone).replace("T", " "),
                    "valid_until": _local_input(rule.valid_until, programme.timezone).replace("T", " "),
                    "conditions": [
                        f"{c['field']} {c['op']} {_value_text(c.get('value'))}".strip()
                        for c in rule.conditions or []
                    ],
                }
            )
    context = {
        **_common(programme, actor),
        "rows": rows,
        "status": status,
        "statuses": RuleStatus.choices,
    }
    return render(request, "loyalty/rules/list.html", context)


def _conditions_from(request: HttpRequest) -> list[dict[str, Any]]:
    fields = request.POST.getlist("cond_field")
    operators = request.POST.getlist("cond_op")
    values = request.POST.getlist("cond_value")
    conditions: list[dict[str, Any]] = []
    for index, name in enumerate(fields):
        name = name.strip()
        if not name:
            continue
        operator = operators[index].strip() if index < len(operators) else ""
        value: Any = values[index].strip() if index < len(values) else ""
        if operator in ("is_true", "is_false"):
            value = None
        conditions.append({"field": name, "op": operator, "value": value})
    return conditions


def _rule_data(request: HttpRequest) -> dict[str, Any]:
    data: dict[str, Any] = {
        name: request.POST.get(name, "").strip() for name in (*TEXT_FIELDS, *NUMBER_FIELDS)
    }
    data["qualifying"] = request.POST.get("qualifying") == "on"
    data["pending"] = request.POST.get("pending") == "on"
    data["valid_from"] = request.POST.get("valid_from", "").strip()
    data["valid_until"] = request.POST.get("valid_until", "").strip()
    data["conditions"] = _conditions_from(request)
    return data


def _form_of(rule: EarningRule | None, programme: Programme) -> dict[str, Any]:
    if rule is None:
        return {
            "event_type": EventType.SPEND,
            "points_per_euro": f"{Decimal(programme.points_per_euro).normalize():f}",
            "fixed_points": "0",
            "multiplier": "1",
            "position": "0",
            "qualifying": True,
            "pending": True,
            "conditions": [],
        }
    form: dict[str, Any] = {name: getattr(rule, name) for name in services.RULE_FIELDS if name != "campaign"}
    form["campaign"] = rule.campaign.code if rule.campaign_id and rule.campaign else ""
    form["valid_from"] = _local_input(rule.valid_from, programme.timezone)
    form["valid_until"] = _local_input(rule.valid_until, programme.timezone)
    for name in ("cap_per_member_per_day", "cap_per_member_total", "cap_total"):
        form[name] = "" if form[name] is None else form[name]
    form["points_per_euro"] = f"{Decimal(rule.points_per_euro).normalize():f}"
    return form


def _editor(
    request: HttpRequest,
    actor: Actor,
    programme: Programme,
    rule: EarningRule | None,
    form: dict[str, Any],
    errors: dict[str, list[str]],
) -> HttpResponse:
    rows = [
        {**condition, "value_text": _value_text(condition.get("value"))}
        for condition in form.get("conditions", [])
    ]
    context = {
        **_common(programme, actor),
        "rule": rule,
        "form": form,
        "condition_rows": rows,
        "condition_fields": CONDITION_FIELDS,
        "operators": OPERATORS,
        "event_types": EventType.choices,
        "campaigns": list(selectors.campaign_list(programme=programme)),
        "errors": errors,
    }
    return render(request, "loyalty/rules/edit.html", context, status=422 if errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def rules_new(request: HttpRequest) -> HttpResponse:
    actor = _manager(request)
    programme = _programme(request)
    if programme is None:
        messages.error(request, _("Create a programme first."))
        return redirect("loyalty:rules_list")
    if request.method == "POST":
        data = _rule_data(request)
        try:
            rule = services.rule_create(actor=actor, programme=programme, data=data)
        except ApplicationError as error:
            return _editor(request, actor, programme, None, data, _errors(error))
        messages.success(request, _("Rule saved as a draft: try it in the preview, then activate it."))
        return redirect("loyalty:rules_edit", public_id=rule.public_id)
    return _editor(request, actor, programme, None, _form_of(None, programme), {})


@login_required
@require_http_methods(["GET", "POST"])
def rules_edit(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _reader(request)
    rule = selectors.rule_get(public_id)
    programme = rule.programme
    if request.method == "POST":
        actor = _manager(request)
        data = _rule_data(request)
        try:
            services.rule_update(actor=actor, rule=rule, changes=data)
        except ApplicationError as error:
            return _editor(request, actor, programme, rule, data, _errors(error))
        messages.success(request, _("Rule saved."))
        return redirect("loyalty:rules_edit", public_id=rule.public_id)
    return _editor(request, actor, programme, rule, _form_of(rule, programme), {})


@login_required
@require_POST
def rules_status(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _manager(request)
    rule = selectors.rule_get(public_id)
    try:
        services.rule_set_status(actor=actor, rule=rule, status=request.POST.get("status", ""))
    except ApplicationError as error:
        for field_messages in _errors(error).values():
            for message in field_messages:
                messages.error(request, message)
    else:
        messages.success(request, _("Status changed to %(status)s.") % {"status": rule.get_status_display()})
    return redirect("loyalty:rules_edit", public_id=rule.public_id)


def _sample_event(request: HttpRequest, programme: Programme, prefix: str) -> tuple[EarnEvent, Member | None]:
    """The event and member of a simulator or preview form (``prefix`` distinguishes the preview's)."""

    def value(name: str) -> str:
        return request.POST.get(f"{prefix}{name}", "").strip()

    errors: dict[str, list[str]] = {}
    amount: Decimal | None = None
    if value("amount_eur"):
        try:
            amount = Decimal(value("amount_eur").replace(",", "."))
            if not amount.is_finite() or amount < 0:
                raise InvalidOperation
        except InvalidOperation:
            errors[f"{prefix}amount_eur"] = [_("Enter an amount of zero or more.")]
    member = None
    if value("member"):
        member = selectors.member_find(programme, value("member"))
        if member is None:
            errors[f"{prefix}member"] = [_("No member of this programme has this card number.")]
    occurred_at = None
    if value("occurred_at"):
        try:
            occurred_at = datetime.strptime(value("occurred_at"), INPUT_FORMAT).replace(
                tzinfo=ZoneInfo(programme.timezone)
            )
        except ValueError:
            errors[f"{prefix}occurred_at"] = [_("Enter a date and time.")]
    attributes: dict[str, Any] = {}
    if value("attributes"):
        try:
            parsed = json.loads(value("attributes"))
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            errors[f"{prefix}attributes"] = [
                _('Write the attributes as a JSON object, e.g. {"colour": "red"}.')
            ]
        else:
            attributes = parsed
    event_type = value("event_type") or request.POST.get("event_type", "") or EventType.SPEND
    if event_type not in EventType.values:
        errors[f"{prefix}event_type"] = [_("Choose an event type.")]
    first_purchase = {"yes": True, "no": False}.get(value("first_purchase"))
    if errors:
        raise ApplicationError(_("The sample event is not valid."), code="invalid_event", fields=errors)
    event = EarnEvent(
        event_type=event_type,
        amount_eur=amount,
        custom_event=(value("custom_event") or request.POST.get("custom_event", "")).strip().lower(),
        channel=value("channel"),
        product_categories=tuple(
            part.strip() for part in value("product_categories").split(",") if part.strip()
        ),
        partner_code=value("partner"),
        attributes=attributes,
        occurred_at=occurred_at,
        first_purchase=first_purchase,
    )
    return event, member


def _line_note(code: str) -> str:
    return str(SKIP_REASONS.get(code, code)) if code else ""


def _quote_context(programme: Programme, result: Quote, member: Member | None) -> dict[str, Any]:
    names = {rule.code: _name(rule) for rule in EarningRule.objects.filter(programme=programme)}
    lines = [
        {
            "line": line,
            "name": names.get(line.rule, line.rule),
            "reason": _line_note(line.skipped or line.capped_by or line.reason),
        }
        for line in result.lines
    ]
    return {
        "quote": result,
        "lines": lines,
        "member": member,
        "programme": programme,
        "reasons": [str(SKIP_REASONS["no_rules"])] if not result.lines else [],
    }


@login_required
@require_POST
def rules_preview(request: HttpRequest) -> HttpResponse:
    """The editor's preview: the unsaved rule alone on a sample event (drafts and caps included)."""
    _reader(request)
    existing = None
    if request.POST.get("rule"):
        existing = selectors.rule_get(request.POST["rule"])
    programme = existing.programme if existing is not None else _programme(request)
    if programme is None:
        raise NotFound(_("Programme not found."), code="programme_not_found")
    try:
        clean = services.rule_validate(_rule_data(request), programme=programme, rule=existing)
        event, member = _sample_event(request, programme, "preview_")
    except ApplicationError as error:
        return render(request, "loyalty/rules/_quote.html", {"errors": _errors(error)}, status=422)
    unsaved = EarningRule(programme=programme, status=RuleStatus.ACTIVE, **clean)
    if existing is not None:
        unsaved.pk = existing.pk
        unsaved.public_id = existing.public_id
    event = replace(event, event_type=clean["event_type"], custom_event=clean["custom_event"])
    result = services.quote(
        programme=programme, member=member, event=event, rules=[unsaved], include_drafts=True
    )
    return render(request, "loyalty/rules/_quote.html", _quote_context(programme, result, member))


# -- simulator -------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def rules_simulator(request: HttpRequest) -> HttpResponse:
    actor = _reader(request)
    programme = _programme(request)
    context: dict[str, Any] = {
        **_common(programme, actor),
        "event_types": EventType.choices,
        "partners": list(Partner.objects.filter(programme=programme).order_by("name")) if programme else [],
        "form": request.POST if request.method == "POST" else {"event_type": EventType.SPEND},
        "errors": {},
    }
    status = 200
    if request.method == "POST" and programme is not None:
        try:
            event, member = _sample_event(request, programme, "")
            result = services.quote(
                programme=programme,
                member=member,
                event=event,
                include_drafts=request.POST.get("include_drafts") == "on",
            )
        except ApplicationError as error:
            context["errors"] = _errors(error)
            status = 422
        else:
            context.update(_quote_context(programme, result, member))
    return render_page_or_partial(
        request, "loyalty/rules/simulator.html", "loyalty/rules/_quote.html", context, status=status
    )


# -- campaigns -------------------------------------------------------------------------------------


@login_required
@require_GET
def rules_campaigns(request: HttpRequest) -> HttpResponse:
    actor = _reader(request)
    programme = _programme(request)
    rows: list[dict[str, Any]] = []
    if programme is not None:
        campaigns = list(selectors.campaign_list(programme=programme).annotate(rule_count=Count("rules")))
        used = dict(
            RuleUsage.objects.filter(rule__campaign__in=campaigns, member__isnull=True, day__isnull=True)
            .values_list("rule__campaign_id")
            .annotate(total=Sum("points"))
            .values_list("rule__campaign_id", "total")
        )
        groups = dict(
            CampaignAssignment.objects.filter(campaign__in=campaigns, group="holdout")
            .values_list("campaign_id")
            .annotate(total=Count("id"))
            .values_list("campaign_id", "total")
        )
        for campaign in campaigns:
            rows.append(
                {
                    "campaign": campaign,
                    "name": _name(campaign),
                    "starts_at": _local_input(campaign.starts_at, programme.timezone).replace("T", " "),
                    "ends_at": _local_input(campaign.ends_at, programme.timezone).replace("T", " "),
                    "used": used.get(campaign.pk) or 0,
                    "holdout_members": groups.get(campaign.pk, 0),
                }
            )
    return render(request, "loyalty/rules/campaigns.html", {**_common(programme, actor), "rows": rows})


def _campaign_form(campaign: Campaign | None, programme: Programme) -> dict[str, Any]:
    if campaign is None:
        return {"holdout_percent": 10}
    form: dict[str, Any] = {name: getattr(campaign, name) for name in CAMPAIGN_FIELDS}
    form["starts_at"] = _local_input(campaign.starts_at, programme.timezone)
    form["ends_at"] = _local_input(campaign.ends_at, programme.timezone)
    form["budget_points"] = "" if campaign.budget_points is None else campaign.budget_points
    return form


def _campaign_page(
    request: HttpRequest,
    actor: Actor,
    programme: Programme,
    campaign: Campaign | None,
    form: Any,
    errors: dict[str, list[str]],
) -> HttpResponse:
    context = {
        **_common(programme, actor),
        "campaign": campaign,
        "form": form,
        "errors": errors,
        "rules": list(campaign.rules.order_by("position", "id")) if campaign else [],
    }
    return render(request, "loyalty/rules/campaign_edit.html", context, status=422 if errors else 200)


def _campaign_data(request: HttpRequest) -> dict[str, Any]:
    return {name: request.POST.get(name, "").strip() for name in CAMPAIGN_FIELDS}


@login_required
@require_http_methods(["GET", "POST"])
def rules_campaign_new(request: HttpRequest) -> HttpResponse:
    actor = _manager(request)
    programme = _programme(request)
    if programme is None:
        messages.error(request, _("Create a programme first."))
        return redirect("loyalty:rules_campaigns")
    if request.method == "POST":
        data = _campaign_data(request)
        try:
            campaign = campaign_services.campaign_create(actor=actor, programme=programme, data=data)
        except ApplicationError as error:
            return _campaign_page(request, actor, programme, None, data, _errors(error))
        messages.success(request, _("Campaign saved as a draft."))
        return redirect("loyalty:rules_campaign_edit", public_id=campaign.public_id)
    return _campaign_page(request, actor, programme, None, _campaign_form(None, programme), {})


@login_required
@require_http_methods(["GET", "POST"])
def rules_campaign_edit(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _reader(request)
    campaign = selectors.campaign_get(public_id)
    programme = campaign.programme
    if request.method == "POST":
        actor = _manager(request)
        data = _campaign_data(request)
        try:
            campaign_services.campaign_update(actor=actor, campaign=campaign, changes=data)
        except ApplicationError as error:
            return _campaign_page(request, actor, programme, campaign, data, _errors(error))
        messages.success(request, _("Campaign saved."))
        return redirect("loyalty:rules_campaign_edit", public_id=campaign.public_id)
    return _campaign_page(request, actor, programme, campaign, _campaign_form(campaign, programme), {})


@login_required
@require_POST
def rules_campaign_status(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _manager(request)
    campaign = selectors.campaign_get(public_id)
    try:
        campaign_services.campaign_set_status(
            actor=actor, campaign=campaign, status=request.POST.get("status", "")
        )
    except ApplicationError as error:
        for field_messages in _errors(error).values():
            for message in field_messages:
                messages.error(request, message)
    else:
        messages.success(
            request, _("Status changed to %(status)s.") % {"status": campaign.get_status_display()}
        )
    return redirect("loyalty:rules_campaign_edit", public_id=campaign.public_id)


# -- events ----------------------------------------------------------------------------------------


@login_required
@require_GET
def rules_events(request: HttpRequest) -> HttpResponse:
    actor = _reader(request)
    programme = _programme(request)
    member = None
    query = request.GET.get("member", "").strip()
    events: list[Any] = []
    if programme is not None:
        if query:
            member = selectors.member_find(programme, query)
        if not query or member is not None:
            events = selectors.event_list(programme=programme, member=member, limit=100)
    rows = [
        {
            "event": event,
            "occurred": _local_input(event.occurred_at, programme.timezone).replace("T", " ")
            if programme
            else "",
            "points": int((event.result or {}).get("points", 0)),
            "reasons": [
                f"{reason.split(':', 1)[0]}: {SKIP_REASONS.get(reason.split(':', 1)[-1], reason)}"
                if ":" in reason
                else str(SKIP_REASONS.get(reason, reason))
                for reason in (event.result or {}).get("reasons", [])
            ],
        }
        for event in events
    ]
    context = {
        **_common(programme, actor),
        "rows": rows,
        "query": query,
        "not_found": bool(query and member is None),
    }
    return render(request, "loyalty/rules/events.html", context)


urlpatterns: list[URLPattern] = [
    path("rules/", rules_list, name="rules_list"),
    path("rules/new/", rules_new, name="rules_new"),
    path("rules/preview/", rules_preview, name="rules_preview"),
    path("rules/simulator/", rules_simulator, name="rules_simulator"),
    path("rules/events/", rules_events, name="rules_events"),
    path("rules/campaigns/", rules_campaigns, name="rules_campaigns"),
    path("rules/campaigns/new/", rules_campaign_new, name="rules_campaign_new"),
    path("rules/campaigns/<uuid:public_id>/", rules_campaign_edit, name="rules_campaign_edit"),
    path("rules/campaigns/<uuid:public_id>/status/", rules_campaign_status, name="rules_campaign_status"),
    path("rules/<uuid:public_id>/", rules_edit, name="rules_edit"),
    path("rules/<uuid:public_id>/status/", rules_status, name="rules_status"),
]

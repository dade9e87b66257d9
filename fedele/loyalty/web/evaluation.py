"""Loyalty pages: programme evaluation (``loyalty.view_loyalty_reports``) — KPIs, charts and tables of
every report for one programme and period, and the CSV download of each table."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils.translation import get_language, pgettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from fedele.accounts.facade import Actor, actor_for
from fedele.loyalty.models import Campaign, Programme
from fedele.loyalty.selectors import evaluation
from fedele.loyalty.selectors.evaluation_campaigns import Cohort, TierMigration, Uplift
from fedele.loyalty.selectors.evaluation_common import (
    DEFAULT_MARGIN_PERCENT,
    Period,
    authorise_reports,
    period_for,
)
from fedele.loyalty.selectors.evaluation_ledger import Breakage, BreakageForecast, LiabilityMonth
from fedele.loyalty.selectors.evaluation_members import MembersComparison
from fedele.shared.errors import NotFound, ValidationFailed


def _reader(request: HttpRequest) -> Actor:
    actor = actor_for(request.user)
    authorise_reports(actor)
    return actor


def _date(value: str | None, name: str, errors: dict[str, str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        errors[name] = _("Enter a date as YYYY-MM-DD.")
        return None


def _decimal(value: str | None, default: Decimal, name: str, errors: dict[str, str]) -> Decimal:
    if value in (None, ""):
        return default
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        errors[name] = _("Enter a number.")
        return default
    if not number.is_finite():
        errors[name] = _("Enter a number.")
        return default
    return number


def _inputs(
    request: HttpRequest,
) -> tuple[Programme | None, Period | None, evaluation.Options, dict[str, str]]:
    """Programme, period and options from the query string; a bad value is reported and replaced by
    its default so the page still shows something."""
    errors: dict[str, str] = {}
    code = (request.GET.get("programme") or "").strip()
    programmes = Programme.objects.order_by("code")
    programme = programmes.filter(code=code[:40]).first() if code else None
    if code and programme is None:
        errors["programme"] = _("Unknown programme.")
    if programme is None:
        programme = programmes.filter(status="active").first() or programmes.first()
    start = _date(request.GET.get("from"), "from", errors)
    end = _date(request.GET.get("to"), "to", errors)
    margin = _decimal(request.GET.get("margin_percent"), DEFAULT_MARGIN_PERCENT, "margin_percent", errors)
    costs = _decimal(request.GET.get("reward_costs"), Decimal("0"), "reward_costs", errors)
    try:
        options = evaluation.Options(
            campaign=(request.GET.get("campaign") or "").strip()[:40] or None,
            margin_percent=margin,
            reward_costs=costs,
        )
    except ValidationFailed as failure:
        errors.update({name: " ".join(messages) for name, messages in failure.fields.items()})
        options = evaluation.Options(campaign=(request.GET.get("campaign") or "").strip()[:40] or None)
    if programme is None:
        return None, None, options, errors
    try:
        window = period_for(programme, start, end)
    except ValidationFailed as failure:
        errors.update({name: " ".join(messages) for name, messages in failure.fields.items()})
        window = period_for(programme, None, None)
    return programme, window, options, errors


def _number(value: Decimal | int | None) -> float | None:
    # Chart data only (ECharts plots numbers); tables and CSV keep the exact values.
    return None if value is None else float(value)


def _charts(
    results: dict[str, Any],
) -> dict[str, Any]:
    liability: list[LiabilityMonth] = results["liability"]
    breakage: Breakage = results["breakage"]
    members: MembersComparison = results["members"]
    cohorts: list[Cohort] = results["cohorts"]
    migration: TierMigration = results["tier-migration"]
    forecast: BreakageForecast = results["breakage-forecast"]
    uplift: Uplift | None = results.get("uplift")
    group_names = {"members": pgettext("loyalty programme", "Members"), "non_members": _("Non-members")}
    width = max((len(row.share) for row in cohorts), default=0)
    tier_names = {tier.code: tier.name for tier in migration.tiers}
    columns = list(migration.rows[0].counts) if migration.rows else []
    charts: dict[str, Any] = {
        "liability": {
            "labels": [row.month_end.isoformat() for row in liability],
            "series": [{"name": _("Outstanding points"), "values": [row.outstanding for row in liability]}],
            "line": {"name": _("Liability (EUR)"), "values": [_number(row.value_eur) for row in liability]},
        },
        "breakage": {
            "labels": [f"{row.month:%Y-%m}" for row in breakage.cohorts],
            "series": [
                {"name": _("Used"), "values": [row.used for row in breakage.cohorts]},
                {"name": _("Still open"), "values": [row.open for row in breakage.cohorts]},
                {"name": _("Expired"), "values": [row.expired for row in breakage.cohorts]},
            ],
            "line": {"name": _("Breakage %"), "values": [_number(row.breakage) for row in breakage.cohorts]},
        },
        "forecast": {
            "labels": [f"{row.expiry_month:%Y-%m}" for row in forecast.months],
            "series": [
                {"name": _("Open points"), "values": [row.open_points for row in forecast.months]},
                {"name": _("Expected to expire"), "values": [row.expected_expiry for row in forecast.months]},
            ],
        },
        "members_spend": {
            "labels": [str(group_names[group.group]) for group in members.groups],
            "series": [
                {
                    "name": _("Spend per customer (EUR)"),
                    "values": [_number(group.spend_per_customer) for group in members.groups],
                }
            ],
        },
        "members_rates": {
            "labels": [str(_("Retention %")), str(_("Churn rate %"))],
            "series": [
                {
                    "name": str(group_names[group.group]),
                    "values": [_number(group.retention_rate), _number(group.churn_rate)],
                }
                for group in members.groups
            ],
        },
        "cohorts": {
            "x": [f"+{offset}" for offset in range(width)],
            "y": [f"{row.month:%Y-%m}" for row in cohorts],
            "values": [
                [offset, index, _number(share)]
                for index, row in enumerate(cohorts)
                for offset, share in enumerate(row.share)
            ],
            "x_name": _("Months since enrolment"),
            "unit": "%",
        },
        "migration": {
            "x": [tier_names.get(code, str(_("No tier"))) for code in columns],
            "y": [tier_names.get(row.from_tier, str(_("No tier"))) for row in migration.rows],
            "values": [
                [column, index, row.counts[code]]
                for index, row in enumerate(migration.rows)
                for column, code in enumerate(columns)
            ],
            "x_name": _("To tier"),
            "unit": "",
        },
    }
    if uplift is not None:
        charts["uplift"] = {
            "labels": [str(_("Spend per member (EUR)")), str(_("Earn events per member"))],
            "series": [
                {
                    "name": _("Treatment"),
                    "values": [_number(metric.treatment_mean) for metric in uplift.metrics],
                },
                {"name": _("Holdout"), "values": [_number(metric.holdout_mean) for metric in uplift.metrics]},
            ],
        }
    return charts


@login_required
@require_GET
def evaluation_page(request: HttpRequest) -> HttpResponse:
    _reader(request)
    programme, window, options, errors = _inputs(request)
    context: dict[str, Any] = {
        "programmes": Programme.objects.order_by("code"),
        "programme": programme,
        "errors": errors,
        "options": options,
    }
    if programme is None or window is None:
        return render(request, "loyalty/evaluation/page.html", context, status=422 if errors else 200)
    results: dict[str, Any] = {}
    for name in evaluation.REPORTS:
        try:
            results[name] = evaluation.report(name, window, options)
        except NotFound as missing:
            if name != "uplift":
                raise
            if options.campaign:
                errors["campaign"] = str(missing.message)
            results[name] = None
    tables = []
    for name in evaluation.REPORTS:
        if results[name] is not None:
            tables.extend(evaluation.report_tables(name, results[name]))
    liability: list[LiabilityMonth] = results["liability"]
    params = {
        "programme": programme.code,
        "from": window.start.isoformat(),
        "to": window.end.isoformat(),
        "campaign": results["uplift"].campaign if results["uplift"] else "",
        "margin_percent": str(options.margin_percent),
        "reward_costs": str(options.reward_costs),
    }
    context.update(
        {
            "period": window,
            "params": params,
            "query": urlencode({key: value for key, value in params.items() if value}),
            "programme_name": programme.name(get_language() or "it"),
            "campaigns": Campaign.objects.filter(programme=programme).order_by("-starts_at"),
            "results": {name.replace("-", "_"): value for name, value in results.items()},
            "summary": results["summary"],
            "liability_now": liability[-1] if liability else None,
            "tables": {table.name.replace("-", "_"): table for table in tables},
            "charts": _charts(results),
        }
    )
    return render(request, "loyalty/evaluation/page.html", context, status=422 if errors else 200)


@login_required
@require_GET
def evaluation_csv(request: HttpRequest, table_name: str) -> HttpResponse:
    _reader(request)
    if table_name not in evaluation.TABLE_REPORT:
        raise Http404(table_name)
    programme, window, options, errors = _inputs(request)
    if errors:
        raise ValidationFailed(_("Some parameters are not valid."), code="invalid_parameters", fields=errors)
    if programme is None or window is None:
        raise NotFound(_("Programme not found."), code="programme_not_found")
    result = evaluation.report(evaluation.TABLE_REPORT[table_name], window, options)
    table = evaluation.table_of(table_name, result)
    response = HttpResponse(table.as_csv(), content_type="text/csv; charset=utf-8")
    filename = f"{programme.code}-{table.name}-{window.start.isoformat()}-{window.end.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


urlpatterns: list[URLPattern] = [
    path("evaluation/", evaluation_page, name="evaluation_page"),
    path("evaluation/<slug:table_name>.csv", evaluation_csv, name="evaluation_csv"),
]

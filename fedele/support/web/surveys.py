"""Agent pages of the surveys area: the CSAT report (/support/reports/csat/, chart + tables + CSV)
and NPS campaigns (/support/surveys/nps/: create, send, results)."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fedele.accounts.facade import actor_for
from fedele.shared import clock
from fedele.shared.errors import ApplicationError, PermissionDenied
from fedele.shared.web.forms import BootstrapFormMixin, apply_service_errors
from fedele.support.selectors import surveys as selectors
from fedele.support.services import surveys as services

DEFAULT_PERIOD_DAYS = 30


def _period(request: HttpRequest) -> tuple[date, date, str]:
    today = clock.today()
    error = ""
    try:
        end = date.fromisoformat(request.GET.get("end", "")) if request.GET.get("end") else today
        start = (
            date.fromisoformat(request.GET.get("start", ""))
            if request.GET.get("start")
            else end - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
        )
    except ValueError:
        start, end, error = (
            today - timedelta(days=DEFAULT_PERIOD_DAYS - 1),
            today,
            _("Dates must be YYYY-MM-DD."),
        )
    return start, end, error


def _number(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def _table_rows(rows: list[selectors.CsatFigures], unassigned: str) -> list[dict[str, Any]]:
    return [
        {
            "label": row.label or unassigned,
            "sent": row.sent,
            "responses": row.responses,
            "response_rate": row.response_rate,
            "csat": row.csat_percent,
            "average": row.average,
        }
        for row in rows
    ]


def _csv(report: selectors.CsatReport) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["dimension", "key", "label", "sent", "responses", "response_rate", "csat_percent", "average"]
    )
    groups = [
        ("overall", [report.overall]),
        ("agent", report.by_agent),
        ("team", report.by_team),
        ("category", report.by_category),
        ("day", report.over_time),
    ]
    for dimension, rows in groups:
        for row in rows:
            writer.writerow(
                [
                    dimension,
                    row.key,
                    row.label,
                    row.sent,
                    row.responses,
                    _number(row.response_rate),
                    _number(row.csat_percent),
                    _number(row.average),
                ]
            )
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="csat-{report.start}-{report.end}.csv"'
    return response


@login_required
@require_GET
def csat_report(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request.user)
    start, end, error = _period(request)
    try:
        report = selectors.csat_report(
            actor=actor, start=start, end=end, language=(get_language() or "it")[:2]
        )
    except PermissionDenied:
        raise
    except ApplicationError as failure:
        error = _(failure.message)
        start, end = clock.today() - timedelta(days=DEFAULT_PERIOD_DAYS - 1), clock.today()
        report = selectors.csat_report(actor=actor, start=start, end=end)
    if request.GET.get("format") == "csv":
        return _csv(report)
    chart = {
        "days": [row.key for row in report.over_time],
        "csat": [
            float(row.csat_percent) if row.csat_percent is not None else None for row in report.over_time
        ],
        "responses": [row.responses for row in report.over_time],
        "labels": {"csat": _("CSAT %"), "responses": _("Answers")},
    }
    unassigned = _("(none)")
    return render(
        request,
        "support/surveys/csat_report.html",
        {
            "report": report,
            "start": start,
            "end": end,
            "error": error,
            "overall": report.overall,
            "tables": [
                ("agent", _("By agent"), _table_rows(report.by_agent, unassigned)),
                ("team", _("By team"), _table_rows(report.by_team, unassigned)),
                ("category", _("By category"), _table_rows(report.by_category, unassigned)),
            ],
            "chart": chart,
            "nps": selectors.nps_report(actor=actor),
        },
    )


class CampaignForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=120)
    segment = forms.ChoiceField(
        label=gettext_lazy("Customers"),
        required=False,
        choices=[
            ("", gettext_lazy("Every customer")),
            ("consumer", gettext_lazy("Consumers")),
            ("small_business", gettext_lazy("Small businesses")),
            ("enterprise", gettext_lazy("Enterprises")),
            ("public_administration", gettext_lazy("Public administration")),
        ],
    )
    question_it = forms.CharField(label=gettext_lazy("Question (Italian)"), max_length=300, required=False)
    question_en = forms.CharField(label=gettext_lazy("Question (English)"), max_length=300, required=False)


@login_required
@require_http_methods(["GET", "POST"])
def nps_campaigns(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request.user)
    if not (actor.can("support.manage_support") or actor.can("support.view_support_reports")):
        raise PermissionDenied(_("You do not have permission to see NPS campaigns."))
    form = CampaignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = services.nps_campaign_create(actor=actor, **form.cleaned_data)
        except ApplicationError as error:
            if isinstance(error, PermissionDenied):
                raise
            apply_service_errors(form, error)
        else:
            messages.success(
                request, _("Campaign %(name)s created: check it and send it.") % {"name": campaign.name}
            )
            return redirect("support:nps_campaigns")
    form.mark_errors()
    return render(
        request,
        "support/surveys/nps_campaigns.html",
        {
            "form": form,
            "rows": selectors.nps_report(actor=actor) if actor.can("support.view_support_reports") else [],
            "can_manage": actor.can("support.manage_support"),
        },
        status=422 if request.method == "POST" else 200,
    )


@login_required
@require_POST
def nps_campaign_send(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor = actor_for(request.user)
    try:
        campaign = services.nps_campaign_send(actor=actor, campaign_public_id=str(public_id))
    except ApplicationError as error:
        if isinstance(error, PermissionDenied):
            raise
        messages.error(request, _(error.message))
        return redirect("support:nps_campaigns")
    messages.success(
        request,
        _("Campaign sent to %(count)s customers.") % {"count": campaign.sent_count},
    )
    return redirect("support:nps_campaigns")


urlpatterns: list[URLPattern | URLResolver] = [
    path("reports/csat/", csat_report, name="csat_report"),
    path("surveys/nps/", nps_campaigns, name="nps_campaigns"),
    path("surveys/nps/<uuid:public_id>/send/", nps_campaign_send, name="nps_campaign_send"),
]

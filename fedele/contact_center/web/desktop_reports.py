"""Historical interval reports (15/30/60 minutes): chart, table and CSV with the same numbers."""

from __future__ import annotations

from datetime import date

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from fedele.contact_center.models import Channel, Queue
from fedele.contact_center.selectors import reports
from fedele.contact_center.web.desktop_common import errors_of, supervisor
from fedele.shared import clock
from fedele.shared.errors import ApplicationError, ValidationFailed


def _date(value: str, field: str, default: date) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise ValidationFailed(
            _("Enter a date like 2026-03-29."),
            code="invalid_date",
            fields={field: _("Enter a date like 2026-03-29.")},
        ) from error


def report_from(request: HttpRequest) -> reports.IntervalReport:
    tz_name = request.GET.get("tz") or reports.default_time_zone()
    reports.zone(tz_name)
    today = clock.today(tz_name)
    start = _date(request.GET.get("start", ""), "start", today)
    end = _date(request.GET.get("end", ""), "end", start)
    try:
        interval = int(request.GET.get("interval") or 30)
    except ValueError:
        interval = -1
    return reports.interval_report(
        start_date=start,
        end_date=end,
        interval_minutes=interval,
        time_zone=tz_name,
        queue_codes=request.GET.getlist("queue"),
        channel=request.GET.get("channel", ""),
    )


@login_required
@require_GET
def interval_report(request: HttpRequest) -> HttpResponse:
    supervisor(request)
    errors: dict[str, list[str]] = {}
    report = None
    try:
        report = report_from(request)
    except ApplicationError as error:
        errors = errors_of(error)
    today = clock.today()
    context = {
        "report": report,
        "errors": errors,
        "values": request.GET,
        "chosen_queues": request.GET.getlist("queue"),
        "queues": Queue.objects.order_by("code"),
        "channels": Channel.choices,
        "intervals": reports.INTERVAL_CHOICES,
        "default_start": today.isoformat(),
        "query": request.GET.urlencode(),
        "chart": reports.interval_report_chart(report) if report else None,
    }
    return render(request, "contact_center/reports/intervals.html", context, status=422 if errors else 200)


@login_required
@require_GET
def interval_report_csv(request: HttpRequest) -> HttpResponse:
    supervisor(request)
    report = report_from(request)
    response = HttpResponse(reports.interval_report_csv(report), content_type="text/csv; charset=utf-8")
    period = f"{report.start_date.isoformat()}-{report.end_date.isoformat()}"
    filename = f"intervals-{report.interval_minutes}min-{period}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


urlpatterns: list[URLPattern | URLResolver] = [
    path("reports/intervals/", interval_report, name="interval_report"),
    path("reports/intervals.csv", interval_report_csv, name="interval_report_csv"),
]

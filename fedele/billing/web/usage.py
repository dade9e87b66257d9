"""Billing pages: usage as it accrues per subscription (table and daily chart) and the CSV upload
with its per-line error report (all or nothing, or only the good rows)."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Literal

from django.contrib.auth.decorators import login_required
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from fedele.accounts.facade import Actor, actor_for
from fedele.billing.models import PlanCharge
from fedele.billing.selectors import subscriptions as subscription_selectors
from fedele.billing.selectors.usage import current_usage, daily_usage, estimated_total
from fedele.billing.services.usage import usage_ingest_csv
from fedele.shared.errors import PayloadTooLarge, PermissionDenied, ValidationFailed
from fedele.shared.pagination import paginate

PAGE_SIZE = 25
MAX_CSV_BYTES = 5 * 1024 * 1024
LINE_LABEL = re.compile(r"^line (\d+)$")


def _staff(request: HttpRequest) -> Actor:
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can("billing.view_billing")):
        raise PermissionDenied(_("You do not have permission to see usage."))
    return actor


@login_required
@require_GET
def usage_home(request: HttpRequest) -> HttpResponse:
    """Subscriptions whose plan meters usage, to open one's usage page."""
    actor = _staff(request)
    search = request.GET.get("q", "").strip()[:100]
    metered = PlanCharge.objects.filter(plan_version_id=OuterRef("plan_version_id"), kind="usage")
    queryset = subscription_selectors.subscription_list(
        actor=actor, filters=subscription_selectors.SubscriptionFilters(search=search)
    ).filter(Exists(metered), status__in=("trialing", "active", "past_due"))
    page = paginate(
        queryset,
        ordering="-created_at",
        allowed=subscription_selectors.ORDERINGS,
        cursor=request.GET.get("cursor") or None,
        limit=PAGE_SIZE,
    )
    query = request.GET.copy()
    query["cursor"] = page.next_cursor or ""
    context = {
        "subscriptions": page.items,
        "search": search,
        "next_query": query.urlencode() if page.next_cursor else "",
        "can_upload": actor.can("billing.manage_billing"),
    }
    return render(request, "billing/usage/home.html", context)


def chart_data(subscription: Any) -> dict[str, Any]:
    """Days of the current period on the x axis, one series per metric (missing days are zero)."""
    points = daily_usage(subscription)
    days = sorted({point.day for point in points})
    by_metric: dict[str, dict[str, str]] = defaultdict(dict)
    for point in points:
        by_metric[point.metric_code][point.day.isoformat()] = str(point.value)
    return {
        "days": [day.isoformat() for day in days],
        "series": [
            {"name": code, "values": [values.get(day.isoformat(), "0") for day in days]}
            for code, values in sorted(by_metric.items())
        ],
    }


@login_required
@require_GET
def usage_subscription(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _staff(request)
    subscription = subscription_selectors.subscription_get(actor=actor, public_id=str(public_id))
    rows = current_usage(subscription)
    currency = subscription.plan_version.currency
    chart = chart_data(subscription)
    table = [
        (day, [series["values"][index] for series in chart["series"]])
        for index, day in enumerate(chart["days"])
    ]
    context = {
        "subscription": subscription,
        "rows": rows,
        "currency": currency,
        "total": estimated_total(rows, currency).amount,
        "chart": chart,
        "chart_table": table,
    }
    return render(request, "billing/usage/subscription.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def usage_upload(request: HttpRequest) -> HttpResponse:
    actor = _staff(request)
    if not actor.can("billing.manage_billing"):
        raise PermissionDenied(_("You do not have permission to record usage."))
    mode: Literal["all_or_nothing", "good_rows"] = (
        "good_rows" if request.POST.get("mode") == "good_rows" else "all_or_nothing"
    )
    context: dict[str, Any] = {"mode": mode}
    status = 200
    if request.method == "POST":
        upload = request.FILES.get("file")
        try:
            if upload is None:
                raise ValidationFailed(_("Choose a CSV file."), fields={"file": [_("Choose a CSV file.")]})
            if (upload.size or 0) > MAX_CSV_BYTES:
                raise PayloadTooLarge(_("The CSV file is larger than 5 MB; split it."))
            result = usage_ingest_csv(content=upload.read(), mode=mode, actor_id=actor.user_id)
            context["result"] = result
            context["problems"] = [(r.index, r.reason) for r in result.rejected]
        except ValidationFailed as error:
            status = 422
            context["error"] = error.message
            problems = []
            for label, messages in error.fields.items():
                match = LINE_LABEL.match(label)
                for message in messages:
                    problems.append((int(match.group(1)) if match else label, message))
            context["problems"] = problems
        except PayloadTooLarge as error:
            status = 413
            context["error"] = error.message
    return render(request, "billing/usage/upload.html", context, status=status)


urlpatterns: list[URLPattern] = [
    path("usage/", usage_home, name="usage"),
    path("usage/upload/", usage_upload, name="usage_upload"),
    path("usage/subscriptions/<uuid:public_id>/", usage_subscription, name="usage_subscription"),
]

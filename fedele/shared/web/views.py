"""Kernel pages: home dashboard, global search, notifications, health."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from fedele.shared import notifications as notification_service
from fedele.shared import search


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if not getattr(request.user, "is_internal", False):
        return redirect("customers:list")
    return render(request, "home.html", {"search_sources": search.source_names()})


@login_required
@require_GET
def global_search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:100]
    results = search.run(request, query) if len(query) >= 2 else []
    template = "partials/_search_results.html" if request.htmx else "search.html"  # type: ignore[attr-defined]
    return render(request, template, {"query": query, "results": results})


@login_required
@require_http_methods(["GET", "POST"])
def notifications(request: HttpRequest) -> HttpResponse:
    user_id = int(request.user.pk or 0)
    if request.method == "POST":
        notification_service.mark_all_read(recipient_id=user_id)
    items = notification_service.notification_list(recipient_id=user_id)
    template = "partials/_notifications.html" if request.htmx else "notifications.html"  # type: ignore[attr-defined]
    return render(request, template, {"notifications": items})


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})

"""Kernel pages: home dashboard, global search, notifications, health."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods

from fedele.shared import notifications as notification_service
from fedele.shared import search
from fedele.shared.web import dashboard

SEARCH_MIN_LENGTH = 2


def wants_partial(request: HttpRequest) -> bool:
    """An htmx request gets the partial; a history restore (back button) needs the whole page."""
    details = getattr(request, "htmx", None)
    return bool(details) and not getattr(details, "history_restore_request", False)


def render_page_or_partial(
    request: HttpRequest, page: str, partial: str, context: dict[str, object], status: int = 200
) -> HttpResponse:
    response = render(request, partial if wants_partial(request) else page, context, status=status)
    # Page and partial share a URL: caches must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    own_home = dashboard.home_for(request)
    if own_home:
        return redirect(own_home)
    if not getattr(user, "is_internal", False) and user.has_perm("customers.view_customer"):
        # Partners work on their own customers: that list is their home.
        return redirect("customers:list")
    return render(
        request,
        "home.html",
        {
            # Each widget source decides what this user may see (portal customers get their own card).
            "widgets": dashboard.widgets_for(request),
            "search_sources": search.source_names(),
        },
    )


@login_required
@require_GET
def global_search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:100]
    results = search.run(request, query) if len(query) >= SEARCH_MIN_LENGTH else []
    groups: dict[str, list[search.SearchHit]] = {}
    for hit in results:
        groups.setdefault(hit.source, []).append(hit)
    context = {
        "query": query,
        "results": results,
        "groups": sorted(groups.items()),
        "too_short": 0 < len(query) < SEARCH_MIN_LENGTH,
        "min_length": SEARCH_MIN_LENGTH,
    }
    return render_page_or_partial(request, "search.html", "partials/_search_results.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def notifications(request: HttpRequest) -> HttpResponse:
    user_id = int(request.user.pk or 0)
    if request.method == "POST":
        notification_service.mark_all_read(recipient_id=user_id)
        if not wants_partial(request):
            return redirect("notifications")
    items = notification_service.notification_list(
        recipient_id=user_id, limit=10 if wants_partial(request) else 50
    )
    return render_page_or_partial(
        request, "notifications.html", "partials/_notifications.html", {"notifications": items}
    )


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})

"""The wallboard page (and its TV mode). The table is pushed over ``ws/contact-center/wallboard/``; the
partial URL serves the same table to a page whose websocket is down (it then polls)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import URLPattern, URLResolver, path
from django.views.decorators.http import require_GET

from fedele.contact_center.selectors.wallboard import AGENT_STATES, Wallboard, wallboard
from fedele.contact_center.web.desktop_common import supervisor

POLL_SECONDS = 10


def board_context(board: Wallboard) -> dict[str, object]:
    return {"board": board, "agent_states": AGENT_STATES}


def render_board(board: Wallboard) -> str:
    """The table alone: what the websocket consumer pushes and the fallback poll fetches."""
    return render_to_string("contact_center/wallboard/_board.html", board_context(board))


def _codes(request: HttpRequest) -> list[str]:
    return [code for code in request.GET.getlist("queue") if code]


@login_required
@require_GET
def wallboard_page(request: HttpRequest) -> HttpResponse:
    supervisor(request)
    codes = _codes(request)
    context = {
        **board_context(wallboard(queue_codes=codes or None)),
        "tv": request.GET.get("tv") == "1",
        "query": request.GET.urlencode(),
        "socket_query": "&".join(f"queue={code}" for code in codes),
        "poll_seconds": POLL_SECONDS,
    }
    return render(request, "contact_center/wallboard/page.html", context)


@login_required
@require_GET
def wallboard_partial(request: HttpRequest) -> HttpResponse:
    supervisor(request)
    return HttpResponse(render_board(wallboard(queue_codes=_codes(request) or None)))


urlpatterns: list[URLPattern | URLResolver] = [
    path("wallboard/", wallboard_page, name="wallboard"),
    path("wallboard/board/", wallboard_partial, name="wallboard_board"),
]

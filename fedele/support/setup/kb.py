"""What the kb area registers at start-up: the "Knowledge base" navigation item, the global search
source for agents and the periodic job that settles deflections."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from fedele.shared.search import SearchHit


def articles_for_search(request: HttpRequest, query: str, limit: int) -> list[SearchHit]:
    """Global search box: articles for agents (internal ones included), nothing for anyone else."""
    from fedele.accounts.facade import actor_for
    from fedele.support.selectors.kb import can_see_internal
    from fedele.support.selectors.kb_search import kb_search

    if not request.user.is_authenticated:
        return []
    actor = actor_for(request.user)
    if not can_see_internal(actor):
        return []
    hits = kb_search(query, language=actor.language or "it", include_internal=True, limit=limit)
    return [
        SearchHit(
            source=str(_("Knowledge base")),
            title=hit.article.title,
            subtitle=hit.snippet[:120],
            url=reverse("support:kb_article", args=[hit.article.public_id]),
        )
        for hit in hits
    ]


def register() -> None:
    from fedele.shared import navigation, scheduler, search
    from fedele.support.kb import tasks  # noqa: F401  (registers the Celery task name)

    navigation.register(
        "service", navigation.NavItem(_("Knowledge base"), "support:kb_list", "support.view_ticket")
    )
    search.register("support_kb", articles_for_search)
    scheduler.register("support-kb-deflections", "support.kb_settle_deflections", 600)

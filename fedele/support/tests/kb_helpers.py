"""Shared set-up for the knowledge-base tests: publish articles through the real services."""

from __future__ import annotations

from typing import Any

from fedele.accounts.facade import actor_for
from fedele.accounts.models import User
from fedele.accounts.tests.factories import user_with_roles
from fedele.support.models import Article
from fedele.support.services import kb


def supervisor() -> User:
    return user_with_roles("supervisor")


def published(
    publisher: User,
    *,
    language: str = "it",
    title: str,
    body: str,
    summary: str = "",
    keywords: str = "",
    visibility: str = "public",
    category: str | None = None,
    source: Article | None = None,
    **extra: Any,
) -> Article:
    """Create (or translate) an article, send v1 for review and publish it."""
    actor = actor_for(publisher)
    if source is not None:
        article = kb.translation_create(
            actor=actor,
            source=source,
            language=language,
            title=title,
            body_html=body,
            summary=summary,
            keywords=keywords,
        )
    else:
        article = kb.article_create(
            actor=actor,
            language=language,
            title=title,
            body_html=body,
            summary=summary,
            keywords=keywords,
            visibility=visibility,
            category=category,
            **extra,
        )
    version = article.versions.get(number=1)
    kb.version_submit(actor=actor, version=version)
    kb.version_publish(actor=actor, version=version)
    article.refresh_from_db()
    return article

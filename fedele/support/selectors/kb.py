"""Knowledge-base reads: categories, article lists for agents and for the portal, one article by slug,
versions with a diff, translations, feedback and deflection figures.

``include_internal`` is False for portal customers and anonymous visitors: they see only published
public articles in public categories; anything else is a 404, exactly like a slug that does not exist.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet

from fedele.accounts.facade import Actor
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed
from fedele.support.html import html_to_text
from fedele.support.models import (
    Article,
    ArticleAttachment,
    ArticleFeedback,
    ArticleVersion,
    Deflection,
    KbCategory,
    Visibility,
)

VIEW_PERMISSION = "support.view_ticket"
LIST_FILTERS = ("status", "category", "language", "visibility", "q")


def can_see_internal(actor: Actor | None) -> bool:
    """Agents (internal users with support access) see internal articles; customers never do."""
    return actor is not None and actor.is_internal and actor.can(VIEW_PERMISSION)


def require_kb_reader(actor: Actor | None) -> Actor:
    if actor is None or not can_see_internal(actor):
        raise PermissionDenied("You may not see the knowledge-base workspace.", code="kb_view_denied")
    return actor


def _public_category_q(prefix: str = "category") -> Q:
    """No category, or a public category whose parent (one level, as the portal shows) is public."""
    return Q(**{f"{prefix}__isnull": True}) | (
        Q(**{f"{prefix}__visibility": Visibility.PUBLIC})
        & (
            Q(**{f"{prefix}__parent__isnull": True})
            | Q(**{f"{prefix}__parent__visibility": Visibility.PUBLIC})
        )
    )


def published_articles(*, include_internal: bool) -> QuerySet[Article]:
    articles = Article.objects.filter(status=Article.Status.PUBLISHED)
    if not include_internal:
        articles = articles.filter(visibility=Visibility.PUBLIC).filter(_public_category_q())
    return articles


def category_list(*, include_internal: bool, language: str = "it") -> list[KbCategory]:
    """Categories with ``article_count`` (published articles in ``language`` the caller may see)."""
    categories = KbCategory.objects.select_related("parent")
    if not include_internal:
        categories = categories.filter(visibility=Visibility.PUBLIC).filter(
            Q(parent__isnull=True) | Q(parent__visibility=Visibility.PUBLIC)
        )
    article_filter = Q(articles__status=Article.Status.PUBLISHED, articles__language=language)
    if not include_internal:
        article_filter &= Q(articles__visibility=Visibility.PUBLIC)
    return list(categories.annotate(article_count=Count("articles", filter=article_filter)))


def category_get(*, slug: str, include_internal: bool) -> KbCategory:
    category = KbCategory.objects.select_related("parent").filter(slug=slug).first()
    if category is None:
        raise NotFound("Category not found.", code="category_not_found")
    if not include_internal:
        internal = category.visibility == Visibility.INTERNAL or (
            category.parent is not None and category.parent.visibility == Visibility.INTERNAL
        )
        if internal:
            raise NotFound("Category not found.", code="category_not_found")
    return category


def portal_articles(*, language: str, category: KbCategory | None = None, limit: int = 200) -> list[Article]:
    """Published public articles of a category (or the most viewed ones) in one language."""
    articles = published_articles(include_internal=False).filter(language=language).select_related("category")
    if category is not None:
        articles = articles.filter(Q(category=category) | Q(category__parent=category)).order_by("title")
    else:
        articles = articles.order_by("-view_count", "title")
    return list(articles[:limit])


def public_article(*, language: str, slug: str, include_internal: bool) -> Article:
    article = (
        published_articles(include_internal=include_internal)
        .select_related("category")
        .filter(language=language, slug=slug)
        .first()
    )
    if article is None:
        raise NotFound("Article not found.", code="article_not_found")
    return article


def translations_of(
    article: Article, *, include_internal: bool = True, published_only: bool = False
) -> list[Article]:
    others = Article.objects.filter(translation_group=article.translation_group).exclude(pk=article.pk)
    if published_only:
        others = (
            published_articles(include_internal=include_internal)
            .filter(translation_group=article.translation_group)
            .exclude(pk=article.pk)
        )
    return list(others.order_by("language"))


def article_in_language(article: Article, language: str, *, include_internal: bool) -> Article | None:
    """The published translation of an article in ``language`` the caller may see, if any."""
    if article.language == language:
        return article
    return (
        published_articles(include_internal=include_internal)
        .filter(translation_group=article.translation_group, language=language)
        .first()
    )


def article_list(*, actor: Actor | None, filters: Mapping[str, str]) -> QuerySet[Article]:
    """The agents' list: every article, filtered by status, category slug, language, visibility, q."""
    require_kb_reader(actor)
    articles = Article.objects.select_related("category").annotate(version_count=Count("versions"))
    status = filters.get("status", "")
    if status:
        if status not in Article.Status.values:
            raise ValidationFailed("Unknown status.", fields={"status": f"'{status}' is not a status."})
        articles = articles.filter(status=status)
    category = filters.get("category", "")
    if category:
        articles = articles.filter(Q(category__slug=category) | Q(category__parent__slug=category))
    language = filters.get("language", "")
    if language:
        articles = articles.filter(language=language)
    visibility = filters.get("visibility", "")
    if visibility:
        if visibility not in Visibility.values:
            raise ValidationFailed(
                "Unknown visibility.", fields={"visibility": f"'{visibility}' is not a visibility."}
            )
        articles = articles.filter(visibility=visibility)
    query = (filters.get("q") or "").strip()
    if query:
        articles = articles.filter(Q(title__icontains=query) | Q(slug__icontains=query[:120]))
    return articles.order_by("-updated_at", "-id")


def article_get(*, actor: Actor | None, public_id: Any) -> Article:
    require_kb_reader(actor)
    article = Article.objects.select_related("category", "author").filter(public_id=public_id).first()
    if article is None:
        raise NotFound("Article not found.", code="article_not_found")
    return article


def attachment_for_agent(*, actor: Actor | None, public_id: Any) -> ArticleAttachment:
    """An article's attachment for a knowledge-base reader (any article, internal ones included)."""
    require_kb_reader(actor)
    attachment = ArticleAttachment.objects.filter(public_id=public_id).first()
    if attachment is None:
        raise NotFound("Attachment not found.", code="attachment_not_found")
    return attachment


def public_attachment(*, public_id: Any) -> ArticleAttachment:
    """An attachment of an article the help centre shows to everyone (published, public, in a public
    category); any other is NotFound, so its existence is not disclosed."""
    attachment = (
        ArticleAttachment.objects.filter(
            public_id=public_id, article__in=published_articles(include_internal=False)
        )
        .select_related("article")
        .first()
    )
    if attachment is None:
        raise NotFound("Attachment not found.", code="attachment_not_found")
    return attachment


def version_get(*, actor: Actor | None, article: Article, number: int) -> ArticleVersion:
    require_kb_reader(actor)
    version = ArticleVersion.objects.filter(article=article, number=number).first()
    if version is None:
        raise NotFound("Version not found.", code="version_not_found")
    return version


def versions_of(article: Article) -> list[ArticleVersion]:
    return list(
        ArticleVersion.objects.filter(article=article)
        .select_related("author", "reviewer")
        .order_by("-number")
    )


# diff ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: str  # "same" | "added" | "removed" | "hunk"
    text: str


def _version_lines(version: ArticleVersion) -> list[str]:
    lines = [f"# {version.title}"]
    if version.summary:
        lines.append(version.summary)
    lines.append("")
    lines.extend(html_to_text(version.body_html).split("\n"))
    return lines


def version_diff(older: ArticleVersion, newer: ArticleVersion, *, context: int = 3) -> list[DiffLine]:
    """A unified diff of the two versions' readable text (title, summary, body)."""
    rows: list[DiffLine] = []
    diff = difflib.unified_diff(_version_lines(older), _version_lines(newer), lineterm="", n=context)
    for line in diff:
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            rows.append(DiffLine("hunk", line))
        elif line.startswith("+"):
            rows.append(DiffLine("added", line[1:]))
        elif line.startswith("-"):
            rows.append(DiffLine("removed", line[1:]))
        else:
            rows.append(DiffLine("same", line[1:]))
    return rows


# figures -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArticleFigures:
    views: int
    helpful: int
    not_helpful: int
    helpful_percent: int | None
    comments: list[ArticleFeedback]
    suggested: int
    opened: int
    deflected: int
    submitted: int


def article_figures(article: Article, *, comments: int = 10) -> ArticleFigures:
    votes = article.helpful_count + article.not_helpful_count
    outcomes = dict(
        Deflection.objects.filter(article=article)
        .values_list("outcome")
        .annotate(total=Count("id"))
        .values_list("outcome", "total")
    )
    latest = list(
        ArticleFeedback.objects.filter(article=article, helpful=False)
        .exclude(comment="")
        .order_by("-created_at", "-id")[:comments]
    )
    return ArticleFigures(
        views=article.view_count,
        helpful=article.helpful_count,
        not_helpful=article.not_helpful_count,
        helpful_percent=round(100 * article.helpful_count / votes) if votes else None,
        comments=latest,
        suggested=sum(outcomes.values()),
        opened=outcomes.get(Deflection.Outcome.OPENED, 0),
        deflected=outcomes.get(Deflection.Outcome.DEFLECTED, 0),
        submitted=outcomes.get(Deflection.Outcome.SUBMITTED, 0),
    )


def deflection_summary() -> dict[str, int]:
    """Suggestion outcomes over all tokens (for the KB list page and the reports)."""
    counts = dict(
        Deflection.objects.values_list("outcome").annotate(total=Count("id")).values_list("outcome", "total")
    )
    return {outcome: counts.get(outcome, 0) for outcome in Deflection.Outcome.values}

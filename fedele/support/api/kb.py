"""Support API: knowledge base. Categories, articles with versions and the review workflow, search,
feedback. Agents (internal users with support access) see internal articles; portal customers only
published public ones, and an internal article is a 404 for them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from fedele.accounts.facade import Actor, actor_for
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import NotFound
from fedele.support.models import Article, ArticleVersion, KbCategory
from fedele.support.selectors import kb as selectors
from fedele.support.selectors.kb_search import kb_search
from fedele.support.services import kb as services

router = Router(tags=["support: knowledge base"])


def _reader(request: HttpRequest) -> Actor:
    require_scope(request, "read")
    return actor_for(request.user)


def _writer(request: HttpRequest) -> Actor:
    require_scope(request, "write")
    return actor_for(request.user)


# schemas ---------------------------------------------------------------------------------------------


class CategoryIn(StrictSchema):
    slug: str = Field(..., max_length=80)
    name_it: str = Field(..., max_length=120)
    name_en: str = Field(..., max_length=120)
    description_it: str = Field("", max_length=300)
    description_en: str = Field("", max_length=300)
    parent: str | None = Field(None, max_length=80)
    visibility: Literal["public", "internal"] = "public"
    position: int = Field(0, ge=0, le=32767)


class CategoryOut(Schema):
    id: UUID
    slug: str
    name_it: str
    name_en: str
    description_it: str
    description_en: str
    parent: str | None
    visibility: str
    position: int
    article_count: int


class ArticleIn(StrictSchema):
    language: Literal["it", "en"]
    title: str = Field(..., max_length=200)
    summary: str = Field("", max_length=300)
    body_html: str = Field(..., max_length=200_000)
    slug: str = Field("", max_length=120)
    category: str | None = Field(None, max_length=80)
    visibility: Literal["public", "internal"] = "public"
    keywords: str = Field("", max_length=300)


class ArticlePatch(StrictSchema):
    category: str | None = Field(None, max_length=80)
    visibility: Literal["public", "internal"] | None = None
    keywords: str | None = Field(None, max_length=300)
    slug: str | None = Field(None, max_length=120)


class TranslationIn(StrictSchema):
    language: Literal["it", "en"]
    title: str = Field(..., max_length=200)
    summary: str = Field("", max_length=300)
    body_html: str = Field(..., max_length=200_000)
    slug: str = Field("", max_length=120)
    keywords: str = Field("", max_length=300)


class VersionIn(StrictSchema):
    title: str = Field(..., max_length=200)
    summary: str = Field("", max_length=300)
    body_html: str = Field(..., max_length=200_000)


class RejectIn(StrictSchema):
    note: str = Field(..., max_length=300)


class FeedbackIn(StrictSchema):
    helpful: bool
    comment: str = Field("", max_length=1000)


class VersionOut(Schema):
    number: int
    title: str
    summary: str
    body_html: str
    status: str
    note: str
    created_at: datetime
    reviewed_at: datetime | None


class ArticleOut(Schema):
    id: UUID
    translation_group: UUID
    language: str
    slug: str
    title: str
    summary: str
    body_html: str
    status: str
    visibility: str
    category: str | None
    keywords: str
    published_version: int
    published_at: datetime | None
    view_count: int
    helpful_count: int
    not_helpful_count: int
    url: str


class HitOut(Schema):
    article: ArticleOut
    score: float
    snippet: str
    fallback: bool


class ListQuery(Schema):
    status: str = ""
    category: str = ""
    language: str = ""
    visibility: str = ""
    q: str = Field("", max_length=120)
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


class ArticlePage(Schema):
    items: list[ArticleOut]
    next_cursor: str | None


class SearchQuery(Schema):
    q: str = Field(..., min_length=1, max_length=500)
    lang: Literal["it", "en"] = "it"
    category: str | None = Field(None, max_length=80)
    limit: int = Field(10, ge=1, le=50)


def article_row(article: Article) -> dict[str, Any]:
    from django.urls import reverse

    return {
        "id": article.public_id,
        "translation_group": article.translation_group,
        "language": article.language,
        "slug": article.slug,
        "title": article.title,
        "summary": article.summary,
        "body_html": article.body_html,
        "status": article.status,
        "visibility": article.visibility,
        "category": article.category.slug if article.category_id and article.category else None,
        "keywords": article.keywords,
        "published_version": article.published_version,
        "published_at": article.published_at,
        "view_count": article.view_count,
        "helpful_count": article.helpful_count,
        "not_helpful_count": article.not_helpful_count,
        "url": reverse("help:kb_article", args=[article.language, article.slug]),
    }


def category_row(category: KbCategory) -> dict[str, Any]:
    return {
        "id": category.public_id,
        "slug": category.slug,
        "name_it": category.name_it,
        "name_en": category.name_en,
        "description_it": category.description_it,
        "description_en": category.description_en,
        "parent": category.parent.slug if category.parent_id and category.parent else None,
        "visibility": category.visibility,
        "position": category.position,
        "article_count": getattr(category, "article_count", 0),
    }


def _article_for(actor: Actor, article_id: UUID) -> Article:
    """Agents get any article; everyone else only a published public one (else 404)."""
    if selectors.can_see_internal(actor):
        return selectors.article_get(actor=actor, public_id=article_id)
    article = (
        selectors.published_articles(include_internal=False)
        .select_related("category")
        .filter(public_id=article_id)
        .first()
    )
    if article is None:
        raise NotFound("Article not found.", code="article_not_found")
    return article


def _version(actor: Actor, article_id: UUID, number: int) -> ArticleVersion:
    article = selectors.article_get(actor=actor, public_id=article_id)
    return selectors.version_get(actor=actor, article=article, number=number)


# categories ------------------------------------------------------------------------------------------


@router.get("/kb/categories", response={200: list[CategoryOut], **ERROR_RESPONSES}, summary="List categories")
def list_categories(request: HttpRequest, lang: Literal["it", "en"] = "it") -> list[dict[str, Any]]:
    actor = _reader(request)
    include = selectors.can_see_internal(actor)
    return [category_row(row) for row in selectors.category_list(include_internal=include, language=lang)]


@router.post("/kb/categories", response={201: CategoryOut, **ERROR_RESPONSES}, summary="Create a category")
def create_category(request: HttpRequest, payload: CategoryIn) -> Status[dict[str, Any]]:
    category = services.category_create(actor=_writer(request), **payload.model_dump())
    return Status(201, category_row(category))


# articles --------------------------------------------------------------------------------------------


@router.get("/kb/articles", response={200: ArticlePage, **ERROR_RESPONSES}, summary="List articles (agents)")
def list_articles(request: HttpRequest, query: Query[ListQuery]) -> dict[str, Any]:
    from fedele.shared.pagination import paginate

    actor = _reader(request)
    filters = {name: getattr(query, name) for name in selectors.LIST_FILTERS}
    page = paginate(
        selectors.article_list(actor=actor, filters=filters),
        ordering="-updated_at",
        allowed={"updated_at": "updated_at"},
        cursor=query.cursor,
        limit=query.limit,
    )
    return {"items": [article_row(article) for article in page.items], "next_cursor": page.next_cursor}


@router.post("/kb/articles", response={201: ArticleOut, **ERROR_RESPONSES}, summary="Create a draft article")
def create_article(request: HttpRequest, payload: ArticleIn) -> Status[dict[str, Any]]:
    article = services.article_create(actor=_writer(request), **payload.model_dump())
    return Status(201, article_row(article))


@router.get("/kb/search", response={200: list[HitOut], **ERROR_RESPONSES}, summary="Search articles")
def search_articles(request: HttpRequest, query: Query[SearchQuery]) -> list[dict[str, Any]]:
    actor = _reader(request)
    hits = kb_search(
        query.q,
        language=query.lang,
        include_internal=selectors.can_see_internal(actor),
        limit=query.limit,
        category=query.category,
    )
    return [
        {
            "article": article_row(hit.article),
            "score": hit.score,
            "snippet": hit.snippet,
            "fallback": hit.fallback,
        }
        for hit in hits
    ]


@router.get(
    "/kb/articles/{article_id}", response={200: ArticleOut, **ERROR_RESPONSES}, summary="Get an article"
)
def get_article(request: HttpRequest, article_id: UUID) -> dict[str, Any]:
    return article_row(_article_for(_reader(request), article_id))


@router.patch(
    "/kb/articles/{article_id}",
    response={200: ArticleOut, **ERROR_RESPONSES},
    summary="Change article settings",
)
def update_article(request: HttpRequest, article_id: UUID, payload: ArticlePatch) -> dict[str, Any]:
    actor = _writer(request)
    article = selectors.article_get(actor=actor, public_id=article_id)
    changes = payload.model_dump(exclude_unset=True)
    return article_row(services.article_update(actor=actor, article=article, changes=changes))


@router.post(
    "/kb/articles/{article_id}/translations",
    response={201: ArticleOut, **ERROR_RESPONSES},
    summary="Create a translation (draft)",
)
def create_translation(
    request: HttpRequest, article_id: UUID, payload: TranslationIn
) -> Status[dict[str, Any]]:
    actor = _writer(request)
    source = selectors.article_get(actor=actor, public_id=article_id)
    translation = services.translation_create(actor=actor, source=source, **payload.model_dump())
    return Status(201, article_row(translation))


@router.post(
    "/kb/articles/{article_id}/archive",
    response={200: ArticleOut, **ERROR_RESPONSES},
    summary="Archive an article",
)
def archive_article(request: HttpRequest, article_id: UUID) -> dict[str, Any]:
    actor = _writer(request)
    article = selectors.article_get(actor=actor, public_id=article_id)
    return article_row(services.article_archive(actor=actor, article=article))


@router.post(
    "/kb/articles/{article_id}/unarchive",
    response={200: ArticleOut, **ERROR_RESPONSES},
    summary="Restore an archived article",
)
def unarchive_article(request: HttpRequest, article_id: UUID) -> dict[str, Any]:
    actor = _writer(request)
    article = selectors.article_get(actor=actor, public_id=article_id)
    return article_row(services.article_unarchive(actor=actor, article=article))


@router.get(
    "/kb/articles/{article_id}/versions",
    response={200: list[VersionOut], **ERROR_RESPONSES},
    summary="List an article's versions (agents)",
)
def list_versions(request: HttpRequest, article_id: UUID) -> list[ArticleVersion]:
    actor = _reader(request)
    return selectors.versions_of(selectors.article_get(actor=actor, public_id=article_id))


@router.post(
    "/kb/articles/{article_id}/versions",
    response={201: VersionOut, **ERROR_RESPONSES},
    summary="Save an edit as a new draft version",
)
def create_version(request: HttpRequest, article_id: UUID, payload: VersionIn) -> Status[ArticleVersion]:
    actor = _writer(request)
    article = selectors.article_get(actor=actor, public_id=article_id)
    return Status(201, services.version_create(actor=actor, article=article, **payload.model_dump()))


@router.post(
    "/kb/articles/{article_id}/versions/{number}/submit",
    response={200: VersionOut, **ERROR_RESPONSES},
    summary="Send a draft version for review",
)
def submit_version(request: HttpRequest, article_id: UUID, number: int) -> ArticleVersion:
    actor = _writer(request)
    return services.version_submit(actor=actor, version=_version(actor, article_id, number))


@router.post(
    "/kb/articles/{article_id}/versions/{number}/publish",
    response={200: VersionOut, **ERROR_RESPONSES},
    summary="Publish a version in review",
)
def publish_version(request: HttpRequest, article_id: UUID, number: int) -> ArticleVersion:
    actor = _writer(request)
    return services.version_publish(actor=actor, version=_version(actor, article_id, number))


@router.post(
    "/kb/articles/{article_id}/versions/{number}/reject",
    response={200: VersionOut, **ERROR_RESPONSES},
    summary="Request changes to a version in review",
)
def reject_version(request: HttpRequest, article_id: UUID, number: int, payload: RejectIn) -> ArticleVersion:
    actor = _writer(request)
    return services.version_reject(
        actor=actor, version=_version(actor, article_id, number), note=payload.note
    )


@router.post(
    "/kb/articles/{article_id}/feedback",
    response={201: dict[str, bool], **ERROR_RESPONSES},
    summary="Say whether an article helped (once per user)",
)
def article_feedback(request: HttpRequest, article_id: UUID, payload: FeedbackIn) -> Status[dict[str, bool]]:
    actor = _writer(request)
    article = _article_for(actor, article_id)
    services.feedback_record(
        article=article, helpful=payload.helpful, comment=payload.comment, user_id=actor.user_id
    )
    return Status(201, {"recorded": True})

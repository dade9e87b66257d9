"""Knowledge-base writes: categories, articles with versions (draft → in review → published), archive,
translations, attachments, "Did this help?" feedback, view counting and deflection tracking.

Editing never touches the published text: an edit is a new ArticleVersion (draft), submitted for
review and published by someone with ``support.publish_knowledge_base``. Publishing copies the version
onto the Article row, supersedes the previously published version and recomputes the search text and
the semantic embedding. Every refused action raises before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils.text import slugify

from fedele.accounts.facade import Actor
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fedele.support.attachments import IncomingFile, check_files
from fedele.support.html import html_to_text, sanitise_html
from fedele.support.kb import search_index, semantic, text
from fedele.support.models import (
    Article,
    ArticleAttachment,
    ArticleFeedback,
    ArticleVersion,
    Deflection,
    KbCategory,
    Ticket,
    Visibility,
)

EDIT_PERMISSION = "support.edit_knowledge_base"
PUBLISH_PERMISSION = "support.publish_knowledge_base"
MANAGE_PERMISSION = "support.manage_support"
VIEW_WINDOW_SECONDS = 30 * 60
ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
ATTACHMENT_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


# permissions and small validators ----------------------------------------------------------------


def require_editor(actor: Actor | None) -> Actor:
    if actor is None or not actor.is_internal or not actor.can(EDIT_PERMISSION):
        raise PermissionDenied("You may not edit the knowledge base.", code="kb_edit_denied")
    return actor


def require_publisher(actor: Actor | None) -> Actor:
    if actor is None or not actor.is_internal or not actor.can(PUBLISH_PERMISSION):
        raise PermissionDenied("You may not publish knowledge-base articles.", code="kb_publish_denied")
    return actor


def require_category_manager(actor: Actor | None) -> Actor:
    if actor is None or not actor.is_internal or not actor.can(PUBLISH_PERMISSION):
        raise PermissionDenied("You may not change knowledge-base categories.", code="kb_category_denied")
    return actor


def _raise(errors: Mapping[str, str], message: str) -> None:
    if errors:
        raise ValidationFailed(message, fields=dict(errors))


def _text(value: str | None, field: str, limit: int, errors: dict[str, str], *, required: bool) -> str:
    cleaned = " ".join((value or "").split())
    if required and not cleaned:
        errors[field] = "is required."
    elif len(cleaned) > limit:
        errors[field] = f"at most {limit} characters."
    return cleaned


def _language(value: str, errors: dict[str, str]) -> str:
    code = (value or "").strip().lower()
    if code not in text.LANGUAGES:
        errors["language"] = "must be it or en."
    return code


def _visibility(value: str, errors: dict[str, str]) -> str:
    if value not in Visibility.values:
        errors["visibility"] = "must be public or internal."
    return value


def _body(value: str, errors: dict[str, str]) -> str:
    cleaned = sanitise_html(value or "")
    if not html_to_text(cleaned).strip():
        errors["body_html"] = "is required."
    elif len(cleaned) > 200_000:
        errors["body_html"] = "at most 200000 characters."
    return cleaned


def _category_by_slug(slug: str | None, errors: dict[str, str]) -> KbCategory | None:
    if not slug:
        return None
    category = KbCategory.objects.filter(slug=slug).first()
    if category is None:
        errors["category"] = f"'{slug}' is not a knowledge-base category."
    return category


def _unique_slug(base: str, language: str, *, exclude_pk: int | None = None) -> str:
    stem = (slugify(base)[:100].strip("-")) or "article"
    taken = set(
        Article.objects.filter(language=language, slug__startswith=stem)
        .exclude(pk=exclude_pk or 0)
        .values_list("slug", flat=True)
    )
    candidate, number = stem, 2
    while candidate in taken:
        candidate = f"{stem}-{number}"
        number += 1
    return candidate


def _explicit_slug(slug: str, language: str, errors: dict[str, str], *, exclude_pk: int | None = None) -> str:
    value = slug.strip().lower()
    if not SLUG_PATTERN.match(value) or len(value) > 120:
        errors["slug"] = "use lower-case letters, digits and single hyphens (at most 120)."
    elif Article.objects.filter(language=language, slug=value).exclude(pk=exclude_pk or 0).exists():
        errors["slug"] = "is already used by another article in this language."
    return value


def article_snapshot(article: Article) -> dict[str, Any]:
    return {
        "language": article.language,
        "slug": article.slug,
        "title": article.title,
        "status": article.status,
        "visibility": article.visibility,
        "category": article.category.slug if article.category_id and article.category else None,
        "keywords": article.keywords,
        "published_version": article.published_version,
    }


def _audit_article(action: str, article: Article, actor: Actor | None, **kwargs: Any) -> None:
    audit.record(
        action=f"support.kb.{action}",
        object_type="kb_article",
        object_id=str(article.public_id),
        actor_id=actor.user_id if actor else None,
        **kwargs,
    )


# categories ----------------------------------------------------------------------------------------


def _category_snapshot(category: KbCategory) -> dict[str, Any]:
    return {
        "slug": category.slug,
        "name_it": category.name_it,
        "name_en": category.name_en,
        "visibility": category.visibility,
        "parent": category.parent.slug if category.parent_id and category.parent else None,
        "position": category.position,
    }


def category_create(
    *,
    actor: Actor | None,
    slug: str,
    name_it: str,
    name_en: str,
    description_it: str = "",
    description_en: str = "",
    parent: str | None = None,
    visibility: str = Visibility.PUBLIC,
    position: int = 0,
) -> KbCategory:
    require_category_manager(actor)
    errors: dict[str, str] = {}
    slug_value = (slug or "").strip().lower()
    if not SLUG_PATTERN.match(slug_value) or len(slug_value) > 80:
        errors["slug"] = "use lower-case letters, digits and single hyphens (at most 80)."
    elif KbCategory.objects.filter(slug=slug_value).exists():
        errors["slug"] = "is already used by another category."
    name_it = _text(name_it, "name_it", 120, errors, required=True)
    name_en = _text(name_en, "name_en", 120, errors, required=True)
    description_it = _text(description_it, "description_it", 300, errors, required=False)
    description_en = _text(description_en, "description_en", 300, errors, required=False)
    _visibility(visibility, errors)
    parent_row = None
    if parent:
        parent_row = KbCategory.objects.filter(slug=parent).first()
        if parent_row is None:
            errors["parent"] = f"'{parent}' is not a knowledge-base category."
    if not 0 <= position <= 32767:
        errors["position"] = "must be between 0 and 32767."
    _raise(errors, "The category is not valid.")
    with transaction.atomic():
        category = KbCategory.objects.create(
            slug=slug_value,
            name_it=name_it,
            name_en=name_en,
            description_it=description_it,
            description_en=description_en,
            parent=parent_row,
            visibility=visibility,
            position=position,
        )
        audit.record(
            action="support.kb.category_created",
            object_type="kb_category",
            object_id=str(category.public_id),
            after=_category_snapshot(category),
            actor_id=actor.user_id if actor else None,
        )
        transaction.on_commit(search_index.bump_generation)
    return category


def category_update(*, actor: Actor | None, category: KbCategory, changes: Mapping[str, Any]) -> KbCategory:
    """Change names, descriptions, visibility, parent (slug or None) or position (not the slug)."""
    require_category_manager(actor)
    allowed = {"name_it", "name_en", "description_it", "description_en", "visibility", "parent", "position"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationFailed(
            "These category fields cannot be changed.", fields=dict.fromkeys(sorted(unknown), "Not editable.")
        )
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for field, limit, required in (
        ("name_it", 120, True),
        ("name_en", 120, True),
        ("description_it", 300, False),
        ("description_en", 300, False),
    ):
        if field in changes:
            values[field] = _text(changes[field], field, limit, errors, required=required)
    if "visibility" in changes:
        values["visibility"] = _visibility(changes["visibility"], errors)
    if "position" in changes:
        position = changes["position"]
        if not isinstance(position, int) or not 0 <= position <= 32767:
            errors["position"] = "must be between 0 and 32767."
        values["position"] = position
    if "parent" in changes:
        parent_row = None
        if changes["parent"]:
            parent_row = KbCategory.objects.filter(slug=changes["parent"]).first()
            if parent_row is None:
                errors["parent"] = f"'{changes['parent']}' is not a knowledge-base category."
            else:
                ancestor: KbCategory | None = parent_row
                while ancestor is not None:
                    if ancestor.pk == category.pk:
                        errors["parent"] = "would make the category its own ancestor."
                        break
                    ancestor = ancestor.parent
        values["parent"] = parent_row
    _raise(errors, "The category is not valid.")
    with transaction.atomic():
        locked = (
            KbCategory.objects.select_for_update(of=("self",)).select_related("parent").get(pk=category.pk)
        )
        before = _category_snapshot(locked)
        for field, value in values.items():
            setattr(locked, field, value)
        locked.save()
        audit.record(
            action="support.kb.category_updated",
            object_type="kb_category",
            object_id=str(locked.public_id),
            before=before,
            after=_category_snapshot(locked),
            actor_id=actor.user_id if actor else None,
        )
        transaction.on_commit(search_index.bump_generation)
    return locked


def category_delete(*, actor: Actor | None, category: KbCategory) -> None:
    require_category_manager(actor)
    with transaction.atomic():
        locked = KbCategory.objects.select_for_update().get(pk=category.pk)
        if locked.children.exists() or Article.objects.filter(category=locked).exists():
            raise Conflict(
                "The category still holds articles or sub-categories; move them first.",
                code="category_not_empty",
            )
        audit.record(
            action="support.kb.category_deleted",
            object_type="kb_category",
            object_id=str(locked.public_id),
            before=_category_snapshot(locked),
            actor_id=actor.user_id if actor else None,
        )
        locked.delete()
        transaction.on_commit(search_index.bump_generation)


# articles and versions -----------------------------------------------------------------------------


def article_create(
    *,
    actor: Actor | None,
    language: str,
    title: str,
    body_html: str,
    summary: str = "",
    slug: str = "",
    category: str | None = None,
    visibility: str = Visibility.PUBLIC,
    keywords: str = "",
    translation_group: Any = None,
) -> Article:
    """A new draft article with its first version (v1, draft)."""
    actor = require_editor(actor)
    errors: dict[str, str] = {}
    language = _language(language, errors)
    title = _text(title, "title", 200, errors, required=True)
    summary = _text(summary, "summary", 300, errors, required=False)
    keywords = _text(keywords, "keywords", 300, errors, required=False)
    body = _body(body_html, errors)
    _visibility(visibility, errors)
    category_row = _category_by_slug(category, errors)
    if slug and "language" not in errors:
        slug = _explicit_slug(slug, language, errors)
    if (
        translation_group is not None
        and "language" not in errors
        and Article.objects.filter(translation_group=translation_group, language=language).exists()
    ):
        errors["language"] = "this article already has a translation in that language."
    _raise(errors, "The article is not valid.")
    now = clock.now()
    try:
        with transaction.atomic():
            extra = {"translation_group": translation_group} if translation_group is not None else {}
            article = Article.objects.create(
                language=language,
                slug=slug or _unique_slug(title, language),
                title=title,
                summary=summary,
                body_html=body,
                keywords=keywords,
                category=category_row,
                visibility=visibility,
                status=Article.Status.DRAFT,
                author_id=actor.user_id,
                created_at=now,
                updated_at=now,
                **extra,
            )
            ArticleVersion.objects.create(
                article=article,
                number=1,
                title=title,
                summary=summary,
                body_html=body,
                status=ArticleVersion.Status.DRAFT,
                author_id=actor.user_id,
                created_at=now,
            )
            _audit_article("article_created", article, actor, after=article_snapshot(article))
    except IntegrityError as error:
        raise Conflict(
            "Another article with this slug or translation was saved at the same time; try again.",
            code="article_conflict",
        ) from error
    return article


def article_update(*, actor: Actor | None, article: Article, changes: Mapping[str, Any]) -> Article:
    """Article settings outside the versioned text: category (slug|None), visibility, keywords, slug.
    They apply at once (a visibility change hides or shows the published text immediately)."""
    actor = require_editor(actor)
    allowed = {"category", "visibility", "keywords", "slug"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationFailed(
            "These article fields cannot be changed here.",
            fields=dict.fromkeys(sorted(unknown), "Not editable."),
        )
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    if "category" in changes:
        values["category"] = _category_by_slug(changes["category"], errors)
    if "visibility" in changes:
        values["visibility"] = _visibility(changes["visibility"], errors)
    if "keywords" in changes:
        values["keywords"] = _text(changes["keywords"], "keywords", 300, errors, required=False)
    if "slug" in changes:
        values["slug"] = _explicit_slug(
            changes["slug"] or "", article.language, errors, exclude_pk=article.pk
        )
    _raise(errors, "The article is not valid.")
    with transaction.atomic():
        locked = Article.objects.select_for_update(of=("self",)).select_related("category").get(pk=article.pk)
        before = article_snapshot(locked)
        for field, value in values.items():
            setattr(locked, field, value)
        if "keywords" in values:
            locked.search_text = text.search_text_for(
                title=locked.title,
                summary=locked.summary,
                body_html=locked.body_html,
                keywords=locked.keywords,
            )
        locked.updated_at = clock.now()
        locked.save()
        _audit_article("article_updated", locked, actor, before=before, after=article_snapshot(locked))
    return locked


def version_create(
    *, actor: Actor | None, article: Article, title: str, body_html: str, summary: str = ""
) -> ArticleVersion:
    """An edit: a new draft version N+1. Earlier drafts and rejected versions are superseded; a version
    waiting for review must be published or rejected first."""
    actor = require_editor(actor)
    errors: dict[str, str] = {}
    title = _text(title, "title", 200, errors, required=True)
    summary = _text(summary, "summary", 300, errors, required=False)
    body = _body(body_html, errors)
    _raise(errors, "The version is not valid.")
    with transaction.atomic():
        locked = Article.objects.select_for_update().get(pk=article.pk)
        if locked.status == Article.Status.ARCHIVED:
            raise Conflict("The article is archived; restore it before editing.", code="article_archived")
        if locked.versions.filter(status=ArticleVersion.Status.IN_REVIEW).exists():
            raise Conflict(
                "A version is waiting for review; publish or reject it first.", code="version_in_review"
            )
        number = (locked.versions.aggregate(top=Max("number"))["top"] or 0) + 1
        locked.versions.filter(
            status__in=[ArticleVersion.Status.DRAFT, ArticleVersion.Status.REJECTED]
        ).update(status=ArticleVersion.Status.SUPERSEDED)
        version = ArticleVersion.objects.create(
            article=locked,
            number=number,
            title=title,
            summary=summary,
            body_html=body,
            status=ArticleVersion.Status.DRAFT,
            author_id=actor.user_id,
            created_at=clock.now(),
        )
        if locked.published_version == 0:
            # Never published: the row shows the working text in the agents' lists.
            locked.title, locked.summary, locked.body_html = title, summary, body
            locked.status = Article.Status.DRAFT
            locked.save(update_fields=["title", "summary", "body_html", "status"])
        _audit_article("version_created", locked, actor, after={"version": number})
    return version


def _locked_version(version: ArticleVersion) -> tuple[Article, ArticleVersion]:
    article = Article.objects.select_for_update().get(pk=version.article_id)
    locked = ArticleVersion.objects.select_for_update().get(pk=version.pk)
    return article, locked


def version_submit(*, actor: Actor | None, version: ArticleVersion) -> ArticleVersion:
    actor = require_editor(actor)
    with transaction.atomic():
        article, locked = _locked_version(version)
        if locked.status != ArticleVersion.Status.DRAFT:
            raise Conflict("Only a draft version can be sent for review.", code="version_not_draft")
        locked.status = ArticleVersion.Status.IN_REVIEW
        locked.save(update_fields=["status"])
        if article.published_version == 0 and article.status == Article.Status.DRAFT:
            article.status = Article.Status.IN_REVIEW
            article.save(update_fields=["status"])
        _audit_article("version_submitted", article, actor, after={"version": locked.number})
    return locked


def version_publish(*, actor: Actor | None, version: ArticleVersion) -> ArticleVersion:
    """Publish a version in review: its text becomes the article's, the previous published version is
    superseded, the search text and embedding are recomputed."""
    actor = require_publisher(actor)
    article_row = Article.objects.get(pk=version.article_id)
    search_text = text.search_text_for(
        title=version.title,
        summary=version.summary,
        body_html=version.body_html,
        keywords=article_row.keywords,
    )
    # Computed before the transaction: ~30 ms of model time should not hold the row locks.
    embedding = semantic.passage_vector(f"{version.title}\n{version.summary}\n{search_text}")
    with transaction.atomic():
        article, locked = _locked_version(version)
        if locked.status != ArticleVersion.Status.IN_REVIEW:
            raise Conflict("Only a version in review can be published.", code="version_not_in_review")
        if article.status == Article.Status.ARCHIVED:
            raise Conflict("The article is archived; restore it before publishing.", code="article_archived")
        if article.keywords != article_row.keywords:
            search_text = text.search_text_for(
                title=locked.title,
                summary=locked.summary,
                body_html=locked.body_html,
                keywords=article.keywords,
            )
        before = article_snapshot(article)
        now = clock.now()
        article.versions.filter(status=ArticleVersion.Status.PUBLISHED).update(
            status=ArticleVersion.Status.SUPERSEDED
        )
        locked.status = ArticleVersion.Status.PUBLISHED
        locked.reviewer_id = actor.user_id
        locked.reviewed_at = now
        locked.save(update_fields=["status", "reviewer", "reviewed_at"])
        article.title = locked.title
        article.summary = locked.summary
        article.body_html = locked.body_html
        article.search_text = search_text
        article.embedding = embedding
        article.status = Article.Status.PUBLISHED
        article.published_version = locked.number
        article.published_at = now
        article.updated_at = now
        article.save()
        _audit_article("version_published", article, actor, before=before, after=article_snapshot(article))
    return locked


def version_reject(*, actor: Actor | None, version: ArticleVersion, note: str) -> ArticleVersion:
    actor = require_publisher(actor)
    errors: dict[str, str] = {}
    note = _text(note, "note", 300, errors, required=True)
    _raise(errors, "Say what should change.")
    with transaction.atomic():
        article, locked = _locked_version(version)
        if locked.status != ArticleVersion.Status.IN_REVIEW:
            raise Conflict("Only a version in review can be rejected.", code="version_not_in_review")
        locked.status = ArticleVersion.Status.REJECTED
        locked.note = note
        locked.reviewer_id = actor.user_id
        locked.reviewed_at = clock.now()
        locked.save(update_fields=["status", "note", "reviewer", "reviewed_at"])
        if article.published_version == 0 and article.status == Article.Status.IN_REVIEW:
            article.status = Article.Status.DRAFT
            article.save(update_fields=["status"])
        _audit_article("version_rejected", article, actor, after={"version": locked.number, "note": note})
    return locked


def article_archive(*, actor: Actor | None, article: Article) -> Article:
    actor = require_publisher(actor)
    with transaction.atomic():
        locked = Article.objects.select_for_update().get(pk=article.pk)
        if locked.status == Article.Status.ARCHIVED:
            raise Conflict("The article is already archived.", code="article_archived")
        before = article_snapshot(locked)
        locked.status = Article.Status.ARCHIVED
        locked.updated_at = clock.now()
        locked.save(update_fields=["status", "updated_at"])
        _audit_article("article_archived", locked, actor, before=before, after=article_snapshot(locked))
    return locked


def article_unarchive(*, actor: Actor | None, article: Article) -> Article:
    actor = require_publisher(actor)
    with transaction.atomic():
        locked = Article.objects.select_for_update().get(pk=article.pk)
        if locked.status != Article.Status.ARCHIVED:
            raise Conflict("The article is not archived.", code="article_not_archived")
        before = article_snapshot(locked)
        locked.status = Article.Status.PUBLISHED if locked.published_version else Article.Status.DRAFT
        locked.updated_at = clock.now()
        locked.save(update_fields=["status", "updated_at"])
        _audit_article("article_unarchived", locked, actor, before=before, after=article_snapshot(locked))
    return locked


def translation_create(
    *,
    actor: Actor | None,
    source: Article,
    language: str,
    title: str,
    body_html: str,
    summary: str = "",
    slug: str = "",
    keywords: str = "",
) -> Article:
    """The same article in another language (draft, same translation group, category and visibility)."""
    require_editor(actor)
    if (language or "").strip().lower() == source.language:
        raise ValidationFailed(
            "A translation must be in another language.", fields={"language": "is the source's language."}
        )
    if Article.objects.filter(translation_group=source.translation_group, language=language).exists():
        raise Conflict("This article already has a translation in that language.", code="translation_exists")
    return article_create(
        actor=actor,
        language=language,
        title=title,
        body_html=body_html,
        summary=summary,
        slug=slug,
        category=source.category.slug if source.category_id and source.category else None,
        visibility=source.visibility,
        keywords=keywords,
        translation_group=source.translation_group,
    )


# attachments ---------------------------------------------------------------------------------------


def attachment_add(*, actor: Actor | None, article: Article, file: IncomingFile) -> ArticleAttachment:
    """An image or PDF for the article body (10 MB at most)."""
    actor = require_editor(actor)
    checked = check_files([file], max_bytes=ATTACHMENT_MAX_BYTES)[0]
    if checked.content_type not in ATTACHMENT_TYPES:
        raise ValidationFailed(
            "Only images (PNG, JPEG, GIF, WebP) and PDF files can be attached to articles.",
            code="attachment_type_refused",
            fields={"file": "not an image or PDF."},
        )
    with transaction.atomic():
        locked = Article.objects.select_for_update().get(pk=article.pk)
        attachment = ArticleAttachment(
            article=locked,
            filename=checked.filename,
            content_type=checked.content_type,
            size=checked.size,
            created_at=clock.now(),
        )
        attachment.file.save(checked.filename, ContentFile(checked.content), save=False)
        attachment.save()
        _audit_article(
            "attachment_added",
            locked,
            actor,
            after={"attachment": str(attachment.public_id), "filename": attachment.filename},
        )
    return attachment


def attachment_remove(*, actor: Actor | None, attachment: ArticleAttachment) -> None:
    actor = require_editor(actor)
    with transaction.atomic():
        locked = ArticleAttachment.objects.select_for_update().select_related("article").get(pk=attachment.pk)
        _audit_article(
            "attachment_removed", locked.article, actor, before={"attachment": str(locked.public_id)}
        )
        storage, name = locked.file.storage, locked.file.name
        locked.delete()
        if name:
            transaction.on_commit(lambda: storage.delete(name))


# feedback, views -----------------------------------------------------------------------------------


def feedback_record(
    *,
    article: Article,
    helpful: bool,
    comment: str = "",
    user_id: int | None = None,
    session_key: str = "",
) -> ArticleFeedback:
    """One vote per user (or per anonymous session) per article; a second vote is refused (409)."""
    errors: dict[str, str] = {}
    comment = (comment or "").strip()
    if len(comment) > 1000:
        errors["comment"] = "at most 1000 characters."
    if user_id is None and not session_key:
        errors["session"] = "a vote needs a user or a session."
    if len(session_key) > 64:
        errors["session"] = "session key too long."
    _raise(errors, "The feedback is not valid.")
    if helpful:
        comment = ""
    with transaction.atomic():
        locked = Article.objects.select_for_update().get(pk=article.pk)
        if locked.status != Article.Status.PUBLISHED:
            raise NotFound("Article not found.", code="article_not_found")
        existing = ArticleFeedback.objects.filter(article=locked)
        voted = (
            existing.filter(user_id=user_id).exists()
            if user_id is not None
            else existing.filter(session_key=session_key).exists()
        )
        if voted:
            raise Conflict("You already said whether this article helped.", code="already_voted")
        feedback = ArticleFeedback.objects.create(
            article=locked,
            helpful=helpful,
            comment=comment,
            user_id=user_id,
            session_key="" if user_id is not None else session_key,
            created_at=clock.now(),
        )
        counter = "helpful_count" if helpful else "not_helpful_count"
        Article.objects.filter(pk=locked.pk).update(**{counter: F(counter) + 1})
        audit.record(
            action="support.kb.feedback_recorded",
            object_type="kb_article",
            object_id=str(locked.public_id),
            after={"helpful": helpful, "comment": bool(comment)},
            actor_id=user_id,
        )
    return feedback


def view_record(*, article: Article, viewer: str) -> bool:
    """Count a view unless the same viewer (user id or session key) was counted in the last 30 minutes.
    The counter update does not touch ``updated_at`` (the search index stays valid)."""
    if not viewer:
        return False
    if not cache.add(f"support.kb.view.{article.pk}.{viewer[:64]}", 1, VIEW_WINDOW_SECONDS):
        return False
    Article.objects.filter(pk=article.pk).update(view_count=F("view_count") + 1)
    return True


# deflection ----------------------------------------------------------------------------------------


def valid_token(token: str) -> bool:
    return bool(TOKEN_PATTERN.match(token or ""))


def deflection_suggested(
    *, token: str, query: str, articles: Sequence[Article], user_id: int | None = None
) -> int:
    """Record the articles shown to a customer writing a request (once per token and article).
    Returns how many new suggestions were recorded."""
    if not valid_token(token) or not articles:
        return 0
    now = clock.now()
    with transaction.atomic():
        known = set(
            Deflection.objects.filter(token=token, article__in=articles).values_list("article_id", flat=True)
        )
        rows = [
            Deflection(
                token=token,
                query=query[:300],
                article=article,
                user_id=user_id,
                outcome=Deflection.Outcome.SUGGESTED,
                created_at=now,
                updated_at=now,
            )
            for article in articles
            if article.pk not in known
        ]
        Deflection.objects.bulk_create(rows)
    return len(rows)


def deflection_opened(*, token: str, article: Article) -> bool:
    """The customer opened a suggested article (from the tracking redirect)."""
    if not valid_token(token):
        return False
    updated = Deflection.objects.filter(
        token=token, article=article, outcome=Deflection.Outcome.SUGGESTED
    ).update(outcome=Deflection.Outcome.OPENED, updated_at=clock.now())
    return updated > 0


def deflection_record_submitted(token: str, ticket: Ticket) -> int:
    """The customer sent the request anyway: every suggestion of the token becomes SUBMITTED with the
    ticket. Returns the number of rows changed (0 for an unknown or malformed token)."""
    if not valid_token(token):
        return 0
    return (
        Deflection.objects.filter(token=token)
        .exclude(outcome=Deflection.Outcome.SUBMITTED)
        .update(outcome=Deflection.Outcome.SUBMITTED, ticket=ticket, updated_at=clock.now())
    )


def deflections_settle(*, now: datetime | None = None, after_minutes: int = 60) -> int:
    """Opened suggestions of a form that was not sent within an hour count as deflected (the article
    answered the question). Periodic job; running it twice changes nothing more."""
    moment = now or clock.now()
    cutoff = moment - timedelta(minutes=after_minutes)
    submitted_tokens = Deflection.objects.filter(outcome=Deflection.Outcome.SUBMITTED).values("token")
    return (
        Deflection.objects.filter(outcome=Deflection.Outcome.OPENED, updated_at__lt=cutoff)
        .exclude(token__in=submitted_tokens)
        .update(outcome=Deflection.Outcome.DEFLECTED, updated_at=moment)
    )

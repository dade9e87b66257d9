"""Knowledge base pages: agents under /support/kb/ (list, editor, versions with diff, review actions,
translations side by side, figures), customers under /help/kb/ (categories, article with "Did this
help?", search, the request form's suggestion fragment and its "opened" tracking redirect).

Portal pages never show internal articles, whoever is signed in: an internal article's slug is a 404.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fedele.accounts.facade import Actor, actor_for
from fedele.shared.errors import ApplicationError, NotFound, ValidationFailed
from fedele.shared.pagination import paginate
from fedele.support.attachments import IncomingFile, download_response
from fedele.support.kb import text
from fedele.support.models import Article, ArticleAttachment, KbCategory, Visibility
from fedele.support.selectors import kb as selectors
from fedele.support.selectors.kb_search import kb_search, suggest_for_ticket
from fedele.support.services import kb as services

PAGE_SIZE = 25


def _language() -> str:
    return text.normalise_language(get_language())


def _agent(request: HttpRequest) -> Actor:
    return selectors.require_kb_reader(actor_for(request.user))


def _viewer(request: HttpRequest) -> str:
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    if not request.session.session_key:
        request.session.save()
    return f"session:{request.session.session_key}"


def public_url(article: Article) -> str:
    base = str(getattr(settings, "FEDELE_PUBLIC_URL", "")).rstrip("/")
    return f"{base}{reverse('help:kb_article', args=[article.language, article.slug])}"


# agents ----------------------------------------------------------------------------------------------


@login_required
@require_GET
def kb_list(request: HttpRequest) -> HttpResponse:
    actor = _agent(request)
    filters = {name: request.GET.get(name, "")[:120] for name in selectors.LIST_FILTERS}
    try:
        articles = selectors.article_list(actor=actor, filters=filters)
        page = paginate(
            articles,
            ordering="-updated_at",
            allowed={"updated_at": "updated_at"},
            cursor=request.GET.get("cursor") or None,
            limit=PAGE_SIZE,
        )
    except ValidationFailed as error:
        messages.error(request, error.message)
        return redirect("support:kb_list")
    query = "&".join(f"{name}={value}" for name, value in filters.items() if value)
    context = {
        "page": page,
        "filters": filters,
        "query": query,
        "statuses": Article.Status.choices,
        "visibilities": Visibility.choices,
        "languages": [("it", _("Italian")), ("en", _("English"))],
        "categories": KbCategory.objects.order_by("position", "slug"),
        "deflection": selectors.deflection_summary(),
        "can_edit": actor.can(services.EDIT_PERMISSION),
        "can_publish": actor.can(services.PUBLISH_PERMISSION),
    }
    return render(request, "support/kb/list.html", context)


def _category_choices() -> list[KbCategory]:
    return list(KbCategory.objects.order_by("position", "slug"))


@login_required
@require_http_methods(["GET", "POST"])
def kb_article_new(request: HttpRequest) -> HttpResponse:
    actor = services.require_editor(_agent(request))
    errors: dict[str, list[str]] = {}
    values = {"language": _language(), "visibility": Visibility.PUBLIC}
    if request.method == "POST":
        values = {name: request.POST.get(name, "") for name in _ARTICLE_FIELDS}
        try:
            article = services.article_create(
                actor=actor,
                language=values["language"],
                title=values["title"],
                body_html=values["body_html"],
                summary=values["summary"],
                slug=values["slug"],
                category=values["category"] or None,
                visibility=values["visibility"] or Visibility.PUBLIC,
                keywords=values["keywords"],
            )
        except ApplicationError as error:
            errors = error.fields or {"__all__": [error.message]}
        else:
            messages.success(request, _("Draft saved."))
            return redirect("support:kb_article", public_id=article.public_id)
    context = {
        "values": values,
        "errors": errors,
        "categories": _category_choices(),
        "visibilities": Visibility.choices,
    }
    return render(request, "support/kb/new.html", context, status=422 if errors else 200)


_ARTICLE_FIELDS = ("language", "title", "summary", "body_html", "slug", "category", "visibility", "keywords")


def _article_context(actor: Actor, article: Article) -> dict[str, Any]:
    versions = selectors.versions_of(article)
    latest = versions[0] if versions else None
    return {
        "article": article,
        "versions": versions,
        "latest": latest,
        "translations": selectors.translations_of(article),
        "missing_languages": [
            code
            for code in text.LANGUAGES
            if code != article.language
            and not any(other.language == code for other in selectors.translations_of(article))
        ],
        "figures": selectors.article_figures(article),
        "attachments": list(article.attachments.order_by("id")),
        "categories": _category_choices(),
        "visibilities": Visibility.choices,
        "can_edit": actor.can(services.EDIT_PERMISSION),
        "can_publish": actor.can(services.PUBLISH_PERMISSION),
        "public_url": public_url(article) if article.status == Article.Status.PUBLISHED else "",
    }


@login_required
@require_http_methods(["GET", "POST"])
def kb_article(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """The editor: a POST saves the text as a new draft version (the published text is untouched)."""
    actor = _agent(request)
    article = selectors.article_get(actor=actor, public_id=public_id)
    errors: dict[str, list[str]] = {}
    draft: dict[str, str] = {}
    if request.method == "POST":
        draft = {name: request.POST.get(name, "") for name in ("title", "summary", "body_html")}
        try:
            version = services.version_create(
                actor=actor,
                article=article,
                title=draft["title"],
                body_html=draft["body_html"],
                summary=draft["summary"],
            )
        except ApplicationError as error:
            errors = error.fields or {"__all__": [error.message]}
        else:
            messages.success(request, _("Version %(number)s saved as a draft.") % {"number": version.number})
            return redirect("support:kb_article", public_id=article.public_id)
    context = _article_context(actor, article)
    latest = context["latest"]
    context["draft"] = draft or {
        "title": latest.title if latest else article.title,
        "summary": latest.summary if latest else article.summary,
        "body_html": latest.body_html if latest else article.body_html,
    }
    context["errors"] = errors
    return render(request, "support/kb/article.html", context, status=422 if errors else 200)


@login_required
@require_POST
def kb_article_settings(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor = _agent(request)
    article = selectors.article_get(actor=actor, public_id=public_id)
    changes = {
        "category": request.POST.get("category") or None,
        "visibility": request.POST.get("visibility", article.visibility),
        "keywords": request.POST.get("keywords", ""),
        "slug": request.POST.get("slug", article.slug),
    }
    try:
        services.article_update(actor=actor, article=article, changes=changes)
        messages.success(request, _("Settings saved."))
    except ApplicationError as error:
        messages.error(request, _fields_message(error))
    return redirect("support:kb_article", public_id=article.public_id)


def _fields_message(error: ApplicationError) -> str:
    details = "; ".join(f"{field}: {' '.join(texts)}" for field, texts in error.fields.items())
    return f"{error.message} {details}".strip()


@login_required
@require_POST
def kb_version_action(request: HttpRequest, public_id: UUID, number: int, action: str) -> HttpResponse:
    actor = _agent(request)
    article = selectors.article_get(actor=actor, public_id=public_id)
    version = selectors.version_get(actor=actor, article=article, number=number)
    try:
        if action == "submit":
            services.version_submit(actor=actor, version=version)
            messages.success(request, _("Sent for review."))
        elif action == "publish":
            services.version_publish(actor=actor, version=version)
            messages.success(request, _("Published."))
        elif action == "reject":
            services.version_reject(actor=actor, version=version, note=request.POST.get("note", ""))
            messages.success(request, _("Changes requested."))
        else:
            raise Http404
    except ApplicationError as error:
        messages.error(request, _fields_message(error))
    return redirect("support:kb_article", public_id=article.public_id)


@login_required
@require_POST
def kb_article_state(request: HttpRequest, public_id: UUID, action: str) -> HttpResponse:
    actor = _agent(request)
    article = selectors.article_get(actor=actor, public_id=public_id)
    try:
        if action == "archive":
            services.article_archive(actor=actor, article=article)
            messages.success(request, _("Archived."))
        elif action == "unarchive":
            services.article_unarchive(actor=actor, article=article)
            messages.success(request, _("Restored."))
        else:
            raise Http404
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect("support:kb_article", public_id=article.public_id)


@login_required
@require_GET
def kb_diff(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor = _agent(request)
    article = selectors.article_get(actor=actor, public_id=public_id)
    try:
        newer_number = int(request.GET.get("to", article.published_version or 1))
        older_number = int(request.GET.get("from", max(1, newer_number - 1)))
    except ValueError as error:
        raise NotFound("Version not found.", code="version_not_found") from error
    older = selectors.version_get(actor=actor, article=article, number=older_number)
    newer = selectors.version_get(actor=actor, article=article, number=newer_number)
    context = {
        "article": article,
        "older": older,
        "newer": newer,
        "rows": selectors.version_diff(older, newer),
        "versions": selectors.versions_of(article),
    }
    return render(request, "support/kb/diff.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def kb_translate(request: HttpRequest, public_id: UUID, language: str) -> HttpResponse:
    actor = services.require_editor(_agent(request))
    source = selectors.article_get(actor=actor, public_id=public_id)
    if language not in text.LANGUAGES or language == source.language:
        raise Http404
    errors: dict[str, list[str]] = {}
    values = {"title": "", "summary": "", "body_html": source.body_html, "keywords": "", "slug": ""}
    if request.method == "POST":
        values = {name: request.POST.get(name, "") for name in values}
        try:
            translation = services.translation_create(
                actor=actor,
                source=source,
                language=language,
                title=values["title"],
                body_html=values["body_html"],
                summary=values["summary"],
                slug=values["slug"],
                keywords=values["keywords"],
            )
        except ApplicationError as error:
            errors = error.fields or {"__all__": [error.message]}
        else:
            messages.success(request, _("Translation saved as a draft."))
            return redirect("support:kb_article", public_id=translation.public_id)
    context = {"source": source, "language": language, "values": values, "errors": errors}
    return render(request, "support/kb/translate.html", context, status=422 if errors else 200)


@login_required
@require_POST
def kb_attachment_add(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor = _agent(request)
    article = selectors.article_get(actor=actor, public_id=public_id)
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise ValidationFailed(_("Choose a file."), fields={"file": "is required."})
        attachment = services.attachment_add(
            actor=actor,
            article=article,
            file=IncomingFile(
                filename=upload.name or "file",
                content=upload.read(services.ATTACHMENT_MAX_BYTES + 1),
                declared_type=upload.content_type or "",
            ),
        )
        messages.success(request, _("Attached %(name)s.") % {"name": attachment.filename})
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect("support:kb_article", public_id=article.public_id)


@login_required
@require_http_methods(["GET", "POST"])
def kb_categories(request: HttpRequest) -> HttpResponse:
    actor = _agent(request)
    errors: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    if request.method == "POST":
        values = {
            name: request.POST.get(name, "")
            for name in (
                "slug",
                "name_it",
                "name_en",
                "description_it",
                "description_en",
                "parent",
                "visibility",
            )
        }
        try:
            services.category_create(
                actor=actor,
                slug=values["slug"],
                name_it=values["name_it"],
                name_en=values["name_en"],
                description_it=values["description_it"],
                description_en=values["description_en"],
                parent=values["parent"] or None,
                visibility=values["visibility"] or Visibility.PUBLIC,
            )
        except ApplicationError as error:
            errors = error.fields or {"__all__": [error.message]}
        else:
            messages.success(request, _("Category created."))
            return redirect("support:kb_categories")
    context = {
        "categories": selectors.category_list(include_internal=True, language=_language()),
        "values": values,
        "errors": errors,
        "visibilities": Visibility.choices,
        "can_manage": actor.can(services.PUBLISH_PERMISSION),
    }
    return render(request, "support/kb/categories.html", context, status=422 if errors else 200)


@login_required
@require_GET
def kb_ticket_suggestions(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """The agent's side panel: articles for a ticket (internal ones included)."""
    from fedele.support.selectors.tickets import ticket_get

    actor = _agent(request)
    ticket = ticket_get(actor=actor, public_id=str(public_id))
    return render(request, "support/kb/_suggestions.html", {"hits": suggest_for_ticket(ticket)})


# portal ----------------------------------------------------------------------------------------------


def _portal_context(**values: Any) -> dict[str, Any]:
    language = _language()
    return {"language": language, "other_language": "en" if language == "it" else "it", **values}


@require_GET
def portal_home(request: HttpRequest) -> HttpResponse:
    language = _language()
    categories = [
        category
        for category in selectors.category_list(include_internal=False, language=language)
        if category.parent_id is None
    ]
    context = _portal_context(
        categories=categories,
        popular=selectors.portal_articles(language=language, limit=8),
    )
    return render(request, "support/portal/kb/home.html", context)


@require_GET
def portal_category(request: HttpRequest, slug: str) -> HttpResponse:
    language = _language()
    try:
        category = selectors.category_get(slug=slug, include_internal=False)
    except NotFound as error:
        raise Http404 from error
    articles = selectors.portal_articles(language=language, category=category)
    fallback: list[Article] = []
    if language != "en":
        # Articles written only in English still belong to the category: listed apart, with the note.
        groups = {article.translation_group for article in articles}
        fallback = [
            article
            for article in selectors.portal_articles(language="en", category=category)
            if article.translation_group not in groups
        ]
    context = _portal_context(category=category, articles=articles, fallback_articles=fallback)
    return render(request, "support/portal/kb/category.html", context)


@require_GET
def portal_search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")[:200]
    hits = kb_search(query, language=_language(), include_internal=False, limit=20) if query.strip() else []
    context = _portal_context(query=query, hits=hits)
    template = (
        "support/portal/kb/_results.html"
        if request.headers.get("HX-Request")
        else "support/portal/kb/search.html"
    )
    return render(request, template, context)


@require_GET
def portal_article(request: HttpRequest, language: str, slug: str) -> HttpResponse:
    if language not in text.LANGUAGES:
        raise Http404
    try:
        article = selectors.public_article(language=language, slug=slug, include_internal=False)
    except NotFound as error:
        raise Http404 from error
    wanted = _language()
    in_wanted = selectors.article_in_language(article, wanted, include_internal=False)
    if in_wanted is not None and in_wanted.pk != article.pk and request.GET.get("stay") != "1":
        return redirect("help:kb_article", language=in_wanted.language, slug=in_wanted.slug)
    services.view_record(article=article, viewer=_viewer(request))
    context = _portal_context(
        article=article,
        fallback=article.language != wanted,
        translations=selectors.translations_of(article, include_internal=False, published_only=True),
        attachments=list(ArticleAttachment.objects.filter(article=article).order_by("id")),
        voted=request.session.get(f"kb_voted_{article.pk}", False),
    )
    return render(request, "support/portal/kb/article.html", context)


@require_POST
def portal_feedback(request: HttpRequest, language: str, slug: str) -> HttpResponse:
    try:
        article = selectors.public_article(language=language, slug=slug, include_internal=False)
    except NotFound as error:
        raise Http404 from error
    helpful = request.POST.get("helpful") == "yes"
    user_id = request.user.pk if request.user.is_authenticated else None
    session_key = ""
    if user_id is None:
        if not request.session.session_key:
            request.session.save()
        session_key = request.session.session_key or ""
    status = 200
    try:
        services.feedback_record(
            article=article,
            helpful=helpful,
            comment=request.POST.get("comment", ""),
            user_id=user_id,
            session_key=session_key,
        )
        outcome = "thanks"
    except ApplicationError as error:
        outcome = "already" if error.code == "already_voted" else "error"
        status = 409 if outcome == "already" else 422
    request.session[f"kb_voted_{article.pk}"] = True
    if not request.headers.get("HX-Request"):
        if outcome == "thanks":
            messages.success(request, _("Thank you for your feedback."))
        return redirect(f"{reverse('help:kb_article', args=[article.language, article.slug])}?stay=1")
    context = _portal_context(article=article, outcome=outcome, voted=True)
    return render(request, "support/portal/kb/_feedback.html", context, status=status)


@require_GET
def portal_suggest(request: HttpRequest) -> HttpResponse:
    """The request form's fragment: up to 5 articles for what the customer is typing, recorded as
    suggestions under the form's token."""
    query = " ".join(request.GET.get("q", "").split())[:300]
    token = request.GET.get("token", "")[:64]
    hits = []
    if len(query) >= 3:
        hits = kb_search(query, language=_language(), include_internal=False, limit=5)
        user_id = request.user.pk if request.user.is_authenticated else None
        services.deflection_suggested(
            token=token, query=query, articles=[hit.article for hit in hits], user_id=user_id
        )
    context = _portal_context(hits=hits, token=token if services.valid_token(token) else "", query=query)
    return render(request, "support/portal/kb/_suggest.html", context)


@require_GET
def portal_open(request: HttpRequest, token: str, public_id: UUID) -> HttpResponse:
    """Tracking redirect for a suggested article: marks it opened, then shows it."""
    article = selectors.published_articles(include_internal=False).filter(public_id=public_id).first()
    if article is None:
        raise Http404
    services.deflection_opened(token=token, article=article)
    return redirect(f"{reverse('help:kb_article', args=[article.language, article.slug])}?stay=1")


@login_required
@require_GET
def kb_attachment(request: HttpRequest, public_id: UUID) -> FileResponse:
    """An article's attachment for agents, streamed from storage (a private bucket included)."""
    attachment = selectors.attachment_for_agent(actor=_agent(request), public_id=public_id)
    return download_response(attachment)


@require_GET
def portal_attachment(request: HttpRequest, public_id: UUID) -> FileResponse:
    """An attachment of a published public article, for anyone who can read the article."""
    try:
        attachment = selectors.public_attachment(public_id=public_id)
    except NotFound as error:
        raise Http404 from error
    return download_response(attachment)


urlpatterns: list[URLPattern | URLResolver] = [
    path("kb/", kb_list, name="kb_list"),
    path("kb/new/", kb_article_new, name="kb_article_new"),
    path("kb/categories/", kb_categories, name="kb_categories"),
    path("kb/tickets/<uuid:public_id>/suggestions/", kb_ticket_suggestions, name="kb_ticket_suggestions"),
    path("kb/<uuid:public_id>/", kb_article, name="kb_article"),
    path("kb/<uuid:public_id>/settings/", kb_article_settings, name="kb_article_settings"),
    path("kb/<uuid:public_id>/diff/", kb_diff, name="kb_diff"),
    path("kb/<uuid:public_id>/attachments/", kb_attachment_add, name="kb_attachment_add"),
    path("kb/attachments/<uuid:public_id>/", kb_attachment, name="kb_attachment"),
    path("kb/<uuid:public_id>/translate/<str:language>/", kb_translate, name="kb_translate"),
    path(
        "kb/<uuid:public_id>/versions/<int:number>/<str:action>/", kb_version_action, name="kb_version_action"
    ),
    path("kb/<uuid:public_id>/<str:action>/", kb_article_state, name="kb_article_state"),
]

portal_urlpatterns: list[URLPattern | URLResolver] = [
    path("kb/", portal_home, name="kb_home"),
    path("kb/search/", portal_search, name="kb_search"),
    path("kb/suggest/", portal_suggest, name="kb_suggest"),
    path("kb/open/<str:token>/<uuid:public_id>/", portal_open, name="kb_open"),
    path("kb/category/<slug:slug>/", portal_category, name="kb_category"),
    path("kb/files/<uuid:public_id>/", portal_attachment, name="kb_attachment"),
    path("kb/<str:language>/<slug:slug>/", portal_article, name="kb_article"),
    path("kb/<str:language>/<slug:slug>/feedback/", portal_feedback, name="kb_feedback"),
]

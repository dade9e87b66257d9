"""IVR pages under /contact-center/ivr/ (``contact_center.manage_contact_center``): flows with their
nodes as cards, the JSON/YAML editor with live validation, Italian and English prompts side by side, a
test-call simulator on the real engine, publish (refused with the validator's problems), version history
with diffs and rollback; document-on-demand documents and their send log. The signed document download
link (/contact-center/documents/d/<token>/) needs no login: the link itself is the credential."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fedele.accounts.facade import Actor, actor_for
from fedele.contact_center.ivr import flow as flow_format
from fedele.contact_center.ivr.validator import Problem, validate_flow
from fedele.contact_center.models import DocumentKind, IvrFlow, IvrFlowVersion
from fedele.contact_center.selectors import ivr as selectors
from fedele.contact_center.services import documents as document_services
from fedele.contact_center.services import ivr as services
from fedele.shared.errors import ApplicationError, NotFound, PermissionDenied
from fedele.shared.web.views import render_page_or_partial

FORMATS = ("json", "yaml")


def _manager(request: HttpRequest) -> Actor:
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can(services.MANAGE)):
        raise PermissionDenied(_("You may not configure IVR flows."), code="permission_denied")
    return actor


def _format(value: str | None) -> str:
    return value if value in FORMATS else "json"


def _flow(code: str) -> IvrFlow:
    return selectors.flow_get(code)


def _problems_for(source: str, source_format: str) -> tuple[dict[str, Any] | None, list[Problem], str]:
    """(definition, problems, syntax error) for the editor's text."""
    try:
        definition = flow_format.parse_source(source, source_format)
    except ApplicationError as error:
        return None, [], error.message
    return definition, validate_flow(definition), ""


def _editor_context(flow: IvrFlow, source: str, source_format: str, **extra: Any) -> dict[str, Any]:
    definition, problems, syntax_error = _problems_for(source, source_format)
    versions = selectors.flow_versions(flow)
    return {
        "flow": flow,
        "source": source,
        "source_format": source_format,
        "formats": FORMATS,
        "problems": [str(problem) for problem in problems],
        "syntax_error": syntax_error,
        "cards": selectors.node_cards(definition or {}, problems),
        "versions": versions,
        "draft": next((version for version in versions if version.status == "draft"), None),
        "numbers": list(flow.numbers.order_by("number")),
        **extra,
    }


# Flows ------------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def flow_list(request: HttpRequest) -> HttpResponse:
    actor = _manager(request)
    errors: dict[str, list[str]] = {}
    form_error = ""
    if request.method == "POST":
        code = request.POST.get("code", "").strip()
        starter = {
            "languages": ["it", "en"],
            "default_language": "it",
            "start": "welcome",
            "nodes": {
                "welcome": {
                    "type": "say",
                    "prompt": {"it": "Benvenuti.", "en": "Welcome."},
                    "next": "goodbye",
                },
                "goodbye": {"type": "hangup", "prompt": {"it": "Arrivederci.", "en": "Goodbye."}},
            },
        }
        try:
            flow = services.ivr_flow_create(
                actor=actor,
                code=code,
                name=request.POST.get("name", ""),
                description=request.POST.get("description", ""),
                source=flow_format.render_source(starter, "json"),
            )
        except ApplicationError as error:
            errors = error.fields
            form_error = error.message
        else:
            return redirect("contact_center:ivr_flow", code=flow.code)
    return render(
        request,
        "contact_center/ivr/flow_list.html",
        {"flows": selectors.flow_list(), "errors": errors, "form_error": form_error, "form": request.POST},
        status=422 if form_error else 200,
    )


@login_required
@require_GET
def flow_detail(request: HttpRequest, code: str) -> HttpResponse:
    _manager(request)
    flow = _flow(code)
    working = selectors.flow_working_version(flow)
    source = working.source if working else ""
    source_format = working.source_format if working else "json"
    if working and not source:
        source = flow_format.render_source(working.definition, source_format)
    return render(
        request, "contact_center/ivr/flow_detail.html", _editor_context(flow, source, source_format)
    )


@login_required
@require_POST
def flow_validate(request: HttpRequest, code: str) -> HttpResponse:
    """Live validation while typing: problems and node cards for the text as it stands."""
    _manager(request)
    flow = _flow(code)
    context = _editor_context(
        flow, request.POST.get("source", ""), _format(request.POST.get("source_format"))
    )
    return render(request, "contact_center/ivr/_validation.html", context)


@login_required
@require_POST
def flow_save(request: HttpRequest, code: str) -> HttpResponse:
    actor = _manager(request)
    flow = _flow(code)
    source = request.POST.get("source", "")
    source_format = _format(request.POST.get("source_format"))
    try:
        version = services.ivr_draft_save(
            actor=actor,
            flow=flow,
            source=source,
            source_format=source_format,
            note=request.POST.get("note", ""),
        )
    except ApplicationError as error:
        context = _editor_context(flow, source, source_format, save_error=error.message)
        return render(request, "contact_center/ivr/flow_detail.html", context, status=error.status_code)
    if request.POST.get("publish"):
        return _publish(request, actor, flow, source, source_format)
    messages.success(request, _("Draft version %(number)d saved.") % {"number": version.number})
    return redirect("contact_center:ivr_flow", code=flow.code)


def _publish(
    request: HttpRequest, actor: Actor, flow: IvrFlow, source: str, source_format: str
) -> HttpResponse:
    try:
        version = services.ivr_publish(actor=actor, flow=flow)
    except ApplicationError as error:
        context = _editor_context(
            flow,
            source,
            source_format,
            publish_error=error.message,
            publish_problems=error.fields.get("definition", []),
        )
        return render(request, "contact_center/ivr/flow_detail.html", context, status=error.status_code)
    messages.success(request, _("Version %(number)d is live.") % {"number": version.number})
    return redirect("contact_center:ivr_flow", code=flow.code)


@login_required
@require_POST
def flow_publish(request: HttpRequest, code: str) -> HttpResponse:
    actor = _manager(request)
    flow = _flow(code)
    working = selectors.flow_working_version(flow)
    source = working.source if working else ""
    return _publish(request, actor, flow, source, working.source_format if working else "json")


@login_required
@require_POST
def flow_prompts(request: HttpRequest, code: str) -> HttpResponse:
    """Save the Italian/English prompt fields into the draft (opened from the live version if needed)."""
    actor = _manager(request)
    flow = _flow(code)
    working = selectors.flow_working_version(flow)
    if working is None:
        raise NotFound(_("The flow has no version."), code="ivr_version_not_found")
    definition = dict(working.definition)
    nodes = {
        name: dict(node) for name, node in (definition.get("nodes") or {}).items() if isinstance(node, dict)
    }
    for field_name in request.POST:
        value = str(request.POST.get(field_name, ""))
        parts = field_name.split(":")
        if len(parts) != 4 or parts[0] != "prompt":
            continue
        _prefix, node_name, key, language = parts
        if (
            node_name not in nodes
            or key not in flow_format.PROMPT_KEYS
            or language not in flow_format.LANGUAGES
        ):
            continue
        existing = nodes[node_name].get(key)
        prompt: dict[str, Any] = dict(existing) if isinstance(existing, dict) else {}
        entry = prompt.get(language)
        if isinstance(entry, dict):
            prompt[language] = {**entry, "text": value.strip()}
        else:
            prompt[language] = value.strip()
        nodes[node_name][key] = prompt
    definition["nodes"] = nodes
    source = flow_format.render_source(definition, working.source_format)
    try:
        services.ivr_draft_save(actor=actor, flow=flow, source=source, source_format=working.source_format)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Prompts saved in the draft."))
    return redirect("contact_center:ivr_flow", code=flow.code)


@login_required
@require_POST
def flow_rollback(request: HttpRequest, code: str, number: int) -> HttpResponse:
    actor = _manager(request)
    flow = _flow(code)
    try:
        version = services.ivr_rollback(actor=actor, flow=flow, version_number=number)
    except ApplicationError as error:
        messages.error(request, error.message)
        for problem in error.fields.get("definition", []):
            messages.error(request, problem)
    else:
        messages.success(
            request,
            _("Version %(old)d is live again as version %(new)d.") % {"old": number, "new": version.number},
        )
    return redirect("contact_center:ivr_flow", code=flow.code)


@login_required
@require_GET
def flow_diff(request: HttpRequest, code: str) -> HttpResponse:
    _manager(request)
    flow = _flow(code)
    try:
        old_number = int(request.GET.get("from", "0"))
        new_number = int(request.GET.get("to", "0"))
    except ValueError as error:
        raise NotFound(_("No such version."), code="ivr_version_not_found") from error
    versions = {
        version.number: version for version in flow.versions.filter(number__in=[old_number, new_number])
    }
    if old_number not in versions or new_number not in versions:
        raise NotFound(_("No such version."), code="ivr_version_not_found")
    lines = selectors.version_diff(versions[old_number], versions[new_number])
    return render_page_or_partial(
        request,
        "contact_center/ivr/diff_page.html",
        "contact_center/ivr/_diff.html",
        {"flow": flow, "old": versions[old_number], "new": versions[new_number], "lines": lines},
    )


@login_required
@require_POST
def flow_simulate(request: HttpRequest, code: str) -> HttpResponse:
    """The test call: the editor's current text (or the saved working version) walked by the real
    engine on a throw-away call. Inputs are comma-separated; an empty entry is a timeout."""
    _manager(request)
    flow = _flow(code)
    source = request.POST.get("source", "")
    source_format = _format(request.POST.get("source_format"))
    raw_inputs = request.POST.get("inputs", "")
    inputs: list[str | None] = (
        [entry.strip() or None for entry in raw_inputs.split(",")] if raw_inputs.strip() else []
    )
    context: dict[str, Any] = {"flow": flow, "inputs": raw_inputs, "turns": [], "error": ""}
    try:
        definition = flow_format.parse_source(source, source_format)
        problems = validate_flow(definition)
        if problems:
            context["error"] = _("Fix the flow's problems before a test call.")
        else:
            version = IvrFlowVersion(flow=flow, number=0, definition=definition)
            context["turns"] = _simulate_unsaved(version, inputs, request.POST.get("from_number", ""))
    except ApplicationError as error:
        context["error"] = error.message
    return render(request, "contact_center/ivr/_simulation.html", context)


def _simulate_unsaved(version: IvrFlowVersion, inputs: list[str | None], from_number: str) -> list[Any]:
    """Sessions point at a saved version: save a throw-away one inside the simulation's own rollback."""
    from django.db import transaction

    from fedele.contact_center.models import IvrVersionStatus
    from fedele.shared import clock

    class _Discard(Exception):
        pass

    turns: list[Any] = []
    try:
        with transaction.atomic():
            latest = IvrFlowVersion.objects.filter(flow=version.flow).order_by("-number").first()
            version.number = (latest.number if latest else 0) + 1000
            version.status = IvrVersionStatus.RETIRED
            version.created_at = clock.now()
            version.save()
            turns = services.ivr_simulate(
                version=version, inputs=inputs, from_number=from_number or "+390000000000"
            )
            raise _Discard
    except _Discard:
        pass
    return turns


# Documents --------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def document_list(request: HttpRequest) -> HttpResponse:
    actor = _manager(request)
    errors: dict[str, list[str]] = {}
    form_error = ""
    if request.method == "POST":
        try:
            document_services.document_create(
                actor=actor,
                code=request.POST.get("code", ""),
                title_it=request.POST.get("title_it", ""),
                title_en=request.POST.get("title_en", ""),
                kind=request.POST.get("kind", DocumentKind.FILE),
                upload=request.FILES.get("file"),
                sms_keyword=request.POST.get("sms_keyword", ""),
                requires_customer=request.POST.get("requires_customer") == "on",
            )
        except ApplicationError as error:
            errors = error.fields
            form_error = error.message
        else:
            messages.success(request, _("Document added."))
            return redirect("contact_center:ivr_documents")
    return render(
        request,
        "contact_center/ivr/documents.html",
        {
            "documents": selectors.document_list(),
            "requests": selectors.document_request_list(),
            "kinds": DocumentKind.choices,
            "errors": errors,
            "form_error": form_error,
            "form": request.POST,
        },
        status=422 if form_error else 200,
    )


@require_GET
def document_download(request: HttpRequest, token: str) -> HttpResponse:
    try:
        _request, found = document_services.document_for_token(token)
    except NotFound:
        return render(request, "contact_center/ivr/link_expired.html", status=404)
    response = HttpResponse(found.content, content_type=found.content_type)
    response["Content-Disposition"] = f'attachment; filename="{found.name}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


urlpatterns: list[URLPattern | URLResolver] = [
    path("ivr/", flow_list, name="ivr_flows"),
    path("ivr/documents/", document_list, name="ivr_documents"),
    path("ivr/<slug:code>/", flow_detail, name="ivr_flow"),
    path("ivr/<slug:code>/validate/", flow_validate, name="ivr_flow_validate"),
    path("ivr/<slug:code>/save/", flow_save, name="ivr_flow_save"),
    path("ivr/<slug:code>/publish/", flow_publish, name="ivr_flow_publish"),
    path("ivr/<slug:code>/prompts/", flow_prompts, name="ivr_flow_prompts"),
    path("ivr/<slug:code>/rollback/<int:number>/", flow_rollback, name="ivr_flow_rollback"),
    path("ivr/<slug:code>/diff/", flow_diff, name="ivr_flow_diff"),
    path("ivr/<slug:code>/simulate/", flow_simulate, name="ivr_flow_simulate"),
    path("documents/d/<str:token>/", document_download, name="document_download"),
]

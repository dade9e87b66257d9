"""Self-service portal pages under /help/ (namespace "help"): home, sign-up with e-mail verification,
a customer's requests (new, list, page with reply, "mark as solved" and rating) and the public survey
page reached from the CSAT/NPS e-mails (no login: the token in the URL is the proof).

Every request page is for a signed-in portal customer and shows only their own requests: another
customer's ticket id is a 404, exactly like an id that does not exist.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fedele.accounts.contracts import Actor
from fedele.accounts.facade import actor_for
from fedele.shared import clock, context
from fedele.shared.errors import ApplicationError, NotFound, PermissionDenied
from fedele.shared.web.forms import BootstrapFormMixin, apply_service_errors
from fedele.shared.web.views import wants_partial
from fedele.support.attachments import IncomingFile
from fedele.support.models import StatusKind, Survey, Ticket, TicketType
from fedele.support.selectors import portal as selectors
from fedele.support.services import portal as services
from fedele.support.services import surveys as survey_services

PAGE_SIZE = 20
MAX_FILES = 10


def language() -> str:
    return (get_language() or "it")[:2]


def _portal_actor(request: HttpRequest) -> Actor:
    actor = actor_for(request.user)
    if not actor.is_portal_customer:
        raise PermissionDenied(_("These pages are for customers with a portal login."))
    return actor


def _own_ticket(actor: Actor, public_id: UUID) -> Ticket:
    from fedele.support.selectors.tickets import ticket_get

    try:
        return ticket_get(actor=actor, public_id=str(public_id))
    except NotFound as error:
        raise Http404 from error


def _files(request: HttpRequest) -> list[IncomingFile]:
    uploads = request.FILES.getlist("attachments")[: MAX_FILES + 1]
    return [
        IncomingFile(
            filename=upload.name or "file",
            content=upload.read(),
            declared_type=upload.content_type or "",
        )
        for upload in uploads
    ]


# home ----------------------------------------------------------------------------------------------


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    content = selectors.home_content(language())
    recent: list[Ticket] = []
    is_customer = False
    if request.user.is_authenticated:
        actor = actor_for(request.user)
        is_customer = actor.is_portal_customer
        if is_customer:
            recent = list(selectors.my_requests(actor=actor)[:3])
    return render(
        request,
        "support/portal/home.html",
        {
            "categories": content.categories,
            "articles": content.articles,
            "recent": [_row(ticket) for ticket in recent],
            "is_customer": is_customer,
            "language": language(),
        },
    )


# sign-up -------------------------------------------------------------------------------------------


class SignupForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=gettext_lazy("Full name"), max_length=150)
    email = forms.EmailField(label=gettext_lazy("E-mail"), max_length=254)
    password = forms.CharField(
        label=gettext_lazy("Password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        strip=False,
        help_text=gettext_lazy("At least 10 characters, not only numbers, not too common."),
    )
    language = forms.ChoiceField(
        label=gettext_lazy("Language"), choices=[("it", "Italiano"), ("en", "English")]
    )
    consent = forms.BooleanField(
        label=gettext_lazy(
            "I have read the privacy notice and agree to my data being used to handle my requests."
        ),
        required=True,
    )


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("help:home")
    form = SignupForm(request.POST or None, initial={"language": language()})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.signup_start(
                email=data["email"],
                name=data["name"],
                password=data["password"],
                language=data["language"],
                consent=bool(data["consent"]),
                client_ip=context.current().ip_address or "",
            )
        except ApplicationError as error:
            apply_service_errors(form, error)
        else:
            return render(request, "support/portal/signup_sent.html", {"email": data["email"]})
    form.mark_errors()
    return render(request, "support/portal/signup.html", {"form": form}, status=200)


@require_http_methods(["GET", "POST"])
def signup_verify(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button, POST activates: mail scanners that open links do not activate accounts."""
    login_url = f"{reverse('accounts:login')}?next={reverse('help:home')}"
    if request.method == "GET":
        return render(request, "support/portal/signup_verify.html", {"token": token, "login_url": login_url})
    try:
        result = services.signup_verify(token)
    except ApplicationError as error:
        return render(
            request,
            "support/portal/signup_verify.html",
            {"error": _(error.message), "code": error.code, "login_url": login_url},
            status=400 if error.code != "already_verified" else 200,
        )
    return render(
        request,
        "support/portal/signup_done.html",
        {"email": result.email, "login_url": login_url},
    )


# requests ------------------------------------------------------------------------------------------


def _row(ticket: Ticket) -> dict[str, Any]:
    return {
        "ticket": ticket,
        "status": selectors.status_label(ticket, language()),
        "badge": selectors.badge_class(ticket.status_kind),
    }


@login_required
@require_GET
def request_list(request: HttpRequest) -> HttpResponse:
    actor = _portal_actor(request)
    state = request.GET.get("state", "")
    if state not in ("", "open", "solved"):
        state = ""
    tickets = list(selectors.my_requests(actor=actor, state=state)[: PAGE_SIZE * 5])
    return render(
        request,
        "support/portal/request_list.html",
        {"rows": [_row(ticket) for ticket in tickets], "state": state},
    )


def _type_choices() -> list[tuple[str, str]]:
    return [
        (kind.code, kind.name_en if language() == "en" else kind.name_it) for kind in services.portal_types()
    ]


class RequestForm(BootstrapFormMixin, forms.Form):
    ticket_type = forms.ChoiceField(label=gettext_lazy("What is it about?"))
    subject = forms.CharField(label=gettext_lazy("Subject"), max_length=250)
    description = forms.CharField(
        label=gettext_lazy("Description"), widget=forms.Textarea(attrs={"rows": 6}), max_length=20_000
    )
    deflection_token = forms.CharField(required=False, widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["ticket_type"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = _type_choices()


def _field_rows(ticket_type: TicketType | None, values: dict[str, Any], errors: dict[str, Any]) -> list[Any]:
    if ticket_type is None:
        return []
    rows = []
    for field in services.portal_fields(ticket_type):
        key = str(field["key"])
        rows.append(
            {
                "key": key,
                "name": f"cf_{key}",
                "label": field.get("label_en" if language() == "en" else "label_it") or key,
                "type": field.get("type", "text"),
                "required": bool(field.get("required")),
                "choices": field.get("choices") or [],
                "value": values.get(f"cf_{key}", ""),
                "errors": errors.get(key) or errors.get(f"custom_fields.{key}") or [],
            }
        )
    return rows


def _promise(actor: Actor, ticket_type: TicketType | None) -> str:
    from fedele.customers.facade import customer_for_user

    if ticket_type is None:
        return ""
    customer = customer_for_user(actor.user_id)
    return selectors.expected_answer(
        priority=ticket_type.default_priority,
        customer_public_id=str(customer.public_id) if customer is not None else None,
        ticket_type=ticket_type.code,
    )


@login_required
@require_http_methods(["GET", "POST"])
def request_new(request: HttpRequest) -> HttpResponse:
    import secrets

    actor = _portal_actor(request)
    types = {kind.code: kind for kind in services.portal_types()}
    chosen_code = (
        request.POST.get("ticket_type")
        or request.GET.get("ticket_type")
        or request.GET.get("type")
        or next(iter(types), "")
    )
    chosen = types.get(chosen_code)
    custom_errors: dict[str, Any] = {}
    form = RequestForm(
        request.POST or None,
        initial={"ticket_type": chosen_code, "deflection_token": secrets.token_urlsafe(16)},
    )
    if request.method == "GET" and wants_partial(request) and request.GET.get("part") == "fields":
        return render(
            request,
            "support/portal/_request_fields.html",
            {"custom_fields": _field_rows(chosen, {}, {}), "promise": _promise(actor, chosen)},
        )
    if request.method == "POST" and form.is_valid() and chosen is not None:
        data = form.cleaned_data
        try:
            ticket = services.request_submit(
                actor=actor,
                ticket_type=chosen.code,
                subject=data["subject"],
                description=data["description"],
                custom_fields=services.custom_values(chosen, request.POST),
                attachments=_files(request),
                deflection_token=data.get("deflection_token") or "",
                language=language(),
            )
        except ApplicationError as error:
            custom_errors = {
                key.removeprefix("custom_fields.").removeprefix("custom_fields__"): value
                for key, value in error.fields.items()
            }
            if error.fields.keys() & {"attachments", "files"}:
                form.add_error(None, " ".join(error.fields.get("attachments", error.fields.get("files", []))))
            apply_service_errors(form, error)
        else:
            promise = (
                selectors.promise_text(ticket.first_response_due_at) if ticket.first_response_due_at else ""
            )
            messages.success(
                request,
                _("Request %(number)s sent. %(promise)s") % {"number": ticket.number, "promise": promise},
            )
            return redirect("help:request_detail", public_id=ticket.public_id)
    form.mark_errors()
    values = {key: value for key, value in request.POST.items() if key.startswith("cf_")}
    return render(
        request,
        "support/portal/request_new.html",
        {
            "form": form,
            "custom_fields": _field_rows(chosen, values, custom_errors),
            "promise": _promise(actor, chosen),
            "types": list(types.values()),
        },
        status=422 if request.method == "POST" else 200,
    )


def _detail_context(request: HttpRequest, actor: Actor, ticket: Ticket) -> dict[str, Any]:
    survey = selectors.csat_of(ticket)
    solved = ticket.status_kind in (StatusKind.SOLVED, StatusKind.CLOSED)
    return {
        "ticket": ticket,
        "row": _row(ticket),
        "thread": list(selectors.public_thread(ticket)),
        "solved": solved,
        "closed": ticket.status_kind == StatusKind.CLOSED,
        "survey": survey,
        "can_rate": solved and (survey is None or survey.responded_at is None),
        "scores": list(survey_services.CSAT_SCORES),
        "promise": (
            selectors.promise_text(ticket.first_response_due_at)
            if ticket.first_responded_at is None
            and ticket.first_response_due_at is not None
            and ticket.first_response_due_at > clock.now()
            and not solved
            else ""
        ),
    }


@login_required
@require_GET
def request_detail(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor = _portal_actor(request)
    ticket = _own_ticket(actor, public_id)
    return render(request, "support/portal/request_detail.html", _detail_context(request, actor, ticket))


@login_required
@require_POST
def request_reply(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor = _portal_actor(request)
    ticket = _own_ticket(actor, public_id)
    try:
        services.request_reply(
            actor=actor,
            ticket_public_id=str(ticket.public_id),
            body=request.POST.get("body", ""),
            attachments=_files(request),
        )
    except ApplicationError as error:
        context_data = _detail_context(request, actor, ticket)
        context_data["reply_error"] = (
            _(error.message)
            if not error.fields
            else " ".join(_(message) for messages_ in error.fields.values() for message in messages_)
        )
        context_data["reply_body"] = request.POST.get("body", "")
        return render(request, "support/portal/request_detail.html", context_data, status=422)
    messages.success(request, _("Your message has been sent."))
    return redirect(f"{reverse('help:request_detail', args=[ticket.public_id])}#thread")


@login_required
@require_POST
def request_solve(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor = _portal_actor(request)
    ticket = _own_ticket(actor, public_id)
    services.request_mark_solved(actor=actor, ticket_public_id=str(ticket.public_id))
    messages.success(request, _("Glad it is sorted. You can tell us how we did below."))
    return redirect(f"{reverse('help:request_detail', args=[ticket.public_id])}#rating")


@login_required
@require_POST
def request_rate(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor = _portal_actor(request)
    ticket = _own_ticket(actor, public_id)
    error_text = ""
    try:
        survey_services.survey_rate_ticket(
            actor=actor,
            ticket=ticket,
            score=request.POST.get("score", ""),
            comment=request.POST.get("comment", ""),
        )
    except ApplicationError as error:
        error_text = _(error.message)
    ticket.refresh_from_db()
    context_data = _detail_context(request, actor, ticket)
    context_data["rating_error"] = error_text
    if wants_partial(request):
        return render(request, "support/portal/_rating.html", context_data, status=422 if error_text else 200)
    if error_text:
        return render(request, "support/portal/request_detail.html", context_data, status=422)
    return redirect(f"{reverse('help:request_detail', args=[ticket.public_id])}#rating")


# public survey page --------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def survey(request: HttpRequest, token: str) -> HttpResponse:
    found = survey_services.survey_for_token(token)
    if found is None:
        return render(request, "support/surveys/public.html", {"state": "invalid"}, status=404)
    kind_scores = (
        survey_services.CSAT_SCORES if found.kind == Survey.Kind.CSAT else survey_services.NPS_SCORES
    )
    page: dict[str, Any] = {
        "survey": found,
        "scores": list(kind_scores),
        "question": (
            survey_services.campaign_question(found.campaign, language())
            if found.campaign is not None
            else ""
        ),
        "chosen": request.GET.get("score", ""),
        "state": "open",
    }
    if found.responded_at is not None:
        page["state"] = "answered"
    elif found.expires_at <= clock.now():
        page["state"] = "expired"
    if request.method == "POST" and page["state"] == "open":
        try:
            answered = survey_services.survey_respond(
                token=token, score=request.POST.get("score", ""), comment=request.POST.get("comment", "")
            )
        except ApplicationError as error:
            page["error"] = _(error.message)
            page["chosen"] = request.POST.get("score", "")
            page["comment"] = request.POST.get("comment", "")
            return render(request, "support/surveys/public.html", page, status=422)
        page["survey"] = answered
        page["state"] = "thanks"
    return render(request, "support/surveys/public.html", page)


urlpatterns: list[URLPattern] = [
    path("", home, name="home"),
    path("signup/", signup, name="signup"),
    path("signup/verify/<str:token>/", signup_verify, name="signup_verify"),
    path("requests/", request_list, name="request_list"),
    path("requests/new/", request_new, name="request_new"),
    path("requests/<uuid:public_id>/", request_detail, name="request_detail"),
    path("requests/<uuid:public_id>/reply/", request_reply, name="request_reply"),
    path("requests/<uuid:public_id>/solve/", request_solve, name="request_solve"),
    path("requests/<uuid:public_id>/rate/", request_rate, name="request_rate"),
    path("survey/<str:token>/", survey, name="survey"),
]

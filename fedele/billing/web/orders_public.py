"""The customer's public accept page for a quote: no login, reached through the signed link in the
e-mail and the PDF. Italian or English (the quote's language unless the customer switches); a
tampered link answers 400, a used or expired one 410, with a friendly page and never a trace."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fedele.billing.documents.quote_pdf import display_description
from fedele.billing.models import Order, Quote
from fedele.billing.services import quotes as quote_services
from fedele.shared.errors import ApplicationError, Conflict, NotFound, ValidationFailed

LANGUAGES = ("it", "en")


def _language(request: HttpRequest, quote: Quote | None) -> str:
    chosen = request.GET.get("lang") or request.POST.get("lang") or ""
    if chosen in LANGUAGES:
        return chosen
    if quote is not None:
        return quote.language
    current = translation.get_language() or "it"
    return current[:2] if current[:2] in LANGUAGES else "it"


def _error(request: HttpRequest, error: ApplicationError, language: str) -> HttpResponse:
    status = 400
    if error.code in ("link_used", "link_expired", "quote_not_open"):
        status = 410
    elif isinstance(error, NotFound):
        status = 404
    with translation.override(language):
        titles = {
            "link_invalid": _("This link does not work"),
            "link_used": _("This quote was already answered"),
            "quote_not_open": _("This quote was already answered"),
            "link_expired": _("This quote has expired"),
        }
        hints = {
            "link_invalid": _(
                "The address may be incomplete or the quote is being revised. Open the link from the "
                "latest e-mail we sent you, or ask us for a new one."
            ),
            "link_used": _("Thank you: we already have your answer. Contact us if you want to change it."),
            "quote_not_open": _(
                "Thank you: we already have your answer. Contact us if you want to change it."
            ),
            "link_expired": _(
                "The validity date has passed. Contact us and we will send you an updated quote."
            ),
        }
        context = {
            "title": titles.get(error.code, _("This link does not work")),
            "hint": hints.get(error.code, hints["link_invalid"]),
            "language": language,
        }
        return render(request, "billing/public/error.html", context, status=status)


def _page(request: HttpRequest, template: str, language: str, context: dict[str, Any]) -> HttpResponse:
    with translation.override(language):
        return render(request, template, {**context, "language": language})


def _unit(amount: Decimal) -> Decimal:
    """12.5 → 12.50; a sub-cent unit price (0.0004 per call) keeps its digits."""
    cents = amount.quantize(Decimal("0.01"))
    return cents if cents == amount else amount.normalize()


@require_GET
def quote_public(request: HttpRequest, token: str) -> HttpResponse:
    try:
        quote = quote_services.quote_for_token(token)
    except ApplicationError as error:
        return _error(request, error, _language(request, None))
    confirm = request.GET.get("confirm", "")
    context = {
        "quote": quote,
        "token": token,
        "lines": [
            (line, display_description(line, _language(request, quote)), _unit(line.unit_amount))
            for line in quote.lines.select_related("plan_version__plan").order_by("position", "id")
        ],
        "confirm": confirm if confirm in ("accept", "decline") else "",
    }
    return _page(request, "billing/public/quote.html", _language(request, quote), context)


@require_POST
def quote_public_decide(request: HttpRequest, token: str, decision: str) -> HttpResponse:
    quote: Quote | None = None
    try:
        quote = quote_services.quote_for_token(token)
        if decision == "accept":
            quote_services.quote_accept(quote=quote)
        elif decision == "decline":
            quote_services.quote_decline(quote=quote, note=request.POST.get("note", "")[:300])
        else:
            raise ValidationFailed("Unknown answer.", code="link_invalid")
    except Conflict as error:  # a second click that lost the race to the first
        return _error(request, ApplicationError(error.message, code="link_used"), _language(request, quote))
    except ApplicationError as error:
        return _error(request, error, _language(request, quote))
    language = _language(request, quote)
    return redirect(reverse("billing:quote_public_done", args=[token]) + f"?lang={language}")


@require_http_methods(["GET"])
def quote_public_done(request: HttpRequest, token: str) -> HttpResponse:
    """The result page after an answer (safe to reload: it only reads the decided quote)."""
    try:
        public_id = signing.TimestampSigner(salt=quote_services.SIGNING_SALT).unsign(token)
    except signing.BadSignature:
        return _error(request, ApplicationError("", code="link_invalid"), _language(request, None))
    quote = Quote.objects.select_related("account").filter(public_id=public_id).first()
    if quote is None:
        return _error(request, NotFound("", code="link_invalid"), _language(request, None))
    if quote.status not in (Quote.Status.ACCEPTED, Quote.Status.DECLINED):
        return redirect("billing:quote_public", token=token)
    context = {"quote": quote, "order": Order.objects.filter(quote=quote).first(), "token": token}
    return _page(request, "billing/public/done.html", _language(request, quote), context)


urlpatterns: list[URLPattern] = [
    path("q/<str:token>/", quote_public, name="quote_public"),
    path("q/<str:token>/done/", quote_public_done, name="quote_public_done"),
    path("q/<str:token>/<slug:decision>/", quote_public_decide, name="quote_public_decide"),
]

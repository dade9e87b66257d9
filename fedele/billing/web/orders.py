"""Billing pages: quotes (list, editor with htmx lines and live totals, send, PDF, decisions),
orders with their provisioning steps, entitlements, and the customer's public accept page."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fedele.accounts.facade import Actor, actor_for
from fedele.billing.api.orders import accept_url, pdf_response
from fedele.billing.models import Order, ProvisioningStep, Quote
from fedele.billing.selectors import orders as selectors
from fedele.billing.services import orders as order_services
from fedele.billing.services import provisioning
from fedele.billing.services import quotes as quote_services
from fedele.billing.services.accounts import billing_account_for_customer
from fedele.billing.services.quote_pricing import price_lines
from fedele.billing.web import orders_public, quote_forms
from fedele.customers.contracts import CustomerSummary
from fedele.customers.facade import customer_summary
from fedele.shared.errors import ApplicationError, PermissionDenied, ValidationFailed
from fedele.shared.pagination import paginate

PAGE_SIZE = 25
QUOTE_STATUS_LABELS = {
    "draft": gettext_lazy("draft"),
    "sent": gettext_lazy("sent"),
    "accepted": gettext_lazy("accepted"),
    "declined": gettext_lazy("declined"),
    "expired": gettext_lazy("expired"),
}
ORDER_STATUS_LABELS = {
    "pending": gettext_lazy("pending"),
    "fulfilling": gettext_lazy("fulfilling"),
    "completed": gettext_lazy("completed"),
    "failed": gettext_lazy("failed"),
    "cancelled": gettext_lazy("cancelled"),
}
ENTITLEMENT_STATUS_LABELS = {
    "pending": gettext_lazy("pending"),
    "provisioning": gettext_lazy("provisioning"),
    "active": gettext_lazy("active"),
    "suspended": gettext_lazy("suspended"),
    "terminated": gettext_lazy("terminated"),
    "failed": gettext_lazy("failed"),
}


def _customer(public_id: str) -> CustomerSummary | None:
    """The customer behind a typed-in id; None for an unknown or malformed one."""
    try:
        return customer_summary(str(UUID(public_id.strip()))) if public_id.strip() else None
    except ValueError:
        return None


def _staff(request: HttpRequest) -> Actor:
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can("billing.view_billing")):
        raise PermissionDenied(_("You do not have permission to see quotes and orders."))
    return actor


def _manager(actor: Actor) -> None:
    if not (actor.is_internal and actor.can("billing.manage_billing")):
        raise PermissionDenied(_("You do not have permission to manage quotes and orders."))


def _page(request: HttpRequest, queryset: Any, *, allowed: dict[str, str]) -> tuple[list[Any], str]:
    page = paginate(
        queryset,
        ordering="-created_at",
        allowed=allowed,
        cursor=request.GET.get("cursor") or None,
        limit=PAGE_SIZE,
    )
    query = request.GET.copy()
    query["cursor"] = page.next_cursor or ""
    return page.items, query.urlencode() if page.next_cursor else ""


# quotes ----------------------------------------------------------------------------------------------


@login_required
@require_GET
def quote_list(request: HttpRequest) -> HttpResponse:
    actor = _staff(request)
    status = request.GET.get("status", "")
    status = status if status in QUOTE_STATUS_LABELS else ""
    search = request.GET.get("q", "").strip()[:100]
    items, next_query = _page(
        request, selectors.quote_list(actor=actor, status=status, search=search), allowed=selectors.ORDERINGS
    )
    context = {
        "quotes": items,
        "status": status,
        "search": search,
        "status_labels": QUOTE_STATUS_LABELS,
        "next_query": next_query,
        "can_manage": actor.can("billing.manage_billing"),
    }
    template = (
        "billing/orders/_quote_table.html"
        if request.headers.get("HX-Target") == "results"
        else "billing/orders/quotes.html"
    )
    return render(request, template, context)


def _save(actor: Actor, form: quote_forms.QuoteForm, quote: Quote | None) -> Quote | None:
    """Create or update the quote from the editor; None (with ``form.errors``) when input is bad."""
    valid_until = quote_forms.parse_valid_until(form)
    discount = quote_forms.parse_discount(form)
    lines = quote_forms.parse_lines(form)
    if quote is None and _customer(form.customer) is None:
        form.add_error("customer", _("Choose a customer."))
    if form.errors or valid_until is None:
        return None
    try:
        if quote is None:
            account = billing_account_for_customer(customer_public_id=form.customer, currency=form.currency)
            return quote_services.quote_create(
                account=account,
                lines=lines,
                valid_until=valid_until,
                discount_percent=discount,
                language=form.language,
                notes=form.notes,
                actor_id=actor.user_id,
            )
        return quote_services.quote_update(
            quote=quote,
            lines=lines,
            valid_until=valid_until,
            discount_percent=discount,
            notes=form.notes,
            actor_id=actor.user_id,
        )
    except ValidationFailed as error:
        for name, field_messages in (error.fields or {"__all__": [error.message]}).items():
            for message in field_messages:
                form.add_error(name, message)
        return None


@login_required
@require_http_methods(["GET", "POST"])
def quote_editor(request: HttpRequest, public_id: str | None = None) -> HttpResponse:
    actor = _staff(request)
    _manager(actor)
    quote = selectors.quote_get(actor=actor, public_id=public_id) if public_id else None
    if quote is not None and quote.status not in quote_services.OPEN_STATUSES:
        messages.error(request, _("This quote is closed; it can no longer change."))
        return redirect("billing:quote_detail", public_id=quote.public_id)
    if request.method == "POST":
        form = quote_forms.form_from_post(request.POST)
        if quote is not None:
            form.customer, form.currency = str(quote.account.customer.public_id), quote.currency
        saved = _save(actor, form, quote)
        if saved is not None:
            messages.success(request, _("Quote %(number)s saved.") % {"number": saved.number})
            return redirect("billing:quote_detail", public_id=saved.public_id)
    elif quote is not None:
        form = quote_forms.form_from_quote(quote)
    else:
        customer = _customer(request.GET.get("customer", "")[:64])
        form = quote_forms.QuoteForm(
            customer=str(customer.public_id) if customer else "",
            language=customer.language if customer and customer.language in ("it", "en") else "it",
            rows=[quote_forms.LineRow(index=0)],
        )
    context = {
        **quote_forms.context(form),
        "quote": quote,
        "customer": _customer(form.customer),
        "totals": _totals(form),
    }
    return render(request, "billing/orders/quote_editor.html", context, status=422 if form.errors else 200)


def _totals(form: quote_forms.QuoteForm) -> dict[str, Any]:
    """Live totals of the editor's rows (nothing is written): lines, subtotal, discount, total."""
    probe = quote_forms.QuoteForm(
        currency=form.currency, discount_percent=form.discount_percent, rows=list(form.rows)
    )
    lines = quote_forms.parse_lines(probe)
    discount = quote_forms.parse_discount(probe)
    if probe.errors:
        return {"errors": probe.errors}
    try:
        priced = price_lines(lines, currency=form.currency, discount_percent=discount)
    except ValidationFailed as error:
        return {"errors": error.fields}
    subtotal = sum((line.amount for line in priced), start=0)
    total = sum((line.net_amount for line in priced), start=0)
    return {"lines": priced, "subtotal": subtotal, "discount": subtotal - total, "total": total}


@login_required
@require_POST
def quote_totals(request: HttpRequest) -> HttpResponse:
    _staff(request)
    form = quote_forms.form_from_post(request.POST)
    context = {"totals": _totals(form), "form": form}
    return render(request, "billing/orders/_quote_totals.html", context)


@login_required
@require_GET
def quote_line_row(request: HttpRequest) -> HttpResponse:
    _staff(request)
    index = request.GET.get("index", "0")
    currency = request.GET.get("currency", "EUR").strip().upper()[:3]
    row = quote_forms.LineRow(index=int(index) if index.isdigit() and int(index) < 10_000 else 0)
    context = {"row": row, "row_errors": [], "options": quote_forms.item_options(currency)}
    return render(request, "billing/orders/_quote_line.html", context)


@login_required
@require_GET
def quote_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _staff(request)
    quote = selectors.quote_get(actor=actor, public_id=public_id)
    customer = customer_summary(str(quote.account.customer.public_id))
    context = {
        "quote": quote,
        "customer": customer,
        "order": Order.objects.filter(quote=quote).first(),
        "status_labels": QUOTE_STATUS_LABELS,
        "accept_url": accept_url(request, quote) if quote.status == Quote.Status.SENT else "",
        "can_manage": actor.can("billing.manage_billing"),
        "default_email": customer.email if customer else "",
    }
    return render(request, "billing/orders/quote_detail.html", context)


@login_required
@require_GET
def quote_pdf(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _staff(request)
    quote = selectors.quote_get(actor=actor, public_id=public_id)
    language = request.GET.get("language", quote.language)
    return pdf_response(
        quote, language if language in ("it", "en") else quote.language, accept_url(request, quote)
    )


@login_required
@require_POST
def quote_action(request: HttpRequest, public_id: str, action: str) -> HttpResponse:
    actor = _staff(request)
    quote = selectors.quote_get(actor=actor, public_id=public_id)
    _manager(actor)
    try:
        if action == "send":
            quote_services.quote_send(
                quote=quote,
                to_email=request.POST.get("to_email", "")[:254],
                accept_url=accept_url(request, quote),
                actor_id=actor.user_id,
            )
            messages.success(
                request,
                _("The quote was sent to %(email)s.") % {"email": request.POST.get("to_email", "")[:254]},
            )
        elif action == "accept":
            quote_services.quote_accept(quote=quote, actor_id=actor.user_id)
            messages.success(request, _("The quote was accepted and the order created."))
        elif action == "decline":
            quote_services.quote_decline(
                quote=quote, note=request.POST.get("note", "")[:300], actor_id=actor.user_id
            )
            messages.success(request, _("The quote was marked as declined."))
        else:
            raise ValidationFailed(_("Unknown action."))
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect("billing:quote_detail", public_id=quote.public_id)


# orders ----------------------------------------------------------------------------------------------


@login_required
@require_GET
def order_list(request: HttpRequest) -> HttpResponse:
    actor = _staff(request)
    status = request.GET.get("status", "")
    status = status if status in ORDER_STATUS_LABELS else ""
    search = request.GET.get("q", "").strip()[:100]
    items, next_query = _page(
        request, selectors.order_list(actor=actor, status=status, search=search), allowed=selectors.ORDERINGS
    )
    context = {
        "orders": items,
        "status": status,
        "search": search,
        "status_labels": ORDER_STATUS_LABELS,
        "next_query": next_query,
    }
    template = (
        "billing/orders/_order_table.html"
        if request.headers.get("HX-Target") == "results"
        else "billing/orders/orders.html"
    )
    return render(request, template, context)


@login_required
@require_GET
def order_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _staff(request)
    order = selectors.order_get(actor=actor, public_id=public_id)
    context = {
        "order": order,
        "status_labels": ORDER_STATUS_LABELS,
        "can_manage": actor.can("billing.manage_billing"),
    }
    template = (
        "billing/orders/_order_lines.html"
        if request.headers.get("HX-Target") == "order-lines"
        else "billing/orders/order_detail.html"
    )
    return render(request, template, context)


@login_required
@require_POST
def order_fulfil(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _staff(request)
    order = selectors.order_get(actor=actor, public_id=public_id)
    _manager(actor)
    try:
        if order.status != Order.Status.FAILED:
            raise ValidationFailed(_("Only a failed order can be retried."))
        order_services.order_fulfil(order=order, actor_id=actor.user_id)
        messages.success(request, _("The order was fulfilled."))
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect("billing:order_detail", public_id=order.public_id)


@login_required
@require_POST
def step_action(request: HttpRequest, public_id: str, action: str) -> HttpResponse:
    actor = _staff(request)
    step: ProvisioningStep = selectors.step_get(actor=actor, public_id=public_id)
    _manager(actor)
    try:
        if action == "retry":
            done = provisioning.provisioning_step_retry(step=step, actor_id=actor.user_id)
        elif action == "complete":
            done = provisioning.provisioning_step_complete(
                step=step,
                identifier=request.POST.get("identifier", "")[:120],
                note=request.POST.get("note", "")[:300],
                actor_id=actor.user_id,
            )
        else:
            raise ValidationFailed(_("Unknown action."))
        if done.status == ProvisioningStep.Status.SUCCEEDED:
            messages.success(request, _("Step %(name)s is done.") % {"name": done.name})
        else:
            messages.warning(
                request,
                _("Step %(name)s did not succeed: %(error)s") % {"name": done.name, "error": done.last_error},
            )
    except ApplicationError as error:
        messages.error(request, error.message)
    order = step.order_line.order if step.order_line else None
    if order is None:
        return redirect("billing:entitlement_list")
    return redirect("billing:order_detail", public_id=order.public_id)


@login_required
@require_GET
def entitlement_list(request: HttpRequest) -> HttpResponse:
    actor = _staff(request)
    status = request.GET.get("status", "")
    status = status if status in ENTITLEMENT_STATUS_LABELS else ""
    customer = request.GET.get("customer", "").strip()[:64]
    items, next_query = _page(
        request,
        selectors.entitlement_list(actor=actor, customer=customer, status=status),
        allowed=selectors.ENTITLEMENT_ORDERINGS,
    )
    context = {
        "entitlements": items,
        "status": status,
        "customer": _customer(customer),
        "customer_id": customer,
        "status_labels": ENTITLEMENT_STATUS_LABELS,
        "next_query": next_query,
    }
    return render(request, "billing/orders/entitlements.html", context)


urlpatterns: list[URLPattern] = [
    path("quotes/", quote_list, name="quote_list"),
    path("quotes/new/", quote_editor, name="quote_create"),
    path("quotes/totals/", quote_totals, name="quote_totals"),
    path("quotes/line/", quote_line_row, name="quote_line_row"),
    path("quotes/<uuid:public_id>/", quote_detail, name="quote_detail"),
    path("quotes/<uuid:public_id>/edit/", quote_editor, name="quote_edit"),
    path("quotes/<uuid:public_id>/pdf/", quote_pdf, name="quote_pdf"),
    path("quotes/<uuid:public_id>/<slug:action>/", quote_action, name="quote_action"),
    path("orders/", order_list, name="order_list"),
    path("orders/<uuid:public_id>/", order_detail, name="order_detail"),
    path("orders/<uuid:public_id>/fulfil/", order_fulfil, name="order_fulfil"),
    path("orders/steps/<uuid:public_id>/<slug:action>/", step_action, name="provisioning_step_action"),
    path("entitlements/", entitlement_list, name="entitlement_list"),
    *orders_public.urlpatterns,
]

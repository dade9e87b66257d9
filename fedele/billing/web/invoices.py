"""Billing pages: invoices (list, detail with actions, documents) and billing runs (live progress)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from fedele.accounts.facade import Actor, actor_for
from fedele.billing.documents.fatturapa import fatturapa_filename
from fedele.billing.models import BillingRun
from fedele.billing.selectors import invoices as selectors
from fedele.billing.services import billing_run as run_services
from fedele.billing.services import invoicing
from fedele.billing.services.invoicing import business_today
from fedele.shared.errors import ApplicationError, PermissionDenied, ValidationFailed
from fedele.shared.pagination import paginate

PAGE_SIZE = 25
TABLE_TARGET = "invoice-results"
STATUS_BADGES = {"draft": "secondary", "finalised": "warning", "paid": "success", "void": "dark"}


def _staff(request: HttpRequest, permission: str = "billing.view_billing") -> Actor:
    actor = actor_for(request.user)
    if not actor.is_internal or not actor.can(permission):
        raise PermissionDenied(_("You do not have permission for this page."))
    return actor


def _parse_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _status_labels() -> dict[str, str]:
    return {"draft": _("Draft"), "finalised": _("Open"), "paid": _("Paid"), "void": _("Void")}


@login_required
def invoice_list(request: HttpRequest) -> HttpResponse:
    actor = _staff(request)
    params = request.GET
    filters = selectors.InvoiceFilters(
        status=params.get("status", "") if params.get("status", "") in STATUS_BADGES else "",
        kind=params.get("kind", "") if params.get("kind", "") in ("invoice", "credit_note") else "",
        issued_from=_parse_date(params.get("from", "")),
        issued_to=_parse_date(params.get("to", "")),
        search=params.get("q", "")[:32],
    )
    error = ""
    try:
        queryset = selectors.invoice_list(actor=actor, filters=filters).select_related("credit_note_for")
        page = paginate(
            queryset,
            ordering="-created_at",
            allowed=selectors.ORDERINGS,
            cursor=params.get("cursor"),
            limit=PAGE_SIZE,
        )
        rows, next_cursor = page.items, page.next_cursor
    except ValidationFailed as problem:
        rows, next_cursor, error = [], None, problem.message
    query = params.copy()
    query.pop("cursor", None)
    if next_cursor:
        query["cursor"] = next_cursor
    context = {
        "rows": rows,
        "filters": filters,
        "error": error,
        "status_labels": _status_labels(),
        "badges": STATUS_BADGES,
        "next_query": query.urlencode() if next_cursor else "",
        "table_target": TABLE_TARGET,
        "filtered": any(
            [filters.status, filters.kind, filters.issued_from, filters.issued_to, filters.search]
        ),
        "can_manage": actor.can("billing.manage_billing"),
    }
    htmx = getattr(request, "htmx", None)
    if htmx and getattr(htmx, "target", None) == TABLE_TARGET:
        return render(request, "billing/invoices/partials/_table.html", context)
    return render(request, "billing/invoices/list.html", context)


@login_required
def invoice_detail(request: HttpRequest, invoice_id: UUID) -> HttpResponse:
    actor = _staff(request)
    invoice = selectors.invoice_get(actor=actor, public_id=invoice_id)
    allocations = (
        list(invoice.allocations.select_related("payment").order_by("id"))
        if hasattr(invoice, "allocations")
        else []
    )
    return render(
        request,
        "billing/invoices/detail.html",
        {
            "invoice": invoice,
            "lines": list(invoice.lines.all()),
            "summaries": list(invoice.tax_summaries.all()),
            "credit_notes": selectors.credit_notes_of(invoice),
            "allocations": allocations,
            "status_labels": _status_labels(),
            "badges": STATUS_BADGES,
            "can_manage": actor.can("billing.manage_billing"),
            "creditable": invoice.total - invoicing.credited_so_far(invoice),
        },
    )


def _act(request: HttpRequest, invoice_id: UUID, action: str) -> HttpResponse:
    actor = _staff(request, "billing.manage_billing")
    invoice = selectors.invoice_get(actor=actor, public_id=invoice_id)
    target = invoice
    try:
        if action == "finalise":
            invoicing.invoice_finalise(invoice=invoice, actor_id=actor.user_id)
            messages.success(request, _("Invoice %(number)s issued.") % {"number": invoice.number})
        elif action == "void":
            was_draft = invoice.status == "draft"
            invoicing.invoice_void(
                invoice=invoice, reason=request.POST.get("reason", ""), actor_id=actor.user_id
            )
            messages.success(
                request, _("Draft deleted.") if was_draft else _("Invoice voided by a credit note.")
            )
            if was_draft:
                return redirect("billing:invoice_list")
        elif action == "credit_note":
            raw = request.POST.get("amount", "").strip().replace(",", ".")
            try:
                amount = Decimal(raw) if raw else None
            except InvalidOperation:
                raise ValidationFailed(
                    _("Enter an amount like 12.50."), fields={"amount": _("Not a number.")}
                ) from None
            target = invoicing.credit_note_create(
                invoice=invoice, amount=amount, reason=request.POST.get("reason", ""), actor_id=actor.user_id
            )
            messages.success(request, _("Credit note %(number)s issued.") % {"number": target.number})
    except ApplicationError as problem:
        messages.error(request, problem.message)
    return redirect("billing:invoice_detail", invoice_id=target.public_id)


@login_required
@require_POST
def invoice_finalise(request: HttpRequest, invoice_id: UUID) -> HttpResponse:
    return _act(request, invoice_id, "finalise")


@login_required
@require_POST
def invoice_void(request: HttpRequest, invoice_id: UUID) -> HttpResponse:
    return _act(request, invoice_id, "void")


@login_required
@require_POST
def invoice_credit_note(request: HttpRequest, invoice_id: UUID) -> HttpResponse:
    return _act(request, invoice_id, "credit_note")


@login_required
def invoice_pdf(request: HttpRequest, invoice_id: UUID) -> HttpResponse:
    invoice = selectors.invoice_get(actor=actor_for(request.user), public_id=invoice_id)
    language = request.GET.get("language") or str(invoice.customer_snapshot.get("language") or "it")
    response = HttpResponse(invoicing.invoice_pdf(invoice, language), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{invoice.number or "draft"}.pdf"'
    return response


@login_required
def invoice_xml(request: HttpRequest, invoice_id: UUID) -> HttpResponse:
    invoice = selectors.invoice_get(actor=actor_for(request.user), public_id=invoice_id)
    try:
        content = invoicing.invoice_fatturapa_xml(invoice)
    except ValidationFailed as problem:
        messages.error(request, problem.message)
        return redirect("billing:invoice_detail", invoice_id=invoice.public_id)
    response = HttpResponse(content, content_type="application/xml")
    response["Content-Disposition"] = f'attachment; filename="{fatturapa_filename(invoice)}"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def billing_run_list(request: HttpRequest) -> HttpResponse:
    actor = _staff(request)
    can_run = actor.can("billing.run_billing")
    if request.method == "POST":
        if not can_run:
            raise PermissionDenied(_("You may not start billing runs."))
        as_of = _parse_date(request.POST.get("as_of", ""))
        try:
            if as_of is None:
                raise ValidationFailed(_("Choose a date."), fields={"as_of": _("Required.")})
            run = run_services.billing_run_start(
                as_of=as_of, finalise=request.POST.get("drafts") != "on", actor_id=actor.user_id
            )
            messages.success(request, _("Billing run started."))
            return redirect("billing:billing_run_detail", run_id=run.public_id)
        except ApplicationError as problem:
            messages.error(request, problem.message)
    runs = list(BillingRun.objects.all()[:50])
    return render(
        request,
        "billing/invoices/runs.html",
        {"runs": runs, "can_run": can_run, "today": business_today(), "chart": _chart(runs)},
    )


def _chart(runs: list[BillingRun]) -> dict[str, list[object]]:
    finished = [run for run in reversed(runs) if run.status == BillingRun.Status.COMPLETED][-20:]
    return {
        "labels": [run.as_of.isoformat() for run in finished],
        "invoices": [run.invoices_created for run in finished],
        "errors": [len(run.errors or []) for run in finished],
    }


@login_required
def billing_run_detail(request: HttpRequest, run_id: UUID) -> HttpResponse:
    actor = _staff(request)
    run = selectors.billing_run_get(actor=actor, public_id=run_id)
    context = {
        "run": run,
        "percent": selectors.progress_percent(run),
        "live": run.status in ("pending", "running"),
    }
    htmx = getattr(request, "htmx", None)
    if htmx:
        return render(request, "billing/invoices/partials/_run_progress.html", context)
    return render(request, "billing/invoices/run_detail.html", context)


urlpatterns = [
    path("invoices/", invoice_list, name="invoice_list"),
    path("invoices/<uuid:invoice_id>/", invoice_detail, name="invoice_detail"),
    path("invoices/<uuid:invoice_id>/finalise/", invoice_finalise, name="invoice_finalise"),
    path("invoices/<uuid:invoice_id>/void/", invoice_void, name="invoice_void"),
    path("invoices/<uuid:invoice_id>/credit-note/", invoice_credit_note, name="invoice_credit_note"),
    path("invoices/<uuid:invoice_id>/pdf/", invoice_pdf, name="invoice_pdf"),
    path("invoices/<uuid:invoice_id>/xml/", invoice_xml, name="invoice_xml"),
    path("runs/", billing_run_list, name="billing_run_list"),
    path("runs/<uuid:run_id>/", billing_run_detail, name="billing_run_detail"),
]

"""Billing pages: payments, refunds, payment methods and mandates, bank reconciliation, dunning and
collections queues, account statements."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from fedele.accounts.facade import Actor, actor_for
from fedele.billing.models import Invoice, Payment
from fedele.billing.models.payments import MethodKind
from fedele.billing.selectors import dunning as dunning_selectors
from fedele.billing.selectors import payments as selectors
from fedele.billing.selectors.statements import account_statement, statement_csv
from fedele.billing.services import dunning, payment_methods, payments, reconciliation, refunds
from fedele.shared.errors import ApplicationError
from fedele.shared.pagination import paginate
from fedele.shared.web.forms import BootstrapFormMixin, apply_service_errors

PAGE_SIZE = 25


def _actor(request: HttpRequest, permission: str = "billing.view_billing") -> Actor:
    actor = actor_for(request.user)
    selectors.require_staff(actor, permission)
    return actor


class PaymentForm(BootstrapFormMixin, forms.Form):
    customer_id = forms.UUIDField(label=gettext_lazy("Customer id"))
    invoice_number = forms.CharField(label=gettext_lazy("Invoice number"), required=False, max_length=32)
    amount = forms.DecimalField(label=gettext_lazy("Amount"), max_digits=16, decimal_places=2)
    currency = forms.CharField(label=gettext_lazy("Currency"), initial="EUR", max_length=3)
    method = forms.ChoiceField(label=gettext_lazy("Method"), choices=MethodKind.choices)
    received_on = forms.DateField(
        label=gettext_lazy("Received on"), widget=forms.DateInput(attrs={"type": "date"})
    )
    reference = forms.CharField(label=gettext_lazy("Reference"), max_length=120)
    note = forms.CharField(label=gettext_lazy("Note"), required=False, max_length=300)


class RefundForm(BootstrapFormMixin, forms.Form):
    amount = forms.DecimalField(label=gettext_lazy("Amount"), max_digits=16, decimal_places=2, required=False)
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=300)


class MandateForm(BootstrapFormMixin, forms.Form):
    iban = forms.CharField(label=gettext_lazy("IBAN"), max_length=42)
    bic = forms.CharField(label=gettext_lazy("BIC"), max_length=11, required=False)
    debtor_name = forms.CharField(label=gettext_lazy("Account holder"), max_length=70)
    signed_on = forms.DateField(
        label=gettext_lazy("Signature date"), widget=forms.DateInput(attrs={"type": "date"})
    )
    reference = forms.CharField(label=gettext_lazy("Mandate reference"), max_length=35, required=False)


class StatementUploadForm(BootstrapFormMixin, forms.Form):
    file = forms.FileField(label=gettext_lazy("Bank statement (CSV)"))
    skip_bad_lines = forms.BooleanField(
        label=gettext_lazy("Import the good lines and skip the bad ones"), required=False
    )


@login_required
def payment_list(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    status = request.GET.get("status", "")[:16]
    filters = selectors.PaymentFilters(status=status if status in Payment.Status.values else "")
    page = paginate(
        selectors.payment_list(actor=actor, filters=filters).select_related("account__customer"),
        ordering="-created_at",
        allowed=selectors.ORDERINGS,
        cursor=request.GET.get("cursor") or None,
        limit=PAGE_SIZE,
    )
    return render(
        request,
        "billing/payments/list.html",
        {
            "page": page,
            "status": filters.status,
            "statuses": Payment.Status.choices,
            "can_manage": actor.can("billing.manage_billing"),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def payment_record(request: HttpRequest) -> HttpResponse:
    actor = _actor(request, "billing.manage_billing")
    form = PaymentForm(
        request.POST or None, initial={"received_on": payments.business_today(), "currency": "EUR"}
    )
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            data = form.cleaned_data
            try:
                account = selectors.account_for_customer(
                    actor=actor, customer_public_id=str(data["customer_id"])
                )
                invoice = None
                if data["invoice_number"]:
                    invoice = Invoice.objects.filter(
                        account=account, number=data["invoice_number"].strip()
                    ).first()
                    if invoice is None:
                        raise ApplicationError(
                            _("No such invoice for this customer."),
                            fields={"invoice_number": _("Not found.")},
                        )
                payment = payments.payment_record(
                    account=account,
                    amount=data["amount"],
                    currency=data["currency"],
                    method=data["method"],
                    received_on=data["received_on"],
                    external_id=data["reference"],
                    invoice=invoice,
                    note=data["note"],
                    actor_id=actor.user_id,
                )
            except ApplicationError as failure:
                apply_service_errors(form, failure)
            else:
                messages.success(request, _("The payment has been recorded."))
                return redirect(reverse("billing:payment_detail", args=[payment.public_id]))
        form.mark_errors()
    return render(request, "billing/payments/record.html", {"form": form}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def payment_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _actor(request)
    payment = selectors.payment_get(actor=actor, public_id=public_id)
    form = RefundForm(request.POST or None)
    status = 200
    if request.method == "POST":
        _actor(request, "billing.manage_billing")
        status = 422
        if form.is_valid():
            try:
                refunds.refund_create(
                    payment=payment,
                    amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    actor_id=actor.user_id,
                )
            except ApplicationError as failure:
                apply_service_errors(form, failure)
            else:
                messages.success(request, _("The refund has been issued."))
                return redirect(reverse("billing:payment_detail", args=[payment.public_id]))
        form.mark_errors()
    context = {
        "payment": payment,
        "allocations": payment.allocations.select_related("invoice"),
        "refunds": selectors.refunds_of(payment),
        "form": form,
        "can_refund": actor.can("billing.manage_billing") and payment.refundable > 0,
    }
    return render(request, "billing/payments/detail.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def account_methods(request: HttpRequest, customer_id: str) -> HttpResponse:
    actor = _actor(request)
    account = selectors.account_for_customer(actor=actor, customer_public_id=customer_id)
    form = MandateForm(request.POST or None)
    status = 200
    if request.method == "POST":
        _actor(request, "billing.manage_billing")
        status = 422
        if form.is_valid():
            try:
                payment_methods.mandate_create(account=account, actor_id=actor.user_id, **form.cleaned_data)
            except ApplicationError as failure:
                apply_service_errors(form, failure)
            else:
                messages.success(request, _("The mandate has been registered."))
                return redirect(reverse("billing:account_methods", args=[customer_id]))
        form.mark_errors()
    context = {
        "account": account,
        "customer_id": customer_id,
        "methods": selectors.payment_methods_of(account),
        "mandates": selectors.mandates_of(account),
        "form": form,
        "can_manage": actor.can("billing.manage_billing"),
    }
    return render(request, "billing/payments/methods.html", context, status=status)


@login_required
def account_statement_page(request: HttpRequest, customer_id: str) -> HttpResponse:
    actor = _actor(request)
    account = selectors.account_for_customer(actor=actor, customer_public_id=customer_id)
    statement = account_statement(account)
    if request.GET.get("format") == "csv":
        response = HttpResponse(statement_csv(statement), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="statement-{customer_id}.csv"'
        return response
    chart = {
        "dates": [entry.on.isoformat() for entry in statement.entries],
        "balances": [str(entry.balance) for entry in statement.entries],
    }
    return render(
        request,
        "billing/payments/statement.html",
        {"statement": statement, "customer_id": customer_id, "chart": chart},
    )


@login_required
@require_http_methods(["GET", "POST"])
def reconciliation_page(request: HttpRequest) -> HttpResponse:
    actor = _actor(request, "billing.manage_billing")
    form = StatementUploadForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                statement = reconciliation.statement_import(
                    content=upload.read(),
                    filename=upload.name,
                    skip_bad_lines=form.cleaned_data["skip_bad_lines"],
                    actor_id=actor.user_id,
                )
            except ApplicationError as failure:
                apply_service_errors(form, failure)
            else:
                messages.success(
                    request,
                    _("%(new)s new lines imported, %(duplicate)s already known.")
                    % {"new": statement.lines_new, "duplicate": statement.lines_duplicate},
                )
                return redirect(reverse("billing:reconciliation"))
        form.mark_errors()
    lines = list(selectors.unmatched_lines()[:200])
    return render(
        request, "billing/payments/reconciliation.html", {"form": form, "lines": lines}, status=status
    )


@login_required
@require_POST
def reconciliation_line(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _actor(request, "billing.manage_billing")
    line = selectors.statement_line_get(actor=actor, public_id=public_id)
    try:
        if request.POST.get("action") == "ignore":
            reconciliation.statement_line_ignore(line=line, actor_id=actor.user_id)
            messages.info(request, _("The line has been ignored."))
        else:
            number = request.POST.get("invoice_number", "").strip()[:32]
            invoice = Invoice.objects.filter(number=number).first() if number else None
            if number and invoice is None:
                raise ApplicationError(_("No invoice with that number."))
            reconciliation.statement_line_confirm(line=line, invoice=invoice, actor_id=actor.user_id)
            messages.success(request, _("The payment has been recorded."))
    except ApplicationError as failure:
        messages.error(request, failure.message)
    return redirect(reverse("billing:reconciliation"))


def _queue(request: HttpRequest, status: str, template_title: str) -> HttpResponse:
    actor = _actor(request)
    cases = list(dunning_selectors.case_list(actor=actor, status=status).order_by("due_date", "pk")[:200])
    today = payments.business_today()
    rows = [(case, (today - case.due_date).days) for case in cases]
    total = sum((case.invoice.amount_due for case in cases), Decimal(0))
    return render(
        request,
        "billing/dunning/queue.html",
        {
            "rows": rows,
            "title": template_title,
            "total": total,
            "status": status,
            "can_manage": actor.can("billing.manage_billing"),
        },
    )


@login_required
def dunning_queue(request: HttpRequest) -> HttpResponse:
    return _queue(request, "open", _("Dunning"))


@login_required
def collections_queue(request: HttpRequest) -> HttpResponse:
    return _queue(request, "escalated", _("Collections"))


@login_required
@require_POST
def dunning_case_close(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _actor(request, "billing.manage_billing")
    case = dunning_selectors.case_get(actor=actor, public_id=public_id)
    try:
        dunning.dunning_case_close(case=case, reason=request.POST.get("reason", ""), actor_id=actor.user_id)
        messages.success(request, _("The case has been closed."))
    except ApplicationError as failure:
        messages.error(request, failure.message)
    return redirect(
        (request.POST.get("next") == "collections" and reverse("billing:collections"))
        or reverse("billing:dunning")
    )


urlpatterns: list[Any] = [
    path("payments/", payment_list, name="payments"),
    path("payments/new/", payment_record, name="payment_record"),
    path("payments/<uuid:public_id>/", payment_detail, name="payment_detail"),
    path("accounts/<uuid:customer_id>/payment-methods/", account_methods, name="account_methods"),
    path("accounts/<uuid:customer_id>/statement/", account_statement_page, name="account_statement"),
    path("reconciliation/", reconciliation_page, name="reconciliation"),
    path("reconciliation/lines/<uuid:public_id>/", reconciliation_line, name="reconciliation_line"),
    path("dunning/", dunning_queue, name="dunning"),
    path("collections/", collections_queue, name="collections"),
    path("dunning/<uuid:public_id>/close/", dunning_case_close, name="dunning_case_close"),
]

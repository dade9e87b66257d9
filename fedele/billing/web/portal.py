"""The customer portal's billing pages under /billing/my/: subscriptions with usage so far, plan or
quantity changes with a proration preview, cancellation at period end, invoices with PDF and payment
instructions, and the account statement.

Every page is for a logged-in portal customer and shows only their own billing account: another
customer's subscription or invoice id is a 404, exactly like an id that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import stripe as stripe_sdk
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fedele.accounts.facade import actor_for
from fedele.billing.contracts import InvoiceKind, InvoiceStatus, SubscriptionStatus
from fedele.billing.documents import seller
from fedele.billing.gateways import base as gateways
from fedele.billing.gateways.stripe import StripeGateway
from fedele.billing.gateways.stripe import setting as stripe_setting
from fedele.billing.models import BillingAccount, Invoice, PlanVersion, Subscription
from fedele.billing.selectors.catalog import sellable_versions
from fedele.billing.selectors.statements import account_statement, statement_csv
from fedele.billing.selectors.usage import current_usage, estimated_total
from fedele.billing.services import subscriptions as subscription_services
from fedele.billing.services.invoicing import invoice_pdf
from fedele.billing.services.subscription_rules import period_price
from fedele.customers.facade import CustomerSummary, customer_for_user
from fedele.shared import clock
from fedele.shared.errors import ApplicationError, PermissionDenied
from fedele.shared.money import Money
from fedele.shared.pagination import paginate
from fedele.shared.web import dashboard

PAGE_SIZE = 20
LIVE = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)
VISIBLE_INVOICE_STATUSES = (InvoiceStatus.FINALISED, InvoiceStatus.PAID, InvoiceStatus.VOID)


@dataclass(frozen=True, slots=True)
class Portal:
    customer: CustomerSummary
    account: BillingAccount | None


def portal_for(user: Any) -> Portal:
    """The portal customer behind a user, or 403 for anyone else (staff use the clerk pages)."""
    actor = actor_for(user)
    customer = customer_for_user(actor.user_id) if actor.is_portal_customer else None
    if customer is None:
        raise PermissionDenied(_("These pages are for customers with a portal login."))
    account = BillingAccount.objects.filter(customer_id=customer.customer_id).first()
    return Portal(customer, account)


def _portal(request: HttpRequest) -> Portal:
    return portal_for(request.user)


def language() -> str:
    return (get_language() or "it")[:2]


def money(amount: Decimal | Money, currency: str = "EUR") -> str:
    value = amount if isinstance(amount, Money) else Money(amount, currency)
    return value.format(language())


def own_subscription(portal: Portal, public_id: Any) -> Subscription:
    if portal.account is None:
        raise Http404
    found = (
        Subscription.objects.filter(account=portal.account, public_id=public_id)
        .select_related("plan", "plan_version", "account")
        .prefetch_related("plan_version__charges", "addons__plan_version__charges")
        .first()
    )
    if found is None:
        raise Http404
    return found


def own_invoice(portal: Portal, public_id: Any) -> Invoice:
    if portal.account is None:
        raise Http404
    found = (
        Invoice.objects.filter(
            account=portal.account, public_id=public_id, status__in=VISIBLE_INVOICE_STATUSES
        )
        .select_related("credit_note_for")
        .first()
    )
    if found is None:
        raise Http404
    return found


# subscriptions -------------------------------------------------------------------------------------


def _usage_rows(subscription: Subscription) -> tuple[list[dict[str, Any]], str]:
    rows = current_usage(subscription)
    currency = subscription.plan_version.currency
    largest = max((row.estimated_amount.amount for row in rows), default=Decimal(0))
    shaped = [
        {
            "code": row.metric_code,
            "name": row.metric_name,
            "value": row.value,
            "unit": row.unit,
            "amount": money(row.estimated_amount),
            "share": int(row.estimated_amount.amount * 100 / largest) if largest > 0 else 0,
        }
        for row in rows
    ]
    return shaped, money(estimated_total(rows, currency)) if rows else ""


def _subscription_card(subscription: Subscription, today: date) -> dict[str, Any]:
    currency = subscription.plan_version.currency
    start, end = subscription.current_period_start, subscription.current_period_end
    elapsed = min(max((today - start).days, 0), (end - start).days)
    usage, usage_total = _usage_rows(subscription) if subscription.status in LIVE else ([], "")
    pending = subscription.pending_change or {}
    pending_plan = ""
    if pending.get("plan_version_id"):
        version = PlanVersion.objects.select_related("plan").filter(pk=pending["plan_version_id"]).first()
        pending_plan = version.plan.name if version else ""
    return {
        "subscription": subscription,
        "price": money(period_price(subscription.plan_version, subscription.quantity)),
        "period_percent": int(elapsed * 100 / max((end - start).days, 1)),
        "usage": usage,
        "usage_total": usage_total,
        "pending_plan": pending_plan,
        "pending_quantity": pending.get("quantity", ""),
        "can_change": subscription.status in LIVE and not subscription.cancel_at_period_end,
        "can_cancel": subscription.status in LIVE and not subscription.cancel_at_period_end,
        "currency": currency,
    }


@login_required
@require_GET
def portal_home(request: HttpRequest) -> HttpResponse:
    portal = _portal(request)
    today = clock.today()
    cards: list[dict[str, Any]] = []
    open_due = Decimal(0)
    if portal.account is not None:
        subscriptions = (
            Subscription.objects.filter(account=portal.account)
            .select_related("plan", "plan_version")
            .prefetch_related("plan_version__charges", "addons__plan_version__charges")
            .order_by("status", "-id")
        )
        cards = [_subscription_card(subscription, today) for subscription in subscriptions]
        open_due = sum(
            (
                invoice.amount_due
                for invoice in Invoice.objects.filter(
                    account=portal.account, kind=InvoiceKind.INVOICE, status=InvoiceStatus.FINALISED
                ).only("total", "amount_paid", "amount_credited")
            ),
            Decimal(0),
        )
    currency = portal.account.currency if portal.account else "EUR"
    context = {
        "portal": portal,
        "cards": cards,
        "open_due": money(open_due, currency),
        "has_open_due": open_due > 0,
        "tab": "subscriptions",
    }
    return render(request, "billing/portal/home.html", context)


def plan_choices(subscription: Subscription) -> list[PlanVersion]:
    """The latest published version of each active plan in the subscription's currency and billing
    period (the current version stays selectable, for a quantity-only change)."""
    latest: dict[int, PlanVersion] = {}
    for version in sellable_versions(currency=subscription.plan_version.currency).filter(
        plan__billing_period=subscription.billing_period, plan__is_addon=False
    ):
        latest.setdefault(version.plan_id, version)
    latest[subscription.plan_id] = latest.get(subscription.plan_id) or subscription.plan_version
    if subscription.plan_id in latest and subscription.plan_version_id != latest[subscription.plan_id].pk:
        # Keeping one's plan means keeping one's price book, not moving to a newer version.
        latest[subscription.plan_id] = subscription.plan_version
    return sorted(latest.values(), key=lambda version: (version.plan.name, version.pk))


@dataclass(frozen=True, slots=True)
class ChangeRequest:
    version: PlanVersion
    quantity: Decimal
    at: str


def _change_request(
    request: HttpRequest, subscription: Subscription
) -> tuple[ChangeRequest | None, dict[str, str]]:
    errors: dict[str, str] = {}
    choices = {str(version.public_id): version for version in plan_choices(subscription)}
    version = choices.get(request.POST.get("plan", ""))
    if version is None:
        errors["plan"] = _("Choose one of the plans listed.")
    try:
        quantity = Decimal(request.POST.get("quantity", "").strip().replace(",", "."))
        if not quantity.is_finite() or quantity <= 0 or quantity > 100_000:
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        errors["quantity"] = _("Enter a quantity between 1 and 100000.")
        quantity = Decimal(0)
    at = request.POST.get("at", "now")
    if at not in ("now", "period_end"):
        errors["at"] = _("Choose when the change applies.")
    if errors or version is None:
        return None, errors
    return ChangeRequest(version, quantity, at), errors


def _change_context(subscription: Subscription, **extra: Any) -> dict[str, Any]:
    return {
        "subscription": subscription,
        "choices": [
            {"version": version, "price": money(period_price(version, Decimal(1)))}
            for version in plan_choices(subscription)
        ],
        "current_price": money(period_price(subscription.plan_version, subscription.quantity)),
        "tab": "subscriptions",
        **extra,
    }


def _preview_context(subscription: Subscription, change: ChangeRequest) -> dict[str, Any]:
    preview = subscription_services.subscription_preview_change(
        subscription=subscription, plan_version=change.version, quantity=change.quantity, at=change.at
    )
    return {
        "preview": preview,
        "change": change,
        "credit": money(preview.credit),
        "charge": money(preview.charge),
        "net": money(abs(preview.net)),
        "net_is_credit": preview.net.amount < 0,
        "current_recurring": money(preview.current_recurring),
        "new_recurring": money(preview.new_recurring),
    }


@login_required
@require_http_methods(["GET", "POST"])
def portal_change(request: HttpRequest, public_id: Any) -> HttpResponse:
    portal = _portal(request)
    subscription = own_subscription(portal, public_id)
    if request.method == "GET":
        return render(request, "billing/portal/change.html", _change_context(subscription))
    change, errors = _change_request(request, subscription)
    if change is not None:
        try:
            subscription_services.subscription_change(
                subscription=subscription,
                plan_version=change.version,
                quantity=change.quantity,
                at=change.at,
                actor_id=request.user.pk,
            )
        except ApplicationError as failure:
            errors = {"form": _translated(failure)}
        else:
            if change.at == "now":
                messages.success(request, _("Your subscription has been changed."))
            else:
                messages.success(request, _("Your change is scheduled for the end of the current period."))
            return redirect(reverse("billing:portal_home"))
    context = _change_context(subscription, errors=errors, posted=request.POST)
    return render(request, "billing/portal/change.html", context, status=422)


@login_required
@require_POST
def portal_change_preview(request: HttpRequest, public_id: Any) -> HttpResponse:
    """The htmx partial: what the chosen change costs today, before the customer confirms it."""
    portal = _portal(request)
    subscription = own_subscription(portal, public_id)
    change, errors = _change_request(request, subscription)
    context: dict[str, Any] = {"subscription": subscription, "errors": errors}
    if change is not None:
        try:
            context.update(_preview_context(subscription, change))
        except ApplicationError as failure:
            context["errors"] = {"form": _translated(failure)}
    status = 422 if context["errors"] else 200
    return render(request, "billing/portal/_preview.html", context, status=status)


def _translated(failure: ApplicationError) -> str:
    known = {
        "no_change": _("The change leaves the plan and the quantity as they are."),
        "cancellation_scheduled": _("The subscription is cancelled at the period end."),
        "billing_period_mismatch": _("A change must keep the billing period."),
        "currency_mismatch": _("The new plan is priced in another currency."),
    }
    return known.get(failure.code, failure.message)


@login_required
@require_http_methods(["GET", "POST"])
def portal_cancel(request: HttpRequest, public_id: Any) -> HttpResponse:
    portal = _portal(request)
    subscription = own_subscription(portal, public_id)
    error = ""
    if request.method == "POST":
        reason = request.POST.get("reason", "").strip()[:300]
        try:
            subscription_services.subscription_cancel(
                subscription=subscription, at="period_end", reason=reason, actor_id=request.user.pk
            )
        except ApplicationError as failure:
            error = _translated(failure)
        else:
            messages.success(
                request,
                _("Your subscription will end on %(day)s. You keep the service until then.")
                % {"day": subscription.current_period_end.strftime("%d/%m/%Y")},
            )
            return redirect(reverse("billing:portal_home"))
    context = {"subscription": subscription, "error": error, "tab": "subscriptions"}
    return render(request, "billing/portal/cancel.html", context, status=409 if error else 200)


# invoices and statement ----------------------------------------------------------------------------


def _invoice_row(invoice: Invoice) -> dict[str, Any]:
    return {
        "invoice": invoice,
        "total": money(invoice.total, invoice.currency),
        "due": money(max(invoice.amount_due, Decimal(0)), invoice.currency),
        "is_open": invoice.kind == InvoiceKind.INVOICE
        and invoice.status == InvoiceStatus.FINALISED
        and invoice.amount_due > 0,
        "is_overdue": invoice.status == InvoiceStatus.FINALISED
        and invoice.due_date is not None
        and invoice.due_date < clock.today()
        and invoice.amount_due > 0,
    }


@login_required
@require_GET
def portal_invoices(request: HttpRequest) -> HttpResponse:
    portal = _portal(request)
    rows: list[dict[str, Any]] = []
    next_cursor = None
    if portal.account is not None:
        page = paginate(
            Invoice.objects.filter(account=portal.account, status__in=VISIBLE_INVOICE_STATUSES),
            ordering="-created_at",
            allowed={"created_at": "created_at"},
            cursor=request.GET.get("cursor") or None,
            limit=PAGE_SIZE,
        )
        rows = [_invoice_row(invoice) for invoice in page.items]
        next_cursor = page.next_cursor
    return render(
        request,
        "billing/portal/invoices.html",
        {"portal": portal, "rows": rows, "next_cursor": next_cursor, "tab": "invoices"},
    )


@login_required
@require_GET
def portal_invoice(request: HttpRequest, public_id: Any) -> HttpResponse:
    portal = _portal(request)
    invoice = own_invoice(portal, public_id)
    lines = [
        {"line": line, "amount": money(line.amount, invoice.currency)}
        for line in invoice.lines.all().order_by("position", "id")
    ]
    context = {
        "portal": portal,
        "row": _invoice_row(invoice),
        "can_pay_by_card": card_payments_enabled()
        and invoice.status == "finalised"
        and invoice.amount_due > 0,
        "lines": lines,
        "subtotal": money(invoice.subtotal, invoice.currency),
        "tax_total": money(invoice.tax_total, invoice.currency),
        "seller": seller(),
        "tab": "invoices",
    }
    return render(request, "billing/portal/invoice.html", context)


def card_payments_enabled() -> bool:
    return bool(stripe_setting("STRIPE_API_KEY"))


@login_required
@require_POST
def portal_invoice_pay_card(request: HttpRequest, public_id: Any) -> HttpResponse:
    """Off to Stripe Checkout for the amount due; the webhook settles the invoice when it is paid."""
    portal = _portal(request)
    invoice = own_invoice(portal, public_id)
    back = request.build_absolute_uri(reverse("billing:portal_invoice", args=[invoice.public_id]))
    if not card_payments_enabled() or invoice.status != "finalised" or invoice.amount_due <= 0:
        messages.error(request, _("This invoice cannot be paid by card."))
        return redirect(back)
    try:
        gateway = gateways.get("stripe")
        assert isinstance(gateway, StripeGateway)
        url = gateway.checkout_url(
            invoice_public_id=str(invoice.public_id),
            invoice_number=invoice.number or "",
            customer_public_id=str(invoice.customer_snapshot.get("public_id", "")),
            amount=invoice.amount_due,
            currency=invoice.currency,
            customer_email=str(invoice.customer_snapshot.get("email", "")),
            language=language(),
            success_url=f"{back}?paid=1",
            cancel_url=back,
        )
    except (ApplicationError, stripe_sdk.StripeError):
        messages.error(request, _("The card payment page is not available now; please try again later."))
        return redirect(back)
    return redirect(url)


@login_required
@require_GET
def portal_invoice_pdf(request: HttpRequest, public_id: Any) -> HttpResponse:
    portal = _portal(request)
    invoice = own_invoice(portal, public_id)
    response = HttpResponse(invoice_pdf(invoice, language()), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{invoice.number or invoice.public_id}.pdf"'
    return response


@login_required
@require_GET
def portal_statement(request: HttpRequest) -> HttpResponse:
    portal = _portal(request)
    statement = account_statement(portal.account) if portal.account is not None else None
    if statement is not None and request.GET.get("format") == "csv":
        response = HttpResponse(statement_csv(statement), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="statement.csv"'
        return response
    currency = portal.account.currency if portal.account else "EUR"
    entries = [
        {
            "entry": entry,
            "debit": money(entry.debit, currency) if entry.debit else "",
            "credit": money(entry.credit, currency) if entry.credit else "",
            "balance": money(entry.balance, currency),
        }
        for entry in (statement.entries if statement else [])
    ]
    context = {
        "portal": portal,
        "entries": entries,
        "balance": money(statement.balance, currency) if statement else money(Decimal(0), currency),
        "credit_balance": money(portal.account.credit_balance, currency) if portal.account else "",
        "tab": "statement",
    }
    return render(request, "billing/portal/statement.html", context)


# home dashboard ------------------------------------------------------------------------------------


def portal_widget(request: HttpRequest) -> dashboard.DashboardWidget | None:
    """A portal customer's home: live subscriptions, what is due, and links to the billing pages."""
    if not request.user.is_authenticated or not actor_for(request.user).is_portal_customer:
        return None
    customer = customer_for_user(actor_for(request.user).user_id)
    account = BillingAccount.objects.filter(customer_id=customer.customer_id).first() if customer else None
    if account is None:
        return None
    live = list(
        Subscription.objects.filter(account=account, status__in=LIVE)
        .select_related("plan")
        .order_by("-id")[:5]
    )
    due = sum(
        (
            invoice.amount_due
            for invoice in Invoice.objects.filter(
                account=account, kind=InvoiceKind.INVOICE, status=InvoiceStatus.FINALISED
            ).only("total", "amount_paid", "amount_credited")
        ),
        Decimal(0),
    )
    next_dates = [sub.next_billing_on for sub in live if sub.next_billing_on]
    return dashboard.DashboardWidget(
        "billing/portal/_widget.html",
        {
            "subscriptions": live,
            "due": money(due, account.currency),
            "has_due": due > 0,
            "next_invoice_on": min(next_dates) if next_dates else None,
        },
        order=6,
    )


urlpatterns: list[URLPattern] = [
    path("my/", portal_home, name="portal_home"),
    path("my/subscriptions/<uuid:public_id>/change/", portal_change, name="portal_change"),
    path(
        "my/subscriptions/<uuid:public_id>/change/preview/",
        portal_change_preview,
        name="portal_change_preview",
    ),
    path("my/subscriptions/<uuid:public_id>/cancel/", portal_cancel, name="portal_cancel"),
    path("my/invoices/", portal_invoices, name="portal_invoices"),
    path("my/invoices/<uuid:public_id>/", portal_invoice, name="portal_invoice"),
    path("my/invoices/<uuid:public_id>/pdf/", portal_invoice_pdf, name="portal_invoice_pdf"),
    path("my/invoices/<uuid:public_id>/pay/", portal_invoice_pay_card, name="portal_invoice_pay_card"),
    path("my/statement/", portal_statement, name="portal_statement"),
]

"""The only surface other modules may import from billing. Returns contracts, not ORM objects.

Loyalty, support, the contact center's screen pop and field service use it to read a customer's
position and to put one-off charges or credits on the customer's next invoice.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Count, F, Max, Min, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy

from fedele.billing.contracts import (
    LIVE_SUBSCRIPTION_STATUSES,
    AccountBalance,
    ChargeReceipt,
    CustomerActivity,
    InvoiceKind,
    InvoiceStatus,
    InvoiceSummary,
    SubscriptionStatus,
    SubscriptionSummary,
)
from fedele.billing.models import BillingAccount, Invoice, OneOffCharge, Subscription
from fedele.billing.services.charges import one_off_charge_create
from fedele.billing.snapshots import monthly_recurring_revenue
from fedele.customers.facade import customer_summary
from fedele.shared import clock
from fedele.shared.errors import ValidationFailed
from fedele.shared.money import Money

__all__ = [
    "AccountBalance",
    "ChargeReceipt",
    "CustomerActivity",
    "InvoiceSummary",
    "SubscriptionSummary",
    "active_subscriptions",
    "charge_customer",
    "customer_activity",
    "customer_balance",
    "latest_invoice_pdf",
    "recent_invoices",
]

OPEN_STATUSES = (InvoiceStatus.FINALISED,)
# The words the billing pages use for a subscription's status (same catalogue entries).
SUBSCRIPTION_STATUS_LABELS: dict[str, Any] = {
    SubscriptionStatus.TRIALING: gettext_lazy("trialing"),
    SubscriptionStatus.ACTIVE: gettext_lazy("active"),
    SubscriptionStatus.PAST_DUE: gettext_lazy("past due"),
    SubscriptionStatus.PAUSED: gettext_lazy("paused"),
    SubscriptionStatus.CANCELLED: gettext_lazy("cancelled"),
}


def _account_for(customer_public_id: str) -> BillingAccount | None:
    summary = customer_summary(str(customer_public_id))
    if summary is None:
        return None
    return BillingAccount.objects.filter(customer_id=summary.customer_id).first()


def customer_balance(customer_public_id: str) -> AccountBalance | None:
    """None when the customer does not exist or has never been billed."""
    account = _account_for(customer_public_id)
    if account is None:
        return None
    today = clock.today()
    open_invoices = Invoice.objects.filter(account=account, kind="invoice", status__in=OPEN_STATUSES)
    due = F("total") - F("amount_paid") - F("amount_credited")
    totals = open_invoices.aggregate(
        open_amount=Sum(due),
        overdue_amount=Sum(due, filter=Q(due_date__lt=today)),
    )
    return AccountBalance(
        customer_id=str(customer_public_id),
        currency=account.currency,
        open_amount=Money.of(totals["open_amount"] or 0, account.currency).amount,
        overdue_amount=Money.of(totals["overdue_amount"] or 0, account.currency).amount,
        credit_balance=account.credit_balance,
        open_invoices=open_invoices.count(),
        is_suspended=account.is_suspended,
    )


def active_subscriptions(customer_public_id: str) -> list[SubscriptionSummary]:
    """Trialing, active, past-due and paused subscriptions, newest first."""
    account = _account_for(customer_public_id)
    if account is None:
        return []
    statuses = [*LIVE_SUBSCRIPTION_STATUSES, SubscriptionStatus.PAUSED]
    rows = (
        Subscription.objects.filter(account=account, status__in=statuses)
        .select_related("plan", "plan_version", "coupon")
        .prefetch_related("plan_version__charges", "addons__plan_version__charges")
        .order_by("-id")
    )
    return [
        SubscriptionSummary(
            subscription_id=str(row.public_id),
            number=row.number,
            plan_code=row.plan.code,
            plan_name=row.plan.name,
            status=row.status,
            quantity=row.quantity,
            currency=row.plan_version.currency,
            mrr=monthly_recurring_revenue(row, row.plan_version.charges.all()),
            current_period_start=row.current_period_start,
            current_period_end=row.current_period_end,
            next_billing_on=row.next_billing_on,
            cancel_at_period_end=row.cancel_at_period_end,
            status_label=str(SUBSCRIPTION_STATUS_LABELS.get(row.status, row.status)),
        )
        for row in rows
    ]


def recent_invoices(customer_public_id: str, *, limit: int = 10) -> list[InvoiceSummary]:
    """Finalised, paid and void invoices and credit notes (never drafts), newest first."""
    account = _account_for(customer_public_id)
    if account is None:
        return []
    rows = Invoice.objects.filter(account=account).exclude(status=InvoiceStatus.DRAFT).order_by("-id")
    return [
        InvoiceSummary(
            invoice_id=str(row.public_id),
            number=row.number or "",
            kind=row.kind,
            status=row.status,
            currency=row.currency,
            total=row.total,
            amount_due=row.amount_due if row.status == InvoiceStatus.FINALISED else Decimal(0),
            issue_date=row.issue_date,
            due_date=row.due_date,
        )
        for row in rows[: max(1, min(limit, 100))]
    ]


def latest_invoice_pdf(customer_public_id: str, *, language: str = "it") -> tuple[str, bytes] | None:
    """(file name, PDF) of the customer's most recent finalised or paid invoice: the contact center's
    document-on-demand sends it. None when there is none."""
    account = _account_for(customer_public_id)
    if account is None:
        return None
    invoice = (
        Invoice.objects.filter(
            account=account,
            kind=InvoiceKind.INVOICE,
            status__in=[InvoiceStatus.FINALISED, InvoiceStatus.PAID],
        )
        .order_by("-issue_date", "-id")
        .first()
    )
    if invoice is None:
        return None
    from fedele.billing.services.invoicing import invoice_pdf

    name = (invoice.number or str(invoice.public_id)).replace("/", "-")
    return f"{name}.pdf", invoice_pdf(invoice, language)


def charge_customer(
    *,
    customer_public_id: str,
    description: str,
    amount: Decimal,
    currency: str = "EUR",
    idempotency_key: str,
    source: str,
    vat_rate: Decimal = Decimal("22"),
    vat_nature: str = "",
) -> ChargeReceipt:
    """Put a one-off charge (positive) or credit (negative, e.g. a loyalty reward) on the customer's
    next invoice. The same ``idempotency_key`` always returns the first charge and creates nothing,
    so a retried event handler or request never charges twice. ``amount`` is net of VAT."""
    charge, created = one_off_charge_create(
        customer_public_id=customer_public_id,
        description=description,
        amount=amount,
        currency=currency,
        idempotency_key=idempotency_key,
        source=source,
        vat_rate=vat_rate,
        vat_nature=vat_nature,
    )
    return _receipt(charge, customer_public_id, created=created)


def _receipt(charge: OneOffCharge, customer_public_id: str, *, created: bool) -> ChargeReceipt:
    return ChargeReceipt(
        charge_id=str(charge.public_id),
        customer_id=str(customer_public_id),
        description=charge.description,
        amount=charge.unit_amount * charge.quantity,
        currency=charge.currency,
        created=created,
    )


def customer_activity(*, start: date, end: date) -> list[CustomerActivity]:
    """Per customer, what they paid and how their subscriptions stood over ``start``…``end`` (days in
    the business time zone, both included): one row for every customer with an EUR invoice paid in
    the window or a subscription live on at least one of its days, sorted by customer id.

    Two aggregate queries whatever the number of customers (loyalty's programme evaluation compares
    members with non-members with it). A subscription is live on day ``d`` when it started on or
    before ``d`` and has not ended: no ``ended_on`` (and not cancelled), or ``ended_on`` after ``d``
    (a subscription cancelled today ends today)."""
    if not isinstance(start, date) or not isinstance(end, date) or end < start:
        raise ValidationFailed(
            "The window must end on or after its start.",
            code="invalid_window",
            fields={"end": "must be on or after the start."},
        )
    business_tz = timezone.get_default_timezone()
    window_start = datetime.combine(start, time.min, tzinfo=business_tz)
    window_end = datetime.combine(end + timedelta(days=1), time.min, tzinfo=business_tz)
    paid = (
        Invoice.objects.filter(
            kind=InvoiceKind.INVOICE, currency="EUR", paid_at__gte=window_start, paid_at__lt=window_end
        )
        .values("account__customer__public_id")
        .annotate(
            count=Count("id"),
            net=Sum("subtotal"),
            gross=Sum("total"),
            first=Min("paid_at"),
            last=Max("paid_at"),
        )
        .order_by()
    )
    not_ended = Q(ended_on__isnull=True) & ~Q(status=SubscriptionStatus.CANCELLED)
    live_at_end = not_ended | Q(ended_on__gt=end)
    subscriptions = (
        Subscription.objects.filter(Q(started_on__lte=end) & (not_ended | Q(ended_on__gte=start)))
        .values("account__customer__public_id")
        .annotate(
            in_window=Count("id"),
            at_end=Count("id", filter=live_at_end),
            last_ended=Max("ended_on", filter=Q(ended_on__gte=start, ended_on__lte=end)),
        )
        .order_by()
    )
    zero = _cents(None)
    payments: dict[str, tuple[int, Decimal, Decimal, date | None, date | None]] = {
        str(row["account__customer__public_id"]): (
            row["count"],
            _cents(row["net"]),
            _cents(row["gross"]),
            row["first"].astimezone(business_tz).date(),
            row["last"].astimezone(business_tz).date(),
        )
        for row in paid
    }
    lives: dict[str, tuple[int, int, date | None]] = {
        str(row["account__customer__public_id"]): (
            row["in_window"],
            row["at_end"],
            row["last_ended"] if row["at_end"] == 0 else None,
        )
        for row in subscriptions
    }
    return [
        CustomerActivity(
            customer_id=customer_id,
            invoices_paid=count,
            amount_paid_net=net,
            amount_paid_gross=gross,
            first_payment_on=first,
            last_payment_on=last,
            subscriptions_in_window=in_window,
            active_subscriptions_at_end=at_end,
            cancelled_on=cancelled_on,
        )
        for customer_id in sorted(payments.keys() | lives.keys())
        for count, net, gross, first, last in [payments.get(customer_id, (0, zero, zero, None, None))]
        for in_window, at_end, cancelled_on in [lives.get(customer_id, (0, 0, None))]
    ]


def _cents(value: Decimal | None) -> Decimal:
    return (value or Decimal(0)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

"""The only surface other modules may import from billing. Returns contracts, not ORM objects.

Loyalty, support, the contact center's screen pop and field service use it to read a customer's
position and to put one-off charges or credits on the customer's next invoice.
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import F, Q, Sum

from fedele.billing.contracts import (
    LIVE_SUBSCRIPTION_STATUSES,
    AccountBalance,
    ChargeReceipt,
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
from fedele.shared.money import Money

__all__ = [
    "AccountBalance",
    "ChargeReceipt",
    "InvoiceSummary",
    "SubscriptionSummary",
    "active_subscriptions",
    "charge_customer",
    "customer_balance",
    "recent_invoices",
]

OPEN_STATUSES = (InvoiceStatus.FINALISED,)


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

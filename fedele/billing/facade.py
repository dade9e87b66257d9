"""The only surface other modules may import from billing. Returns contracts, not ORM objects.

Loyalty, support, the contact center's screen pop and field service use it to read a customer's
position and to put one-off charges or credits on the customer's next invoice.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum

from fedele.billing.contracts import (
    LIVE_SUBSCRIPTION_STATUSES,
    AccountBalance,
    ChargeReceipt,
    InvoiceLineKind,
    InvoiceStatus,
    InvoiceSummary,
    SubscriptionStatus,
    SubscriptionSummary,
)
from fedele.billing.models import BillingAccount, Invoice, OneOffCharge, Subscription
from fedele.billing.snapshots import monthly_recurring_revenue
from fedele.customers.facade import customer_summary
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, NotFound, ValidationFailed
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

MAX_CHARGE = Decimal("1000000")
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


def _validated_charge(description: str, amount: object, currency: str, idempotency_key: str) -> Decimal:
    errors: dict[str, str] = {}
    if not description.strip():
        errors["description"] = "is required."
    elif len(description) > 500:
        errors["description"] = "must be at most 500 characters."
    if not idempotency_key.strip() or len(idempotency_key) > 120:
        errors["idempotency_key"] = "is required (1-120 characters)."
    value = Decimal(0)
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int, str)):
        errors["amount"] = "must be a Decimal amount."
    else:
        try:
            value = Decimal(amount)
        except (InvalidOperation, ValueError):
            errors["amount"] = f"'{amount}' is not an amount."
        else:
            if not value.is_finite() or value == 0:
                errors["amount"] = "must be a non-zero finite amount."
            elif abs(value) > MAX_CHARGE:
                errors["amount"] = f"must not exceed {MAX_CHARGE} in absolute value."
            elif value != Money.of(value, currency if len(currency) == 3 else "EUR").amount:
                errors["amount"] = "must not have more decimals than the currency allows."
    if errors:
        raise ValidationFailed("The charge is not valid.", code="invalid_charge", fields=errors)
    return value


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
    value = _validated_charge(description, amount, currency, idempotency_key)
    key = f"{source}:{idempotency_key}"
    summary = customer_summary(str(customer_public_id))
    if summary is None:
        raise NotFound(f"No customer {customer_public_id}.", code="customer_not_found")
    existing = OneOffCharge.objects.filter(idempotency_key=key).select_related("account").first()
    if existing is not None:
        return _replayed(existing, summary.customer_id, customer_public_id)
    account = BillingAccount.objects.filter(customer_id=summary.customer_id).first()
    if account is None:
        raise Conflict(
            "The customer has no billing account yet; create a subscription or an invoice first.",
            code="no_billing_account",
        )
    if account.currency != currency.upper():
        raise ValidationFailed(
            f"The customer is billed in {account.currency}, not {currency}.",
            code="currency_mismatch",
            fields={"currency": f"must be {account.currency}."},
        )
    kind = InvoiceLineKind.ONE_TIME if value > 0 else InvoiceLineKind.DISCOUNT
    try:
        with transaction.atomic():
            charge = OneOffCharge.objects.create(
                account=account,
                description=description.strip(),
                quantity=Decimal(1),
                unit_amount=value,
                currency=account.currency,
                kind=kind,
                vat_rate=vat_rate,
                vat_nature=vat_nature,
                idempotency_key=key,
                source=source[:64],
                created_at=clock.now(),
            )
            audit.record(
                action="billing.one_off_charge_created",
                object_type="billing.one_off_charge",
                object_id=str(charge.public_id),
                after={
                    "description": charge.description,
                    "amount": value,
                    "currency": charge.currency,
                    "source": source,
                },
            )
    except IntegrityError:
        # A concurrent call with the same key won the race: return its charge.
        existing = OneOffCharge.objects.select_related("account").get(idempotency_key=key)
        return _replayed(existing, summary.customer_id, customer_public_id)
    return _receipt(charge, customer_public_id, created=True)


def _replayed(charge: OneOffCharge, customer_id: int, customer_public_id: str) -> ChargeReceipt:
    if charge.account.customer_id != customer_id:
        raise Conflict(
            "This idempotency key was already used for another customer's charge.",
            code="idempotency_key_reused",
        )
    return _receipt(charge, customer_public_id, created=False)


def _receipt(charge: OneOffCharge, customer_public_id: str, *, created: bool) -> ChargeReceipt:
    return ChargeReceipt(
        charge_id=str(charge.public_id),
        customer_id=str(customer_public_id),
        description=charge.description,
        amount=charge.unit_amount * charge.quantity,
        currency=charge.currency,
        created=created,
    )

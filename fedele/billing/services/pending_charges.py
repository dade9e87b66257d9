"""One-off charges of customers the billing run does not visit.

The billing run puts an account's pending one-off charges (field-service parts, penalties, proration)
on that account's next subscription invoice. A customer with no subscription being billed (never
subscribed, or every subscription ended) would wait for ever, so the daily job gives such accounts an
invoice of their own for what is pending. Credits alone (a net amount of zero or less) wait for a
future charge instead of becoming a credit note nobody asked for.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db import transaction

from fedele.billing.contracts import LIVE_SUBSCRIPTION_STATUSES, SubscriptionStatus
from fedele.billing.models import BillingAccount, Invoice, OneOffCharge, Subscription
from fedele.billing.services.billing_plan import business_midnight
from fedele.billing.services.invoicing import invoice_create_draft, invoice_finalise, invoice_line_add

# Statuses the billing run still visits when the subscription has a next billing date.
_RUN_VISITS = [*LIVE_SUBSCRIPTION_STATUSES, SubscriptionStatus.CANCELLED]


def accounts_with_orphan_charges(as_of: date) -> list[int]:
    waiting = set(
        OneOffCharge.objects.filter(invoice__isnull=True, created_at__lt=business_midnight(as_of))
        .values_list("account_id", flat=True)
        .distinct()
    )
    visited = set(
        Subscription.objects.filter(
            account_id__in=waiting, status__in=_RUN_VISITS, next_billing_on__isnull=False
        ).values_list("account_id", flat=True)
    )
    return sorted(waiting - visited)


def pending_charges_invoice(*, as_of: date, actor_id: int | None = None) -> list[Invoice]:
    """Invoice, account by account, the one-off charges created before ``as_of`` of accounts that
    no subscription invoice will pick up. Each account is one transaction; safe to run twice."""
    issued: list[Invoice] = []
    for account_id in accounts_with_orphan_charges(as_of):
        invoice = _invoice_account(account_id, as_of, actor_id)
        if invoice is not None:
            issued.append(invoice)
    return issued


def _invoice_account(account_id: int, as_of: date, actor_id: int | None) -> Invoice | None:
    with transaction.atomic():
        account = BillingAccount.objects.select_for_update().get(pk=account_id)
        charges = list(
            OneOffCharge.objects.select_for_update(of=("self",))
            .filter(
                account=account,
                invoice__isnull=True,
                currency=account.currency,
                created_at__lt=business_midnight(as_of),
            )
            .select_related("product")
            .order_by("pk")
        )
        if sum((charge.quantity * charge.unit_amount for charge in charges), Decimal(0)) <= 0:
            return None
        invoice = invoice_create_draft(account=account, actor_id=actor_id)
        for charge in charges:
            invoice_line_add(
                invoice=invoice,
                description=charge.description,
                quantity=charge.quantity,
                unit_amount=charge.unit_amount,
                vat_rate=None if charge.product is not None else charge.vat_rate,
                vat_nature="" if charge.product is not None else charge.vat_nature,
                product=charge.product,
                kind=charge.kind,
                actor_id=actor_id,
            )
        OneOffCharge.objects.filter(pk__in=[charge.pk for charge in charges]).update(invoice=invoice)
        return invoice_finalise(invoice=invoice, actor_id=actor_id)

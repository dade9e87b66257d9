"""Payment reads scoped to the caller: billing staff see everything, a portal customer only their own
account; anything else is not found."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from django.db.models import QuerySet

from fedele.accounts.facade import Actor
from fedele.billing.models import (
    BankStatementImport,
    BankStatementLine,
    BillingAccount,
    Payment,
    PaymentMethod,
    Refund,
    SepaBatch,
    SepaMandate,
)
from fedele.customers.facade import customer_for_user
from fedele.shared.errors import NotFound, PermissionDenied

ORDERINGS = {"created_at": "created_at", "received_on": "received_on", "amount": "amount"}


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(str(value))
    except ValueError:
        return None


def _own_customer_id(actor: Actor) -> int | None:
    customer = customer_for_user(actor.user_id)
    return customer.customer_id if customer else None


def require_staff(actor: Actor, permission: str = "billing.view_billing") -> None:
    if not (actor.is_internal and actor.can(permission)):
        raise PermissionDenied("You do not have permission for billing payments.")


def account_queryset_for(actor: Actor) -> QuerySet[BillingAccount]:
    if actor.is_internal and actor.can("billing.view_billing"):
        return BillingAccount.objects.all()
    if actor.is_portal_customer:
        customer_id = _own_customer_id(actor)
        return (
            BillingAccount.objects.filter(customer_id=customer_id)
            if customer_id
            else BillingAccount.objects.none()
        )
    raise PermissionDenied("You do not have permission to see billing accounts.")


def account_for_customer(*, actor: Actor, customer_public_id: str) -> BillingAccount:
    """The billing account of a customer the caller may see, else 404."""
    customer = _uuid(customer_public_id)
    account = account_queryset_for(actor).filter(customer__public_id=customer).first() if customer else None
    if account is None:
        raise NotFound("Billing account not found.", code="account_not_found")
    return account


@dataclass(frozen=True, slots=True)
class PaymentFilters:
    customer: str = ""
    status: str = ""
    gateway: str = ""


def payment_list(*, actor: Actor, filters: PaymentFilters | None = None) -> QuerySet[Payment]:
    filters = filters or PaymentFilters()
    queryset = Payment.objects.select_related("invoice", "account").filter(
        account__in=account_queryset_for(actor)
    )
    if filters.customer:
        customer = _uuid(filters.customer)
        if customer is None:
            return queryset.none()
        queryset = queryset.filter(account__customer__public_id=customer)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.gateway:
        queryset = queryset.filter(gateway=filters.gateway)
    return queryset


def payment_get(*, actor: Actor, public_id: str) -> Payment:
    key = _uuid(public_id)
    payment = payment_list(actor=actor).filter(public_id=key).first() if key else None
    if payment is None:
        raise NotFound("Payment not found.", code="payment_not_found")
    return payment


def refunds_of(payment: Payment) -> QuerySet[Refund]:
    return Refund.objects.filter(payment=payment).select_related("credit_note").order_by("id")


def payment_methods_of(account: BillingAccount) -> QuerySet[PaymentMethod]:
    return (
        PaymentMethod.objects.filter(account=account)
        .select_related("mandate")
        .order_by("-is_active", "-is_default", "id")
    )


def mandates_of(account: BillingAccount) -> QuerySet[SepaMandate]:
    return SepaMandate.objects.filter(account=account).order_by("-id")


def mandate_get(*, actor: Actor, public_id: str) -> SepaMandate:
    require_staff(actor)
    key = _uuid(public_id)
    mandate = SepaMandate.objects.filter(public_id=key).first() if key else None
    if mandate is None:
        raise NotFound("Mandate not found.", code="mandate_not_found")
    return mandate


def statement_import_get(*, actor: Actor, public_id: str) -> BankStatementImport:
    require_staff(actor, "billing.manage_billing")
    key = _uuid(public_id)
    statement = BankStatementImport.objects.filter(public_id=key).first() if key else None
    if statement is None:
        raise NotFound("Bank statement not found.", code="statement_not_found")
    return statement


def statement_lines(statement: BankStatementImport) -> QuerySet[BankStatementLine]:
    return statement.lines.select_related("matched_invoice", "payment").order_by("line_number")


def statement_line_get(*, actor: Actor, public_id: str) -> BankStatementLine:
    require_staff(actor, "billing.manage_billing")
    key = _uuid(public_id)
    line = (
        BankStatementLine.objects.select_related("matched_invoice").filter(public_id=key).first()
        if key
        else None
    )
    if line is None:
        raise NotFound("Statement line not found.", code="line_not_found")
    return line


def unmatched_lines() -> QuerySet[BankStatementLine]:
    return (
        BankStatementLine.objects.filter(
            status__in=[
                BankStatementLine.Status.UNMATCHED,
                BankStatementLine.Status.PARTIAL,
                BankStatementLine.Status.MATCHED,
            ]
        )
        .select_related("matched_invoice", "statement")
        .order_by("booked_on", "id")
    )


def sepa_batch_get(*, actor: Actor, public_id: str) -> SepaBatch:
    require_staff(actor, "billing.manage_billing")
    key = _uuid(public_id)
    batch = SepaBatch.objects.filter(public_id=key).first() if key else None
    if batch is None:
        raise NotFound("Collection file not found.", code="batch_not_found")
    return batch

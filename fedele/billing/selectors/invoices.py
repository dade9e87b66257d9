"""Reading invoices, credit notes and billing runs, scoped to what the caller may see.

Staff with ``billing.view_billing`` see every invoice; a portal customer sees only the issued
(finalised, paid or void) invoices and credit notes of their own customer, never drafts; anyone
else sees nothing, and a lookup outside the scope is a 404, not a 403 (no probing of ids).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import UUID

from django.db.models import QuerySet

from fedele.accounts.facade import Actor
from fedele.billing.contracts import InvoiceStatus
from fedele.billing.models import BillingRun, Invoice
from fedele.customers.facade import customer_for_user, customer_summary
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed

ORDERINGS = {"created_at": "created_at", "total": "total"}
ISSUED = (InvoiceStatus.FINALISED, InvoiceStatus.PAID, InvoiceStatus.VOID)


def invoice_queryset_for(actor: Actor | None) -> QuerySet[Invoice]:
    queryset = Invoice.objects.select_related("account")
    if actor is None:
        return queryset.none()
    if actor.is_internal and actor.can("billing.view_billing"):
        return queryset
    if actor.is_portal_customer:
        customer = customer_for_user(actor.user_id)
        if customer is None:
            return queryset.none()
        return queryset.filter(account__customer_id=customer.customer_id, status__in=ISSUED)
    return queryset.none()


@dataclass(frozen=True, slots=True)
class InvoiceFilters:
    status: str = ""
    kind: str = ""
    customer_id: str = ""
    issued_from: date | None = None
    issued_to: date | None = None
    search: str = ""


def invoice_list(*, actor: Actor, filters: InvoiceFilters | None = None) -> QuerySet[Invoice]:
    filters = filters or InvoiceFilters()
    queryset = invoice_queryset_for(actor)
    if filters.issued_from and filters.issued_to and filters.issued_from > filters.issued_to:
        raise ValidationFailed(
            "The date range ends before it starts.",
            code="invalid_date_range",
            fields={"issued_to": "Must not be before issued_from."},
        )
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.kind:
        queryset = queryset.filter(kind=filters.kind)
    if filters.customer_id:
        try:
            UUID(filters.customer_id)
        except ValueError as error:
            raise ValidationFailed(
                "Not a customer id.", code="invalid_customer", fields={"customer": "A UUID."}
            ) from error
        summary = customer_summary(filters.customer_id)
        queryset = queryset.filter(account__customer_id=summary.customer_id) if summary else queryset.none()
    if filters.issued_from:
        queryset = queryset.filter(issue_date__gte=filters.issued_from)
    if filters.issued_to:
        queryset = queryset.filter(issue_date__lte=filters.issued_to)
    if filters.search:
        queryset = queryset.filter(number__icontains=filters.search.strip())
    return queryset


def invoice_get(*, actor: Actor, public_id: UUID | str) -> Invoice:
    invoice = (
        invoice_queryset_for(actor)
        .select_related("credit_note_for", "subscription")
        .prefetch_related("lines", "tax_summaries")
        .filter(public_id=str(public_id))
        .first()
    )
    if invoice is None:
        raise NotFound("No such invoice.", code="invoice_not_found")
    return invoice


def credit_notes_of(invoice: Invoice) -> list[Invoice]:
    return list(Invoice.objects.filter(credit_note_for=invoice).order_by("id"))


def require(actor: Actor, permission: str) -> None:
    if not actor.is_internal or not actor.can(permission):
        raise PermissionDenied("You do not have permission for this action.")


def billing_run_list(*, actor: Actor) -> QuerySet[BillingRun]:
    require(actor, "billing.view_billing")
    return BillingRun.objects.all()


def billing_run_get(*, actor: Actor, public_id: UUID | str) -> BillingRun:
    require(actor, "billing.view_billing")
    run = BillingRun.objects.filter(public_id=str(public_id)).first()
    if run is None:
        raise NotFound("No such billing run.", code="billing_run_not_found")
    return run


def progress_percent(run: BillingRun) -> int:
    if run.status == BillingRun.Status.COMPLETED:
        return 100
    if not run.subscriptions_due:
        return 0
    return min(99, run.subscriptions_processed * 100 // run.subscriptions_due)

"""Billing API: invoices, credit notes, documents and billing runs."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema, Status

from fedele.accounts.facade import Actor, actor_for
from fedele.billing.documents.fatturapa import fatturapa_filename
from fedele.billing.models import BillingAccount, BillingRun, Invoice, InvoiceLine
from fedele.billing.selectors import invoices as selectors
from fedele.billing.services import billing_run as run_services
from fedele.billing.services import invoicing
from fedele.customers.facade import customer_summary
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import NotFound
from fedele.shared.pagination import paginate

router = Router(tags=["billing: invoices"])

LineKind = Literal["one_time", "adjustment", "discount", "setup_fee"]


class LineIn(StrictSchema):
    description: str = Field(..., min_length=1, max_length=500)
    quantity: Decimal = Decimal(1)
    unit_amount: Decimal
    vat_rate: Decimal = Decimal(22)
    vat_nature: str = Field("", max_length=8)
    kind: LineKind = "one_time"


class DraftIn(StrictSchema):
    customer_id: UUID
    currency: str | None = Field(None, min_length=3, max_length=3)
    lines: list[LineIn] = Field(default_factory=list, max_length=200)


class ReasonIn(StrictSchema):
    reason: str = Field(..., min_length=1, max_length=300)


class CreditNoteIn(StrictSchema):
    amount: Decimal | None = None
    reason: str = Field(..., min_length=1, max_length=300)


class BillingRunIn(StrictSchema):
    as_of: date
    finalise: bool = True


class LineOut(Schema):
    position: int
    kind: str
    description: str
    quantity: Decimal
    unit_amount: Decimal
    amount: Decimal
    vat_rate: Decimal
    vat_nature: str
    period_start: date | None
    period_end: date | None


class TaxSummaryOut(Schema):
    vat_rate: Decimal
    vat_nature: str
    taxable_amount: Decimal
    tax_amount: Decimal
    legal_reference: str


class InvoiceOut(Schema):
    id: UUID
    number: str | None
    kind: str
    status: str
    customer_id: str
    customer_name: str
    currency: str
    issue_date: date | None
    due_date: date | None
    period_start: date | None
    period_end: date | None
    subtotal: Decimal
    tax_total: Decimal
    total: Decimal
    amount_paid: Decimal
    amount_credited: Decimal
    amount_due: Decimal
    reverse_charge: bool
    credit_note_for: str | None
    sent_at: datetime | None
    created_at: datetime

    @staticmethod
    def resolve_id(obj: Invoice) -> UUID:
        return obj.public_id

    @staticmethod
    def resolve_customer_id(obj: Invoice) -> str:
        return str(obj.customer_snapshot.get("public_id", ""))

    @staticmethod
    def resolve_customer_name(obj: Invoice) -> str:
        return str(obj.customer_snapshot.get("name", ""))

    @staticmethod
    def resolve_credit_note_for(obj: Invoice) -> str | None:
        return obj.credit_note_for.number if obj.credit_note_for_id and obj.credit_note_for else None


class InvoiceDetailOut(InvoiceOut):
    lines: list[LineOut]
    tax_summaries: list[TaxSummaryOut]
    credit_notes: list[str]
    notes: str

    @staticmethod
    def resolve_lines(obj: Invoice) -> list[InvoiceLine]:
        return list(obj.lines.all())

    @staticmethod
    def resolve_tax_summaries(obj: Invoice) -> list[object]:
        return list(obj.tax_summaries.all())

    @staticmethod
    def resolve_credit_notes(obj: Invoice) -> list[str]:
        return [note.number or "" for note in selectors.credit_notes_of(obj)]


class InvoicePage(Schema):
    items: list[InvoiceOut]
    next_cursor: str | None


class InvoiceListQuery(Schema):
    status: Literal["draft", "finalised", "paid", "void", ""] = ""
    kind: Literal["invoice", "credit_note", ""] = ""
    customer: str = Field("", max_length=36)
    issued_from: date | None = None
    issued_to: date | None = None
    search: str = Field("", max_length=32)
    ordering: Literal["created_at", "-created_at", "total", "-total"] = "-created_at"
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


class BillingRunOut(Schema):
    id: UUID
    as_of: date
    status: str
    finalise: bool
    subscriptions_due: int
    subscriptions_processed: int
    invoices_created: int
    progress_percent: int
    errors: list[dict[str, object]]
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    created_at: datetime

    @staticmethod
    def resolve_id(obj: BillingRun) -> UUID:
        return obj.public_id

    @staticmethod
    def resolve_progress_percent(obj: BillingRun) -> int:
        return selectors.progress_percent(obj)


def _manager(request: HttpRequest) -> Actor:
    require_scope(request, "write")
    actor = actor_for(request.user)
    selectors.require(actor, "billing.manage_billing")
    return actor


@router.get("/invoices", response={200: InvoicePage, **ERROR_RESPONSES}, summary="List invoices")
def list_invoices(request: HttpRequest, query: Query[InvoiceListQuery]) -> dict[str, object]:
    require_scope(request, "read")
    queryset = selectors.invoice_list(
        actor=actor_for(request.user),
        filters=selectors.InvoiceFilters(
            status=query.status,
            kind=query.kind,
            customer_id=query.customer,
            issued_from=query.issued_from,
            issued_to=query.issued_to,
            search=query.search,
        ),
    ).select_related("credit_note_for")
    page = paginate(
        queryset, ordering=query.ordering, allowed=selectors.ORDERINGS, cursor=query.cursor, limit=query.limit
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.post(
    "/invoices", response={201: InvoiceDetailOut, **ERROR_RESPONSES}, summary="Create a manual draft"
)
def create_draft(request: HttpRequest, payload: DraftIn) -> Status[Invoice]:
    actor = _manager(request)
    summary = customer_summary(str(payload.customer_id))
    account = BillingAccount.objects.filter(customer_id=summary.customer_id).first() if summary else None
    if account is None:
        raise NotFound("The customer has no billing account.", code="account_not_found")
    invoice = invoicing.invoice_create_draft(
        account=account, currency=payload.currency, actor_id=actor.user_id
    )
    for line in payload.lines:
        invoicing.invoice_line_add(invoice=invoice, actor_id=actor.user_id, **line.model_dump())
    return Status(201, selectors.invoice_get(actor=actor, public_id=invoice.public_id))


@router.get(
    "/invoices/{invoice_id}", response={200: InvoiceDetailOut, **ERROR_RESPONSES}, summary="Get an invoice"
)
def get_invoice(request: HttpRequest, invoice_id: UUID) -> Invoice:
    require_scope(request, "read")
    return selectors.invoice_get(actor=actor_for(request.user), public_id=invoice_id)


@router.post(
    "/invoices/{invoice_id}/lines", response={201: InvoiceDetailOut, **ERROR_RESPONSES}, summary="Add a line"
)
def add_line(request: HttpRequest, invoice_id: UUID, payload: LineIn) -> Status[Invoice]:
    actor = _manager(request)
    invoice = selectors.invoice_get(actor=actor, public_id=invoice_id)
    invoicing.invoice_line_add(invoice=invoice, actor_id=actor.user_id, **payload.model_dump())
    return Status(201, selectors.invoice_get(actor=actor, public_id=invoice_id))


@router.delete(
    "/invoices/{invoice_id}/lines/{position}",
    response={200: InvoiceDetailOut, **ERROR_RESPONSES},
    summary="Remove a draft line",
)
def remove_line(request: HttpRequest, invoice_id: UUID, position: int) -> Invoice:
    actor = _manager(request)
    invoice = selectors.invoice_get(actor=actor, public_id=invoice_id)
    line = invoice.lines.filter(position=position).first()
    if line is None:
        raise NotFound("No such line.", code="line_not_found")
    invoicing.invoice_line_remove(line=line, actor_id=actor.user_id)
    return selectors.invoice_get(actor=actor, public_id=invoice_id)


@router.post(
    "/invoices/{invoice_id}/finalise", response={200: InvoiceDetailOut, **ERROR_RESPONSES}, summary="Finalise"
)
def finalise(request: HttpRequest, invoice_id: UUID) -> Invoice:
    actor = _manager(request)
    invoicing.invoice_finalise(
        invoice=selectors.invoice_get(actor=actor, public_id=invoice_id), actor_id=actor.user_id
    )
    return selectors.invoice_get(actor=actor, public_id=invoice_id)


@router.post("/invoices/{invoice_id}/void", response={200: InvoiceOut, **ERROR_RESPONSES}, summary="Void")
def void(request: HttpRequest, invoice_id: UUID, payload: ReasonIn) -> Invoice:
    actor = _manager(request)
    invoice = selectors.invoice_get(actor=actor, public_id=invoice_id)
    return invoicing.invoice_void(invoice=invoice, reason=payload.reason, actor_id=actor.user_id)


@router.post(
    "/invoices/{invoice_id}/credit-notes",
    response={201: InvoiceDetailOut, **ERROR_RESPONSES},
    summary="Issue a credit note",
)
def credit_note(request: HttpRequest, invoice_id: UUID, payload: CreditNoteIn) -> Status[Invoice]:
    actor = _manager(request)
    invoice = selectors.invoice_get(actor=actor, public_id=invoice_id)
    note = invoicing.credit_note_create(
        invoice=invoice, amount=payload.amount, reason=payload.reason, actor_id=actor.user_id
    )
    return Status(201, selectors.invoice_get(actor=actor, public_id=note.public_id))


@router.get("/invoices/{invoice_id}/pdf", response={200: None, **ERROR_RESPONSES}, summary="Download the PDF")
def download_pdf(
    request: HttpRequest, invoice_id: UUID, language: Literal["it", "en", ""] = ""
) -> HttpResponse:
    require_scope(request, "read")
    invoice = selectors.invoice_get(actor=actor_for(request.user), public_id=invoice_id)
    chosen = language or str(invoice.customer_snapshot.get("language") or "it")
    response = HttpResponse(invoicing.invoice_pdf(invoice, chosen), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{invoice.number or "draft"}.pdf"'
    return response


@router.get(
    "/invoices/{invoice_id}/xml", response={200: None, **ERROR_RESPONSES}, summary="Download FatturaPA"
)
def download_xml(request: HttpRequest, invoice_id: UUID) -> HttpResponse:
    require_scope(request, "read")
    invoice = selectors.invoice_get(actor=actor_for(request.user), public_id=invoice_id)
    response = HttpResponse(invoicing.invoice_fatturapa_xml(invoice), content_type="application/xml")
    response["Content-Disposition"] = f'attachment; filename="{fatturapa_filename(invoice)}"'
    return response


@router.get(
    "/billing-runs", response={200: list[BillingRunOut], **ERROR_RESPONSES}, summary="List billing runs"
)
def list_runs(request: HttpRequest) -> list[BillingRun]:
    require_scope(request, "read")
    return list(selectors.billing_run_list(actor=actor_for(request.user))[:100])


@router.post("/billing-runs", response={201: BillingRunOut, **ERROR_RESPONSES}, summary="Start a billing run")
def start_run(request: HttpRequest, payload: BillingRunIn) -> Status[BillingRun]:
    require_scope(request, "write")
    actor = actor_for(request.user)
    selectors.require(actor, "billing.run_billing")
    run = run_services.billing_run_start(
        as_of=payload.as_of, finalise=payload.finalise, actor_id=actor.user_id
    )
    run.refresh_from_db()  # in embedded (eager) mode the run has already executed after commit
    return Status(201, run)


@router.get(
    "/billing-runs/{run_id}", response={200: BillingRunOut, **ERROR_RESPONSES}, summary="Billing run progress"
)
def get_run(request: HttpRequest, run_id: UUID) -> BillingRun:
    require_scope(request, "read")
    return selectors.billing_run_get(actor=actor_for(request.user), public_id=run_id)

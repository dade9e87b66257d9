"""Billing API: payments, refunds, payment methods and SEPA mandates, account statements, bank
reconciliation, dunning, and the Stripe webhook (no auth: the Stripe signature is the proof)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Field, File, Query, Router, Schema, Status, UploadedFile

from fedele.accounts.facade import actor_for
from fedele.billing.gateways.stripe import verified_event
from fedele.billing.models import DunningCase, Invoice, Payment, PaymentMethod, Refund, SepaMandate
from fedele.billing.selectors import dunning as dunning_selectors
from fedele.billing.selectors import payments as selectors
from fedele.billing.selectors.statements import account_statement, statement_csv
from fedele.billing.services import payment_methods, payments, reconciliation, refunds
from fedele.billing.services.stripe_events import stripe_event_process
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import NotFound, PayloadTooLarge, ValidationFailed, error_envelope
from fedele.shared.pagination import paginate

router = Router(tags=["billing: payments"])

MethodLiteral = Literal["bank_transfer", "cash", "cheque", "card", "sepa_debit"]


class PaymentIn(StrictSchema):
    customer_id: UUID
    amount: Decimal = Field(..., max_digits=16, decimal_places=2)
    currency: str = Field("EUR", min_length=3, max_length=3)
    method: MethodLiteral = "bank_transfer"
    received_on: date
    reference: str = Field(..., min_length=1, max_length=120)
    invoice_id: UUID | None = None
    note: str = Field("", max_length=300)


class AllocationOut(Schema):
    invoice_id: UUID
    invoice_number: str
    amount: Decimal


class RefundOut(Schema):
    id: UUID
    amount: Decimal
    currency: str
    reason: str
    status: str
    credit_note_number: str | None
    created_at: datetime

    @staticmethod
    def resolve_id(obj: Refund) -> UUID:
        return obj.public_id

    @staticmethod
    def resolve_credit_note_number(obj: Refund) -> str | None:
        return obj.credit_note.number if obj.credit_note else None


class PaymentOut(Schema):
    id: UUID
    customer_id: UUID
    invoice_id: UUID | None
    gateway: str
    method: str
    status: str
    amount: Decimal
    currency: str
    received_on: date
    reference: str
    amount_refunded: Decimal
    amount_to_credit: Decimal
    failure_code: str
    failure_reason: str
    created_at: datetime

    @staticmethod
    def resolve_id(obj: Payment) -> UUID:
        return obj.public_id

    @staticmethod
    def resolve_customer_id(obj: Payment) -> UUID:
        return obj.account.customer.public_id

    @staticmethod
    def resolve_invoice_id(obj: Payment) -> UUID | None:
        return obj.invoice.public_id if obj.invoice else None

    @staticmethod
    def resolve_method(obj: Payment) -> str:
        return obj.method_kind

    @staticmethod
    def resolve_reference(obj: Payment) -> str:
        return obj.external_id


class PaymentDetailOut(PaymentOut):
    allocations: list[AllocationOut]
    refunds: list[RefundOut]

    @staticmethod
    def resolve_allocations(obj: Payment) -> list[dict[str, object]]:
        return [
            {"invoice_id": a.invoice.public_id, "invoice_number": a.invoice.number or "", "amount": a.amount}
            for a in obj.allocations.select_related("invoice")
        ]

    @staticmethod
    def resolve_refunds(obj: Payment) -> list[Refund]:
        return list(selectors.refunds_of(obj))


class PaymentPage(Schema):
    items: list[PaymentOut]
    next_cursor: str | None


class PaymentListQuery(Schema):
    customer: str = Field("", max_length=64)
    status: Literal["pending", "succeeded", "failed", ""] = ""
    gateway: Literal["manual", "bank", "sepa", "stripe", ""] = ""
    ordering: Literal["created_at", "-created_at", "received_on", "-received_on", "amount", "-amount"] = (
        "-created_at"
    )
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


class RefundIn(StrictSchema):
    amount: Decimal | None = Field(None, max_digits=16, decimal_places=2)
    reason: str = Field(..., min_length=1, max_length=300)


class MandateIn(StrictSchema):
    iban: str = Field(..., min_length=5, max_length=42)
    bic: str = Field("", max_length=11)
    debtor_name: str = Field(..., min_length=1, max_length=70)
    signed_on: date
    reference: str = Field("", max_length=35)
    make_default: bool = True


class MandateOut(Schema):
    id: UUID
    reference: str
    iban: str
    bic: str
    debtor_name: str
    signed_on: date
    sequence: str
    status: str

    @staticmethod
    def resolve_id(obj: SepaMandate) -> UUID:
        return obj.public_id


class PaymentMethodOut(Schema):
    id: UUID
    kind: str
    gateway: str
    label: str
    is_default: bool
    is_active: bool
    mandate_reference: str | None

    @staticmethod
    def resolve_id(obj: PaymentMethod) -> UUID:
        return obj.public_id

    @staticmethod
    def resolve_mandate_reference(obj: PaymentMethod) -> str | None:
        return obj.mandate.reference if obj.mandate else None


class StatementEntryOut(Schema):
    on: date
    kind: str
    reference: str
    description: str
    debit: Decimal
    credit: Decimal
    balance: Decimal


class StatementOut(Schema):
    currency: str
    entries: list[StatementEntryOut]
    total_debit: Decimal
    total_credit: Decimal
    balance: Decimal


class StatementQuery(Schema):
    date_from: date | None = None
    date_to: date | None = None


class BankLineOut(Schema):
    id: UUID
    line_number: int
    booked_on: date
    amount: Decimal
    description: str
    reference: str
    status: str
    matched_invoice_number: str | None

    @staticmethod
    def resolve_id(obj: object) -> UUID:
        return obj.public_id  # type: ignore[attr-defined]

    @staticmethod
    def resolve_matched_invoice_number(obj: object) -> str | None:
        invoice = obj.matched_invoice  # type: ignore[attr-defined]
        return invoice.number if invoice else None


class BankImportOut(Schema):
    id: UUID
    filename: str
    format: str
    lines_total: int
    lines_new: int
    lines_duplicate: int
    errors: list[dict[str, str]]
    lines: list[BankLineOut]

    @staticmethod
    def resolve_id(obj: object) -> UUID:
        return obj.public_id  # type: ignore[attr-defined]

    @staticmethod
    def resolve_lines(obj: object) -> list[object]:
        return list(selectors.statement_lines(obj))  # type: ignore[arg-type]


class LineConfirmIn(StrictSchema):
    invoice_id: UUID | None = None


class SepaBatchIn(StrictSchema):
    collection_date: date


class SepaBatchOut(Schema):
    id: UUID | None
    message_id: str | None
    transactions: int
    control_sum: Decimal


class SepaReturnIn(StrictSchema):
    end_to_end_id: str = Field(..., min_length=1, max_length=35)
    reason_code: str = Field(..., min_length=4, max_length=4)


class DunningCaseOut(Schema):
    id: UUID
    invoice_id: UUID
    invoice_number: str
    status: str
    due_date: date
    amount_due: Decimal
    currency: str
    steps_done: int
    suspended: bool
    next_action_on: date | None
    escalated_at: datetime | None

    @staticmethod
    def resolve_id(obj: DunningCase) -> UUID:
        return obj.public_id

    @staticmethod
    def resolve_invoice_id(obj: DunningCase) -> UUID:
        return obj.invoice.public_id

    @staticmethod
    def resolve_invoice_number(obj: DunningCase) -> str:
        return obj.invoice.number or ""

    @staticmethod
    def resolve_amount_due(obj: DunningCase) -> Decimal:
        return obj.invoice.amount_due

    @staticmethod
    def resolve_currency(obj: DunningCase) -> str:
        return obj.invoice.currency


class DunningCasePage(Schema):
    items: list[DunningCaseOut]
    next_cursor: str | None


class DunningQuery(Schema):
    status: Literal["open", "escalated", "closed", ""] = ""
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


def _manager(request: HttpRequest, scope: str = "write"):  # type: ignore[no-untyped-def]
    require_scope(request, scope)
    actor = actor_for(request.user)
    selectors.require_staff(actor, "billing.manage_billing")
    return actor


def _invoice_of(account_id: int, invoice_id: UUID | None) -> Invoice | None:
    if invoice_id is None:
        return None
    invoice = Invoice.objects.filter(public_id=invoice_id, account_id=account_id).first()
    if invoice is None:
        raise ValidationFailed(
            "The invoice is not one of this customer's.",
            code="invalid_invoice",
            fields={"invoice_id": "Not found."},
        )
    return invoice


@router.get("/payments", response={200: PaymentPage, **ERROR_RESPONSES}, summary="List payments")
def list_payments(request: HttpRequest, query: Query[PaymentListQuery]) -> dict[str, object]:
    require_scope(request, "read")
    queryset = selectors.payment_list(
        actor=actor_for(request.user),
        filters=selectors.PaymentFilters(customer=query.customer, status=query.status, gateway=query.gateway),
    ).select_related("account__customer")
    page = paginate(
        queryset, ordering=query.ordering, allowed=selectors.ORDERINGS, cursor=query.cursor, limit=query.limit
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.post("/payments", response={201: PaymentDetailOut, **ERROR_RESPONSES}, summary="Record a payment")
def record_payment(request: HttpRequest, payload: PaymentIn) -> Status[Payment]:
    actor = _manager(request)
    account = selectors.account_for_customer(actor=actor, customer_public_id=str(payload.customer_id))
    payment = payments.payment_record(
        account=account,
        amount=payload.amount,
        currency=payload.currency,
        method=payload.method,
        received_on=payload.received_on,
        external_id=payload.reference,
        invoice=_invoice_of(account.pk, payload.invoice_id),
        note=payload.note,
        actor_id=actor.user_id,
    )
    return Status(201, payment)


@router.get(
    "/payments/{payment_id}", response={200: PaymentDetailOut, **ERROR_RESPONSES}, summary="Get a payment"
)
def get_payment(request: HttpRequest, payment_id: str) -> Payment:
    require_scope(request, "read")
    return selectors.payment_get(actor=actor_for(request.user), public_id=payment_id)


@router.post(
    "/payments/{payment_id}/refunds", response={201: RefundOut, **ERROR_RESPONSES}, summary="Refund a payment"
)
def refund_payment(request: HttpRequest, payment_id: str, payload: RefundIn) -> Status[Refund]:
    actor = _manager(request)
    payment = selectors.payment_get(actor=actor, public_id=payment_id)
    refund = refunds.refund_create(
        payment=payment, amount=payload.amount, reason=payload.reason, actor_id=actor.user_id
    )
    return Status(201, refund)


@router.get(
    "/customers/{customer_id}/payment-methods",
    response={200: list[PaymentMethodOut], **ERROR_RESPONSES},
    summary="A customer's payment methods",
)
def list_payment_methods(request: HttpRequest, customer_id: str) -> list[PaymentMethod]:
    require_scope(request, "read")
    account = selectors.account_for_customer(actor=actor_for(request.user), customer_public_id=customer_id)
    return list(selectors.payment_methods_of(account))


@router.get(
    "/customers/{customer_id}/sepa-mandates",
    response={200: list[MandateOut], **ERROR_RESPONSES},
    summary="A customer's SEPA mandates",
)
def list_mandates(request: HttpRequest, customer_id: str) -> list[SepaMandate]:
    require_scope(request, "read")
    actor = actor_for(request.user)
    selectors.require_staff(actor)
    account = selectors.account_for_customer(actor=actor, customer_public_id=customer_id)
    return list(selectors.mandates_of(account))


@router.post(
    "/customers/{customer_id}/sepa-mandates",
    response={201: MandateOut, **ERROR_RESPONSES},
    summary="Register a signed SEPA mandate",
)
def create_mandate(request: HttpRequest, customer_id: str, payload: MandateIn) -> Status[SepaMandate]:
    actor = _manager(request)
    account = selectors.account_for_customer(actor=actor, customer_public_id=customer_id)
    mandate = payment_methods.mandate_create(account=account, actor_id=actor.user_id, **payload.model_dump())
    return Status(201, mandate)


@router.post(
    "/sepa-mandates/{mandate_id}/revoke",
    response={200: MandateOut, **ERROR_RESPONSES},
    summary="Revoke a mandate",
)
def revoke_mandate(request: HttpRequest, mandate_id: str) -> SepaMandate:
    actor = _manager(request)
    return payment_methods.mandate_revoke(
        mandate=selectors.mandate_get(actor=actor, public_id=mandate_id), actor_id=actor.user_id
    )


@router.post(
    "/sepa-batches", response={201: SepaBatchOut, **ERROR_RESPONSES}, summary="Create a SEPA collection file"
)
def create_sepa_batch(request: HttpRequest, payload: SepaBatchIn) -> Status[dict[str, object]]:
    actor = _manager(request)
    result = payment_methods.sepa_batch_create(
        collection_date=payload.collection_date, actor_id=actor.user_id
    )
    batch = result.batch
    return Status(
        201,
        {
            "id": batch.public_id if batch else None,
            "message_id": batch.message_id if batch else None,
            "transactions": result.transactions,
            "control_sum": batch.control_sum if batch else Decimal("0.00"),
        },
    )


@router.get(
    "/sepa-batches/{batch_id}/xml",
    response={200: None, **ERROR_RESPONSES},
    summary="Download a pain.008 file",
)
def download_sepa_batch(request: HttpRequest, batch_id: str) -> HttpResponse:
    require_scope(request, "read")
    batch = selectors.sepa_batch_get(actor=actor_for(request.user), public_id=batch_id)
    response = HttpResponse(batch.xml, content_type="application/xml")
    response["Content-Disposition"] = f'attachment; filename="{batch.message_id}.xml"'
    return response


@router.post(
    "/sepa-returns", response={200: PaymentOut, **ERROR_RESPONSES}, summary="Record a returned debit"
)
def record_sepa_return(request: HttpRequest, payload: SepaReturnIn) -> Payment:
    actor = _manager(request)
    return payment_methods.sepa_return_record(
        end_to_end_id=payload.end_to_end_id, reason_code=payload.reason_code, actor_id=actor.user_id
    )


@router.get(
    "/customers/{customer_id}/statement",
    response={200: StatementOut, **ERROR_RESPONSES},
    summary="A customer's account statement",
)
def get_statement(request: HttpRequest, customer_id: str, query: Query[StatementQuery]) -> object:
    require_scope(request, "read")
    account = selectors.account_for_customer(actor=actor_for(request.user), customer_public_id=customer_id)
    return account_statement(account, date_from=query.date_from, date_to=query.date_to)


@router.get(
    "/customers/{customer_id}/statement.csv",
    response={200: None, **ERROR_RESPONSES},
    summary="A customer's account statement as CSV",
)
def get_statement_csv(request: HttpRequest, customer_id: str, query: Query[StatementQuery]) -> HttpResponse:
    require_scope(request, "read")
    account = selectors.account_for_customer(actor=actor_for(request.user), customer_public_id=customer_id)
    statement = account_statement(account, date_from=query.date_from, date_to=query.date_to)
    response = HttpResponse(statement_csv(statement), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="statement-{customer_id}.csv"'
    return response


@router.post(
    "/bank-statements",
    response={201: BankImportOut, **ERROR_RESPONSES},
    summary="Import a bank statement CSV",
)
def import_bank_statement(
    request: HttpRequest, file: File[UploadedFile], skip_bad_lines: bool = False
) -> Status[object]:
    actor = _manager(request)
    if (file.size or 0) > reconciliation.MAX_BYTES:
        raise PayloadTooLarge("The file is larger than 5 MB.")
    statement = reconciliation.statement_import(
        content=file.read(),
        filename=file.name or "statement.csv",
        skip_bad_lines=skip_bad_lines,
        actor_id=actor.user_id,
    )
    return Status(201, statement)


@router.get(
    "/bank-statements/{statement_id}",
    response={200: BankImportOut, **ERROR_RESPONSES},
    summary="A statement import",
)
def get_bank_statement(request: HttpRequest, statement_id: str) -> object:
    require_scope(request, "read")
    return selectors.statement_import_get(actor=actor_for(request.user), public_id=statement_id)


@router.post(
    "/bank-statement-lines/{line_id}/confirm",
    response={201: PaymentOut, **ERROR_RESPONSES},
    summary="Confirm a line as the payment of an invoice",
)
def confirm_bank_line(request: HttpRequest, line_id: str, payload: LineConfirmIn) -> Status[Payment]:
    actor = _manager(request)
    line = selectors.statement_line_get(actor=actor, public_id=line_id)
    invoice = None
    if payload.invoice_id is not None:
        invoice = Invoice.objects.filter(public_id=payload.invoice_id).first()
        if invoice is None:
            raise NotFound("Invoice not found.", code="invoice_not_found")
    return Status(
        201, reconciliation.statement_line_confirm(line=line, invoice=invoice, actor_id=actor.user_id)
    )


@router.get(
    "/dunning/cases",
    response={200: DunningCasePage, **ERROR_RESPONSES},
    summary="Dunning and collections queue",
)
def list_dunning_cases(request: HttpRequest, query: Query[DunningQuery]) -> dict[str, object]:
    require_scope(request, "read")
    queryset = dunning_selectors.case_list(actor=actor_for(request.user), status=query.status)
    page = paginate(
        queryset,
        ordering="due_date",
        allowed=dunning_selectors.ORDERINGS,
        cursor=query.cursor,
        limit=query.limit,
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.post(
    "/webhooks/stripe",
    auth=None,
    response={200: None, 400: None},
    summary="Stripe webhook",
    include_in_schema=True,
)
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Verified with the Stripe-Signature header and STRIPE_WEBHOOK_SECRET; a bad or missing
    signature is a 400 and nothing is stored. A replayed event is acknowledged and changes nothing."""
    try:
        event = verified_event(request.body, request.headers.get("Stripe-Signature"))
    except ValidationFailed as failure:
        return JsonResponse(error_envelope(failure.code, failure.message), status=400)
    processed, outcome = stripe_event_process(event)
    return JsonResponse({"received": True, "processed": processed, "outcome": outcome})

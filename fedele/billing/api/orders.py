"""Billing API: quotes (with the public accept link), orders, provisioning steps and entitlements."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Field, Query, Router, Schema, Status

from fedele.accounts.facade import Actor, actor_for
from fedele.billing.documents.quote_pdf import render_quote_pdf
from fedele.billing.models import (
    Entitlement,
    Order,
    OrderLine,
    PlanVersion,
    Product,
    ProvisioningStep,
    Quote,
    QuoteLine,
)
from fedele.billing.selectors import orders as selectors
from fedele.billing.services import orders as order_services
from fedele.billing.services import provisioning
from fedele.billing.services import quotes as quote_services
from fedele.billing.services.accounts import billing_account_for_customer
from fedele.billing.services.quote_pricing import LineInput
from fedele.customers.facade import customer_summary
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import ApplicationError, Conflict, PermissionDenied, ValidationFailed
from fedele.shared.pagination import paginate

router = Router(tags=["billing: quotes and orders"])

QuoteStatusLiteral = Literal["draft", "sent", "accepted", "declined", "expired", ""]
OrderStatusLiteral = Literal["pending", "fulfilling", "completed", "failed", "cancelled", ""]
EntitlementStatusLiteral = Literal[
    "pending", "provisioning", "active", "suspended", "terminated", "failed", ""
]
LanguageLiteral = Literal["it", "en"]


class LinkGone(ApplicationError):
    """A signed link that was valid once: already used or expired (HTTP 410 Gone)."""

    status_code: ClassVar[int] = 410
    default_code: ClassVar[str] = "link_gone"


PUBLIC_ERROR_RESPONSES = {**ERROR_RESPONSES, 410: ERROR_RESPONSES[404]}


def public_quote(token: str) -> Quote:
    """The quote behind an accept link; a tampered link is a 400, a used or expired one a 410."""
    try:
        return quote_services.quote_for_token(token)
    except ValidationFailed as error:
        if error.code in ("link_used", "link_expired"):
            raise LinkGone(error.message, code=error.code) from error
        raise ApplicationError(error.message, code=error.code) from error


def accept_url(request: HttpRequest, quote: Quote) -> str:
    return request.build_absolute_uri(
        reverse("billing:quote_public", args=[quote_services.accept_token(quote)])
    )


# schemas ---------------------------------------------------------------------------------------------


class LineIn(StrictSchema):
    plan_version_id: UUID | None = None
    product_id: UUID | None = None
    quantity: Decimal = Decimal(1)
    unit_amount: Decimal | None = Field(None, description="Required for products; overrides a plan's price.")
    discount_percent: Decimal = Decimal(0)
    description: str = Field("", max_length=300)


class QuoteIn(StrictSchema):
    customer_id: UUID
    currency: str = Field("EUR", min_length=3, max_length=3)
    lines: list[LineIn] = Field(..., min_length=1, max_length=200)
    valid_until: date
    discount_percent: Decimal = Decimal(0)
    language: LanguageLiteral | None = Field(None, description="Defaults to the customer's language.")
    notes: str = Field("", max_length=5000)


class QuotePatch(StrictSchema):
    lines: list[LineIn] | None = Field(None, min_length=1, max_length=200)
    valid_until: date | None = None
    discount_percent: Decimal | None = None
    notes: str | None = Field(None, max_length=5000)


class SendIn(StrictSchema):
    to_email: str = Field("", max_length=254, description="Defaults to the customer's e-mail.")


class AcceptIn(StrictSchema):
    start_on: date | None = None


class DeclineIn(StrictSchema):
    note: str = Field("", max_length=300)


class OrderIn(StrictSchema):
    customer_id: UUID
    currency: str = Field("EUR", min_length=3, max_length=3)
    lines: list[LineIn] = Field(..., min_length=1, max_length=200)
    external_reference: str = Field("", max_length=100)
    start_on: date | None = None
    discount_percent: Decimal = Decimal(0)


class StepCompleteIn(StrictSchema):
    identifier: str = Field("", max_length=120)
    note: str = Field("", max_length=300)


class LineOut(Schema):
    position: int
    kind: str
    plan_version_id: UUID | None
    product_id: UUID | None
    description: str
    quantity: Decimal
    list_unit_amount: Decimal | None
    unit_amount: Decimal
    discount_percent: Decimal
    recurring: bool
    amount: Decimal


class QuoteSummaryOut(Schema):
    id: UUID
    number: str
    customer_id: UUID
    customer_name: str
    currency: str
    language: str
    status: str
    valid_until: date
    subtotal: Decimal
    discount_percent: Decimal
    discount_amount: Decimal
    total: Decimal
    created_at: datetime


class QuoteOut(QuoteSummaryOut):
    notes: str
    sent_at: datetime | None
    sent_to: str
    accepted_at: datetime | None
    declined_at: datetime | None
    expired_at: datetime | None
    decision_note: str
    order_id: UUID | None
    lines: list[LineOut]


class QuotePage(Schema):
    items: list[QuoteSummaryOut]
    next_cursor: str | None


class SendOut(QuoteOut):
    accept_url: str


class PublicQuoteOut(Schema):
    number: str
    customer_name: str
    currency: str
    language: str
    status: str
    valid_until: date
    subtotal: Decimal
    discount_amount: Decimal
    total: Decimal
    notes: str
    lines: list[LineOut]


class StepOut(Schema):
    id: UUID
    position: int
    name: str
    handler: str
    status: str
    attempts: int
    max_attempts: int
    last_error: str
    next_attempt_at: datetime | None
    completed_at: datetime | None
    result: dict[str, Any]


class OrderLineOut(LineOut):
    status: str
    subscription_id: UUID | None
    subscription_number: str
    entitlement_id: UUID | None
    steps: list[StepOut]


class OrderSummaryOut(Schema):
    id: UUID
    number: str
    customer_id: UUID
    customer_name: str
    quote_number: str
    currency: str
    status: str
    external_reference: str
    start_on: date | None
    total: Decimal
    last_error: str
    created_at: datetime
    completed_at: datetime | None


class OrderOut(OrderSummaryOut):
    lines: list[OrderLineOut]


class OrderPage(Schema):
    items: list[OrderSummaryOut]
    next_cursor: str | None


class EntitlementOut(Schema):
    id: UUID
    customer_id: UUID
    product_code: str
    product_name: str
    kind: str
    identifier: str
    status: str
    subscription_id: UUID | None
    attributes: dict[str, Any]
    activated_at: datetime | None
    suspended_at: datetime | None
    created_at: datetime


class EntitlementPage(Schema):
    items: list[EntitlementOut]
    next_cursor: str | None


class ListQuery(Schema):
    customer: str = Field("", max_length=64)
    search: str = Field("", max_length=100)
    ordering: Literal["created_at", "-created_at", "number", "-number"] = "-created_at"
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


class QuoteListQuery(ListQuery):
    status: QuoteStatusLiteral = ""


class OrderListQuery(ListQuery):
    status: OrderStatusLiteral = ""


class EntitlementListQuery(Schema):
    customer: str = Field("", max_length=64)
    status: EntitlementStatusLiteral = ""
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


# rows ------------------------------------------------------------------------------------------------


def line_row(line: QuoteLine | OrderLine) -> dict[str, Any]:
    return {
        "position": line.position,
        "kind": line.kind,
        "plan_version_id": line.plan_version.public_id if line.plan_version else None,
        "product_id": line.product.public_id if line.product else None,
        "description": line.description,
        "quantity": line.quantity,
        "list_unit_amount": line.list_unit_amount,
        "unit_amount": line.unit_amount,
        "discount_percent": line.discount_percent,
        "recurring": line.recurring,
        "amount": line.amount,
    }


def quote_summary_row(quote: Quote) -> dict[str, Any]:
    return {
        "id": quote.public_id,
        "number": quote.number,
        "customer_id": quote.account.customer.public_id,
        "customer_name": quote.account.customer.display_name,
        "currency": quote.currency,
        "language": quote.language,
        "status": quote.status,
        "valid_until": quote.valid_until,
        "subtotal": quote.subtotal,
        "discount_percent": quote.discount_percent,
        "discount_amount": quote.discount_amount,
        "total": quote.total,
        "created_at": quote.created_at,
    }


def quote_row(quote: Quote) -> dict[str, Any]:
    order = Order.objects.filter(quote=quote).values_list("public_id", flat=True).first()
    return {
        **quote_summary_row(quote),
        "notes": quote.notes,
        "sent_at": quote.sent_at,
        "sent_to": quote.sent_to,
        "accepted_at": quote.accepted_at,
        "declined_at": quote.declined_at,
        "expired_at": quote.expired_at,
        "decision_note": quote.decision_note,
        "order_id": order,
        "lines": [line_row(line) for line in quote.lines.all()],
    }


def public_row(quote: Quote) -> dict[str, Any]:
    lines = quote.lines.select_related("plan_version", "product")
    return {
        "number": quote.number,
        "customer_name": quote.account.customer.display_name,
        "currency": quote.currency,
        "language": quote.language,
        "status": quote.status,
        "valid_until": quote.valid_until,
        "subtotal": quote.subtotal,
        "discount_amount": quote.discount_amount,
        "total": quote.total,
        "notes": quote.notes,
        "lines": [line_row(line) for line in lines],
    }


def step_row(step: ProvisioningStep) -> dict[str, Any]:
    return {
        "id": step.public_id,
        "position": step.position,
        "name": step.name,
        "handler": step.handler,
        "status": step.status,
        "attempts": step.attempts,
        "max_attempts": step.max_attempts,
        "last_error": step.last_error,
        "next_attempt_at": step.next_attempt_at,
        "completed_at": step.completed_at,
        "result": step.result,
    }


def order_summary_row(order: Order) -> dict[str, Any]:
    return {
        "id": order.public_id,
        "number": order.number,
        "customer_id": order.account.customer.public_id,
        "customer_name": order.account.customer.display_name,
        "quote_number": order.quote.number if order.quote else "",
        "currency": order.currency,
        "status": order.status,
        "external_reference": order.external_reference,
        "start_on": order.start_on,
        "total": order.total,
        "last_error": order.last_error,
        "created_at": order.created_at,
        "completed_at": order.completed_at,
    }


def order_row(order: Order) -> dict[str, Any]:
    lines = []
    for line in order.lines.all():
        lines.append(
            {
                **line_row(line),
                "status": line.status,
                "subscription_id": line.subscription.public_id if line.subscription else None,
                "subscription_number": line.subscription.number if line.subscription else "",
                "entitlement_id": line.entitlement.public_id if line.entitlement else None,
                "steps": [step_row(step) for step in line.steps.all()],
            }
        )
    return {**order_summary_row(order), "lines": lines}


def entitlement_row(entitlement: Entitlement) -> dict[str, Any]:
    return {
        "id": entitlement.public_id,
        "customer_id": entitlement.account.customer.public_id,
        "product_code": entitlement.product.code,
        "product_name": entitlement.product.name,
        "kind": entitlement.kind,
        "identifier": entitlement.identifier,
        "status": entitlement.status,
        "subscription_id": entitlement.subscription.public_id if entitlement.subscription else None,
        "attributes": entitlement.attributes,
        "activated_at": entitlement.activated_at,
        "suspended_at": entitlement.suspended_at,
        "created_at": entitlement.created_at,
    }


# helpers ---------------------------------------------------------------------------------------------


def require_manager(actor: Actor) -> None:
    if not (actor.is_internal and actor.can("billing.manage_billing")):
        raise PermissionDenied("You do not have permission to manage quotes and orders.")


def line_inputs(lines: list[LineIn]) -> list[LineInput]:
    """Resolve the public ids of plan versions and products; every unknown id is reported at once."""
    versions = {
        v.public_id: v
        for v in PlanVersion.objects.select_related("plan", "plan__product").filter(
            public_id__in=[line.plan_version_id for line in lines if line.plan_version_id]
        )
    }
    products = {
        p.public_id: p
        for p in Product.objects.filter(public_id__in=[line.product_id for line in lines if line.product_id])
    }
    errors: dict[str, list[str]] = {}
    result = []
    for index, line in enumerate(lines):
        version = versions.get(line.plan_version_id) if line.plan_version_id else None
        product = products.get(line.product_id) if line.product_id else None
        if line.plan_version_id and version is None:
            errors[f"lines[{index}].plan_version_id"] = ["not found."]
        if line.product_id and product is None:
            errors[f"lines[{index}].product_id"] = ["not found."]
        result.append(
            LineInput(
                plan_version=version,
                product=product,
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                discount_percent=line.discount_percent,
                description=line.description,
            )
        )
    if errors:
        raise ValidationFailed("The lines are not valid.", code="invalid_lines", fields=errors)
    return result


def _customer_language(customer_id: UUID) -> str:
    summary = customer_summary(str(customer_id))
    return summary.language if summary and summary.language in ("it", "en") else "it"


def _managed_quote(request: HttpRequest, quote_id: UUID) -> tuple[Actor, Quote]:
    require_scope(request, "write")
    actor = actor_for(request.user)
    quote = selectors.quote_get(actor=actor, public_id=str(quote_id))
    require_manager(actor)
    return actor, quote


def _quote_detail(actor: Actor, quote: Quote) -> dict[str, Any]:
    return quote_row(selectors.quote_get(actor=actor, public_id=str(quote.public_id)))


def _order_detail(actor: Actor, order: Order) -> dict[str, Any]:
    return order_row(selectors.order_get(actor=actor, public_id=str(order.public_id)))


# quotes ----------------------------------------------------------------------------------------------


@router.get("/quotes", response={200: QuotePage, **ERROR_RESPONSES}, summary="List quotes")
def list_quotes(request: HttpRequest, query: Query[QuoteListQuery]) -> dict[str, Any]:
    require_scope(request, "read")
    queryset = selectors.quote_list(
        actor=actor_for(request.user), status=query.status, customer=query.customer, search=query.search
    )
    page = paginate(
        queryset, ordering=query.ordering, allowed=selectors.ORDERINGS, cursor=query.cursor, limit=query.limit
    )
    return {"items": [quote_summary_row(q) for q in page.items], "next_cursor": page.next_cursor}


@router.post("/quotes", response={201: QuoteOut, **ERROR_RESPONSES}, summary="Create a draft quote")
def create_quote(request: HttpRequest, payload: QuoteIn) -> Status[dict[str, Any]]:
    require_scope(request, "write")
    actor = actor_for(request.user)
    require_manager(actor)
    lines = line_inputs(payload.lines)
    account = billing_account_for_customer(
        customer_public_id=str(payload.customer_id), currency=payload.currency.upper()
    )
    quote = quote_services.quote_create(
        account=account,
        lines=lines,
        valid_until=payload.valid_until,
        discount_percent=payload.discount_percent,
        language=payload.language or _customer_language(payload.customer_id),
        notes=payload.notes,
        actor_id=actor.user_id,
    )
    return Status(201, _quote_detail(actor, quote))


@router.get("/quotes/{quote_id}", response={200: QuoteOut, **ERROR_RESPONSES}, summary="A quote")
def get_quote(request: HttpRequest, quote_id: UUID) -> dict[str, Any]:
    require_scope(request, "read")
    return quote_row(selectors.quote_get(actor=actor_for(request.user), public_id=str(quote_id)))


@router.patch(
    "/quotes/{quote_id}",
    response={200: QuoteOut, **ERROR_RESPONSES},
    summary="Change an open quote (a sent quote goes back to draft and its link stops working)",
)
def update_quote(request: HttpRequest, quote_id: UUID, payload: QuotePatch) -> dict[str, Any]:
    actor, quote = _managed_quote(request, quote_id)
    lines = line_inputs(payload.lines) if payload.lines is not None else None
    quote_services.quote_update(
        quote=quote,
        lines=lines,
        valid_until=payload.valid_until,
        discount_percent=payload.discount_percent,
        notes=payload.notes,
        actor_id=actor.user_id,
    )
    return _quote_detail(actor, quote)


@router.post(
    "/quotes/{quote_id}/send",
    response={200: SendOut, **ERROR_RESPONSES},
    summary="Send the quote: e-mails the customer the signed accept link",
)
def send_quote(request: HttpRequest, quote_id: UUID, payload: SendIn) -> dict[str, Any]:
    actor, quote = _managed_quote(request, quote_id)
    address = payload.to_email
    if not address:
        summary = customer_summary(str(quote.account.customer.public_id))
        address = summary.email if summary else ""
    link = accept_url(request, quote)
    quote_services.quote_send(quote=quote, to_email=address, accept_url=link, actor_id=actor.user_id)
    return {**_quote_detail(actor, quote), "accept_url": link}


@router.post(
    "/quotes/{quote_id}/accept",
    response={200: QuoteOut, **ERROR_RESPONSES},
    summary="Accept a sent quote on the customer's behalf (creates and fulfils the order)",
)
def accept_quote(request: HttpRequest, quote_id: UUID, payload: AcceptIn) -> dict[str, Any]:
    actor, quote = _managed_quote(request, quote_id)
    quote_services.quote_accept(quote=quote, start_on=payload.start_on, actor_id=actor.user_id)
    return _quote_detail(actor, quote)


@router.post(
    "/quotes/{quote_id}/decline",
    response={200: QuoteOut, **ERROR_RESPONSES},
    summary="Record that the customer declined a sent quote",
)
def decline_quote(request: HttpRequest, quote_id: UUID, payload: DeclineIn) -> dict[str, Any]:
    actor, quote = _managed_quote(request, quote_id)
    quote_services.quote_decline(quote=quote, note=payload.note, actor_id=actor.user_id)
    return _quote_detail(actor, quote)


@router.get(
    "/quotes/{quote_id}/pdf",
    response={200: None, **ERROR_RESPONSES},
    summary="The quote as PDF (language it or en; default the quote's)",
)
def quote_pdf(request: HttpRequest, quote_id: UUID, language: LanguageLiteral | None = None) -> HttpResponse:
    require_scope(request, "read")
    quote = selectors.quote_get(actor=actor_for(request.user), public_id=str(quote_id))
    return pdf_response(quote, language or quote.language, accept_url(request, quote))


def pdf_response(quote: Quote, language: str, link: str) -> HttpResponse:
    content = render_quote_pdf(quote, language, accept_url=link if quote.status == "sent" else "")
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{quote.number}.pdf"'
    return response


# public accept link (no authentication) --------------------------------------------------------------


@router.get(
    "/public/quotes/{token}",
    auth=None,
    response={200: PublicQuoteOut, **PUBLIC_ERROR_RESPONSES},
    summary="The quote behind a signed accept link (no authentication)",
)
def get_public_quote(request: HttpRequest, token: str) -> dict[str, Any]:
    return public_row(public_quote(token))


@router.post(
    "/public/quotes/{token}/accept",
    auth=None,
    response={200: PublicQuoteOut, **PUBLIC_ERROR_RESPONSES},
    summary="The customer accepts the quote (single use)",
)
def accept_public_quote(request: HttpRequest, token: str) -> dict[str, Any]:
    quote = public_quote(token)
    try:
        accepted = quote_services.quote_accept(quote=quote)
    except Conflict as error:  # a second click that lost the race
        raise LinkGone("This quote was already decided.", code="link_used") from error
    return public_row(accepted)


@router.post(
    "/public/quotes/{token}/decline",
    auth=None,
    response={200: PublicQuoteOut, **PUBLIC_ERROR_RESPONSES},
    summary="The customer declines the quote (single use)",
)
def decline_public_quote(request: HttpRequest, token: str, payload: DeclineIn) -> dict[str, Any]:
    quote = public_quote(token)
    try:
        declined = quote_services.quote_decline(quote=quote, note=payload.note)
    except Conflict as error:
        raise LinkGone("This quote was already decided.", code="link_used") from error
    return public_row(declined)


# orders ----------------------------------------------------------------------------------------------


@router.get("/orders", response={200: OrderPage, **ERROR_RESPONSES}, summary="List orders")
def list_orders(request: HttpRequest, query: Query[OrderListQuery]) -> dict[str, Any]:
    require_scope(request, "read")
    queryset = selectors.order_list(
        actor=actor_for(request.user), status=query.status, customer=query.customer, search=query.search
    )
    page = paginate(
        queryset, ordering=query.ordering, allowed=selectors.ORDERINGS, cursor=query.cursor, limit=query.limit
    )
    return {"items": [order_summary_row(o) for o in page.items], "next_cursor": page.next_cursor}


@router.post(
    "/orders",
    response={200: OrderOut, 201: OrderOut, **ERROR_RESPONSES},
    summary="Place an order (201); a retry with the same external_reference answers the first order (200)",
)
def create_order(request: HttpRequest, payload: OrderIn) -> Status[dict[str, Any]]:
    require_scope(request, "write")
    actor = actor_for(request.user)
    require_manager(actor)
    lines = line_inputs(payload.lines)
    account = billing_account_for_customer(
        customer_public_id=str(payload.customer_id), currency=payload.currency.upper()
    )
    result = order_services.order_create(
        account=account,
        lines=lines,
        external_reference=payload.external_reference,
        start_on=payload.start_on,
        discount_percent=payload.discount_percent,
        actor_id=actor.user_id,
    )
    return Status(201 if result.created else 200, _order_detail(actor, result.order))


@router.get(
    "/orders/{order_id}",
    response={200: OrderOut, **ERROR_RESPONSES},
    summary="An order with its lines and provisioning steps",
)
def get_order(request: HttpRequest, order_id: UUID) -> dict[str, Any]:
    require_scope(request, "read")
    return order_row(selectors.order_get(actor=actor_for(request.user), public_id=str(order_id)))


@router.post(
    "/orders/{order_id}/fulfil",
    response={200: OrderOut, **ERROR_RESPONSES},
    summary="Retry the fulfilment of a failed order",
)
def fulfil_order(request: HttpRequest, order_id: UUID) -> dict[str, Any]:
    require_scope(request, "write")
    actor = actor_for(request.user)
    order = selectors.order_get(actor=actor, public_id=str(order_id))
    require_manager(actor)
    if order.status != Order.Status.FAILED:
        raise Conflict(f"Order {order.number} is {order.status}; only a failed order is retried.")
    order_services.order_fulfil(order=order, actor_id=actor.user_id)
    return _order_detail(actor, order)


def _managed_step(request: HttpRequest, step_id: UUID) -> tuple[Actor, ProvisioningStep]:
    require_scope(request, "write")
    actor = actor_for(request.user)
    step = selectors.step_get(actor=actor, public_id=str(step_id))
    require_manager(actor)
    return actor, step


@router.post(
    "/provisioning-steps/{step_id}/retry",
    response={200: StepOut, **ERROR_RESPONSES},
    summary="Retry a failed provisioning step now (then the steps after it)",
)
def retry_step(request: HttpRequest, step_id: UUID) -> dict[str, Any]:
    actor, step = _managed_step(request, step_id)
    return step_row(provisioning.provisioning_step_retry(step=step, actor_id=actor.user_id))


@router.post(
    "/provisioning-steps/{step_id}/complete",
    response={200: StepOut, **ERROR_RESPONSES},
    summary="Mark a manual provisioning step done (then the steps after it run)",
)
def complete_step(request: HttpRequest, step_id: UUID, payload: StepCompleteIn) -> dict[str, Any]:
    actor, step = _managed_step(request, step_id)
    done = provisioning.provisioning_step_complete(
        step=step, identifier=payload.identifier, note=payload.note, actor_id=actor.user_id
    )
    return step_row(done)


@router.get(
    "/entitlements",
    response={200: EntitlementPage, **ERROR_RESPONSES},
    summary="Entitlements (provisioned services), optionally of one customer",
)
def list_entitlements(request: HttpRequest, query: Query[EntitlementListQuery]) -> dict[str, Any]:
    require_scope(request, "read")
    queryset = selectors.entitlement_list(
        actor=actor_for(request.user), customer=query.customer, status=query.status
    )
    page = paginate(
        queryset,
        ordering="-created_at",
        allowed=selectors.ENTITLEMENT_ORDERINGS,
        cursor=query.cursor,
        limit=query.limit,
    )
    return {"items": [entitlement_row(e) for e in page.items], "next_cursor": page.next_cursor}

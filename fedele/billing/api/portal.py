"""Billing API for portal customers (their own account only; any other id is a 404): subscriptions,
proration preview, change and cancellation at period end, invoices and their PDF."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema

from fedele.billing.models import Invoice
from fedele.billing.services import subscriptions as subscription_services
from fedele.billing.services.invoicing import invoice_pdf
from fedele.billing.services.subscription_rules import period_price
from fedele.billing.web.portal import (
    VISIBLE_INVOICE_STATUSES,
    Portal,
    language,
    own_invoice,
    own_subscription,
    plan_choices,
    portal_for,
)
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import ValidationFailed
from fedele.shared.pagination import paginate

router = Router(tags=["billing: portal"])


class PortalSubscriptionOut(Schema):
    id: UUID
    number: str
    plan_code: str
    plan_name: str
    status: str
    quantity: Decimal
    currency: str
    price_per_period: Decimal
    billing_period: str
    current_period_start: date
    current_period_end: date
    next_billing_on: date | None
    cancel_at_period_end: bool


class ChangeIn(StrictSchema):
    plan_version_id: UUID | None = Field(
        None, description="The plan version to move to (default: keep the plan)."
    )
    quantity: Decimal | None = Field(None, gt=0, le=100_000)
    at: Literal["now", "period_end"] = "now"


class CancelIn(StrictSchema):
    reason: str = Field("", max_length=300)


class PreviewOut(Schema):
    timing: str
    effective_on: date
    currency: str
    credit: Decimal
    charge: Decimal
    net: Decimal
    days_remaining: int
    days_in_period: int
    current_recurring: Decimal
    new_recurring: Decimal


class PortalInvoiceOut(Schema):
    id: UUID
    number: str | None
    kind: str
    status: str
    currency: str
    issue_date: date | None
    due_date: date | None
    total: Decimal
    amount_due: Decimal


class PortalInvoicePage(Schema):
    items: list[PortalInvoiceOut]
    next_cursor: str | None


def _subscription_out(subscription: Any) -> dict[str, Any]:
    return {
        "id": subscription.public_id,
        "number": subscription.number,
        "plan_code": subscription.plan.code,
        "plan_name": subscription.plan.name,
        "status": subscription.status,
        "quantity": subscription.quantity,
        "currency": subscription.plan_version.currency,
        "price_per_period": period_price(subscription.plan_version, subscription.quantity).amount,
        "billing_period": subscription.billing_period,
        "current_period_start": subscription.current_period_start,
        "current_period_end": subscription.current_period_end,
        "next_billing_on": subscription.next_billing_on,
        "cancel_at_period_end": subscription.cancel_at_period_end,
    }


def _invoice_out(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.public_id,
        "number": invoice.number,
        "kind": invoice.kind,
        "status": invoice.status,
        "currency": invoice.currency,
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
        "total": invoice.total,
        "amount_due": max(invoice.amount_due, Decimal(0)),
    }


def _portal(request: HttpRequest, scope: str) -> Portal:
    require_scope(request, scope)
    return portal_for(request.user)


def _change_target(portal: Portal, subscription: Any, payload: ChangeIn) -> tuple[Any, Decimal | None]:
    if payload.plan_version_id is None:
        return None, payload.quantity
    choices = {version.public_id: version for version in plan_choices(subscription)}
    version = choices.get(payload.plan_version_id)
    if version is None:
        raise ValidationFailed(
            "This plan cannot be chosen for this subscription.",
            code="invalid_plan",
            fields={"plan_version_id": "Choose a plan of the same currency and billing period."},
        )
    return version, payload.quantity


@router.get(
    "/portal/subscriptions",
    response={200: list[PortalSubscriptionOut], **ERROR_RESPONSES},
    summary="My subscriptions",
)
def my_subscriptions(request: HttpRequest) -> Any:
    portal = _portal(request, "read")
    if portal.account is None:
        return []
    subscriptions = (
        portal.account.subscriptions.select_related("plan", "plan_version")
        .prefetch_related("plan_version__charges", "addons__plan_version__charges")
        .order_by("-id")
    )
    return [_subscription_out(subscription) for subscription in subscriptions]


@router.post(
    "/portal/subscriptions/{subscription_id}/preview-change",
    response={200: PreviewOut, **ERROR_RESPONSES},
    summary="What a plan or quantity change would cost (writes nothing)",
)
def preview_change(request: HttpRequest, subscription_id: UUID, payload: ChangeIn) -> Any:
    portal = _portal(request, "read")
    subscription = own_subscription(portal, subscription_id)
    version, quantity = _change_target(portal, subscription, payload)
    preview = subscription_services.subscription_preview_change(
        subscription=subscription, plan_version=version, quantity=quantity, at=payload.at
    )
    return {
        "timing": preview.timing,
        "effective_on": preview.effective_on,
        "currency": preview.currency,
        "credit": preview.credit.amount,
        "charge": preview.charge.amount,
        "net": preview.net.amount,
        "days_remaining": preview.days_remaining,
        "days_in_period": preview.days_in_period,
        "current_recurring": preview.current_recurring.amount,
        "new_recurring": preview.new_recurring.amount,
    }


@router.post(
    "/portal/subscriptions/{subscription_id}/change",
    response={200: PortalSubscriptionOut, **ERROR_RESPONSES},
    summary="Change my plan or quantity now or at the period end",
)
def change(request: HttpRequest, subscription_id: UUID, payload: ChangeIn) -> Any:
    portal = _portal(request, "write")
    subscription = own_subscription(portal, subscription_id)
    version, quantity = _change_target(portal, subscription, payload)
    changed = subscription_services.subscription_change(
        subscription=subscription,
        plan_version=version,
        quantity=quantity,
        at=payload.at,
        actor_id=request.user.pk,
    )
    return _subscription_out(own_subscription(portal, changed.public_id))


@router.post(
    "/portal/subscriptions/{subscription_id}/cancel",
    response={200: PortalSubscriptionOut, **ERROR_RESPONSES},
    summary="Cancel my subscription at the period end",
)
def cancel(request: HttpRequest, subscription_id: UUID, payload: CancelIn) -> Any:
    portal = _portal(request, "write")
    subscription = own_subscription(portal, subscription_id)
    subscription_services.subscription_cancel(
        subscription=subscription, at="period_end", reason=payload.reason, actor_id=request.user.pk
    )
    return _subscription_out(own_subscription(portal, subscription_id))


class InvoiceListQuery(Schema):
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


@router.get(
    "/portal/invoices",
    response={200: PortalInvoicePage, **ERROR_RESPONSES},
    summary="My invoices, newest first",
)
def my_invoices(request: HttpRequest, query: Query[InvoiceListQuery]) -> Any:
    portal = _portal(request, "read")
    if portal.account is None:
        return {"items": [], "next_cursor": None}
    page = paginate(
        Invoice.objects.filter(account=portal.account, status__in=VISIBLE_INVOICE_STATUSES),
        ordering="-created_at",
        allowed={"created_at": "created_at"},
        cursor=query.cursor,
        limit=query.limit,
    )
    return {"items": [_invoice_out(invoice) for invoice in page.items], "next_cursor": page.next_cursor}


@router.get(
    "/portal/invoices/{invoice_id}/pdf", response={200: None, **ERROR_RESPONSES}, summary="My invoice as PDF"
)
def my_invoice_pdf(request: HttpRequest, invoice_id: UUID) -> HttpResponse:
    portal = _portal(request, "read")
    invoice = own_invoice(portal, invoice_id)
    response = HttpResponse(invoice_pdf(invoice, language()), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{invoice.number or invoice.public_id}.pdf"'
    return response

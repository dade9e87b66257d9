"""Billing API: subscriptions (list, detail with history, create, change, preview, lifecycle)."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from ninja import Field, File, Form, Query, Router, Schema, Status, UploadedFile

from fedele.accounts.facade import Actor, actor_for
from fedele.billing.models import PlanVersion, Subscription, SubscriptionAddOn, SubscriptionChange
from fedele.billing.selectors import subscriptions as selectors
from fedele.billing.services import addons
from fedele.billing.services import subscriptions as services
from fedele.billing.services.accounts import billing_account_for_customer
from fedele.billing.services.importing import ImportReport, subscriptions_import, valid_price_map
from fedele.billing.services.subscription_rules import ChangePreview
from fedele.billing.snapshots import monthly_recurring_revenue
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import NotFound, PayloadTooLarge, PermissionDenied, ValidationFailed
from fedele.shared.pagination import paginate

router = Router(tags=["billing: subscriptions"])

StatusLiteral = Literal["trialing", "active", "past_due", "paused", "cancelled", ""]
Timing = Literal["now", "period_end"]


class HistoryOut(Schema):
    kind: str
    effective_on: date
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    proration_credit: Decimal
    proration_charge: Decimal
    note: str
    occurred_at: datetime


class SubscriptionOut(Schema):
    id: UUID
    number: str
    customer_id: UUID
    plan_code: str
    plan_name: str
    plan_version_id: UUID
    plan_version: int
    currency: str
    status: str
    quantity: Decimal
    billing_period: str
    billing_anchor_day: int
    started_on: date
    trial_end: date | None
    current_period_start: date
    current_period_end: date
    next_billing_on: date | None
    auto_renew: bool
    term_end: date | None
    renewal_reminder_days: int
    cancel_at_period_end: bool
    cancelled_at: datetime | None
    ended_on: date | None
    cancellation_reason: str
    paused_on: date | None
    resume_on: date | None
    pending_change: dict[str, Any] | None
    coupon_code: str | None
    coupon_periods_remaining: int | None
    mrr: Decimal
    external_reference: str


class AddOnOut(Schema):
    id: UUID
    plan_code: str
    plan_name: str
    plan_version_id: UUID
    quantity: Decimal
    added_on: date
    removed_on: date | None


class AddOnIn(StrictSchema):
    plan_version_id: UUID
    quantity: Decimal = Field(Decimal(1), gt=0, le=Decimal("1000000"))


class SubscriptionDetailOut(SubscriptionOut):
    history: list[HistoryOut]
    addons: list[AddOnOut]


class SubscriptionPage(Schema):
    items: list[SubscriptionOut]
    next_cursor: str | None


class SubscriptionListQuery(Schema):
    status: StatusLiteral = ""
    plan: str = Field("", max_length=64)
    customer: str = Field("", max_length=64)
    ordering: Literal["created_at", "-created_at", "number", "-number"] = "-created_at"
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


class SubscriptionIn(StrictSchema):
    customer_id: UUID
    plan_version_id: UUID
    quantity: Decimal = Decimal(1)
    start_on: date | None = None
    trial_days: int | None = Field(None, ge=0, le=365)
    coupon_code: str = Field("", max_length=64)
    auto_renew: bool = True
    term_end: date | None = None
    renewal_reminder_days: int = Field(0, ge=0, le=365)
    external_reference: str = Field("", max_length=100)


class ChangeIn(StrictSchema):
    plan_version_id: UUID | None = None
    quantity: Decimal | None = None
    at: Timing = "now"


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
    plan_version_id: UUID
    quantity: Decimal


class PauseIn(StrictSchema):
    at: Timing = "now"
    resume_on: date | None = None


class CancelIn(StrictSchema):
    at: Timing = "period_end"
    reason: str = Field("", max_length=300)
    prorate: bool = True


class CouponIn(StrictSchema):
    code: str = Field(..., min_length=1, max_length=64)


def subscription_row(subscription: Subscription) -> dict[str, Any]:
    return {
        "id": subscription.public_id,
        "number": subscription.number,
        "customer_id": subscription.account.customer.public_id,
        "plan_code": subscription.plan.code,
        "plan_name": subscription.plan.name,
        "plan_version_id": subscription.plan_version.public_id,
        "plan_version": subscription.plan_version.version,
        "currency": subscription.plan_version.currency,
        "status": subscription.status,
        "quantity": subscription.quantity,
        "billing_period": subscription.billing_period,
        "billing_anchor_day": subscription.billing_anchor_day,
        "started_on": subscription.started_on,
        "trial_end": subscription.trial_end,
        "current_period_start": subscription.current_period_start,
        "current_period_end": subscription.current_period_end,
        "next_billing_on": subscription.next_billing_on,
        "auto_renew": subscription.auto_renew,
        "term_end": subscription.term_end,
        "renewal_reminder_days": subscription.renewal_reminder_days,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "cancelled_at": subscription.cancelled_at,
        "ended_on": subscription.ended_on,
        "cancellation_reason": subscription.cancellation_reason,
        "paused_on": subscription.paused_on,
        "resume_on": subscription.resume_on,
        "pending_change": subscription.pending_change,
        "coupon_code": subscription.coupon.code if subscription.coupon_id and subscription.coupon else None,
        "coupon_periods_remaining": subscription.coupon_periods_remaining,
        "mrr": monthly_recurring_revenue(subscription),
        "external_reference": subscription.external_reference,
    }


def _history_row(change: SubscriptionChange) -> dict[str, Any]:
    return {
        "kind": change.kind,
        "effective_on": change.effective_on,
        "before": change.before,
        "after": change.after,
        "proration_credit": change.proration_credit,
        "proration_charge": change.proration_charge,
        "note": change.note,
        "occurred_at": change.occurred_at,
    }


def preview_row(preview: ChangePreview, version: PlanVersion) -> dict[str, Any]:
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
        "plan_version_id": version.public_id,
        "quantity": preview.quantity,
    }


def require_manager(actor: Actor) -> None:
    if not (actor.is_internal and actor.can("billing.manage_billing")):
        raise PermissionDenied("You do not have permission to manage subscriptions.")


def plan_version_by_public_id(public_id: UUID | None) -> PlanVersion | None:
    if public_id is None:
        return None
    version = PlanVersion.objects.select_related("plan", "plan__product").filter(public_id=public_id).first()
    if version is None:
        raise NotFound("Plan version not found.", code="plan_version_not_found")
    return version


def _detail(subscription: Subscription) -> dict[str, Any]:
    row = subscription_row(subscription)
    row["history"] = [_history_row(c) for c in selectors.subscription_history(subscription=subscription)]
    row["addons"] = [
        {
            "id": addon.public_id,
            "plan_code": addon.plan_version.plan.code,
            "plan_name": addon.plan_version.plan.name,
            "plan_version_id": addon.plan_version.public_id,
            "quantity": addon.quantity,
            "added_on": addon.added_on,
            "removed_on": addon.removed_on,
        }
        for addon in subscription.addons.select_related("plan_version__plan").order_by("id")
    ]
    return row


def _managed(request: HttpRequest, subscription_id: UUID) -> tuple[Actor, Subscription]:
    require_scope(request, "write")
    actor = actor_for(request.user)
    subscription = selectors.subscription_get(actor=actor, public_id=str(subscription_id))
    require_manager(actor)
    return actor, subscription


@router.get(
    "/subscriptions", response={200: SubscriptionPage, **ERROR_RESPONSES}, summary="List subscriptions"
)
def list_subscriptions(request: HttpRequest, query: Query[SubscriptionListQuery]) -> JsonResponse:
    require_scope(request, "read")
    actor = actor_for(request.user)
    queryset = selectors.subscription_list(
        actor=actor,
        filters=selectors.SubscriptionFilters(status=query.status, plan=query.plan, customer=query.customer),
    ).prefetch_related("plan_version__charges", "addons__plan_version__charges")
    page = paginate(
        queryset, ordering=query.ordering, allowed=selectors.ORDERINGS, cursor=query.cursor, limit=query.limit
    )
    items = [SubscriptionOut.model_validate(subscription_row(s)).model_dump(mode="json") for s in page.items]
    return JsonResponse({"items": items, "next_cursor": page.next_cursor})


@router.post("/subscriptions", response={201: SubscriptionDetailOut, **ERROR_RESPONSES}, summary="Subscribe")
def create_subscription(request: HttpRequest, payload: SubscriptionIn) -> Status[dict[str, Any]]:
    require_scope(request, "write")
    actor = actor_for(request.user)
    require_manager(actor)
    version = plan_version_by_public_id(payload.plan_version_id)
    assert version is not None
    account = billing_account_for_customer(
        customer_public_id=str(payload.customer_id), currency=version.currency
    )
    subscription = services.subscription_create(
        account=account,
        plan_version=version,
        quantity=payload.quantity,
        start_on=payload.start_on,
        trial_days=payload.trial_days,
        coupon_code=payload.coupon_code,
        auto_renew=payload.auto_renew,
        term_end=payload.term_end,
        renewal_reminder_days=payload.renewal_reminder_days,
        external_reference=payload.external_reference,
        actor_id=actor.user_id,
    )
    return Status(
        201, _detail(selectors.subscription_get(actor=actor, public_id=str(subscription.public_id)))
    )


@router.get(
    "/subscriptions/{subscription_id}",
    response={200: SubscriptionDetailOut, **ERROR_RESPONSES},
    summary="A subscription with its history",
)
def get_subscription(request: HttpRequest, subscription_id: UUID) -> dict[str, Any]:
    require_scope(request, "read")
    return _detail(selectors.subscription_get(actor=actor_for(request.user), public_id=str(subscription_id)))


@router.post(
    "/subscriptions/{subscription_id}/preview-change",
    response={200: PreviewOut, **ERROR_RESPONSES},
    summary="Preview the proration of a plan or quantity change (writes nothing)",
)
def preview_change(request: HttpRequest, subscription_id: UUID, payload: ChangeIn) -> dict[str, Any]:
    require_scope(request, "read")
    # Portal customers may preview their own subscription: the scoped lookup answers 404 otherwise.
    subscription = selectors.subscription_get(actor=actor_for(request.user), public_id=str(subscription_id))
    version = plan_version_by_public_id(payload.plan_version_id)
    preview = services.subscription_preview_change(
        subscription=subscription, plan_version=version, quantity=payload.quantity, at=payload.at
    )
    return preview_row(preview, version or subscription.plan_version)


@router.post(
    "/subscriptions/{subscription_id}/change",
    response={200: SubscriptionDetailOut, **ERROR_RESPONSES},
    summary="Change the plan or quantity now (prorated) or at the period end",
)
def change_subscription(request: HttpRequest, subscription_id: UUID, payload: ChangeIn) -> dict[str, Any]:
    actor, subscription = _managed(request, subscription_id)
    services.subscription_change(
        subscription=subscription,
        plan_version=plan_version_by_public_id(payload.plan_version_id),
        quantity=payload.quantity,
        at=payload.at,
        actor_id=actor.user_id,
    )
    return _detail(selectors.subscription_get(actor=actor, public_id=str(subscription_id)))


@router.post(
    "/subscriptions/{subscription_id}/pause",
    response={200: SubscriptionDetailOut, **ERROR_RESPONSES},
    summary="Pause now or at the period end",
)
def pause_subscription(request: HttpRequest, subscription_id: UUID, payload: PauseIn) -> dict[str, Any]:
    actor, subscription = _managed(request, subscription_id)
    services.subscription_pause(
        subscription=subscription, at=payload.at, resume_on=payload.resume_on, actor_id=actor.user_id
    )
    return _detail(selectors.subscription_get(actor=actor, public_id=str(subscription_id)))


def _simple_action(request: HttpRequest, subscription_id: UUID, action: str) -> dict[str, Any]:
    actor, subscription = _managed(request, subscription_id)
    function = {
        "resume": services.subscription_resume,
        "uncancel": services.subscription_uncancel,
        "reactivate": services.subscription_reactivate,
        "unschedule": services.subscription_unschedule_change,
    }[action]
    function(subscription=subscription, actor_id=actor.user_id)
    return _detail(selectors.subscription_get(actor=actor, public_id=str(subscription_id)))


@router.post(
    "/subscriptions/{subscription_id}/resume",
    response={200: SubscriptionDetailOut, **ERROR_RESPONSES},
    summary="Resume a paused subscription (or withdraw a scheduled pause)",
)
def resume_subscription(request: HttpRequest, subscription_id: UUID) -> dict[str, Any]:
    return _simple_action(request, subscription_id, "resume")


@router.post(
    "/subscriptions/{subscription_id}/cancel",
    response={200: SubscriptionDetailOut, **ERROR_RESPONSES},
    summary="Cancel now (unused days credited) or at the period end",
)
def cancel_subscription(request: HttpRequest, subscription_id: UUID, payload: CancelIn) -> dict[str, Any]:
    actor, subscription = _managed(request, subscription_id)
    services.subscription_cancel(
        subscription=subscription,
        at=payload.at,
        reason=payload.reason,
        prorate=payload.prorate,
        actor_id=actor.user_id,
    )
    return _detail(selectors.subscription_get(actor=actor, public_id=str(subscription_id)))


@router.post(
    "/subscriptions/{subscription_id}/uncancel",
    response={200: SubscriptionDetailOut, **ERROR_RESPONSES},
    summary="Withdraw a cancellation scheduled for the period end",
)
def uncancel_subscription(request: HttpRequest, subscription_id: UUID) -> dict[str, Any]:
    return _simple_action(request, subscription_id, "uncancel")


@router.post(
    "/subscriptions/{subscription_id}/reactivate",
    response={200: SubscriptionDetailOut, **ERROR_RESPONSES},
    summary="Reactivate a cancelled subscription (a new period starts today)",
)
def reactivate_subscription(request: HttpRequest, subscription_id: UUID) -> dict[str, Any]:
    return _simple_action(request, subscription_id, "reactivate")


@router.post(
    "/subscriptions/{subscription_id}/unschedule-change",
    response={200: SubscriptionDetailOut, **ERROR_RESPONSES},
    summary="Withdraw a plan or quantity change scheduled for the period end",
)
def unschedule_change(request: HttpRequest, subscription_id: UUID) -> dict[str, Any]:
    return _simple_action(request, subscription_id, "unschedule")


@router.post(
    "/subscriptions/{subscription_id}/coupon",
    response={200: SubscriptionDetailOut, **ERROR_RESPONSES},
    summary="Apply a coupon",
)
def apply_coupon(request: HttpRequest, subscription_id: UUID, payload: CouponIn) -> dict[str, Any]:
    actor, subscription = _managed(request, subscription_id)
    services.subscription_apply_coupon(
        subscription=subscription, coupon_code=payload.code, actor_id=actor.user_id
    )
    return _detail(selectors.subscription_get(actor=actor, public_id=str(subscription_id)))


@router.post(
    "/subscriptions/{subscription_id}/addons",
    response={200: SubscriptionDetailOut, **ERROR_RESPONSES},
    summary="Add an add-on (prorated for the rest of an invoiced period)",
)
def add_addon(request: HttpRequest, subscription_id: UUID, payload: AddOnIn) -> dict[str, Any]:
    actor, subscription = _managed(request, subscription_id)
    version = plan_version_by_public_id(payload.plan_version_id)
    assert version is not None
    addons.subscription_addon_add(
        subscription=subscription, plan_version=version, quantity=payload.quantity, actor_id=actor.user_id
    )
    return _detail(selectors.subscription_get(actor=actor, public_id=str(subscription_id)))


@router.post(
    "/subscriptions/{subscription_id}/addons/{addon_id}/remove",
    response={200: SubscriptionDetailOut, **ERROR_RESPONSES},
    summary="Remove an add-on (the unused days of an invoiced period are credited)",
)
def remove_addon(request: HttpRequest, subscription_id: UUID, addon_id: UUID) -> dict[str, Any]:
    actor, subscription = _managed(request, subscription_id)
    addon = SubscriptionAddOn.objects.filter(subscription=subscription, public_id=addon_id).first()
    if addon is None:
        raise NotFound("Add-on not found.", code="addon_not_found")
    addons.subscription_addon_remove(addon=addon, actor_id=actor.user_id)
    return _detail(selectors.subscription_get(actor=actor, public_id=str(subscription_id)))


# Stripe-style import ---------------------------------------------------------------------------------


class ImportErrorOut(Schema):
    line: int
    field: str
    message: str


class ImportReportOut(Schema):
    total_rows: int
    valid_rows: int
    invalid_rows: int
    customers_created: int
    customers_matched: int
    subscriptions_created: int
    committed: bool
    dry_run: bool
    mode: str
    errors: list[ImportErrorOut]


@router.post(
    "/subscriptions/import",
    response={200: ImportReportOut, **ERROR_RESPONSES},
    summary="Import a Stripe-style CSV export (dry run by default)",
)
def import_subscriptions(
    request: HttpRequest,
    file: File[UploadedFile],
    price_map: Form[str],
    dry_run: Form[bool] = True,
    mode: Form[Literal["all_or_nothing", "valid_rows"]] = "all_or_nothing",
) -> ImportReport:
    require_scope(request, "write")
    actor = actor_for(request.user)
    if file.size is not None and file.size > settings.FEDELE_MAX_UPLOAD_BYTES:
        raise PayloadTooLarge("The file is too large.", code="file_too_large", fields={"file": "Too large."})
    try:
        raw_map = json.loads(price_map)
    except ValueError as error:
        raise ValidationFailed(
            "The price map is not JSON.", fields={"price_map": "must be a JSON object."}
        ) from error
    if not isinstance(raw_map, dict):
        raise ValidationFailed(
            "The price map is not an object.", fields={"price_map": "must be a JSON object."}
        )
    return subscriptions_import(
        actor=actor, content=file.read(), price_map=valid_price_map(raw_map), dry_run=dry_run, mode=mode
    )


# The literal "/subscriptions/import" must come before "/subscriptions/{subscription_id}".
router.path_operations = {
    "/subscriptions/import": router.path_operations.pop("/subscriptions/import"),
    **router.path_operations,
}

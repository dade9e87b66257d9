"""Billing API: usage ingestion (batch JSON and CSV) and usage as it accrues."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Field, File, Form, Router, Schema, UploadedFile

from fedele.accounts.contracts import Actor
from fedele.accounts.facade import actor_for
from fedele.billing.models import Subscription
from fedele.billing.selectors.usage import current_usage, daily_usage, estimated_total
from fedele.billing.services.usage import MAX_BATCH, IngestResult, usage_ingest, usage_ingest_csv
from fedele.customers.facade import customer_for_user
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import NotFound, PayloadTooLarge, PermissionDenied

router = Router(tags=["billing: usage"])

MAX_CSV_BYTES = 5 * 1024 * 1024


class UsageBatchIn(StrictSchema):
    events: list[dict[str, Any]] = Field(
        ...,
        min_length=1,
        max_length=MAX_BATCH,
        description="Each event: external_id, customer (customer id) or subscription (subscription id), "
        "metric (code), quantity (>= 0, as a string or number), timestamp (ISO 8601 with a zone), "
        "optional properties (object).",
    )
    mode: Literal["all_or_nothing", "good_rows"] = "all_or_nothing"


class RejectedOut(Schema):
    index: int
    reason: str
    fields: dict[str, list[str]]


class IngestOut(Schema):
    accepted: int
    duplicates: int
    rejected: list[RejectedOut]


class CsvIngestOut(Schema):
    accepted: int
    duplicates: int
    rejected: list[RejectedOut] = Field(..., description="index is the CSV line number (header = line 1).")


class MetricUsageOut(Schema):
    metric: str
    name: str
    unit: str
    aggregation: str
    value: str
    estimated_amount: str


class DailyPointOut(Schema):
    day: date
    metric: str
    value: str


class CurrentUsageOut(Schema):
    subscription_id: UUID
    number: str
    currency: str
    period_start: date
    period_end: date
    estimated_total: str
    metrics: list[MetricUsageOut]
    daily: list[DailyPointOut]


def _require_manage(actor: Actor) -> None:
    if not actor.can("billing.manage_billing"):
        raise PermissionDenied("You may not record usage.", code="permission_denied")


def _result(result: IngestResult) -> dict[str, Any]:
    return {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": [{"index": r.index, "reason": r.reason, "fields": r.fields} for r in result.rejected],
    }


@router.post(
    "/usage/events",
    response={200: IngestOut, **ERROR_RESPONSES},
    summary="Record usage events (up to 10,000 per request)",
)
def ingest_events(request: HttpRequest, payload: UsageBatchIn) -> dict[str, Any]:
    require_scope(request, "write")
    actor = actor_for(request.user)
    _require_manage(actor)
    return _result(usage_ingest(events=payload.events, mode=payload.mode, actor_id=actor.user_id))


@router.post(
    "/usage/events/csv",
    response={200: CsvIngestOut, **ERROR_RESPONSES},
    summary="Upload usage as CSV: customer,metric,quantity,timestamp,external_id",
)
def ingest_csv(
    request: HttpRequest,
    file: File[UploadedFile],
    mode: Form[Literal["all_or_nothing", "good_rows"]] = "all_or_nothing",
) -> dict[str, Any]:
    require_scope(request, "write")
    actor = actor_for(request.user)
    _require_manage(actor)
    if (file.size or 0) > MAX_CSV_BYTES:
        raise PayloadTooLarge("The CSV file is larger than 5 MB; split it.", code="file_too_large")
    return _result(usage_ingest_csv(content=file.read(), mode=mode, actor_id=actor.user_id))


def visible_subscription(actor: Actor, public_id: str) -> Subscription:
    """The subscription if the caller may see it: clerks with view_billing, or the portal customer
    who owns it. Anything else is a 404 (no hint that it exists)."""
    subscription = (
        Subscription.objects.select_related("account__customer", "plan_version")
        .filter(public_id=public_id)
        .first()
    )
    if subscription is None:
        raise NotFound("Subscription not found.")
    if actor.is_portal_customer:
        own = customer_for_user(actor.user_id)
        if own is None or own.public_id != subscription.account.customer.public_id:
            raise NotFound("Subscription not found.")
        return subscription
    if not actor.can("billing.view_billing"):
        raise NotFound("Subscription not found.")
    return subscription


@router.get(
    "/subscriptions/{subscription_id}/usage",
    response={200: CurrentUsageOut, **ERROR_RESPONSES},
    summary="Usage of the current period, per metric, with the estimated amount",
)
def get_current_usage(request: HttpRequest, subscription_id: UUID) -> dict[str, Any]:
    require_scope(request, "read")
    subscription = visible_subscription(actor_for(request.user), str(subscription_id))
    rows = current_usage(subscription)
    currency = subscription.plan_version.currency
    return {
        "subscription_id": subscription.public_id,
        "number": subscription.number,
        "currency": currency,
        "period_start": subscription.current_period_start,
        "period_end": subscription.current_period_end,
        "estimated_total": str(estimated_total(rows, currency).amount),
        "metrics": [
            {
                "metric": row.metric_code,
                "name": row.metric_name,
                "unit": row.unit,
                "aggregation": row.aggregation,
                "value": str(row.value),
                "estimated_amount": str(row.estimated_amount.amount),
            }
            for row in rows
        ],
        "daily": [
            {"day": point.day, "metric": point.metric_code, "value": str(point.value)}
            for point in daily_usage(subscription)
        ],
    }

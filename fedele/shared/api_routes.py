"""Kernel API: outbound webhook endpoints, their deliveries and replay."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from fedele.shared import webhooks
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import NotFound, PermissionDenied
from fedele.shared.models import WebhookDelivery, WebhookEndpoint

router = Router(tags=["webhooks"])


def _require(request: HttpRequest, scope: str) -> None:
    require_scope(request, scope)
    if not request.user.has_perm("shared.manage_webhooks"):
        raise PermissionDenied("You do not have permission to manage webhooks.")


class EndpointIn(StrictSchema):
    url: str = Field(..., min_length=8, max_length=500)
    event_types: list[str] = Field(..., min_length=1, max_length=100)
    description: str = Field("", max_length=200)


class EndpointOut(Schema):
    id: UUID
    url: str
    description: str
    event_types: list[str]
    is_active: bool
    created_at: datetime

    @staticmethod
    def resolve_id(obj: WebhookEndpoint) -> UUID:
        return obj.public_id


class EndpointCreatedOut(EndpointOut):
    secret: str


class DeliveryOut(Schema):
    id: UUID
    event_id: UUID
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime

    @staticmethod
    def resolve_id(obj: WebhookDelivery) -> UUID:
        return obj.public_id


@router.get(
    "/webhooks", response={200: list[EndpointOut], **ERROR_RESPONSES}, summary="List webhook endpoints"
)
def list_endpoints(request: HttpRequest) -> list[WebhookEndpoint]:
    _require(request, "read")
    return list(WebhookEndpoint.objects.order_by("id"))


@router.post(
    "/webhooks", response={201: EndpointCreatedOut, **ERROR_RESPONSES}, summary="Subscribe an endpoint"
)
def create_endpoint(request: HttpRequest, payload: EndpointIn) -> Status[WebhookEndpoint]:
    _require(request, "write")
    endpoint = webhooks.endpoint_create(
        url=payload.url, event_types=payload.event_types, description=payload.description
    )
    # The model itself, not EndpointCreatedOut(**values): resolve_id reads obj.public_id.
    return Status(201, endpoint)


@router.get(
    "/webhooks/{endpoint_id}/deliveries",
    response={200: list[DeliveryOut], **ERROR_RESPONSES},
    summary="Delivery log of an endpoint",
)
def list_deliveries(request: HttpRequest, endpoint_id: UUID, limit: int = 50) -> list[WebhookDelivery]:
    _require(request, "read")
    endpoint = WebhookEndpoint.objects.filter(public_id=endpoint_id).first()
    if endpoint is None:
        raise NotFound("Webhook endpoint not found.")
    return list(endpoint.deliveries.order_by("-id")[: max(1, min(limit, 200))])


@router.post(
    "/webhooks/deliveries/{delivery_id}/replay",
    response={200: DeliveryOut, **ERROR_RESPONSES},
    summary="Send a delivery again",
)
def replay_delivery(request: HttpRequest, delivery_id: UUID) -> WebhookDelivery:
    _require(request, "write")
    return webhooks.delivery_replay(delivery_public_id=str(delivery_id))

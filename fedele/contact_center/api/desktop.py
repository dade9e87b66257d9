"""The desktop area's API under /api/v1/contact-center/: the screen pop of a contact, canned replies,
click-to-dial, the live wallboard and the interval statistics WFM and BI tools read. POSTs take an
Idempotency-Key (the middleware replays the first response)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from fedele.accounts.contracts import Actor
from fedele.accounts.facade import actor_for
from fedele.contact_center import facade
from fedele.contact_center.models import Agent
from fedele.contact_center.selectors import desktop as selectors
from fedele.contact_center.selectors.wallboard import wallboard
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import NotFound, PermissionDenied

router = Router(tags=["contact center"])

HANDLE = "contact_center.handle_interactions"
WALLBOARDS = "contact_center.view_wallboards"


def _actor(request: HttpRequest, *, scope: str, permission: str) -> Actor:
    require_scope(request, scope)
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can(permission)):
        raise PermissionDenied(_("You may not do this."), code="permission_denied")
    return actor


def _agent(actor: Actor, *, required: bool) -> Agent | None:
    agent = selectors.agent_for_user(actor.user_id)
    if agent is None and required:
        raise NotFound(_("You are not set up as an agent."), code="not_an_agent")
    return agent


class TicketOut(Schema):
    id: UUID
    number: str
    subject: str
    status: str
    priority: str
    sla_breached: bool
    url: str


class BalanceOut(Schema):
    currency: str
    open_amount: Decimal
    overdue_amount: Decimal
    open_invoices: int
    is_suspended: bool


class InvoiceOut(Schema):
    number: str
    status: str
    currency: str
    total: Decimal
    amount_due: Decimal
    issue_date: Any = None
    due_date: Any = None


class SubscriptionOut(Schema):
    number: str
    plan_name: str
    status: str
    next_billing_on: Any = None


class MembershipOut(Schema):
    programme: str
    programme_name: str
    tier_code: str
    tier_name: str
    available: int


class PastContactOut(Schema):
    id: UUID
    number: str
    channel: str
    state: str
    outcome: str
    created_at: datetime


class SectionOut(Schema):
    key: str
    title: str
    rows: list[tuple[str, str, str]]


class PopEquipmentOut(Schema):
    id: str
    serial_number: str
    name: str
    category: str
    status: str = Field(..., description="active, under_repair or retired")
    status_label: str = Field(..., description="the status in the API user's language")
    installed_on: date | None
    warranty_ends_on: date | None
    under_warranty: bool
    warranty: str = Field(..., description='"under warranty until 31/03/2027" or "out of warranty"')
    site_address: str
    url: str = Field(..., description="the equipment's page in fedele, or empty")


class PopWorkOrderOut(Schema):
    id: str
    number: str = Field(..., description="WO-2026-000042")
    summary: str
    status: str = Field(
        ..., description="new, scheduled, dispatched, en_route, in_progress, on_hold (open states)"
    )
    status_label: str
    priority: str = Field(..., description="low, normal, high or urgent")
    equipment_id: str | None
    equipment_name: str
    window_start: datetime | None = Field(..., description="appointment window start (UTC)")
    window_end: datetime | None
    window: str = Field(..., description='the window in Europe/Rome time, e.g. "mar 8 dic, 10:00–12:00"')
    eta: datetime | None = Field(..., description="expected arrival (the technician's ETA once dispatched)")
    eta_time: str = Field(..., description='"10:40" (Europe/Rome) once dispatched or en route, else empty')
    technician_name: str
    ticket_id: str | None
    url: str = Field(..., description="the work order's page in fedele, or empty")


class PopFieldServiceOut(Schema):
    equipment: list[PopEquipmentOut] = Field(..., description="at most 5")
    equipment_more: int = Field(..., description="how many more the customer has")
    work_orders: list[PopWorkOrderOut] = Field(..., description="open work orders, at most 5")
    work_orders_more: int


class CustomerOut(Schema):
    id: UUID
    number: str
    display_name: str
    email: str
    phone: str
    language: str


class ScreenPopOut(Schema):
    interaction_id: UUID
    customer: CustomerOut | None
    open_tickets: list[TicketOut]
    balance: BalanceOut | None
    invoices: list[InvoiceOut]
    subscriptions: list[SubscriptionOut]
    memberships: list[MembershipOut]
    tier: str | None
    recent_interactions: list[PastContactOut]
    field_service: PopFieldServiceOut | None = Field(
        ..., description="equipment and open work orders; null for an unknown caller or without field service"
    )
    sections: list[SectionOut]


class CannedReplyOut(Schema):
    shortcut: str
    title: str
    text: str


class DialIn(StrictSchema):
    number: str = Field(..., min_length=3, max_length=40)


class DialOut(Schema):
    interaction_id: UUID
    number: str
    to: str
    state: str


class IntervalOut(Schema):
    queue_code: str
    channel: str
    interval_start: datetime
    interval_minutes: int
    offered: int
    answered: int
    abandoned: int
    answered_within_threshold: int
    average_speed_of_answer_seconds: float
    average_handle_seconds: float
    service_level_percent: float | None


class IntervalQuery(Schema):
    start: datetime
    end: datetime
    interval_minutes: int = 30
    queue: str | None = None


class CellOut(Schema):
    value: float | None
    level: str


class ChannelRowOut(Schema):
    channel: str
    waiting: int
    longest_wait_seconds: int
    service_level_percent: CellOut
    average_speed_of_answer_seconds: CellOut
    abandon_rate_percent: CellOut
    offered: int
    answered: int
    abandoned: int


class QueueBoardOut(Schema):
    code: str
    name: str
    service_level_seconds: int
    service_level_target: int
    channels: list[ChannelRowOut]
    agents_by_state: dict[str, int]


class WallboardOut(Schema):
    at: datetime
    time_zone: str
    queues: list[QueueBoardOut]
    agents_by_state: dict[str, int]


def _pop(interaction: Any, pop: selectors.ScreenPop) -> dict[str, Any]:
    customer = pop.customer
    return {
        "interaction_id": interaction.public_id,
        "customer": None
        if customer is None
        else {
            "id": customer.public_id,
            "number": customer.number,
            "display_name": customer.display_name,
            "email": customer.email,
            "phone": customer.phone,
            "language": customer.language,
        },
        "open_tickets": [
            {
                "id": t.public_id,
                "number": t.number,
                "subject": t.subject,
                "status": t.status,
                "priority": t.priority,
                "sla_breached": t.sla_breached,
                "url": t.url,
            }
            for t in pop.open_tickets
        ],
        "balance": None if pop.balance is None else vars_of(pop.balance, BalanceOut),
        "invoices": [vars_of(invoice, InvoiceOut) for invoice in pop.invoices],
        "subscriptions": [vars_of(subscription, SubscriptionOut) for subscription in pop.subscriptions],
        "memberships": [vars_of(member, MembershipOut) for member in pop.memberships],
        "tier": pop.tier,
        "recent_interactions": [
            {
                "id": past.public_id,
                "number": past.number,
                "channel": past.channel,
                "state": past.state,
                "outcome": past.outcome,
                "created_at": past.created_at,
            }
            for past in pop.recent_interactions
        ],
        "field_service": None if pop.field_service is None else _field_service(pop.field_service),
        "sections": [{"key": s.key, "title": str(s.title), "rows": s.rows} for s in pop.extra_sections],
    }


def _field_service(field: selectors.FieldServicePop) -> dict[str, Any]:
    return {
        "equipment": [
            {
                "id": line.equipment.public_id,
                "serial_number": line.equipment.serial_number,
                "name": line.equipment.name,
                "category": line.equipment.category,
                "status": line.equipment.status,
                "status_label": line.equipment.status_label,
                "installed_on": line.equipment.installed_on,
                "warranty_ends_on": line.equipment.warranty_ends_on,
                "under_warranty": line.equipment.under_warranty,
                "warranty": line.warranty,
                "site_address": line.equipment.site_address,
                "url": line.url,
            }
            for line in field.equipment
        ],
        "equipment_more": field.equipment_more,
        "work_orders": [
            {
                "id": line.work_order.public_id,
                "number": line.work_order.number,
                "summary": line.work_order.summary,
                "status": line.work_order.status,
                "status_label": line.work_order.status_label,
                "priority": line.work_order.priority,
                "equipment_id": line.work_order.equipment_public_id,
                "equipment_name": line.work_order.equipment_name,
                "window_start": line.work_order.window_start,
                "window_end": line.work_order.window_end,
                "window": line.window,
                "eta": line.work_order.eta,
                "eta_time": line.eta,
                "technician_name": line.work_order.technician_name,
                "ticket_id": line.work_order.ticket_public_id,
                "url": line.url,
            }
            for line in field.work_orders
        ],
        "work_orders_more": field.work_orders_more,
    }


def vars_of(contract: Any, schema: type[Schema]) -> dict[str, Any]:
    """The fields of a frozen contract that a response schema shows."""
    return {name: getattr(contract, name) for name in schema.model_fields}


@router.get(
    "/desktop/interactions/{interaction_id}/screen-pop",
    response={200: ScreenPopOut, **ERROR_RESPONSES},
    summary="Customer 360 of a contact (screen pop)",
)
def screen_pop(request: HttpRequest, interaction_id: UUID) -> dict[str, Any]:
    actor = _actor(request, scope="read", permission=HANDLE)
    interaction = selectors.interaction_for(actor, _agent(actor, required=False), str(interaction_id))
    return _pop(interaction, selectors.screen_pop(interaction, language=actor.language))


@router.get(
    "/desktop/canned-replies",
    response={200: list[CannedReplyOut], **ERROR_RESPONSES},
    summary="Canned replies, filled in for a contact when one is given",
)
def canned_replies(request: HttpRequest, interaction_id: UUID | None = None) -> list[dict[str, Any]]:
    actor = _actor(request, scope="read", permission=HANDLE)
    agent = _agent(actor, required=False)
    interaction = (
        selectors.interaction_for(actor, agent, str(interaction_id)) if interaction_id is not None else None
    )
    customer = None
    if interaction is not None and interaction.customer_public_id:
        from fedele.customers.facade import customer_summary

        customer = customer_summary(interaction.customer_public_id)
    return [
        {"shortcut": reply.shortcut, "title": reply.title, "text": reply.text}
        for reply in selectors.canned_replies_for(
            interaction, agent, customer=customer, language=actor.language
        )
    ]


@router.post(
    "/desktop/click-to-dial",
    response={201: DialOut, **ERROR_RESPONSES},
    summary="Call a number from the agent's phone (outbound contact)",
)
def click_to_dial(request: HttpRequest, payload: DialIn) -> Status:
    from fedele.contact_center.services.calls import call_originate

    actor = _actor(request, scope="write", permission=HANDLE)
    agent = _agent(actor, required=True)
    if agent is None:  # pragma: no cover - _agent raised already
        raise NotFound(_("You are not set up as an agent."), code="not_an_agent")
    interaction = call_originate(agent=agent, to_number=payload.number)
    return Status(
        201,
        {
            "interaction_id": interaction.public_id,
            "number": interaction.number,
            "to": interaction.to_address,
            "state": interaction.state,
        },
    )


@router.get(
    "/wallboard",
    response={200: WallboardOut, **ERROR_RESPONSES},
    summary="Live wallboard per queue and channel",
)
def wallboard_now(request: HttpRequest, queue: list[str] = Query(default=[])) -> dict[str, Any]:  # noqa: B008
    _actor(request, scope="read", permission=WALLBOARDS)
    board = wallboard(queue_codes=queue or None)
    return {
        "at": board.at,
        "time_zone": board.time_zone,
        "agents_by_state": board.agents_by_state,
        "queues": [
            {
                "code": q.code,
                "name": q.name,
                "service_level_seconds": q.service_level_seconds,
                "service_level_target": q.service_level_target,
                "agents_by_state": q.agents_by_state,
                "channels": [
                    {
                        "channel": row.channel,
                        "waiting": row.waiting.value or 0,
                        "longest_wait_seconds": row.longest_wait_seconds.value or 0,
                        "service_level_percent": {
                            "value": row.service_level_percent.value,
                            "level": row.service_level_percent.level,
                        },
                        "average_speed_of_answer_seconds": {
                            "value": row.average_speed_of_answer_seconds.value,
                            "level": row.average_speed_of_answer_seconds.level,
                        },
                        "abandon_rate_percent": {
                            "value": row.abandon_rate_percent.value,
                            "level": row.abandon_rate_percent.level,
                        },
                        "offered": row.offered,
                        "answered": row.answered,
                        "abandoned": row.abandoned,
                    }
                    for row in q.rows
                ],
            }
            for q in board.queues
        ],
    }


@router.get(
    "/reports/intervals",
    response={200: list[IntervalOut], **ERROR_RESPONSES},
    summary="Interval statistics per queue and channel (what WFM forecasts from)",
)
def intervals(request: HttpRequest, filters: Query[IntervalQuery]) -> list[dict[str, Any]]:
    _actor(request, scope="read", permission=WALLBOARDS)
    stats = facade.interval_stats(
        start=filters.start,
        end=filters.end,
        interval_minutes=filters.interval_minutes,
        queue_code=filters.queue,
    )
    return [vars_of(item, IntervalOut) for item in stats]

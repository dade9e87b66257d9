"""The routing area's API under /api/v1/contact-center/: the caller's agent state, offers
(accept/reject), queues with live counts, interactions (scoped) and enqueue. POSTs take an
Idempotency-Key (the middleware replays the first response)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from fedele.accounts.contracts import Actor
from fedele.accounts.facade import actor_for
from fedele.contact_center.models import Agent, Interaction, Offer, OfferState
from fedele.contact_center.selectors import interactions as interaction_selectors
from fedele.contact_center.selectors import routing as routing_selectors
from fedele.contact_center.services import presence, routing
from fedele.contact_center.services.interactions import interaction_enqueue
from fedele.shared import clock
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import NotFound, PermissionDenied
from fedele.shared.pagination import paginate

router = Router(tags=["contact center"])

HANDLE = "contact_center.handle_interactions"
SUPERVISE = "contact_center.view_all_interactions"


class AgentStateOut(Schema):
    agent_id: UUID
    display_name: str
    state: str
    break_reason: str
    state_since: datetime | None
    wrap_up_until: datetime | None
    load: dict[str, int]
    capacity: dict[str, int]
    break_reasons: list[str]


class AgentStateIn(StrictSchema):
    state: Literal["available", "break", "offline"]
    reason: str = Field("", max_length=40)


class OfferOut(Schema):
    id: UUID
    interaction_id: UUID
    number: str
    channel: str
    queue: str
    state: str
    offered_at: datetime
    expires_at: datetime


class QueueOut(Schema):
    code: str
    name_it: str
    name_en: str
    channels: list[str]
    waiting: int
    offered: int
    longest_wait_seconds: int
    agents_available: int
    agents_busy: int
    agents_logged_in: int


class InteractionOut(Schema):
    id: UUID
    number: str
    channel: str
    network: str
    direction: str
    state: str
    outcome: str
    from_address: str
    to_address: str
    subject: str
    customer_id: str
    ticket_id: str
    queue: str | None
    agent_id: UUID | None
    priority: int
    required_skills: dict[str, int]
    created_at: datetime
    queued_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    wait_seconds: int
    talk_seconds: int
    hold_seconds: int
    after_call_seconds: int
    wrap_up_code: str | None

    @staticmethod
    def resolve_id(obj: Interaction) -> UUID:
        return obj.public_id

    @staticmethod
    def resolve_customer_id(obj: Interaction) -> str:
        return obj.customer_public_id

    @staticmethod
    def resolve_ticket_id(obj: Interaction) -> str:
        return obj.ticket_public_id

    @staticmethod
    def resolve_queue(obj: Interaction) -> str | None:
        return obj.queue.code if obj.queue else None

    @staticmethod
    def resolve_agent_id(obj: Interaction) -> UUID | None:
        return obj.agent.public_id if obj.agent else None

    @staticmethod
    def resolve_wrap_up_code(obj: Interaction) -> str | None:
        return obj.wrap_up_code.code if obj.wrap_up_code else None


class InteractionPage(Schema):
    items: list[InteractionOut]
    next_cursor: str | None


class InteractionListQuery(Schema):
    channel: str = Field("", max_length=10)
    state: str = Field("", max_length=12)
    direction: str = Field("", max_length=10)
    outcome: str = Field("", max_length=16)
    queue: str = Field("", max_length=40)
    customer: str = Field("", max_length=36)
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


class EnqueueIn(StrictSchema):
    queue: str = Field(..., min_length=1, max_length=40)
    required_skills: dict[str, int] = Field(default_factory=dict)
    priority: int | None = Field(None, ge=-1000, le=1000)


def _actor(request: HttpRequest, *, scope: str, permission: str | None = None) -> Actor:
    require_scope(request, scope)
    actor = actor_for(request.user)
    if permission and not actor.can(permission):
        raise PermissionDenied(_("You may not do this."), code="permission_denied")
    return actor


def _own_agent(actor: Actor) -> Agent:
    agent = routing_selectors.agent_for_user(actor.user_id)
    if agent is None:
        raise NotFound(_("You are not set up as an agent."), code="not_an_agent")
    return agent


def _state(agent: Agent) -> dict[str, Any]:
    return {
        "agent_id": agent.public_id,
        "display_name": agent.display_name,
        "state": agent.state,
        "break_reason": agent.break_reason,
        "state_since": agent.state_since,
        "wrap_up_until": agent.wrap_up_until,
        "load": presence.agent_load(agent.pk),
        "capacity": presence.capacity_of(agent),
        "break_reasons": list(presence.break_reasons()),
    }


def _offer(offer: Offer) -> dict[str, Any]:
    return {
        "id": offer.public_id,
        "interaction_id": offer.interaction.public_id,
        "number": offer.interaction.number,
        "channel": offer.interaction.channel,
        "queue": offer.task.queue.code,
        "state": offer.state,
        "offered_at": offer.offered_at,
        "expires_at": offer.expires_at,
    }


@router.get("/agents/me/state", response={200: AgentStateOut, **ERROR_RESPONSES}, summary="My agent state")
def my_state(request: HttpRequest) -> dict[str, Any]:
    actor = _actor(request, scope="read", permission=HANDLE)
    return _state(_own_agent(actor))


@router.post(
    "/agents/me/state",
    response={200: AgentStateOut, **ERROR_RESPONSES},
    summary="Go available, on a break (with a reason) or offline",
)
def set_my_state(request: HttpRequest, payload: AgentStateIn) -> dict[str, Any]:
    actor = _actor(request, scope="write", permission=HANDLE)
    agent = presence.agent_state_set(
        agent=_own_agent(actor), state=payload.state, reason=payload.reason, actor_id=actor.user_id
    )
    return _state(agent)


@router.get("/offers", response={200: list[OfferOut], **ERROR_RESPONSES}, summary="My pending offers")
def my_offers(request: HttpRequest) -> list[dict[str, Any]]:
    actor = _actor(request, scope="read", permission=HANDLE)
    agent = _own_agent(actor)
    rows = (
        Offer.objects.filter(agent=agent, state=OfferState.PENDING, expires_at__gt=clock.now())
        .select_related("interaction", "task__queue")
        .order_by("offered_at", "id")
    )
    return [_offer(offer) for offer in rows]


@router.post(
    "/offers/{offer_id}/accept",
    response={200: InteractionOut, **ERROR_RESPONSES},
    summary="Accept an offer: the contact is connected to me",
)
def accept_offer(request: HttpRequest, offer_id: UUID) -> Interaction:
    actor = _actor(request, scope="write", permission=HANDLE)
    agent = _own_agent(actor)
    interaction = routing.offer_accept(
        offer=routing.offer_get(public_id=str(offer_id), agent=agent), agent=agent
    )
    return interaction_selectors.interaction_get(actor=actor, public_id=str(interaction.public_id))


@router.post(
    "/offers/{offer_id}/reject",
    response={200: OfferOut, **ERROR_RESPONSES},
    summary="Reject an offer: the contact goes to another agent",
)
def reject_offer(request: HttpRequest, offer_id: UUID) -> dict[str, Any]:
    actor = _actor(request, scope="write", permission=HANDLE)
    agent = _own_agent(actor)
    offer = routing.offer_reject(offer=routing.offer_get(public_id=str(offer_id), agent=agent), agent=agent)
    return _offer(Offer.objects.select_related("interaction", "task__queue").get(pk=offer.pk))


@router.get(
    "/queues", response={200: list[QueueOut], **ERROR_RESPONSES}, summary="Queues with live waiting counts"
)
def list_queues(request: HttpRequest) -> list[Any]:
    _actor(request, scope="read", permission=interaction_selectors.VIEW)
    return list(routing_selectors.queue_live())


@router.get(
    "/interactions",
    response={200: InteractionPage, **ERROR_RESPONSES},
    summary="Contacts (agents see their own; supervisors every one)",
)
def list_interactions(request: HttpRequest, params: Query[InteractionListQuery]) -> dict[str, Any]:
    actor = _actor(request, scope="read")
    rows = interaction_selectors.interaction_list(
        actor=actor,
        filters={
            "channel": params.channel,
            "state": params.state,
            "direction": params.direction,
            "outcome": params.outcome,
            "queue": params.queue,
            "customer": params.customer,
        },
    )
    page = paginate(
        rows,
        ordering="-created_at",
        allowed={"created_at": "created_at"},
        cursor=params.cursor,
        limit=params.limit,
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get(
    "/interactions/{interaction_id}", response={200: InteractionOut, **ERROR_RESPONSES}, summary="One contact"
)
def get_interaction(request: HttpRequest, interaction_id: UUID) -> Interaction:
    actor = _actor(request, scope="read")
    return interaction_selectors.interaction_get(actor=actor, public_id=str(interaction_id))


@router.post(
    "/interactions/{interaction_id}/enqueue",
    response={200: InteractionOut, **ERROR_RESPONSES},
    summary="Put a contact in a queue (skills, priority)",
)
def enqueue_interaction(request: HttpRequest, interaction_id: UUID, payload: EnqueueIn) -> Interaction:
    actor = _actor(request, scope="write", permission=HANDLE)
    interaction = interaction_selectors.interaction_get(actor=actor, public_id=str(interaction_id))
    interaction_enqueue(
        interaction=interaction,
        queue_code=payload.queue,
        required_skills=payload.required_skills,
        priority=payload.priority,
    )
    return interaction_selectors.interaction_get(actor=actor, public_id=str(interaction_id))

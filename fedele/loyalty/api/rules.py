"""Loyalty API: earning rules, bonus campaigns, the simulator and the earn endpoint ``POST /events``.
Parse, authorise, call a service or selector; nothing else.

Reads need a token with ``read`` and ``loyalty.view_loyalty``; rule and campaign changes ``write`` and
``loyalty.manage_loyalty``; ``POST /events`` ``write`` and ``loyalty.operate_loyalty`` (201 for a new
event, 200 with the first answer for a replay of the same ``external_id``). The simulator never writes.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from fedele.accounts.facade import Actor, actor_for
from fedele.loyalty.models import Campaign, EarningRule, LoyaltyEvent, Partner, Programme
from fedele.loyalty.selectors import rules as selectors
from fedele.loyalty.services import campaigns as campaign_services
from fedele.loyalty.services import rules as services
from fedele.loyalty.services.rules_engine import EarnEvent, Quote
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

router = Router(tags=["loyalty: earning rules"])

VIEW = "loyalty.view_loyalty"
MANAGE = "loyalty.manage_loyalty"
OPERATE = "loyalty.operate_loyalty"
EventTypeLiteral = Literal[
    "spend", "invoice_paid", "sign_up", "birthday", "referral", "review", "survey_completed", "custom"
]
StatusLiteral = Literal["draft", "active", "paused", "archived"]
AttributeValue = str | int | float | bool | None | list[str | int | float | bool | None]


def _staff(request: HttpRequest, scope: str, permission: str) -> Actor:
    require_scope(request, scope)
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can(permission)):
        raise PermissionDenied(_("You do not have permission for this action."))
    return actor


# -- schemas ---------------------------------------------------------------------------------------


class ConditionSchema(StrictSchema):
    field: str = Field(..., max_length=80)
    op: str = Field(..., max_length=12)
    value: Any = None


class RuleIn(StrictSchema):
    code: str = Field(..., max_length=40)
    name_it: str = Field("", max_length=120)
    name_en: str = Field("", max_length=120)
    event_type: EventTypeLiteral
    custom_event: str = Field("", max_length=60)
    status: Literal["draft", "active"] = "draft"
    position: int = Field(0, ge=0, le=32767)
    conditions: list[ConditionSchema] = Field(default_factory=list, max_length=30)
    points_per_euro: Decimal | None = Field(None, ge=0, max_digits=10, decimal_places=4)
    fixed_points: int = Field(0, ge=0)
    multiplier: Decimal = Field(Decimal("1"), ge=1, max_digits=6, decimal_places=2)
    qualifying: bool = True
    pending: bool | None = None
    campaign: str | None = Field(None, max_length=40, description="Campaign code")
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    cap_per_member_per_day: int | None = Field(None, ge=1)
    cap_per_member_total: int | None = Field(None, ge=1)
    cap_total: int | None = Field(None, ge=1)


class RulePatch(StrictSchema):
    code: str | None = Field(None, max_length=40)
    name_it: str | None = Field(None, max_length=120)
    name_en: str | None = Field(None, max_length=120)
    event_type: EventTypeLiteral | None = None
    custom_event: str | None = Field(None, max_length=60)
    position: int | None = Field(None, ge=0, le=32767)
    conditions: list[ConditionSchema] | None = Field(None, max_length=30)
    points_per_euro: Decimal | None = Field(None, ge=0, max_digits=10, decimal_places=4)
    fixed_points: int | None = Field(None, ge=0)
    multiplier: Decimal | None = Field(None, ge=1, max_digits=6, decimal_places=2)
    qualifying: bool | None = None
    pending: bool | None = None
    campaign: str | None = Field(None, max_length=40)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    cap_per_member_per_day: int | None = Field(None, ge=1)
    cap_per_member_total: int | None = Field(None, ge=1)
    cap_total: int | None = Field(None, ge=1)


class RuleOut(Schema):
    id: UUID
    programme: str
    code: str
    name_it: str
    name_en: str
    event_type: str
    custom_event: str
    status: str
    position: int
    conditions: list[dict[str, Any]]
    points_per_euro: Decimal
    fixed_points: int
    multiplier: Decimal
    qualifying: bool
    pending: bool
    campaign: str | None
    valid_from: datetime | None
    valid_until: datetime | None
    cap_per_member_per_day: int | None
    cap_per_member_total: int | None
    cap_total: int | None
    version: int
    created_at: datetime
    updated_at: datetime


class StatusIn(StrictSchema):
    status: StatusLiteral


class CampaignIn(StrictSchema):
    code: str = Field(..., max_length=40)
    name_it: str = Field("", max_length=120)
    name_en: str = Field("", max_length=120)
    starts_at: datetime
    ends_at: datetime
    holdout_percent: int = Field(10, ge=0, le=90)
    budget_points: int | None = Field(None, ge=1)


class CampaignPatch(StrictSchema):
    code: str | None = Field(None, max_length=40)
    name_it: str | None = Field(None, max_length=120)
    name_en: str | None = Field(None, max_length=120)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    holdout_percent: int | None = Field(None, ge=0, le=90)
    budget_points: int | None = Field(None, ge=1)


class CampaignOut(Schema):
    id: UUID
    programme: str
    code: str
    name_it: str
    name_en: str
    starts_at: datetime
    ends_at: datetime
    holdout_percent: int
    budget_points: int | None
    status: str
    created_at: datetime


class SimulateIn(StrictSchema):
    member: str = Field("", max_length=40, description="Member public id or card number (optional)")
    event_type: EventTypeLiteral
    amount_eur: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    custom_event: str = Field("", max_length=60)
    channel: str = Field("", max_length=40)
    product_categories: list[str] = Field(default_factory=list, max_length=50)
    partner: str = Field("", max_length=40, description="Partner code")
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    occurred_at: datetime | None = None
    first_purchase: bool | None = None
    include_drafts: bool = False
    rules: list[UUID] | None = Field(None, max_length=100, description="Evaluate only these rules")


class QuoteLineOut(Schema):
    rule: str
    rule_id: str
    kind: str
    matched: bool
    skipped: str
    detail: str
    base_points: int
    multiplier: Decimal
    tier_multiplier: Decimal
    uncapped_points: int
    points: int
    capped_by: str
    qualifying: bool
    pending: bool
    campaign: str
    campaign_group: str


class QuoteOut(Schema):
    points: int
    qualifying_points: int
    pending_days: int
    tier_multiplier: Decimal
    day: date | None
    reasons: list[str]
    lines: list[QuoteLineOut]


class EventIn(StrictSchema):
    programme: str = Field(..., max_length=40, description="Programme code")
    member: str = Field(..., max_length=40, description="Member public id or card number")
    event_type: EventTypeLiteral
    external_id: str = Field(..., min_length=1, max_length=120)
    amount_eur: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    custom_event: str = Field("", max_length=60)
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    channel: str = Field("", max_length=40)
    product_categories: list[str] = Field(default_factory=list, max_length=50)
    reference: str = Field("", max_length=80)
    occurred_at: datetime | None = None


class EventOut(Schema):
    id: UUID
    programme: str
    member_id: UUID
    card_number: str
    event_type: str
    custom_event: str
    source: str
    external_id: str
    amount_eur: Decimal | None
    attributes: dict[str, Any]
    occurred_at: datetime
    points: int
    qualifying_points: int
    pending_days: int
    transaction_id: UUID | None
    reasons: list[str]
    lines: list[dict[str, Any]]
    created_at: datetime


class EventListQuery(Schema):
    programme: str = Field(..., max_length=40)
    member: str = Field("", max_length=40)
    event_type: str = Field("", max_length=20)
    limit: int = Field(50, ge=1, le=500)


# -- mapping ---------------------------------------------------------------------------------------


def _rule_out(rule: EarningRule, programme: Programme) -> dict[str, Any]:
    return {
        "id": rule.public_id,
        "programme": programme.code,
        **{name: getattr(rule, name) for name in services.RULE_FIELDS if name != "campaign"},
        "campaign": rule.campaign.code if rule.campaign_id and rule.campaign else None,
        "status": rule.status,
        "version": rule.version,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }


def _campaign_out(campaign: Campaign, programme: Programme) -> dict[str, Any]:
    return {
        "id": campaign.public_id,
        "programme": programme.code,
        "code": campaign.code,
        "name_it": campaign.name_it,
        "name_en": campaign.name_en,
        "starts_at": campaign.starts_at,
        "ends_at": campaign.ends_at,
        "holdout_percent": campaign.holdout_percent,
        "budget_points": campaign.budget_points,
        "status": campaign.status,
        "created_at": campaign.created_at,
    }


def _quote_out(result: Quote) -> dict[str, Any]:
    return {**result.as_json(), "reasons": result.reasons, "tier_multiplier": result.tier_multiplier}


def _event_out(event: LoyaltyEvent, programme: Programme) -> dict[str, Any]:
    result = event.result or {}
    txn = event.transaction if event.transaction_id else None
    return {
        "id": event.public_id,
        "programme": programme.code,
        "member_id": event.member.public_id,
        "card_number": event.member.card_number,
        "event_type": event.event_type,
        "custom_event": event.custom_event,
        "source": event.source,
        "external_id": event.external_id,
        "amount_eur": event.amount_eur,
        "attributes": event.attributes,
        "occurred_at": event.occurred_at,
        "points": int(result.get("points", 0)),
        "qualifying_points": int(result.get("qualifying_points", 0)),
        "pending_days": int(result.get("pending_days", 0)),
        "transaction_id": txn.public_id if txn is not None else None,
        "reasons": list(result.get("reasons", [])),
        "lines": list(result.get("lines", [])),
        "created_at": event.created_at,
    }


def _conditions(payload: dict[str, Any]) -> dict[str, Any]:
    if payload.get("conditions") is not None:
        payload["conditions"] = [dict(condition) for condition in payload["conditions"]]
    return payload


# -- rules -----------------------------------------------------------------------------------------


@router.get(
    "/programmes/{code}/rules",
    response={200: list[RuleOut], **ERROR_RESPONSES},
    summary="List a programme's earning rules",
)
def list_rules(
    request: HttpRequest, code: str, status: str = "", event_type: str = ""
) -> list[dict[str, Any]]:
    _staff(request, "read", VIEW)
    programme = selectors.programme_get(code)
    rows = selectors.rule_list(programme=programme, status=status, event_type=event_type)
    return [_rule_out(rule, programme) for rule in rows]


@router.post(
    "/programmes/{code}/rules",
    response={201: RuleOut, **ERROR_RESPONSES},
    summary="Create an earning rule (draft unless status is active)",
)
def create_rule(request: HttpRequest, code: str, payload: RuleIn) -> Status[dict[str, Any]]:
    actor = _staff(request, "write", MANAGE)
    programme = selectors.programme_get(code)
    data = _conditions(payload.model_dump(exclude_none=True))
    rule = services.rule_create(actor=actor, programme=programme, data=data)
    return Status(201, _rule_out(rule, programme))


@router.get("/rules/{rule_id}", response={200: RuleOut, **ERROR_RESPONSES}, summary="Get an earning rule")
def get_rule(request: HttpRequest, rule_id: UUID) -> dict[str, Any]:
    _staff(request, "read", VIEW)
    rule = selectors.rule_get(rule_id)
    return _rule_out(rule, rule.programme)


@router.patch(
    "/rules/{rule_id}", response={200: RuleOut, **ERROR_RESPONSES}, summary="Change an earning rule"
)
def update_rule(request: HttpRequest, rule_id: UUID, payload: RulePatch) -> dict[str, Any]:
    actor = _staff(request, "write", MANAGE)
    rule = selectors.rule_get(rule_id)
    changes = _conditions(payload.model_dump(exclude_unset=True))
    services.rule_update(actor=actor, rule=rule, changes=changes)
    return _rule_out(selectors.rule_get(rule_id), rule.programme)


@router.post(
    "/rules/{rule_id}/status",
    response={200: RuleOut, **ERROR_RESPONSES},
    summary="Activate, pause or archive an earning rule",
)
def set_rule_status(request: HttpRequest, rule_id: UUID, payload: StatusIn) -> dict[str, Any]:
    actor = _staff(request, "write", MANAGE)
    rule = selectors.rule_get(rule_id)
    services.rule_set_status(actor=actor, rule=rule, status=payload.status)
    return _rule_out(rule, rule.programme)


# -- simulator -------------------------------------------------------------------------------------


@router.post(
    "/programmes/{code}/simulate",
    response={200: QuoteOut, **ERROR_RESPONSES},
    summary="What would this member earn for this event? (writes nothing)",
)
def simulate(request: HttpRequest, code: str, payload: SimulateIn) -> dict[str, Any]:
    _staff(request, "read", VIEW)
    programme = selectors.programme_get(code)
    member = None
    if payload.member:
        member = selectors.member_find(programme, payload.member)
        if member is None:
            raise NotFound(_("Member not found."), code="member_not_found")
    partner_code = ""
    if payload.partner:
        if not Partner.objects.filter(programme=programme, code=payload.partner).exists():
            raise ValidationFailed(
                _("Unknown partner."), code="unknown_partner", fields={"partner": _("Unknown partner.")}
            )
        partner_code = payload.partner
    rules = None
    if payload.rules is not None:
        rules = list(
            EarningRule.objects.filter(programme=programme, public_id__in=payload.rules)
            .select_related("campaign")
            .order_by("position", "id")
        )
        if len(rules) != len(set(payload.rules)):
            raise ValidationFailed(
                _("Unknown rule."), code="unknown_rule", fields={"rules": _("Unknown rule.")}
            )
    event = EarnEvent(
        event_type=payload.event_type,
        amount_eur=payload.amount_eur,
        custom_event=payload.custom_event.strip().lower(),
        channel=payload.channel,
        product_categories=tuple(payload.product_categories),
        partner_code=partner_code,
        attributes=payload.attributes,
        occurred_at=payload.occurred_at,
        first_purchase=payload.first_purchase,
    )
    result = services.quote(
        programme=programme, member=member, event=event, rules=rules, include_drafts=payload.include_drafts
    )
    return _quote_out(result)


# -- campaigns -------------------------------------------------------------------------------------


@router.get(
    "/programmes/{code}/campaigns",
    response={200: list[CampaignOut], **ERROR_RESPONSES},
    summary="List a programme's bonus campaigns",
)
def list_campaigns(request: HttpRequest, code: str, status: str = "") -> list[dict[str, Any]]:
    _staff(request, "read", VIEW)
    programme = selectors.programme_get(code)
    return [
        _campaign_out(row, programme) for row in selectors.campaign_list(programme=programme, status=status)
    ]


@router.post(
    "/programmes/{code}/campaigns",
    response={201: CampaignOut, **ERROR_RESPONSES},
    summary="Create a bonus campaign (draft)",
)
def create_campaign(request: HttpRequest, code: str, payload: CampaignIn) -> Status[dict[str, Any]]:
    actor = _staff(request, "write", MANAGE)
    programme = selectors.programme_get(code)
    campaign = campaign_services.campaign_create(actor=actor, programme=programme, data=payload.model_dump())
    return Status(201, _campaign_out(campaign, programme))


@router.get(
    "/campaigns/{campaign_id}", response={200: CampaignOut, **ERROR_RESPONSES}, summary="Get a campaign"
)
def get_campaign(request: HttpRequest, campaign_id: UUID) -> dict[str, Any]:
    _staff(request, "read", VIEW)
    campaign = selectors.campaign_get(campaign_id)
    return _campaign_out(campaign, campaign.programme)


@router.patch(
    "/campaigns/{campaign_id}", response={200: CampaignOut, **ERROR_RESPONSES}, summary="Change a campaign"
)
def update_campaign(request: HttpRequest, campaign_id: UUID, payload: CampaignPatch) -> dict[str, Any]:
    actor = _staff(request, "write", MANAGE)
    campaign = selectors.campaign_get(campaign_id)
    campaign_services.campaign_update(
        actor=actor, campaign=campaign, changes=payload.model_dump(exclude_unset=True)
    )
    return _campaign_out(campaign, campaign.programme)


@router.post(
    "/campaigns/{campaign_id}/status",
    response={200: CampaignOut, **ERROR_RESPONSES},
    summary="Activate, pause or archive a campaign",
)
def set_campaign_status(request: HttpRequest, campaign_id: UUID, payload: StatusIn) -> dict[str, Any]:
    actor = _staff(request, "write", MANAGE)
    campaign = selectors.campaign_get(campaign_id)
    campaign_services.campaign_set_status(actor=actor, campaign=campaign, status=payload.status)
    return _campaign_out(campaign, campaign.programme)


# -- events: the earn endpoint ---------------------------------------------------------------------


def event_fields(payload: EventIn) -> dict[str, Any]:
    """The request's event as the services take it (source ``api``); shared with the fast path."""
    return {
        "event_type": payload.event_type,
        "source": "api",
        "external_id": payload.external_id,
        "amount_eur": payload.amount_eur,
        "custom_event": payload.custom_event,
        "attributes": payload.attributes,
        "channel": payload.channel,
        "product_categories": payload.product_categories,
        "reference": payload.reference,
        "occurred_at": payload.occurred_at,
    }


def external_id_reused() -> Conflict:
    """A replay names another member's event (never shown under this member): the endpoint's 409."""
    return Conflict(
        _("This external id was already used for another member."),
        code="external_id_reused",
        fields={"external_id": _("Already used.")},
    )


@router.post(
    "/events",
    response={200: EventOut, 201: EventOut, **ERROR_RESPONSES},
    summary="Record an event and earn points by the rules (201 new, 200 replay of the same external_id)",
)
def record_event(request: HttpRequest, payload: EventIn) -> Status[dict[str, Any]]:
    actor = _staff(request, "write", OPERATE)
    programme = selectors.programme_get(payload.programme)
    member = selectors.member_find(programme, payload.member)
    if member is None:
        raise NotFound(_("Member not found."), code="member_not_found")
    member.programme = programme
    event, created = services.event_record_with_status(
        actor=actor, programme=programme, member=member, **event_fields(payload)
    )
    if event.member_id != member.pk:
        # A replay names the first event's member; never show another member's event under this one.
        raise external_id_reused()
    event.member = member
    return Status(201 if created else 200, _event_out(event, programme))


@router.get(
    "/events", response={200: list[EventOut], **ERROR_RESPONSES}, summary="Recent events of a programme"
)
def list_events(request: HttpRequest, query: Query[EventListQuery]) -> list[dict[str, Any]]:
    _staff(request, "read", VIEW)
    programme = selectors.programme_get(query.programme)
    member = None
    if query.member:
        member = selectors.member_find(programme, query.member)
        if member is None:
            raise NotFound(_("Member not found."), code="member_not_found")
    rows = selectors.event_list(
        programme=programme, member=member, event_type=query.event_type, limit=query.limit
    )
    return [_event_out(row, programme) for row in rows]


@router.get("/events/{event_id}", response={200: EventOut, **ERROR_RESPONSES}, summary="Get an event")
def get_event(request: HttpRequest, event_id: UUID) -> dict[str, Any]:
    _staff(request, "read", VIEW)
    event = selectors.event_get(event_id)
    return _event_out(event, event.programme)

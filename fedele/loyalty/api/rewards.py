"""Loyalty API: the rewards catalogue, voucher code pools and redemptions.

Reading the catalogue needs ``loyalty.view_loyalty`` (scope "read"); editing it
``loyalty.manage_loyalty`` (scope "write"); redeeming on a member's behalf, confirming, cancelling
and shipping ``loyalty.operate_loyalty``. A portal customer may read the catalogue of their own
membership and redeem, confirm (no cash part) or cancel (while reserved) for it; any other member or
redemption answers 404. ``POST /members/{id}/redemptions`` needs an ``Idempotency-Key`` header: the
same key returns the same redemption.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from fedele.accounts.facade import Actor, actor_for
from fedele.loyalty.models import Member, Redemption, Reward
from fedele.loyalty.selectors import rewards as selectors
from fedele.loyalty.services import rewards as services
from fedele.loyalty.services.ledger_core import owns_member, portal_customer_id
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import NotFound, PermissionDenied
from fedele.shared.pagination import paginate

router = Router(tags=["loyalty: rewards"])

KindLiteral = Literal["voucher", "billing_credit", "physical", "partner", "donation"]
VIEW = "loyalty.view_loyalty"
MAX_IMPORT_CHARACTERS = 5_000_000


# -- schemas ---------------------------------------------------------------------------------------


class RewardFields(StrictSchema):
    description_it: str | None = Field(None, max_length=5_000)
    description_en: str | None = Field(None, max_length=5_000)
    image_url: str | None = Field(None, max_length=300)
    cash_price: Decimal | None = None
    credit_amount: Decimal | None = None
    stock: int | None = None
    per_member_limit: int | None = None
    eligible_tiers: list[str] | None = Field(None, max_length=50)
    eligible_segments: list[str] | None = Field(None, max_length=10)
    partner: str | None = Field(None, max_length=40, description="The partner's code (partner rewards).")
    charity_name: str | None = Field(None, max_length=120)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    active: bool | None = None
    position: int | None = None


class RewardIn(RewardFields):
    code: str = Field(..., max_length=40)
    kind: KindLiteral
    name_it: str = Field(..., max_length=120)
    name_en: str = Field(..., max_length=120)
    points_cost: int


class RewardPatch(RewardFields):
    code: str | None = Field(None, max_length=40)
    kind: KindLiteral | None = None
    name_it: str | None = Field(None, max_length=120)
    name_en: str | None = Field(None, max_length=120)
    points_cost: int | None = None


class RewardOut(Schema):
    id: UUID
    programme: str
    code: str
    kind: str
    name_it: str
    name_en: str
    description_it: str
    description_en: str
    image_url: str
    points_cost: int
    cash_price: Decimal
    credit_amount: Decimal
    stock: int | None
    per_member_limit: int | None
    eligible_tiers: list[str]
    eligible_segments: list[str]
    partner: str | None
    charity_name: str
    valid_from: datetime | None
    valid_until: datetime | None
    active: bool
    position: int
    codes_available: int
    codes_reserved: int
    codes_issued: int
    redemptions: int


class OfferOut(Schema):
    reward: RewardOut
    redeemable: bool
    reasons: list[str]
    messages: list[str]


class GenerateIn(StrictSchema):
    count: int = Field(..., ge=1, le=100_000)
    prefix: str = Field("", max_length=20)
    length: int = Field(10, ge=6, le=32)


class GenerateOut(Schema):
    generated: int
    codes_available: int


class ImportIn(StrictSchema):
    csv: str = Field(..., min_length=1, max_length=MAX_IMPORT_CHARACTERS)


class ImportOut(Schema):
    imported: int
    lines: int
    skipped_blank: int
    codes_available: int


class AddressIn(StrictSchema):
    name: str = Field(..., max_length=120)
    street: str = Field(..., max_length=200)
    city: str = Field(..., max_length=80)
    postcode: str = Field(..., max_length=12)
    country: str = Field(..., max_length=2)
    province: str = Field("", max_length=40)
    phone: str = Field("", max_length=30)


class RedemptionIn(StrictSchema):
    reward_id: UUID
    quantity: int = Field(1, ge=1, le=1_000)
    shipping_address: AddressIn | None = None
    confirm: bool = True


class ReasonIn(StrictSchema):
    reason: str = Field(..., min_length=1, max_length=200)


class ShipIn(StrictSchema):
    tracking: str = Field(..., min_length=1, max_length=120)


class RedemptionOut(Schema):
    id: UUID
    reward_id: UUID
    reward_code: str
    kind: str
    member_id: UUID
    card_number: str
    state: str
    points: int
    cash_amount: Decimal
    voucher_code: str | None
    billing_charge_id: str
    shipping_address: dict[str, str]
    tracking: str
    reservation_state: str
    reservation_expires_at: datetime
    created_at: datetime
    fulfilled_at: datetime | None


class RedemptionPage(Schema):
    items: list[RedemptionOut]
    next_cursor: str | None


class RedemptionQuery(Schema):
    programme: str = Field("", max_length=40)
    state: str = Field("", max_length=100)
    kind: str = Field("", max_length=20)
    reward: str = Field("", max_length=36)
    member: str = Field("", max_length=36)
    created_from: str = Field("", max_length=40)
    created_to: str = Field("", max_length=40)
    ordering: Literal["-id", "id", "-created", "created"] = "-id"
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


class CatalogueQuery(Schema):
    kind: KindLiteral | None = None
    active: bool | None = None
    q: str = Field("", max_length=100)


# -- helpers ---------------------------------------------------------------------------------------


def _actor(request: HttpRequest, scope: str) -> Actor:
    require_scope(request, scope)
    return actor_for(request.user)


def _staff(actor: Actor) -> None:
    if actor.is_portal_customer or not actor.can(VIEW):
        raise PermissionDenied(_("You do not have permission to see the rewards catalogue."))


def _member_for(actor: Actor, member_id: UUID) -> Member:
    """Staff see every member; a portal customer only their own (anything else is 404, never 403)."""
    member = selectors.member_get(member_id)
    if actor.can(VIEW) and not actor.is_portal_customer:
        return member
    if owns_member(actor, member):
        return member
    raise NotFound(_("Member not found."), code="member_not_found")


def _visible_redemptions(actor: Actor, filters: dict[str, Any] | None = None) -> QuerySet[Redemption]:
    """Staff see every redemption, a portal customer their own, a partner those of its rewards."""
    rows = Redemption.objects.all()
    if not (actor.can(VIEW) and not actor.is_portal_customer):
        customer_id = portal_customer_id(actor) if actor.is_portal_customer else None
        if customer_id is not None:
            rows = rows.filter(member__customer_id=customer_id)
        elif actor.is_partner and actor.organisation_id is not None:
            rows = rows.filter(reward__partner__organisation_id=actor.organisation_id)
        else:
            rows = rows.none()
    return selectors.redemption_list(filters, rows=rows)


def _redemption_for(actor: Actor, redemption_id: UUID) -> Redemption:
    redemption = _visible_redemptions(actor).filter(public_id=redemption_id).first()
    if redemption is None:
        raise NotFound(_("Redemption not found."), code="redemption_not_found")
    return redemption


def _reward_out(reward: Reward) -> dict[str, Any]:
    return {
        "id": reward.public_id,
        "programme": reward.programme.code,
        "code": reward.code,
        "kind": reward.kind,
        "name_it": reward.name_it,
        "name_en": reward.name_en,
        "description_it": reward.description_it,
        "description_en": reward.description_en,
        "image_url": reward.image_url,
        "points_cost": reward.points_cost,
        "cash_price": reward.cash_price,
        "credit_amount": reward.credit_amount,
        "stock": reward.stock,
        "per_member_limit": reward.per_member_limit,
        "eligible_tiers": list(reward.eligible_tiers or []),
        "eligible_segments": list(reward.eligible_segments or []),
        "partner": reward.partner.code if reward.partner_id and reward.partner else None,
        "charity_name": reward.charity_name,
        "valid_from": reward.valid_from,
        "valid_until": reward.valid_until,
        "active": reward.active,
        "position": reward.position,
        "codes_available": int(getattr(reward, "codes_available", 0)),
        "codes_reserved": int(getattr(reward, "codes_reserved", 0)),
        "codes_issued": int(getattr(reward, "codes_issued", 0)),
        "redemptions": int(getattr(reward, "redemptions_count", 0)),
    }


def _redemption_out(redemption: Redemption) -> dict[str, Any]:
    reservation = redemption.reservation
    return {
        "id": redemption.public_id,
        "reward_id": redemption.reward.public_id,
        "reward_code": redemption.reward.code,
        "kind": redemption.reward.kind,
        "member_id": redemption.member.public_id,
        "card_number": redemption.member.card_number,
        "state": redemption.state,
        "points": redemption.points,
        "cash_amount": redemption.cash_amount,
        "voucher_code": redemption.voucher.code if redemption.voucher_id and redemption.voucher else None,
        "billing_charge_id": redemption.billing_charge_id,
        "shipping_address": dict(redemption.shipping_address or {}),
        "tracking": redemption.tracking,
        "reservation_state": reservation.state,
        "reservation_expires_at": reservation.expires_at,
        "created_at": redemption.created_at,
        "fulfilled_at": redemption.fulfilled_at,
    }


def _fresh_redemption(redemption: Redemption) -> dict[str, Any]:
    return _redemption_out(selectors.redemption_get(redemption.public_id))


# -- catalogue -------------------------------------------------------------------------------------


@router.get(
    "/programmes/{code}/rewards",
    response={200: list[RewardOut], **ERROR_RESPONSES},
    summary="List a programme's rewards (with stock and code-pool figures)",
)
def list_rewards(request: HttpRequest, code: str, query: Query[CatalogueQuery]) -> list[dict[str, Any]]:
    actor = _actor(request, "read")
    _staff(actor)
    programme = selectors.programme_get(code)
    rows = selectors.reward_list(
        programme=programme, kind=query.kind or "", active=query.active, query=query.q
    )
    return [_reward_out(reward) for reward in rows]


@router.post(
    "/programmes/{code}/rewards",
    response={201: RewardOut, **ERROR_RESPONSES},
    summary="Add a reward to the catalogue",
)
def create_reward(request: HttpRequest, code: str, payload: RewardIn) -> Status[dict[str, Any]]:
    actor = _actor(request, "write")
    programme = selectors.programme_get(code)
    reward = services.reward_create(
        actor=actor, programme=programme, data=payload.model_dump(exclude_unset=True)
    )
    return Status(201, _reward_out(selectors.reward_get(reward.public_id)))


@router.get("/rewards/{reward_id}", response={200: RewardOut, **ERROR_RESPONSES}, summary="Get a reward")
def get_reward(request: HttpRequest, reward_id: UUID) -> dict[str, Any]:
    actor = _actor(request, "read")
    _staff(actor)
    return _reward_out(selectors.reward_get(reward_id))


@router.patch("/rewards/{reward_id}", response={200: RewardOut, **ERROR_RESPONSES}, summary="Update a reward")
def update_reward(request: HttpRequest, reward_id: UUID, payload: RewardPatch) -> dict[str, Any]:
    actor = _actor(request, "write")
    reward = selectors.reward_get(reward_id)
    services.reward_update(actor=actor, reward=reward, changes=payload.model_dump(exclude_unset=True))
    return _reward_out(selectors.reward_get(reward_id))


@router.post(
    "/rewards/{reward_id}/codes",
    response={201: GenerateOut, **ERROR_RESPONSES},
    summary="Generate unique voucher codes",
)
def generate_codes(request: HttpRequest, reward_id: UUID, payload: GenerateIn) -> Status[dict[str, Any]]:
    actor = _actor(request, "write")
    reward = selectors.reward_get(reward_id)
    generated = services.voucher_codes_generate(
        actor=actor, reward=reward, count=payload.count, prefix=payload.prefix, length=payload.length
    )
    figures = selectors.stock_figures(reward)
    return Status(201, {"generated": generated, "codes_available": figures.codes_available})


@router.post(
    "/rewards/{reward_id}/codes/import",
    response={201: ImportOut, **ERROR_RESPONSES},
    summary="Import voucher codes (CSV, one code per line; all or nothing)",
)
def import_codes(request: HttpRequest, reward_id: UUID, payload: ImportIn) -> Status[dict[str, Any]]:
    actor = _actor(request, "write")
    reward = selectors.reward_get(reward_id)
    result = services.voucher_codes_import(actor=actor, reward=reward, csv_text=payload.csv)
    figures = selectors.stock_figures(reward)
    return Status(
        201,
        {
            "imported": result.imported,
            "lines": result.lines,
            "skipped_blank": result.skipped_blank,
            "codes_available": figures.codes_available,
        },
    )


@router.get(
    "/members/{member_id}/rewards",
    response={200: list[OfferOut], **ERROR_RESPONSES},
    summary="The catalogue as one member sees it, with the reasons a reward cannot be redeemed",
)
def member_rewards(request: HttpRequest, member_id: UUID) -> list[dict[str, Any]]:
    actor = _actor(request, "read")
    member = _member_for(actor, member_id)
    return [
        {
            "reward": _reward_out(offer.reward),
            "redeemable": offer.redeemable,
            "reasons": offer.reasons,
            "messages": offer.messages,
        }
        for offer in selectors.rewards_for_member(member)
    ]


# -- redemptions -----------------------------------------------------------------------------------


@router.post(
    "/members/{member_id}/redemptions",
    response={201: RedemptionOut, **ERROR_RESPONSES},
    summary="Redeem a reward for a member (Idempotency-Key header required)",
)
def redeem(request: HttpRequest, member_id: UUID, payload: RedemptionIn) -> Status[dict[str, Any]]:
    actor = _actor(request, "write")
    member = _member_for(actor, member_id)
    reward = Reward.objects.select_related("partner", "programme").filter(public_id=payload.reward_id).first()
    if reward is None or reward.programme_id != member.programme_id:
        raise NotFound(_("Reward not found."), code="reward_not_found")
    address = payload.shipping_address.model_dump() if payload.shipping_address else None
    redemption = services.reward_redeem(
        actor=actor,
        member=member,
        reward=reward,
        idempotency_key=request.headers.get("Idempotency-Key", ""),
        quantity=payload.quantity,
        shipping_address={k: v for k, v in address.items() if v} if address else None,
        confirm=payload.confirm,
    )
    return Status(201, _fresh_redemption(redemption))


@router.get("/redemptions", response={200: RedemptionPage, **ERROR_RESPONSES}, summary="List redemptions")
def list_redemptions(request: HttpRequest, query: Query[RedemptionQuery]) -> dict[str, Any]:
    actor = _actor(request, "read")
    filters = query.model_dump(exclude={"ordering", "cursor", "limit"})
    rows = _visible_redemptions(actor, filters)
    page = paginate(
        rows,
        ordering=query.ordering,
        allowed=selectors.REDEMPTION_ORDERING,
        cursor=query.cursor,
        limit=query.limit,
    )
    return {"items": [_redemption_out(row) for row in page.items], "next_cursor": page.next_cursor}


@router.get(
    "/redemptions/{redemption_id}",
    response={200: RedemptionOut, **ERROR_RESPONSES},
    summary="Get a redemption",
)
def get_redemption(request: HttpRequest, redemption_id: UUID) -> dict[str, Any]:
    return _redemption_out(_redemption_for(_actor(request, "read"), redemption_id))


@router.post(
    "/redemptions/{redemption_id}/confirm",
    response={200: RedemptionOut, **ERROR_RESPONSES},
    summary="Confirm a reserved redemption (e.g. once the cash part is paid)",
)
def confirm_redemption(request: HttpRequest, redemption_id: UUID) -> dict[str, Any]:
    actor = _actor(request, "write")
    redemption = _redemption_for(actor, redemption_id)
    return _fresh_redemption(services.redemption_confirm(actor=actor, redemption=redemption))


@router.post(
    "/redemptions/{redemption_id}/cancel",
    response={200: RedemptionOut, **ERROR_RESPONSES},
    summary="Cancel a redemption (points, stock and code given back)",
)
def cancel_redemption(request: HttpRequest, redemption_id: UUID, payload: ReasonIn) -> dict[str, Any]:
    actor = _actor(request, "write")
    redemption = _redemption_for(actor, redemption_id)
    return _fresh_redemption(
        services.redemption_cancel(actor=actor, redemption=redemption, reason=payload.reason)
    )


@router.post(
    "/redemptions/{redemption_id}/ship",
    response={200: RedemptionOut, **ERROR_RESPONSES},
    summary="Mark a physical reward shipped",
)
def ship_redemption(request: HttpRequest, redemption_id: UUID, payload: ShipIn) -> dict[str, Any]:
    actor = _actor(request, "write")
    redemption = _redemption_for(actor, redemption_id)
    return _fresh_redemption(
        services.redemption_ship(actor=actor, redemption=redemption, tracking=payload.tracking)
    )

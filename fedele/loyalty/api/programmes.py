"""Loyalty API: programmes, their tiers, members' tier progress and manual tier changes.

Reading needs ``loyalty.view_loyalty`` (token scope "read"), configuring ``loyalty.manage_loyalty``
(scope "write"); a manual tier change needs operate or manage. A portal customer may read the tier
progress of their own membership only; any other member id answers 404.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status

from fedele.accounts.facade import Actor, actor_for
from fedele.loyalty.models import Member, Programme, Tier
from fedele.loyalty.selectors import programmes as selectors
from fedele.loyalty.selectors.tiers import tier_progress
from fedele.loyalty.services import programmes as services
from fedele.loyalty.services.tiers import tier_set_manual
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import NotFound, ValidationFailed

router = Router(tags=["loyalty: programmes and tiers"])


def _actor(request: HttpRequest, scope: str) -> Actor:
    require_scope(request, scope)
    return actor_for(request.user)


def _programme(request: HttpRequest, code: str, scope: str = "read") -> tuple[Actor, Programme]:
    actor = _actor(request, scope)
    return actor, selectors.programme_get(actor=actor, code=code)


# -- schemas ---------------------------------------------------------------------------------------


class ProgrammeFields(StrictSchema):
    name_it: str | None = Field(None, max_length=200)
    name_en: str | None = Field(None, max_length=200)
    currency_name_it: str | None = Field(None, max_length=100)
    currency_name_en: str | None = Field(None, max_length=100)
    timezone: str | None = Field(None, max_length=64)
    point_value: Decimal | None = None
    rounding: str | None = None
    points_per_euro: Decimal | None = None
    expiry_policy: str | None = None
    expiry_months: int | None = None
    expiry_years: int | None = None
    expiry_notice_days: int | None = None
    pending_days: int | None = None
    negative_balance_policy: str | None = None
    max_points_per_transaction: int | None = None
    tier_metric: str | None = None
    tier_window: str | None = None
    transfer_max_points: int | None = None
    transfer_max_points_per_month: int | None = None
    household_max_members: int | None = None
    reservation_minutes: int | None = None
    velocity_max_earns_per_hour: int | None = None
    velocity_max_points_per_day: int | None = None
    forfeit_on_cancellation: bool | None = None
    is_coalition: bool | None = None


class ProgrammeIn(ProgrammeFields):
    code: str = Field(..., max_length=60)
    name_it: str = Field(..., max_length=200)
    name_en: str = Field(..., max_length=200)


class ProgrammePatch(ProgrammeFields):
    code: str | None = Field(None, max_length=60)


class StatusIn(StrictSchema):
    status: str = Field(..., max_length=20)


class TierFields(StrictSchema):
    name_it: str | None = Field(None, max_length=200)
    name_en: str | None = Field(None, max_length=200)
    threshold: Decimal | None = None
    earn_multiplier: Decimal | None = None
    support_priority: int | None = None
    benefits: list[str] | None = Field(None, max_length=50)
    color: str | None = Field(None, max_length=20)


class TierIn(TierFields):
    code: str = Field(..., max_length=60)
    name_it: str = Field(..., max_length=200)
    name_en: str = Field(..., max_length=200)
    rank: int | None = None


class TierPatch(TierFields):
    code: str | None = Field(None, max_length=60)
    rank: int | None = None


class TierOut(Schema):
    code: str
    name_it: str
    name_en: str
    rank: int
    threshold: Decimal
    earn_multiplier: Decimal
    support_priority: int
    benefits: list[str]
    color: str


class ProgrammeOut(Schema):
    id: UUID
    code: str
    name_it: str
    name_en: str
    currency_name_it: str
    currency_name_en: str
    status: str
    timezone: str
    point_value: Decimal
    rounding: str
    points_per_euro: Decimal
    expiry_policy: str
    expiry_months: int
    expiry_years: int
    expiry_notice_days: int
    pending_days: int
    negative_balance_policy: str
    max_points_per_transaction: int
    tier_metric: str
    tier_window: str
    transfer_max_points: int
    transfer_max_points_per_month: int
    household_max_members: int
    reservation_minutes: int
    velocity_max_earns_per_hour: int
    velocity_max_points_per_day: int
    forfeit_on_cancellation: bool
    is_coalition: bool
    tiers: list[TierOut]


class TierRef(Schema):
    code: str
    name_it: str
    name_en: str
    rank: int


class TierProgressOut(Schema):
    member_id: UUID
    programme: str
    tier: TierRef | None
    next_tier: TierRef | None
    metric: str
    window: str
    value: Decimal
    next_threshold: Decimal | None
    percent: int
    remaining: Decimal | None
    review_on: date | None
    valid_until: date | None
    keep_threshold: Decimal | None
    keep_value: Decimal | None
    keep_remaining: Decimal | None


class ManualTierIn(StrictSchema):
    tier: str = Field(..., max_length=60)
    reason: str = Field(..., max_length=400)


class MemberTierOut(Schema):
    member_id: UUID
    tier: TierRef | None
    tier_since: datetime | None
    tier_review_on: date | None


# -- serialisers -----------------------------------------------------------------------------------


def _tier_out(tier: Tier) -> dict[str, Any]:
    return {name: getattr(tier, name) for name in TierOut.model_fields}


def _tier_ref(tier: Tier | None) -> dict[str, Any] | None:
    if tier is None:
        return None
    return {"code": tier.code, "name_it": tier.name_it, "name_en": tier.name_en, "rank": tier.rank}


def _programme_out(programme: Programme, tiers: list[Tier] | None = None) -> dict[str, Any]:
    data = {
        name: getattr(programme, name) for name in ProgrammeOut.model_fields if name not in ("id", "tiers")
    }
    data["id"] = programme.public_id
    data["tiers"] = [
        _tier_out(tier) for tier in (tiers if tiers is not None else selectors.tier_list(programme))
    ]
    return data


# -- programmes ------------------------------------------------------------------------------------


@router.get("/programmes", response={200: list[ProgrammeOut], **ERROR_RESPONSES}, summary="List programmes")
def list_programmes(request: HttpRequest) -> list[dict[str, Any]]:
    actor = _actor(request, "read")
    programmes = selectors.programme_list(actor=actor).prefetch_related("tiers")
    return [_programme_out(p, sorted(p.tiers.all(), key=lambda t: t.rank)) for p in programmes]


@router.post(
    "/programmes", response={201: ProgrammeOut, **ERROR_RESPONSES}, summary="Create a programme (draft)"
)
def create_programme(request: HttpRequest, payload: ProgrammeIn) -> Status[dict[str, Any]]:
    actor = _actor(request, "write")
    programme = services.programme_create(actor=actor, data=payload.model_dump(exclude_unset=True))
    return Status(201, _programme_out(programme, []))


@router.get("/programmes/{code}", response={200: ProgrammeOut, **ERROR_RESPONSES}, summary="Get a programme")
def get_programme(request: HttpRequest, code: str) -> dict[str, Any]:
    _, programme = _programme(request, code)
    return _programme_out(programme)


@router.patch(
    "/programmes/{code}", response={200: ProgrammeOut, **ERROR_RESPONSES}, summary="Change settings"
)
def update_programme(request: HttpRequest, code: str, payload: ProgrammePatch) -> dict[str, Any]:
    actor, programme = _programme(request, code, "write")
    changes = payload.model_dump(exclude_unset=True)
    programme = services.programme_update(actor=actor, programme=programme, changes=changes)
    return _programme_out(programme)


@router.post(
    "/programmes/{code}/status",
    response={200: ProgrammeOut, **ERROR_RESPONSES},
    summary="Activate or close a programme (draft → active → closed)",
)
def set_programme_status(request: HttpRequest, code: str, payload: StatusIn) -> dict[str, Any]:
    actor, programme = _programme(request, code, "write")
    programme = services.programme_set_status(actor=actor, programme=programme, status=payload.status)
    return _programme_out(programme)


# -- tiers -----------------------------------------------------------------------------------------


@router.get(
    "/programmes/{code}/tiers", response={200: list[TierOut], **ERROR_RESPONSES}, summary="List tiers"
)
def list_tiers(request: HttpRequest, code: str) -> list[dict[str, Any]]:
    _, programme = _programme(request, code)
    return [_tier_out(tier) for tier in selectors.tier_list(programme)]


@router.post("/programmes/{code}/tiers", response={201: TierOut, **ERROR_RESPONSES}, summary="Add a tier")
def create_tier(request: HttpRequest, code: str, payload: TierIn) -> Status[dict[str, Any]]:
    actor, programme = _programme(request, code, "write")
    data = payload.model_dump(exclude_unset=True)
    return Status(201, _tier_out(services.tier_create(actor=actor, programme=programme, data=data)))


@router.patch(
    "/programmes/{code}/tiers/{tier_code}",
    response={200: TierOut, **ERROR_RESPONSES},
    summary="Change a tier",
)
def update_tier(request: HttpRequest, code: str, tier_code: str, payload: TierPatch) -> dict[str, Any]:
    actor, programme = _programme(request, code, "write")
    tier = selectors.tier_get(programme, tier_code)
    changes = payload.model_dump(exclude_unset=True)
    return _tier_out(services.tier_update(actor=actor, tier=tier, changes=changes))


@router.delete(
    "/programmes/{code}/tiers/{tier_code}", response={204: None, **ERROR_RESPONSES}, summary="Delete a tier"
)
def delete_tier(request: HttpRequest, code: str, tier_code: str) -> Status[None]:
    actor, programme = _programme(request, code, "write")
    services.tier_delete(actor=actor, tier=selectors.tier_get(programme, tier_code))
    return Status(204, None)


# -- members' tiers --------------------------------------------------------------------------------


def _visible_member(actor: Actor, member_id: UUID) -> Member:
    """Staff who may see loyalty see any member; a portal customer only their own (else 404)."""
    member = selectors.member_by_public_id(member_id)
    if actor.is_internal and actor.can(selectors.VIEW):
        return member
    if actor.is_portal_customer:
        from fedele.loyalty.services.ledger_core import owns_member

        if owns_member(actor, member):
            return member
    raise NotFound(_("Member not found."), code="member_not_found")


@router.get(
    "/members/{member_id}/tier-progress",
    response={200: TierProgressOut, **ERROR_RESPONSES},
    summary="A member's tier, the next one and what is missing",
)
def member_tier_progress(request: HttpRequest, member_id: UUID) -> dict[str, Any]:
    actor = _actor(request, "read")
    member = _visible_member(actor, member_id)
    progress = tier_progress(member)
    return {
        "member_id": member.public_id,
        "programme": member.programme.code,
        "tier": _tier_ref(progress.tier),
        "next_tier": _tier_ref(progress.next_tier),
        "metric": progress.metric,
        "window": progress.window,
        "value": progress.value,
        "next_threshold": progress.next_threshold,
        "percent": progress.percent,
        "remaining": progress.remaining,
        "review_on": progress.review_on,
        "valid_until": progress.valid_until,
        "keep_threshold": progress.keep_threshold,
        "keep_value": progress.keep_value,
        "keep_remaining": progress.keep_remaining,
    }


@router.post(
    "/members/{member_id}/tier",
    response={200: MemberTierOut, **ERROR_RESPONSES},
    summary="Put a member in a tier by hand (reason required)",
)
def member_set_tier(request: HttpRequest, member_id: UUID, payload: ManualTierIn) -> dict[str, Any]:
    actor = _actor(request, "write")
    member = _visible_member(actor, member_id)
    tier = Tier.objects.filter(programme_id=member.programme_id, code=payload.tier).first()
    if tier is None:
        raise ValidationFailed(
            _("Unknown tier."),
            code="validation_error",
            fields={"tier": _("No tier of this programme has this code.")},
        )
    member = tier_set_manual(actor=actor, member=member, tier=tier, reason=payload.reason)
    return {
        "member_id": member.public_id,
        "tier": _tier_ref(member.tier),
        "tier_since": member.tier_since,
        "tier_review_on": member.tier_review_on,
    }

"""Loyalty API: coalition partners. Parse, authorise, call a service or selector; nothing else.

Two audiences under /api/v1/loyalty/:

* operator (staff tokens, scopes ``read``/``write``): ``/partners`` CRUD, users, credentials,
  settlements (generate, issue, paid, CSV);
* partners (tokens of a partner's user carrying ``loyalty:partner:earn|burn|read``): ``/partner/...``.
  The partner is always the caller's own (its organisation's); another partner's transaction, hold or
  statement is 404. Partners see issued and paid statements, not drafts.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from fedele.accounts.facade import Actor, actor_for
from fedele.loyalty.models import (
    Member,
    Partner,
    PartnerSettlement,
    PointsTransaction,
    Programme,
    Reservation,
)
from fedele.loyalty.selectors import partners as selectors
from fedele.loyalty.services import partners as services
from fedele.loyalty.services import settlements as settlement_services
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import NotFound, PermissionDenied
from fedele.shared.pagination import paginate

router = Router(tags=["loyalty: partners"])

ScopeLiteral = Literal["loyalty:partner:earn", "loyalty:partner:burn", "loyalty:partner:read"]


# ----------------------------------------------------------------------------------------------
# Schemas


class PartnerOut(Schema):
    id: UUID
    code: str
    name: str
    category: str
    programme: str
    earn_price_per_point: Decimal
    burn_price_per_point: Decimal
    can_earn: bool
    can_burn: bool
    status: str
    contact_email: str
    vat_number: str
    created_at: datetime


class PartnerUserIn(StrictSchema):
    email: str = Field(..., min_length=3, max_length=254)
    first_name: str = Field("", max_length=150)
    last_name: str = Field("", max_length=150)
    password: str | None = Field(None, max_length=128)
    language: Literal["it", "en"] = "it"


class PartnerIn(StrictSchema):
    programme: str = Field(..., min_length=1, max_length=40, description="The coalition programme's code")
    code: str = Field(..., min_length=1, max_length=16)
    name: str = Field(..., min_length=1, max_length=120)
    category: str = Field("", max_length=40)
    earn_price_per_point: Decimal = Decimal("0.010000")
    burn_price_per_point: Decimal = Decimal("0.008000")
    can_earn: bool = True
    can_burn: bool = True
    contact_email: str = Field("", max_length=254)
    vat_number: str = Field("", max_length=20)
    user: PartnerUserIn | None = None


class PartnerPatch(StrictSchema):
    name: str | None = Field(None, min_length=1, max_length=120)
    category: str | None = Field(None, max_length=40)
    earn_price_per_point: Decimal | None = None
    burn_price_per_point: Decimal | None = None
    can_earn: bool | None = None
    can_burn: bool | None = None
    contact_email: str | None = Field(None, max_length=254)
    vat_number: str | None = Field(None, max_length=20)


class StatusIn(StrictSchema):
    status: Literal["active", "suspended"]
    reason: str = Field("", max_length=200)


class UserOut(Schema):
    id: UUID
    email: str
    full_name: str


class CredentialIn(StrictSchema):
    scopes: list[ScopeLiteral] = Field(..., min_length=1, max_length=3)
    user_id: UUID | None = None
    name: str = Field("", max_length=100)
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class CredentialOut(Schema):
    id: UUID
    name: str
    prefix: str
    user_email: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    active: bool


class CredentialIssuedOut(Schema):
    id: UUID
    token: str = Field(..., description="Shown once: only its hash is stored")
    scopes: list[str]


class SettlementLineOut(Schema):
    date: date
    kind: str
    count: int
    points: int
    amount: Decimal


class SettlementOut(Schema):
    id: UUID
    partner: str
    partner_id: UUID
    period_start: date
    period_end: date
    state: str
    points_issued: int
    points_accepted: int
    amount_due_from_partner: Decimal
    amount_due_to_partner: Decimal
    net: Decimal
    transaction_count: int
    lines: list[SettlementLineOut]
    generated_at: datetime
    issued_at: datetime | None


class GenerateIn(StrictSchema):
    month: str = Field(..., min_length=7, max_length=7, description="YYYY-MM")


class MemberOut(Schema):
    card_number: str
    initial: str
    status: str
    tier_code: str
    tier_name: str
    available: int
    currency_name: str


class EarnIn(StrictSchema):
    card_number: str = Field(..., min_length=1, max_length=20)
    external_id: str = Field(..., min_length=1, max_length=64)
    amount_eur: Decimal | None = None
    points: int | None = None
    occurred_at: datetime | None = None
    reference: str = Field("", max_length=80)


class EarnOut(Schema):
    transaction_id: UUID | None
    points: int
    partner_amount: Decimal
    reasons: list[str]
    member: MemberOut


class BurnIn(StrictSchema):
    card_number: str = Field(..., min_length=1, max_length=20)
    external_id: str = Field(..., min_length=1, max_length=64)
    points: int
    reference: str = Field("", max_length=80)


class HoldIn(BurnIn):
    minutes: int | None = Field(None, ge=1, le=1440)


class TransactionOut(Schema):
    id: UUID
    kind: str
    points: int
    partner_amount: Decimal
    card_number: str
    reference: str
    occurred_at: datetime
    reversal_of: UUID | None
    reversed: bool


class BurnOut(TransactionOut):
    member: MemberOut


class HoldOut(Schema):
    id: UUID
    state: str
    points: int
    card_number: str
    reference: str
    expires_at: datetime
    transaction_id: UUID | None


class ReverseIn(StrictSchema):
    reason: str = Field(..., min_length=1, max_length=200)


class TransactionPage(Schema):
    items: list[TransactionOut]
    next_cursor: str | None


class TransactionQuery(Schema):
    month: str = Field("", max_length=7, description="YYYY-MM (programme time zone); empty = all")
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


# ----------------------------------------------------------------------------------------------
# Helpers


def _staff(request: HttpRequest, *, write: bool = False) -> Actor:
    require_scope(request, "write" if write else "read")
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can(selectors.VIEW)):
        raise PermissionDenied(_("You may not see the partners."), code="permission_denied")
    return actor


def _partner_caller(request: HttpRequest, scope: str) -> tuple[Actor, Partner]:
    require_scope(request, scope)
    actor = actor_for(request.user)
    return actor, selectors.partner_of_actor(actor)


def _partner_out(partner: Partner) -> dict[str, Any]:
    return {
        "id": partner.public_id,
        "code": partner.code,
        "name": partner.name,
        "category": partner.category,
        "programme": partner.programme.code,
        "earn_price_per_point": partner.earn_price_per_point,
        "burn_price_per_point": partner.burn_price_per_point,
        "can_earn": partner.can_earn,
        "can_burn": partner.can_burn,
        "status": partner.status,
        "contact_email": partner.contact_email,
        "vat_number": partner.vat_number,
        "created_at": partner.created_at,
    }


def _settlement_out(settlement: PartnerSettlement) -> dict[str, Any]:
    return {
        "id": settlement.public_id,
        "partner": settlement.partner.code,
        "partner_id": settlement.partner.public_id,
        "period_start": settlement.period_start,
        "period_end": settlement.period_end,
        "state": settlement.state,
        "points_issued": settlement.points_issued,
        "points_accepted": settlement.points_accepted,
        "amount_due_from_partner": settlement.amount_due_from_partner,
        "amount_due_to_partner": settlement.amount_due_to_partner,
        "net": settlement.net,
        "transaction_count": settlement.transaction_count,
        "lines": settlement.lines,
        "generated_at": settlement.generated_at,
        "issued_at": settlement.issued_at,
    }


def _member_out(member: Member, language: str) -> dict[str, Any]:
    masked = selectors.masked_member(member, language=language)
    return {
        "card_number": masked.card_number,
        "initial": masked.initial,
        "status": masked.status,
        "tier_code": masked.tier_code,
        "tier_name": masked.tier_name,
        "available": masked.available,
        "currency_name": masked.currency_name,
    }


def _transaction_out(transaction: PointsTransaction) -> dict[str, Any]:
    points, amount = selectors.signed_effect(transaction)
    original = transaction.reversal_of
    return {
        "id": transaction.public_id,
        "kind": selectors.line_kind(transaction),
        "points": abs(points),
        "partner_amount": abs(amount),
        "card_number": transaction.member.card_number if transaction.member else "",
        "reference": transaction.reference,
        "occurred_at": transaction.occurred_at,
        "reversal_of": original.public_id if original is not None else None,
        "reversed": getattr(transaction, "is_reversed", False),
    }


def _hold_out(reservation: Reservation) -> dict[str, Any]:
    final = reservation.final_transaction
    return {
        "id": reservation.public_id,
        "state": reservation.state,
        "points": reservation.points,
        "card_number": reservation.member.card_number,
        "reference": reservation.reference,
        "expires_at": reservation.expires_at,
        "transaction_id": final.public_id if final is not None and reservation.state == "confirmed" else None,
    }


def _programme(code: str) -> Programme:
    programme = Programme.objects.filter(code=code).first()
    if programme is None:
        raise NotFound(_("Programme not found."), code="programme_not_found")
    return programme


def _csv(settlement: PartnerSettlement) -> HttpResponse:
    response = HttpResponse(selectors.settlement_csv(settlement), content_type="text/csv; charset=utf-8")
    filename = f"settlement-{settlement.partner.code}-{settlement.period_start:%Y-%m}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _with_reversed_flag(queryset: Any) -> Any:
    from django.db.models import Exists, OuterRef

    return queryset.annotate(is_reversed=Exists(PointsTransaction.objects.filter(reversal_of=OuterRef("pk"))))


# ----------------------------------------------------------------------------------------------
# Operator: partners


@router.get("/partners", response={200: list[PartnerOut], **ERROR_RESPONSES}, summary="List partners")
def list_partners(request: HttpRequest, programme: str = "") -> list[dict[str, Any]]:
    actor = _staff(request)
    chosen = _programme(programme) if programme else None
    return [_partner_out(p) for p in selectors.partner_list(actor=actor, programme=chosen)[:500]]


@router.post("/partners", response={201: PartnerOut, **ERROR_RESPONSES}, summary="Create a partner")
def create_partner(request: HttpRequest, payload: PartnerIn) -> Status[dict[str, Any]]:
    actor = _staff(request, write=True)
    data = payload.model_dump(exclude={"programme"}, exclude_none=True)
    partner = services.partner_create(actor=actor, programme=_programme(payload.programme), data=data)
    return Status(201, _partner_out(partner))


@router.get("/partners/{partner_id}", response={200: PartnerOut, **ERROR_RESPONSES}, summary="Get a partner")
def get_partner(request: HttpRequest, partner_id: UUID) -> dict[str, Any]:
    actor = _staff(request)
    return _partner_out(selectors.partner_get(actor=actor, public_id=partner_id))


@router.patch(
    "/partners/{partner_id}", response={200: PartnerOut, **ERROR_RESPONSES}, summary="Update a partner"
)
def update_partner(request: HttpRequest, partner_id: UUID, payload: PartnerPatch) -> dict[str, Any]:
    actor = _staff(request, write=True)
    partner = selectors.partner_get(actor=actor, public_id=partner_id)
    data = payload.model_dump(exclude_unset=True)
    return _partner_out(services.partner_update(actor=actor, partner=partner, data=data))


@router.post(
    "/partners/{partner_id}/status",
    response={200: PartnerOut, **ERROR_RESPONSES},
    summary="Suspend or reactivate a partner",
)
def set_partner_status(request: HttpRequest, partner_id: UUID, payload: StatusIn) -> dict[str, Any]:
    actor = _staff(request, write=True)
    partner = selectors.partner_get(actor=actor, public_id=partner_id)
    updated = services.partner_set_status(
        actor=actor, partner=partner, status=payload.status, reason=payload.reason
    )
    return _partner_out(updated)


@router.get(
    "/partners/{partner_id}/users", response={200: list[UserOut], **ERROR_RESPONSES}, summary="Partner users"
)
def list_partner_users(request: HttpRequest, partner_id: UUID) -> list[dict[str, Any]]:
    actor = _staff(request)
    partner = selectors.partner_get(actor=actor, public_id=partner_id)
    return [
        {"id": user.public_id, "email": user.email, "full_name": user.full_name}
        for user in services.partner_users(partner)
    ]


@router.post(
    "/partners/{partner_id}/users", response={201: UserOut, **ERROR_RESPONSES}, summary="Add a partner user"
)
def add_partner_user(
    request: HttpRequest, partner_id: UUID, payload: PartnerUserIn
) -> Status[dict[str, Any]]:
    actor = _staff(request, write=True)
    partner = selectors.partner_get(actor=actor, public_id=partner_id)
    user_id = services.partner_user_add(actor=actor, partner=partner, **payload.model_dump())
    user = next(u for u in services.partner_users(partner) if u.user_id == user_id)
    return Status(201, {"id": user.public_id, "email": user.email, "full_name": user.full_name})


@router.get(
    "/partners/{partner_id}/credentials",
    response={200: list[CredentialOut], **ERROR_RESPONSES},
    summary="Partner API credentials",
)
def list_credentials(request: HttpRequest, partner_id: UUID) -> list[dict[str, Any]]:
    actor = _staff(request)
    partner = selectors.partner_get(actor=actor, public_id=partner_id)
    return [
        {
            "id": token.public_id,
            "name": token.name,
            "prefix": token.prefix,
            "user_email": token.user_email,
            "scopes": list(token.scopes),
            "created_at": token.created_at,
            "last_used_at": token.last_used_at,
            "expires_at": token.expires_at,
            "revoked_at": token.revoked_at,
            "active": token.active,
        }
        for token in services.partner_credentials(partner)
    ]


@router.post(
    "/partners/{partner_id}/credentials",
    response={201: CredentialIssuedOut, **ERROR_RESPONSES},
    summary="Issue an API token for a partner user",
)
def issue_credentials(
    request: HttpRequest, partner_id: UUID, payload: CredentialIn
) -> Status[dict[str, Any]]:
    actor = _staff(request, write=True)
    partner = selectors.partner_get(actor=actor, public_id=partner_id)
    user_id = None
    if payload.user_id is not None:
        found = [u.user_id for u in services.partner_users(partner) if u.public_id == payload.user_id]
        user_id = found[0] if found else -1
    plain, token_id = services.partner_credentials_issue(
        actor=actor,
        partner=partner,
        scopes=list(payload.scopes),
        user_id=user_id,
        name=payload.name,
        expires_in_days=payload.expires_in_days,
    )
    return Status(201, {"id": token_id, "token": plain, "scopes": sorted(set(payload.scopes))})


@router.post(
    "/partners/{partner_id}/credentials/{token_id}/revoke",
    response={204: None, **ERROR_RESPONSES},
    summary="Revoke a partner API token",
)
def revoke_credentials(request: HttpRequest, partner_id: UUID, token_id: UUID) -> Status[None]:
    actor = _staff(request, write=True)
    partner = selectors.partner_get(actor=actor, public_id=partner_id)
    services.partner_credentials_revoke(actor=actor, partner=partner, token_id=str(token_id))
    return Status(204, None)


# ----------------------------------------------------------------------------------------------
# Operator: settlements


@router.get(
    "/partners/{partner_id}/settlements",
    response={200: list[SettlementOut], **ERROR_RESPONSES},
    summary="A partner's monthly statements",
)
def list_settlements(request: HttpRequest, partner_id: UUID) -> list[dict[str, Any]]:
    actor = _staff(request)
    partner = selectors.partner_get(actor=actor, public_id=partner_id)
    rows = selectors.settlement_list(actor=actor, partner=partner).select_related("partner")[:120]
    return [_settlement_out(s) for s in rows]


@router.post(
    "/partners/{partner_id}/settlements",
    response={200: SettlementOut, **ERROR_RESPONSES},
    summary="Generate (or refresh) the draft statement of a month",
)
def generate_settlement(request: HttpRequest, partner_id: UUID, payload: GenerateIn) -> dict[str, Any]:
    actor = _staff(request, write=True)
    partner = selectors.partner_get(actor=actor, public_id=partner_id)
    year, month = selectors.parse_month(payload.month)
    settlement = settlement_services.settlement_generate(actor=actor, partner=partner, year=year, month=month)
    return _settlement_out(settlement)


def _staff_settlement(actor: Actor, partner_id: UUID, settlement_id: UUID) -> PartnerSettlement:
    partner = selectors.partner_get(actor=actor, public_id=partner_id)
    return selectors.settlement_get(actor=actor, public_id=settlement_id, partner=partner)


@router.get(
    "/partners/{partner_id}/settlements/{settlement_id}",
    response={200: SettlementOut, **ERROR_RESPONSES},
    summary="A statement",
)
def get_settlement(request: HttpRequest, partner_id: UUID, settlement_id: UUID) -> dict[str, Any]:
    actor = _staff(request)
    return _settlement_out(_staff_settlement(actor, partner_id, settlement_id))


@router.post(
    "/partners/{partner_id}/settlements/{settlement_id}/issue",
    response={200: SettlementOut, **ERROR_RESPONSES},
    summary="Issue a statement (recomputed, then immutable)",
)
def issue_settlement(request: HttpRequest, partner_id: UUID, settlement_id: UUID) -> dict[str, Any]:
    actor = _staff(request, write=True)
    settlement = _staff_settlement(actor, partner_id, settlement_id)
    return _settlement_out(settlement_services.settlement_issue(actor=actor, settlement=settlement))


@router.post(
    "/partners/{partner_id}/settlements/{settlement_id}/paid",
    response={200: SettlementOut, **ERROR_RESPONSES},
    summary="Mark an issued statement as paid",
)
def pay_settlement(request: HttpRequest, partner_id: UUID, settlement_id: UUID) -> dict[str, Any]:
    actor = _staff(request, write=True)
    settlement = _staff_settlement(actor, partner_id, settlement_id)
    return _settlement_out(settlement_services.settlement_mark_paid(actor=actor, settlement=settlement))


@router.get(
    "/partners/{partner_id}/settlements/{settlement_id}/csv",
    response={200: None, **ERROR_RESPONSES},
    summary="A statement's lines as CSV",
)
def settlement_csv(request: HttpRequest, partner_id: UUID, settlement_id: UUID) -> HttpResponse:
    actor = _staff(request)
    return _csv(_staff_settlement(actor, partner_id, settlement_id))


# ----------------------------------------------------------------------------------------------
# Partner-facing


@router.get(
    "/partner/members/{card_number}",
    response={200: MemberOut, **ERROR_RESPONSES},
    summary="Partner: look a member up by card (masked)",
)
def partner_member(request: HttpRequest, card_number: str) -> dict[str, Any]:
    actor, partner = _partner_caller(request, services.SCOPE_READ)
    member = selectors.member_for_card(partner=partner, card_number=card_number)
    return _member_out(member, actor.language)


@router.post("/partner/earn", response={200: EarnOut, **ERROR_RESPONSES}, summary="Partner: earn points")
def partner_earn(request: HttpRequest, payload: EarnIn) -> dict[str, Any]:
    actor, partner = _partner_caller(request, services.SCOPE_EARN)
    result = services.partner_earn(
        actor=actor,
        partner=partner,
        card_number=payload.card_number,
        external_id=payload.external_id,
        amount_eur=payload.amount_eur,
        points=payload.points,
        occurred_at=payload.occurred_at,
        reference=payload.reference,
    )
    member = selectors.member_for_card(partner=partner, card_number=payload.card_number)
    return {
        "transaction_id": result.transaction.public_id if result.transaction else None,
        "points": result.points,
        "partner_amount": result.partner_amount,
        "reasons": list(result.reasons),
        "member": _member_out(member, actor.language),
    }


@router.post("/partner/burn", response={200: BurnOut, **ERROR_RESPONSES}, summary="Partner: burn points")
def partner_burn(request: HttpRequest, payload: BurnIn) -> dict[str, Any]:
    actor, partner = _partner_caller(request, services.SCOPE_BURN)
    redeem = services.partner_burn(
        actor=actor,
        partner=partner,
        card_number=payload.card_number,
        points=payload.points,
        external_id=payload.external_id,
        reference=payload.reference,
    )
    member = selectors.member_for_card(partner=partner, card_number=payload.card_number)
    return {**_transaction_out(redeem), "member": _member_out(member, actor.language)}


@router.post("/partner/holds", response={201: HoldOut, **ERROR_RESPONSES}, summary="Partner: hold points")
def partner_hold(request: HttpRequest, payload: HoldIn) -> Status[dict[str, Any]]:
    actor, partner = _partner_caller(request, services.SCOPE_BURN)
    reservation = services.partner_hold(
        actor=actor,
        partner=partner,
        card_number=payload.card_number,
        points=payload.points,
        external_id=payload.external_id,
        reference=payload.reference,
        minutes=payload.minutes,
    )
    reservation = Reservation.objects.select_related("member", "final_transaction").get(pk=reservation.pk)
    return Status(201, _hold_out(reservation))


@router.post(
    "/partner/holds/{hold_id}/confirm",
    response={200: TransactionOut, **ERROR_RESPONSES},
    summary="Partner: confirm a hold (burn)",
)
def partner_hold_confirm(request: HttpRequest, hold_id: UUID) -> dict[str, Any]:
    actor, partner = _partner_caller(request, services.SCOPE_BURN)
    reservation = selectors.partner_reservation_get(partner=partner, public_id=hold_id)
    redeem = services.partner_hold_confirm(actor=actor, partner=partner, reservation=reservation)
    return _transaction_out(redeem)


@router.post(
    "/partner/holds/{hold_id}/cancel",
    response={200: HoldOut, **ERROR_RESPONSES},
    summary="Partner: cancel a hold",
)
def partner_hold_cancel(request: HttpRequest, hold_id: UUID) -> dict[str, Any]:
    actor, partner = _partner_caller(request, services.SCOPE_BURN)
    reservation = selectors.partner_reservation_get(partner=partner, public_id=hold_id)
    services.partner_hold_cancel(actor=actor, partner=partner, reservation=reservation)
    reservation = Reservation.objects.select_related("member", "final_transaction").get(pk=reservation.pk)
    return _hold_out(reservation)


@router.post(
    "/partner/transactions/{transaction_id}/reverse",
    response={200: TransactionOut, **ERROR_RESPONSES},
    summary="Partner: reverse an own earn or burn (within 30 days)",
)
def partner_reverse(request: HttpRequest, transaction_id: UUID, payload: ReverseIn) -> dict[str, Any]:
    actor = actor_for(request.user)
    partner = selectors.partner_of_actor(actor)
    original = selectors.partner_transaction_get(partner=partner, public_id=transaction_id)
    from fedele.loyalty.models import TransactionKind

    require_scope(
        request, services.SCOPE_BURN if original.kind == TransactionKind.REDEEM else services.SCOPE_EARN
    )
    reversal = services.partner_reverse(
        actor=actor, partner=partner, transaction_to_reverse=original, reason=payload.reason
    )
    reversal = PointsTransaction.objects.select_related("member", "reversal_of").get(pk=reversal.pk)
    return _transaction_out(reversal)


@router.get(
    "/partner/transactions",
    response={200: TransactionPage, **ERROR_RESPONSES},
    summary="Partner: own transactions (optionally one month)",
)
def partner_transactions(request: HttpRequest, query: Query[TransactionQuery]) -> dict[str, Any]:
    _actor, partner = _partner_caller(request, services.SCOPE_READ)
    start = end = None
    if query.month:
        year, month = selectors.parse_month(query.month)
        start, end = selectors.month_bounds(partner.programme, year, month)
    queryset = _with_reversed_flag(selectors.partner_transactions(partner=partner, start=start, end=end))
    page = paginate(queryset, ordering="-id", allowed={"id": "id"}, cursor=query.cursor, limit=query.limit)
    return {"items": [_transaction_out(t) for t in page.items], "next_cursor": page.next_cursor}


def _partner_settlements(partner: Partner) -> Any:
    return (
        PartnerSettlement.objects.filter(partner=partner)
        .exclude(state=PartnerSettlement.State.DRAFT)
        .select_related("partner")
        .order_by("-period_start")
    )


@router.get(
    "/partner/settlements",
    response={200: list[SettlementOut], **ERROR_RESPONSES},
    summary="Partner: own issued statements",
)
def partner_settlements(request: HttpRequest) -> list[dict[str, Any]]:
    _actor, partner = _partner_caller(request, services.SCOPE_READ)
    return [_settlement_out(s) for s in _partner_settlements(partner)[:120]]


def _partner_settlement(partner: Partner, settlement_id: UUID) -> PartnerSettlement:
    found = _partner_settlements(partner).filter(public_id=settlement_id).first()
    if found is None:
        raise NotFound(_("Settlement not found."))
    return found


@router.get(
    "/partner/settlements/{settlement_id}",
    response={200: SettlementOut, **ERROR_RESPONSES},
    summary="Partner: one own statement",
)
def partner_settlement(request: HttpRequest, settlement_id: UUID) -> dict[str, Any]:
    _actor, partner = _partner_caller(request, services.SCOPE_READ)
    return _settlement_out(_partner_settlement(partner, settlement_id))


@router.get(
    "/partner/settlements/{settlement_id}/csv",
    response={200: None, **ERROR_RESPONSES},
    summary="Partner: one own statement as CSV",
)
def partner_settlement_csv(request: HttpRequest, settlement_id: UUID) -> HttpResponse:
    _actor, partner = _partner_caller(request, services.SCOPE_READ)
    return _csv(_partner_settlement(partner, settlement_id))

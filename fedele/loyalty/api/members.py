"""Loyalty API: members, their balances, history and lots; earning, redeeming (directly or through
reservations), adjustments, household transfers, reversals, purchase refunds and the liability.

Reading needs the token scope "read" and ``loyalty.view_loyalty`` (a portal customer reads only their
own membership); writing needs "write" and ``loyalty.operate_loyalty`` (checked by the services).
Members, reservations and transactions the caller may not see answer 404. Every posting needs an
``Idempotency-Key`` header, which is also the ledger's idempotency key: a retry returns the first
result and writes nothing.
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
from fedele.loyalty.models import Household, Member, PointsLot, PointsTransaction, Programme, Reservation
from fedele.loyalty.selectors import ledger as ledger_selectors
from fedele.loyalty.selectors import members as selectors
from fedele.loyalty.services import ledger, members
from fedele.loyalty.services.ledger_core import CENT
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import NotFound, ValidationFailed

router = Router(tags=["loyalty: members and ledger"])

KEY_HEADER = "Idempotency-Key"


def _actor(request: HttpRequest, scope: str) -> Actor:
    require_scope(request, scope)
    return actor_for(request.user)


def _key(request: HttpRequest, *, required: bool = True) -> str | None:
    key = (request.headers.get(KEY_HEADER) or "").strip()
    if not key and required:
        raise ValidationFailed(
            _("This request needs an Idempotency-Key header."),
            code="idempotency_key_required",
            fields={"Idempotency-Key": _("Required.")},
        )
    return key or None


def _keyed_write(request: HttpRequest, member_id: UUID) -> tuple[Actor, Member, str]:
    """A write on one member that needs an Idempotency-Key: the caller, the member it may see, the key."""
    actor = _actor(request, "write")
    member = selectors.member_get(actor, member_id)
    key = _key(request)
    assert key is not None
    return actor, member, key


def _programme(actor: Actor, code: str) -> Programme:
    programme = Programme.objects.filter(code=code).first()
    if programme is None or not selectors.is_staff_reader(actor):
        raise NotFound(_("Programme not found."), code="programme_not_found")
    return programme


# -- schemas ---------------------------------------------------------------------------------------


class TierRef(Schema):
    code: str
    name: str
    rank: int


class MemberOut(Schema):
    id: UUID
    card_number: str
    programme: str
    customer_id: UUID
    status: str
    tier: TierRef | None
    enrolled_at: datetime
    enrolment_channel: str
    referral_code: str
    referred_by: UUID | None
    birthday: date | None
    language: str
    household: UUID | None
    available: int
    pending: int
    reserved: int
    debt: int
    lifetime_earned: int
    lifetime_redeemed: int
    lifetime_expired: int
    points_value_eur: Decimal


class MemberPage(Schema):
    items: list[MemberOut]
    next_cursor: str | None


class TransactionOut(Schema):
    id: UUID
    kind: str
    points: int
    member_id: UUID | None
    source: str
    reference: str
    amount_eur: Decimal | None
    cash_amount: Decimal | None
    partner: str | None
    partner_amount: Decimal | None
    reversal_of: UUID | None
    details: dict[str, Any]
    memo: str
    occurred_at: datetime


class HistoryOut(Schema):
    id: UUID
    kind: str
    kind_label: str
    points: int = Field(..., description="What the transaction did to the member's total, signed.")
    headline_points: int
    description: str
    reference: str
    occurred_at: datetime
    reversible: bool


class HistoryPage(Schema):
    items: list[HistoryOut]
    next_before: UUID | None


class LotOut(Schema):
    id: int
    points: int
    remaining: int
    state: str
    earned_at: datetime
    matures_at: datetime | None
    expires_on: date | None
    earn_transaction: UUID


class ReservationOut(Schema):
    id: UUID
    member_id: UUID
    points: int
    cash_amount: Decimal
    state: str
    reference: str
    expires_at: datetime
    created_at: datetime
    settled_at: datetime | None
    final_transaction: UUID | None


class LiabilityOut(Schema):
    programme: str
    available: int
    pending: int
    reserved: int
    debt: int
    outstanding: int
    point_value: Decimal
    outstanding_eur: Decimal
    available_eur: Decimal
    pending_eur: Decimal
    reserved_eur: Decimal
    issued: int
    redeemed: int
    expired: int
    forfeited: int


class EnrolIn(StrictSchema):
    programme: str = Field(..., max_length=40)
    customer_id: UUID
    channel: str = Field("api", max_length=16)
    referral_code: str = Field("", max_length=16)
    birthday: date | None = None
    language: Literal["it", "en"] | None = None


class EarnIn(StrictSchema):
    points: int
    source: str = Field("api", max_length=24)
    reference: str = Field("", max_length=80)
    amount_eur: Decimal | None = None
    qualifying_points: int | None = None
    qualifying_count: int = 0
    pending_days: int = 0
    memo: str = Field("", max_length=200)


class RedeemIn(StrictSchema):
    points: int
    source: str = Field("api", max_length=24)
    reference: str = Field("", max_length=80)
    cash_amount: Decimal = Decimal("0")


class HoldIn(RedeemIn):
    minutes: int | None = None


class AdjustIn(StrictSchema):
    points: int
    reason: str = Field(..., max_length=200)


class TransferIn(StrictSchema):
    to_member: UUID
    points: int


class ReasonIn(StrictSchema):
    reason: str = Field(..., max_length=200)


class StatusIn(ReasonIn):
    status: Literal["active", "suspended", "closed"]


class RefundIn(StrictSchema):
    reference: str = Field(..., max_length=80)
    refund_eur: Decimal | None = None


class MemberFilters(Schema):
    programme: str | None = None
    q: str = Field("", max_length=100)
    tier: str = Field("", max_length=40)
    status: Literal["", "active", "suspended", "closed"] = ""
    ordering: Literal["-id", "id", "-enrolled", "enrolled", "-available", "available", "card", "-card"] = (
        "-id"
    )
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


# -- serialisers -----------------------------------------------------------------------------------


def _member_out(member: Member, language: str) -> dict[str, Any]:
    tier = member.tier
    return {
        "id": member.public_id,
        "card_number": member.card_number,
        "programme": member.programme.code,
        "customer_id": member.customer.public_id,
        "status": member.status,
        "tier": {"code": tier.code, "name": tier.name(language), "rank": tier.rank} if tier else None,
        "enrolled_at": member.enrolled_at,
        "enrolment_channel": member.enrolment_channel,
        "referral_code": member.referral_code,
        "referred_by": member.referred_by.public_id if member.referred_by_id and member.referred_by else None,
        "birthday": member.birthday,
        "language": member.language,
        "household": member.household.public_id if member.household_id and member.household else None,
        "available": member.available,
        "pending": member.pending,
        "reserved": member.reserved,
        "debt": member.debt,
        "lifetime_earned": member.lifetime_earned,
        "lifetime_redeemed": member.lifetime_redeemed,
        "lifetime_expired": member.lifetime_expired,
        "points_value_eur": (Decimal(member.available) * member.programme.point_value).quantize(CENT),
    }


def _fresh(member: Member) -> Member:
    return Member.objects.select_related("programme", "tier", "customer", "household", "referred_by").get(
        pk=member.pk
    )


def _transaction_out(transaction: PointsTransaction) -> dict[str, Any]:
    return {
        "id": transaction.public_id,
        "kind": transaction.kind,
        "points": transaction.points,
        "member_id": transaction.member.public_id if transaction.member else None,
        "source": transaction.source,
        "reference": transaction.reference,
        "amount_eur": transaction.amount_eur,
        "cash_amount": transaction.cash_amount,
        "partner": transaction.partner.code if transaction.partner else None,
        "partner_amount": transaction.partner_amount,
        "reversal_of": transaction.reversal_of.public_id if transaction.reversal_of else None,
        "details": transaction.details or {},
        "memo": transaction.memo,
        "occurred_at": transaction.occurred_at,
    }


def _reservation_out(reservation: Reservation) -> dict[str, Any]:
    return {
        "id": reservation.public_id,
        "member_id": reservation.member.public_id,
        "points": reservation.points,
        "cash_amount": reservation.cash_amount,
        "state": reservation.state,
        "reference": reservation.reference,
        "expires_at": reservation.expires_at,
        "created_at": reservation.created_at,
        "settled_at": reservation.settled_at,
        "final_transaction": reservation.final_transaction.public_id
        if reservation.final_transaction
        else None,
    }


def _lot_out(lot: PointsLot) -> dict[str, Any]:
    return {
        "id": lot.pk,
        "points": lot.points,
        "remaining": lot.remaining,
        "state": lot.state,
        "earned_at": lot.earned_at,
        "matures_at": lot.matures_at,
        "expires_on": lot.expires_on,
        "earn_transaction": lot.earn_transaction.public_id,
    }


# -- members ---------------------------------------------------------------------------------------


@router.post(
    "/members", response={200: MemberOut, 201: MemberOut, **ERROR_RESPONSES}, summary="Enrol a customer"
)
def member_enrol(request: HttpRequest, payload: EnrolIn) -> Status[dict[str, Any]]:
    actor = _actor(request, "write")
    programme = Programme.objects.filter(code=payload.programme).first()
    if programme is None:
        raise NotFound(_("Programme not found."), code="programme_not_found")
    existed = selectors.member_for_customer(programme, payload.customer_id) is not None
    member = members.member_enrol(
        actor=actor,
        programme=programme,
        customer_public_id=str(payload.customer_id),
        channel=payload.channel,
        referral_code=payload.referral_code,
        birthday=payload.birthday,
        language=payload.language,
    )
    return Status(200 if existed else 201, _member_out(_fresh(member), actor.language))


@router.get("/members", response={200: MemberPage, **ERROR_RESPONSES}, summary="List and search members")
def member_list(request: HttpRequest, filters: Query[MemberFilters]) -> dict[str, Any]:
    actor = _actor(request, "read")
    programme = _programme(actor, filters.programme) if filters.programme else None
    page = selectors.member_list(
        actor,
        programme,
        filters.q,
        filters.tier,
        filters.status,
        ordering=filters.ordering,
        cursor=filters.cursor,
        limit=filters.limit,
    )
    rows = Member.objects.select_related("programme", "tier", "customer", "household", "referred_by").in_bulk(
        [member.pk for member in page.items]
    )
    return {
        "items": [_member_out(rows[member.pk], actor.language) for member in page.items],
        "next_cursor": page.next_cursor,
    }


@router.get("/members/{member_id}", response={200: MemberOut, **ERROR_RESPONSES}, summary="Get a member")
def member_detail(request: HttpRequest, member_id: UUID) -> dict[str, Any]:
    actor = _actor(request, "read")
    return _member_out(selectors.member_get(actor, member_id), actor.language)


@router.post(
    "/members/{member_id}/status",
    response={200: MemberOut, **ERROR_RESPONSES},
    summary="Suspend, reactivate or close a membership",
)
def member_status(request: HttpRequest, member_id: UUID, payload: StatusIn) -> dict[str, Any]:
    actor = _actor(request, "write")
    member = selectors.member_get(actor, member_id)
    members.member_set_status(actor=actor, member=member, status=payload.status, reason=payload.reason)
    return _member_out(_fresh(member), actor.language)


@router.get(
    "/members/{member_id}/transactions",
    response={200: HistoryPage, **ERROR_RESPONSES},
    summary="A member's history, newest first",
)
def member_transactions(
    request: HttpRequest, member_id: UUID, limit: int = 50, before: UUID | None = None
) -> dict[str, Any]:
    actor = _actor(request, "read")
    member = selectors.member_get(actor, member_id)
    if not 1 <= limit <= ledger_selectors.HISTORY_MAX:
        raise ValidationFailed(
            _("limit must be between 1 and 200."),
            code="invalid_limit",
            fields={"limit": _("Between 1 and 200.")},
        )
    before_pk = None
    if before is not None:
        before_pk = PointsTransaction.objects.filter(public_id=before).values_list("pk", flat=True).first()
        if before_pk is None:
            raise ValidationFailed(
                _("Unknown transaction."), code="invalid_cursor", fields={"before": _("Unknown.")}
            )
    rows = ledger_selectors.member_history(member, limit=limit, before=before_pk)
    return {
        "items": [
            {
                "id": row.transaction.public_id,
                "kind": row.kind,
                "kind_label": row.kind_label,
                "points": row.points,
                "headline_points": row.transaction.points,
                "description": row.description,
                "reference": row.transaction.reference,
                "occurred_at": row.occurred_at,
                "reversible": ledger_selectors.is_reversible(row.transaction),
            }
            for row in rows
        ],
        "next_before": rows[-1].transaction.public_id if len(rows) == limit else None,
    }


@router.get(
    "/members/{member_id}/lots", response={200: list[LotOut], **ERROR_RESPONSES}, summary="A member's lots"
)
def member_lots(request: HttpRequest, member_id: UUID, open_only: bool = False) -> list[dict[str, Any]]:
    actor = _actor(request, "read")
    member = selectors.member_get(actor, member_id)
    lots = ledger_selectors.member_lots(member, open_only=open_only)
    transactions = PointsTransaction.objects.in_bulk([lot.earn_transaction_id for lot in lots])
    for lot in lots:
        lot.earn_transaction = transactions[lot.earn_transaction_id]
    return [_lot_out(lot) for lot in lots]


# -- postings --------------------------------------------------------------------------------------


@router.post(
    "/members/{member_id}/earn",
    response={201: TransactionOut, **ERROR_RESPONSES},
    summary="Credit points directly (Idempotency-Key required)",
)
def member_earn(request: HttpRequest, member_id: UUID, payload: EarnIn) -> Status[dict[str, Any]]:
    actor = _actor(request, "write")
    member = selectors.member_get(actor, member_id)
    key = _key(request)
    transaction = ledger.points_earn(
        actor=actor,
        member=member,
        points=payload.points,
        source=payload.source,
        idempotency_key=key,
        reference=payload.reference,
        amount_eur=payload.amount_eur,
        qualifying_points=payload.qualifying_points,
        qualifying_count=payload.qualifying_count,
        pending_days=payload.pending_days,
        memo=payload.memo,
    )
    return Status(201, _transaction_out(transaction))


@router.post(
    "/members/{member_id}/redeem",
    response={201: TransactionOut, **ERROR_RESPONSES},
    summary="Redeem points at once (Idempotency-Key required)",
)
def member_redeem(request: HttpRequest, member_id: UUID, payload: RedeemIn) -> Status[dict[str, Any]]:
    actor, member, key = _keyed_write(request, member_id)
    transaction = ledger.points_redeem(
        actor=actor,
        member=member,
        points=payload.points,
        idempotency_key=key,
        source=payload.source,
        reference=payload.reference,
        cash_amount=payload.cash_amount,
    )
    return Status(201, _transaction_out(transaction))


@router.post(
    "/members/{member_id}/adjust",
    response={201: TransactionOut, **ERROR_RESPONSES},
    summary="Adjust points by hand, signed, with a reason (Idempotency-Key required)",
)
def member_adjust(request: HttpRequest, member_id: UUID, payload: AdjustIn) -> Status[dict[str, Any]]:
    actor, member, key = _keyed_write(request, member_id)
    transaction = ledger.points_adjust(
        actor=actor, member=member, points=payload.points, reason=payload.reason, idempotency_key=key
    )
    return Status(201, _transaction_out(transaction))


@router.post(
    "/members/{member_id}/reservations",
    response={201: ReservationOut, **ERROR_RESPONSES},
    summary="Hold points for a redemption (Idempotency-Key required)",
)
def reservation_hold(request: HttpRequest, member_id: UUID, payload: HoldIn) -> Status[dict[str, Any]]:
    actor, member, key = _keyed_write(request, member_id)
    reservation = ledger.reservation_hold(
        actor=actor,
        member=member,
        points=payload.points,
        idempotency_key=key,
        source=payload.source,
        reference=payload.reference,
        cash_amount=payload.cash_amount,
        minutes=payload.minutes,
    )
    return Status(201, _reservation_out(reservation))


@router.get(
    "/reservations/{reservation_id}",
    response={200: ReservationOut, **ERROR_RESPONSES},
    summary="Get a reservation",
)
def reservation_detail(request: HttpRequest, reservation_id: UUID) -> dict[str, Any]:
    actor = _actor(request, "read")
    return _reservation_out(ledger_selectors.reservation_get(actor, reservation_id))


@router.post(
    "/reservations/{reservation_id}/confirm",
    response={200: TransactionOut, **ERROR_RESPONSES},
    summary="Confirm a reservation: the points are redeemed",
)
def reservation_confirm(request: HttpRequest, reservation_id: UUID) -> dict[str, Any]:
    actor = _actor(request, "write")
    reservation = ledger_selectors.reservation_get(actor, reservation_id)
    return _transaction_out(ledger.reservation_confirm(actor=actor, reservation=reservation))


@router.post(
    "/reservations/{reservation_id}/cancel",
    response={200: ReservationOut, **ERROR_RESPONSES},
    summary="Cancel a reservation: the points go back on their lots",
)
def reservation_cancel(request: HttpRequest, reservation_id: UUID, payload: ReasonIn) -> dict[str, Any]:
    actor = _actor(request, "write")
    reservation = ledger_selectors.reservation_get(actor, reservation_id)
    ledger.reservation_release(actor=actor, reservation=reservation, reason=payload.reason)
    return _reservation_out(ledger_selectors.reservation_get(actor, reservation_id))


@router.post(
    "/members/{member_id}/transfer",
    response={201: TransactionOut, **ERROR_RESPONSES},
    summary="Transfer points to a member of the same household (Idempotency-Key required)",
)
def member_transfer(request: HttpRequest, member_id: UUID, payload: TransferIn) -> Status[dict[str, Any]]:
    actor = _actor(request, "write")
    sender = selectors.member_get(actor, member_id)
    receiver = Member.objects.select_related("programme").filter(public_id=payload.to_member).first()
    if receiver is None or receiver.programme_id != sender.programme_id:
        raise ValidationFailed(
            _("Points can only be transferred between members of the same household."),
            code="not_same_household",
            fields={"to_member": _("Not in the same household.")},
        )
    key = _key(request)
    assert key is not None
    transaction = ledger.points_transfer(
        actor=actor, from_member=sender, to_member=receiver, points=payload.points, idempotency_key=key
    )
    return Status(201, _transaction_out(transaction))


class HouseholdIn(StrictSchema):
    owner: UUID = Field(..., description="The first member (Member public id)")
    name: str = Field(..., min_length=1, max_length=120)


class HouseholdMemberIn(StrictSchema):
    member: UUID = Field(..., description="Member public id")


class HouseholdOut(Schema):
    id: UUID
    name: str
    programme: str
    owner: UUID
    members: list[UUID]


def _household_out(household: Household) -> dict[str, Any]:
    household = Household.objects.select_related("programme", "owner").get(pk=household.pk)
    return {
        "id": household.public_id,
        "name": household.name,
        "programme": household.programme.code,
        "owner": household.owner.public_id,
        "members": [member.public_id for member in selectors.household_members(household)],
    }


def _household(actor: Actor, household_id: UUID) -> Household:
    household = Household.objects.filter(public_id=household_id).first()
    if household is None or not selectors.is_staff_reader(actor):
        raise NotFound(_("Household not found."), code="household_not_found")
    return household


@router.post(
    "/households",
    response={201: HouseholdOut, **ERROR_RESPONSES},
    summary="Create a household (family pool) with its first member",
)
def household_create(request: HttpRequest, payload: HouseholdIn) -> Status[dict[str, Any]]:
    actor = _actor(request, "write")
    owner = selectors.member_get(actor, payload.owner)
    household = members.household_create(actor=actor, owner=owner, name=payload.name)
    return Status(201, _household_out(household))


@router.get(
    "/households/{household_id}", response={200: HouseholdOut, **ERROR_RESPONSES}, summary="Get a household"
)
def household_detail(request: HttpRequest, household_id: UUID) -> dict[str, Any]:
    actor = _actor(request, "read")
    return _household_out(_household(actor, household_id))


@router.post(
    "/households/{household_id}/members",
    response={200: HouseholdOut, **ERROR_RESPONSES},
    summary="Add a member of the same programme to a household",
)
def household_add(request: HttpRequest, household_id: UUID, payload: HouseholdMemberIn) -> dict[str, Any]:
    actor = _actor(request, "write")
    household = _household(actor, household_id)
    member = selectors.member_get(actor, payload.member)
    members.household_add(actor=actor, household=household, member=member)
    return _household_out(household)


@router.delete(
    "/members/{member_id}/household",
    response={200: MemberOut, **ERROR_RESPONSES},
    summary="Take a member out of its household",
)
def household_leave(request: HttpRequest, member_id: UUID) -> dict[str, Any]:
    actor = _actor(request, "write")
    member = selectors.member_get(actor, member_id)
    members.household_remove(actor=actor, member=member)
    return _member_out(selectors.member_get(actor, member_id), actor.language)


@router.post(
    "/transactions/{transaction_id}/reverse",
    response={201: TransactionOut, **ERROR_RESPONSES},
    summary="Reverse an earn, a positive adjustment or a redemption (once)",
)
def transaction_reverse(
    request: HttpRequest, transaction_id: UUID, payload: ReasonIn
) -> Status[dict[str, Any]]:
    actor = _actor(request, "write")
    original = ledger_selectors.transaction_get(actor, transaction_id)
    reversal = ledger.transaction_reverse(
        actor=actor,
        transaction=original,
        reason=payload.reason,
        idempotency_key=_key(request, required=False),
    )
    return Status(201, _transaction_out(reversal))


# -- programme-wide --------------------------------------------------------------------------------


@router.post(
    "/programmes/{code}/refunds",
    response={201: list[TransactionOut], **ERROR_RESPONSES},
    summary="Take back the points of a refunded purchase (Idempotency-Key required)",
)
def purchase_refund(request: HttpRequest, code: str, payload: RefundIn) -> Status[list[dict[str, Any]]]:
    actor = _actor(request, "write")
    programme = _programme(actor, code)
    key = _key(request)
    assert key is not None
    transactions = ledger.purchase_refund(
        actor=actor,
        programme=programme,
        reference=payload.reference,
        refund_eur=payload.refund_eur,
        idempotency_key=key,
    )
    return Status(201, [_transaction_out(transaction) for transaction in transactions])


@router.get(
    "/programmes/{code}/liability",
    response={200: LiabilityOut, **ERROR_RESPONSES},
    summary="Outstanding points and their value in EUR",
)
def programme_liability(request: HttpRequest, code: str) -> dict[str, Any]:
    actor = _actor(request, "read")
    figures = ledger.liability(programme=_programme(actor, code))
    return {name: getattr(figures, name) for name in LiabilityOut.model_fields}

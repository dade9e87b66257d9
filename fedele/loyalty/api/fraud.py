"""Loyalty API: the fraud review queue (``loyalty.review_loyalty_fraud``; manual flags also with
``loyalty.operate_loyalty``). Reads need the token scope ``read``, actions ``write``; POSTs honour
Idempotency-Key (shared middleware)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from fedele.accounts.facade import Actor, actor_for
from fedele.loyalty.models import FraudFlag, PointsTransaction
from fedele.loyalty.selectors import fraud as selectors
from fedele.loyalty.services import fraud as services
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.pagination import paginate

router = Router(tags=["loyalty: fraud"])

StateLiteral = Literal["open", "cleared", "confirmed", ""]
RuleLiteral = Literal["velocity_count", "velocity_points", "unusual_amount", "transfer_pattern", "manual", ""]


class FlagListQuery(Schema):
    state: StateLiteral = "open"
    rule: RuleLiteral = ""
    programme: str = Field("", max_length=40)
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


class TransactionOut(Schema):
    id: UUID
    kind: str
    points: int
    source: str
    reference: str
    amount_eur: str | None
    occurred_at: datetime
    reversed: bool


class FlagOut(Schema):
    id: UUID = Field(..., description="The flag's public id (use it in /fraud/flags/{flag_id}).")
    member_id: UUID
    card_number: str
    programme: str
    rule: str
    state: str
    details: dict[str, Any]
    transaction: TransactionOut | None
    created_at: datetime
    reviewed_by_id: int | None
    reviewed_at: datetime | None
    review_note: str


class FlagDetailOut(FlagOut):
    member_flagged: bool
    member_status: str
    recent_transactions: list[TransactionOut]


class FlagPage(Schema):
    items: list[FlagOut]
    next_cursor: str | None


class ManualFlagIn(StrictSchema):
    member_id: UUID
    note: str = Field(..., min_length=1, max_length=300)


class ClearIn(StrictSchema):
    note: str = Field(..., min_length=1, max_length=300)


class ConfirmIn(StrictSchema):
    note: str = Field(..., min_length=1, max_length=300)
    reverse_transaction_ids: list[UUID] = Field(default_factory=list, max_length=200)
    suspend: bool = False


def _reviewer(request: HttpRequest, scope: str) -> Actor:
    require_scope(request, scope)
    actor = actor_for(request.user)
    selectors.authorise_review(actor)
    return actor


def _transaction_out(row: PointsTransaction, reversed_flag: bool | None = None) -> dict[str, Any]:
    was_reversed = reversed_flag if reversed_flag is not None else bool(getattr(row, "reversed", False))
    return {
        "id": row.public_id,
        "kind": row.kind,
        "points": row.points,
        "source": row.source,
        "reference": row.reference,
        "amount_eur": str(row.amount_eur) if row.amount_eur is not None else None,
        "occurred_at": row.occurred_at,
        "reversed": was_reversed,
    }


def _reversed_ids(flags: list[FraudFlag]) -> set[int]:
    """Which of the flags' transactions were reversed, in one query."""
    ids = [flag.transaction_id for flag in flags if flag.transaction_id]
    if not ids:
        return set()
    return set(
        PointsTransaction.objects.filter(reversal_of_id__in=ids).values_list("reversal_of_id", flat=True)
    )


def _flag_out(flag: FraudFlag, reversed_ids: set[int]) -> dict[str, Any]:
    transaction = flag.transaction
    return {
        "id": flag.public_id,
        "member_id": flag.member.public_id,
        "card_number": flag.member.card_number,
        "programme": flag.member.programme.code,
        "rule": flag.rule,
        "state": flag.state,
        "details": flag.details or {},
        "transaction": _transaction_out(transaction, transaction.pk in reversed_ids) if transaction else None,
        "created_at": flag.created_at,
        "reviewed_by_id": flag.reviewed_by_id,
        "reviewed_at": flag.reviewed_at,
        "review_note": flag.review_note,
    }


def _detail(actor: Actor, flag_id: UUID) -> dict[str, Any]:
    flag = selectors.flag_get(actor=actor, public_id=flag_id)
    member = flag.member
    member.refresh_from_db(fields=["flagged", "status"])
    recent = selectors.recent_transactions(actor=actor, member=member)
    return {
        **_flag_out(flag, _reversed_ids([flag])),
        "member_flagged": member.flagged,
        "member_status": member.status,
        "recent_transactions": [_transaction_out(row) for row in recent],
    }


@router.get("/fraud/flags", response={200: FlagPage, **ERROR_RESPONSES}, summary="Fraud flags (review queue)")
def list_flags(request: HttpRequest, query: Query[FlagListQuery]) -> dict[str, Any]:
    actor = _reviewer(request, "read")
    flags = selectors.flag_list(actor=actor, state=query.state, rule=query.rule, programme=query.programme)
    page = paginate(
        flags, ordering="-id", allowed=selectors.FLAG_ORDERING, cursor=query.cursor, limit=query.limit
    )
    reversed_ids = _reversed_ids(page.items)
    return {"items": [_flag_out(flag, reversed_ids) for flag in page.items], "next_cursor": page.next_cursor}


@router.get(
    "/fraud/flags/{flag_id}", response={200: FlagDetailOut, **ERROR_RESPONSES}, summary="One fraud flag"
)
def get_flag(request: HttpRequest, flag_id: UUID) -> dict[str, Any]:
    return _detail(_reviewer(request, "read"), flag_id)


@router.post(
    "/fraud/flags", response={201: FlagDetailOut, **ERROR_RESPONSES}, summary="Flag a member for review"
)
def flag_member(request: HttpRequest, payload: ManualFlagIn) -> Status[dict[str, Any]]:
    require_scope(request, "write")
    actor = actor_for(request.user)
    services.require_flagger(actor)
    member = selectors.member_for_flagging(actor=actor, member_public_id=payload.member_id)
    flag = services.fraud_flag_manual(actor=actor, member=member, note=payload.note)
    if selectors.can_review(actor):
        return Status(201, _detail(actor, flag.public_id))
    # Staff who may flag but not review get the flag without the member's transactions.
    created = selectors.flag_get(actor=None, public_id=flag.public_id)
    member.refresh_from_db(fields=["flagged", "status"])
    return Status(
        201,
        {
            **_flag_out(created, set()),
            "member_flagged": member.flagged,
            "member_status": member.status,
            "recent_transactions": [],
        },
    )


@router.post(
    "/fraud/flags/{flag_id}/clear", response={200: FlagDetailOut, **ERROR_RESPONSES}, summary="Clear a flag"
)
def clear_flag(request: HttpRequest, flag_id: UUID, payload: ClearIn) -> dict[str, Any]:
    actor = _reviewer(request, "write")
    flag = selectors.flag_get(actor=actor, public_id=flag_id)
    services.fraud_clear(actor=actor, flag=flag, note=payload.note)
    return _detail(actor, flag_id)


@router.post(
    "/fraud/flags/{flag_id}/confirm",
    response={200: FlagDetailOut, **ERROR_RESPONSES},
    summary="Confirm fraud and reverse transactions",
)
def confirm_flag(request: HttpRequest, flag_id: UUID, payload: ConfirmIn) -> dict[str, Any]:
    actor = _reviewer(request, "write")
    flag = selectors.flag_get(actor=actor, public_id=flag_id)
    services.fraud_confirm(
        actor=actor,
        flag=flag,
        note=payload.note,
        reverse_transaction_ids=[str(value) for value in payload.reverse_transaction_ids],
        suspend=payload.suspend,
    )
    return _detail(actor, flag_id)

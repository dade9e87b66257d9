"""Reading the ledger of one member: history (each transaction with the points it moved for the
member, signed), lots, what expires soon, reservations; one transaction or reservation by id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from django.db.models import F, Sum
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.loyalty.models import (
    MEMBER_ACCOUNTS,
    Member,
    PointsEntry,
    PointsLot,
    PointsTransaction,
    Reservation,
    TransactionKind,
)
from fedele.loyalty.selectors.members import is_staff_reader
from fedele.loyalty.services.ledger_core import owns_member, programme_today
from fedele.shared.errors import NotFound

HISTORY_MAX = 200


@dataclass(frozen=True, slots=True)
class HistoryRow:
    transaction: PointsTransaction
    points: int
    """What the transaction did to the member's total (available + pending + reserved − debt)."""
    description: str

    @property
    def kind(self) -> str:
        return self.transaction.kind

    @property
    def kind_label(self) -> str:
        return str(TransactionKind(self.transaction.kind).label)

    @property
    def occurred_at(self) -> datetime:
        return self.transaction.occurred_at


def describe(transaction: PointsTransaction, member: Member) -> str:
    """A short human description of a transaction from the member's side."""
    details = transaction.details or {}
    kind = transaction.kind
    if kind == TransactionKind.TRANSFER:
        if transaction.member_id == member.pk:
            return _("Transferred to another household member")
        return _("Received from a household member")
    if kind == TransactionKind.ADJUST:
        if "forfeit" in details:
            return _("Forfeited: %(reason)s") % {"reason": details["forfeit"]}
        if "refund_of" in details:
            return _("Purchase refunded: %(reference)s") % {"reference": transaction.reference}
        return _("Adjustment: %(reason)s") % {"reason": details.get("reason", transaction.memo)}
    if kind == TransactionKind.CANCEL_PENDING:
        return _("Pending points cancelled (refund of %(reference)s)") % {"reference": transaction.reference}
    if kind == TransactionKind.REVERSE:
        return _("Reversal: %(reason)s") % {"reason": details.get("reason", transaction.memo)}
    if kind in (TransactionKind.RESERVE, TransactionKind.REDEEM) and details.get("reward"):
        return _("Reward %(reward)s") % {"reward": details["reward"]}
    if kind == TransactionKind.EXPIRE:
        return _("Points expired")
    if kind == TransactionKind.MATURE:
        return _("Pending points became available")
    if kind == TransactionKind.RELEASE:
        return _("Reservation released")
    parts = [part for part in (transaction.reference, transaction.memo) if part]
    return " · ".join(parts) or str(TransactionKind(kind).label)


def member_history(member: Member, limit: int = 50, before: int | None = None) -> list[HistoryRow]:
    """The member's transactions, newest first (``before``: a transaction pk, for the next page)."""
    limit = max(1, min(limit, HISTORY_MAX))
    legs = PointsEntry.objects.filter(member=member, account__in=list(MEMBER_ACCOUNTS))
    if before is not None:
        legs = legs.filter(transaction_id__lt=before)
    totals = list(
        legs.order_by("-transaction_id").values("transaction_id").annotate(points=Sum("points"))[:limit]
    )
    transactions = PointsTransaction.objects.select_related("partner").in_bulk(
        [row["transaction_id"] for row in totals]
    )
    return [
        HistoryRow(
            transaction=transactions[row["transaction_id"]],
            points=int(row["points"] or 0),
            description=describe(transactions[row["transaction_id"]], member),
        )
        for row in totals
    ]


def member_lots(member: Member, *, open_only: bool = False) -> list[PointsLot]:
    lots = PointsLot.objects.filter(member=member)
    if open_only:
        lots = lots.filter(state__in=[PointsLot.State.AVAILABLE, PointsLot.State.PENDING], remaining__gt=0)
    return list(lots.order_by(F("expires_on").asc(nulls_last=True), "id"))


def member_expiring(member: Member, within_days: int = 30) -> list[tuple[date, int]]:
    """(expiry date, points) of the member's available points expiring within ``within_days``."""
    today = programme_today(member.programme)
    rows = (
        PointsLot.objects.filter(
            member=member,
            state=PointsLot.State.AVAILABLE,
            remaining__gt=0,
            expires_on__gte=today,
            expires_on__lte=today + timedelta(days=max(0, within_days)),
        )
        .values("expires_on")
        .annotate(points=Sum("remaining"))
        .order_by("expires_on")
    )
    return [(row["expires_on"], int(row["points"])) for row in rows if row["expires_on"] is not None]


def member_reservations(member: Member, *, held_only: bool = False, limit: int = 20) -> list[Reservation]:
    rows = Reservation.objects.filter(member=member).select_related("reward", "partner")
    if held_only:
        rows = rows.filter(state=Reservation.State.HELD)
    return list(rows.order_by("-id")[:limit])


def _visible(actor: Actor, member: Member) -> bool:
    return is_staff_reader(actor) or owns_member(actor, member)


def reservation_get(actor: Actor, public_id: UUID | str) -> Reservation:
    try:
        key = UUID(str(public_id))
    except ValueError as error:
        raise NotFound(_("Reservation not found."), code="reservation_not_found") from error
    reservation = (
        Reservation.objects.select_related("member__programme", "reward", "partner", "final_transaction")
        .filter(public_id=key)
        .first()
    )
    if reservation is None or not _visible(actor, reservation.member):
        raise NotFound(_("Reservation not found."), code="reservation_not_found")
    return reservation


def transaction_get(actor: Actor, public_id: UUID | str) -> PointsTransaction:
    try:
        key = UUID(str(public_id))
    except ValueError as error:
        raise NotFound(_("Transaction not found."), code="transaction_not_found") from error
    transaction = (
        PointsTransaction.objects.select_related("member__programme", "programme", "partner")
        .filter(public_id=key)
        .first()
    )
    if transaction is None or transaction.member is None or not _visible(actor, transaction.member):
        raise NotFound(_("Transaction not found."), code="transaction_not_found")
    return transaction


def transaction_entries(transaction: PointsTransaction) -> list[PointsEntry]:
    return list(PointsEntry.objects.filter(transaction=transaction).order_by("id"))


def is_reversible(transaction: PointsTransaction) -> bool:
    if transaction.kind in (TransactionKind.EARN, TransactionKind.REDEEM):
        return True
    return (
        transaction.kind == TransactionKind.ADJUST
        and (transaction.details or {}).get("direction") == "credit"
    )

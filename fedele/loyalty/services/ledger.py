"""The points ledger: earn, adjust, transfer, reverse, forfeit and purchase refunds, plus (re-exported
from the sibling files) reservations/redemptions and the periodic jobs.

Every function here is one database transaction that locks the member rows it changes (ordered by
pk), writes a balanced ``PointsTransaction`` with its entries, updates lots and the members' balance
caches, one audit row and the outbox events. Bad input raises before anything is written.
Idempotency keys are stored namespaced by action (``adjust:<key>``...) except for earns, whose key is
stored as given, so the same caller key may be used for an earn and for, say, a redemption.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.loyalty import hooks
from fedele.loyalty.events import PointsEarned
from fedele.loyalty.models import (
    Account,
    Campaign,
    Member,
    NegativeBalancePolicy,
    Partner,
    PointsEntry,
    PointsLot,
    PointsTransaction,
    Programme,
    TransactionKind,
)
from fedele.loyalty.services.ledger_core import (
    REVIEW_FRAUD,
    Book,
    actor_id,
    authorise_for_member,
    authorise_operator,
    check_amount,
    check_key,
    check_member_active,
    check_partner,
    check_points,
    check_programme_active,
    check_text,
    existing_transaction,
    insert_transaction,
    insufficient,
    lock_member,
    lock_members,
    lot_expiry,
    member_event_fields,
    partner_price,
    sync_caller_copy,
)
from fedele.loyalty.services.ledger_jobs import (
    LiabilityFigures,
    expiry_notices_send,
    ledger_check,
    liability,
    lots_expire_due,
    lots_mature_due,
)
from fedele.loyalty.services.ledger_reservations import (
    points_redeem,
    reservation_confirm,
    reservation_hold,
    reservation_release,
    reservations_expire_due,
)
from fedele.shared import audit, clock, events
from fedele.shared.errors import Conflict, NotFound, ValidationFailed

__all__ = [
    "LiabilityFigures",
    "expiry_notices_send",
    "ledger_check",
    "liability",
    "lots_expire_due",
    "lots_mature_due",
    "points_adjust",
    "points_earn",
    "points_forfeit",
    "points_redeem",
    "points_transfer",
    "purchase_refund",
    "reservation_confirm",
    "reservation_hold",
    "reservation_release",
    "reservations_expire_due",
    "transaction_reverse",
]

SOURCE_MAX = 24
REFERENCE_MAX = 80
MEMO_MAX = 200
REASON_MAX = 200


def _reused_key() -> Conflict:
    return Conflict(
        _("This idempotency key was already used for a different operation."), code="idempotency_key_reused"
    )


def _replay(found: PointsTransaction, member: Member, kind: str) -> PointsTransaction:
    if found.member_id != member.pk or found.kind != kind:
        raise _reused_key()
    return found


def _issuance(partner: Partner | None) -> tuple[str, Partner | None]:
    """Where issued points come from: the operator, or the partner that bought them."""
    if partner is not None:
        return Account.PARTNER_ISSUANCE, partner
    return Account.ISSUANCE, None


# ----------------------------------------------------------------------------------------------
# Earn


def points_earn(
    *,
    actor: Actor | None,
    member: Member,
    points: int,
    source: str,
    idempotency_key: str | None,
    reference: str = "",
    amount_eur: Decimal | None = None,
    qualifying_points: int | None = None,
    qualifying_count: int = 0,
    pending_days: int = 0,
    partner: Partner | None = None,
    partner_amount: Decimal | None = None,
    campaign: Campaign | None = None,
    details: dict[str, Any] | None = None,
    memo: str = "",
    occurred_at: datetime | None = None,
) -> PointsTransaction:
    """Credit ``points`` to the member in a new lot (pending for ``pending_days``, then available).

    A debt is settled first out of the new points (in the same EARN transaction: ``member_available
    −x`` on the new lot, ``member_debt +x``). Same (programme, idempotency_key) → the first
    transaction, nothing written.
    """
    programme = member.programme
    check_points(points, programme)
    key = check_key(idempotency_key, required=False)
    source = check_text(source, name="source", max_length=SOURCE_MAX, required=True)
    reference = check_text(reference, name="reference", max_length=REFERENCE_MAX)
    memo = check_text(memo, name="memo", max_length=MEMO_MAX)
    amount = check_amount(amount_eur, name="amount_eur")
    if qualifying_points is None:
        qualifying_points = points
    if isinstance(qualifying_points, bool) or not isinstance(qualifying_points, int) or qualifying_points < 0:
        raise ValidationFailed(
            _("Qualifying points must be a whole number of zero or more."),
            code="invalid_qualifying_points",
            fields={"qualifying_points": _("Invalid.")},
        )
    if not isinstance(qualifying_count, int) or not 0 <= qualifying_count <= 1000:
        raise ValidationFailed(
            _("The qualifying count must be between 0 and 1000."),
            code="invalid_qualifying_count",
            fields={"qualifying_count": _("Invalid.")},
        )
    if not isinstance(pending_days, int) or not 0 <= pending_days <= 365:
        raise ValidationFailed(
            _("Pending days must be between 0 and 365."),
            code="invalid_pending_days",
            fields={"pending_days": _("Invalid.")},
        )
    check_partner(partner, programme, burn=False)
    if campaign is not None and campaign.programme_id != programme.pk:
        raise ValidationFailed(
            _("The campaign does not belong to this programme."),
            code="campaign_not_in_programme",
            fields={"campaign": _("Unknown campaign.")},
        )
    settle_amount = check_amount(partner_amount, name="partner_amount")
    if partner is not None and settle_amount is None:
        settle_amount = partner_price(points, partner.earn_price_per_point)
    authorise_for_member(actor, member, partner=partner, allow_portal=False)
    check_programme_active(programme)
    now = clock.now()
    occurred = occurred_at or now
    if key is not None and (found := existing_transaction(programme, key)) is not None:
        return _replay(found, member, TransactionKind.EARN)

    with transaction.atomic():
        locked = lock_member(member)
        # The time is taken once the member is locked, so one member's earns are dated in the order
        # they are posted (the fraud guards count "the earns before this one" by that time).
        now = clock.now()
        occurred = occurred_at or now
        check_member_active(locked)
        if key is not None and (found := existing_transaction(programme, key)) is not None:
            return _replay(found, member, TransactionKind.EARN)
        txn, created = insert_transaction(
            PointsTransaction(
                programme=programme,
                member=locked,
                kind=TransactionKind.EARN,
                points=points,
                idempotency_key=key,
                source=source,
                reference=reference,
                amount_eur=amount,
                qualifying_points=qualifying_points,
                qualifying_count=qualifying_count,
                partner=partner,
                partner_amount=settle_amount if partner is not None else None,
                campaign=campaign,
                details=details or {},
                memo=memo,
                occurred_at=occurred,
                created_at=now,
                created_by_id=actor_id(actor),
            )
        )
        if not created:
            return _replay(txn, member, TransactionKind.EARN)
        book = Book(txn, {locked.pk: locked}, now)
        issuance, issuing_partner = _issuance(partner)
        book.add(issuance, -points, partner=issuing_partner)
        pending_until = occurred + timedelta(days=pending_days) if pending_days > 0 else None
        book.new_lot(locked, points, expires_on=lot_expiry(programme, occurred), pending_until=pending_until)
        if pending_until is None:
            book.settle_debt(locked)
        locked.lifetime_earned += points
        book.close()
        hooks.run_after_earn(locked, txn)
        audit.record(
            action="loyalty.points_earned",
            object_type="loyalty.transaction",
            object_id=str(txn.public_id),
            after={"member": locked.card_number, "points": points, "source": source, "reference": reference},
            actor_id=actor_id(actor),
        )
        events.publish(
            PointsEarned(
                transaction_id=str(txn.public_id),
                **member_event_fields(locked),
                points=points,
                pending=pending_until is not None,
                source=source,
                reference=reference,
                occurred_at=occurred.isoformat(),
            ),
            aggregate_type="loyalty.member",
            aggregate_id=str(locked.public_id),
        )
    sync_caller_copy(member, locked)
    return txn


# ----------------------------------------------------------------------------------------------
# Adjust, forfeit


def points_adjust(
    *, actor: Actor | None, member: Member, points: int, reason: str, idempotency_key: str
) -> PointsTransaction:
    """A manual correction: positive creates a lot (normal expiry), negative consumes first-expiring
    lots and never goes below zero. The counter account is ``adjustment``."""
    programme = member.programme
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise ValidationFailed(
            _("An adjustment needs a whole, non-zero number of points."),
            code="invalid_points",
            fields={"points": _("Enter a whole number other than zero.")},
        )
    check_points(abs(points), programme)
    reason = check_text(reason, name="reason", max_length=REASON_MAX, required=True)
    key = f"adjust:{check_key(idempotency_key)}"
    authorise_operator(actor)
    if (found := existing_transaction(programme, key)) is not None:
        return _replay(found, member, TransactionKind.ADJUST)
    now = clock.now()
    with transaction.atomic():
        locked = lock_member(member)
        if (found := existing_transaction(programme, key)) is not None:
            return _replay(found, member, TransactionKind.ADJUST)
        if points < 0 and locked.available < -points:
            raise insufficient(locked.available, -points)
        txn, created = insert_transaction(
            PointsTransaction(
                programme=programme,
                member=locked,
                kind=TransactionKind.ADJUST,
                points=abs(points),
                idempotency_key=key,
                source="adjustment",
                details={"reason": reason, "direction": "credit" if points > 0 else "debit"},
                memo=reason,
                occurred_at=now,
                created_at=now,
                created_by_id=actor_id(actor),
            )
        )
        if not created:
            return _replay(txn, member, TransactionKind.ADJUST)
        book = Book(txn, {locked.pk: locked}, now)
        book.add(Account.ADJUSTMENT, -points)
        if points > 0:
            book.new_lot(locked, points, expires_on=lot_expiry(programme, now))
            book.settle_debt(locked)
        else:
            book.take_available(locked, -points)
        book.close()
        audit.record(
            action="loyalty.points_adjusted",
            object_type="loyalty.transaction",
            object_id=str(txn.public_id),
            after={"member": locked.card_number, "points": points, "reason": reason},
            actor_id=actor_id(actor),
        )
    sync_caller_copy(member, locked)
    return txn


def points_forfeit(
    *, actor: Actor | None, member: Member, reason: str, idempotency_key: str
) -> PointsTransaction | None:
    """Move every available point (all lots) to the forfeit account: an ADJUST transaction with
    ``details["forfeit"]``. None when there is nothing to forfeit. Reserved and pending points stay."""
    programme = member.programme
    reason = check_text(reason, name="reason", max_length=REASON_MAX, required=True)
    key = f"forfeit:{check_key(idempotency_key)}"
    authorise_operator(actor)
    if (found := existing_transaction(programme, key)) is not None:
        return _replay(found, member, TransactionKind.ADJUST)
    now = clock.now()
    with transaction.atomic():
        locked = lock_member(member)
        if (found := existing_transaction(programme, key)) is not None:
            return _replay(found, member, TransactionKind.ADJUST)
        if locked.available == 0:
            return None
        total = locked.available
        txn, created = insert_transaction(
            PointsTransaction(
                programme=programme,
                member=locked,
                kind=TransactionKind.ADJUST,
                points=total,
                idempotency_key=key,
                source="forfeit",
                details={"forfeit": reason, "direction": "debit"},
                memo=reason,
                occurred_at=now,
                created_at=now,
                created_by_id=actor_id(actor),
            )
        )
        if not created:
            return _replay(txn, member, TransactionKind.ADJUST)
        book = Book(txn, {locked.pk: locked}, now)
        taken = sum(amount for _lot, amount in book.take_available(locked, total))
        book.add(Account.FORFEIT, taken)
        book.close()
        audit.record(
            action="loyalty.points_forfeited",
            object_type="loyalty.transaction",
            object_id=str(txn.public_id),
            after={"member": locked.card_number, "points": taken, "reason": reason},
            actor_id=actor_id(actor),
        )
    sync_caller_copy(member, locked)
    return txn


# ----------------------------------------------------------------------------------------------
# Transfer (family pooling)


def _month_bounds(programme: Programme, moment: datetime) -> tuple[datetime, datetime]:
    zone = ZoneInfo(programme.timezone)
    local = moment.astimezone(zone)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start, following


def points_transfer(
    *, actor: Actor | None, from_member: Member, to_member: Member, points: int, idempotency_key: str
) -> PointsTransaction:
    """Move points between two members of the same household. The receiver gets one lot per consumed
    sender lot, with that lot's expiry date. Limits: ``transfer_max_points`` per transfer and
    ``transfer_max_points_per_month`` sent per member per calendar month (programme time zone)."""
    programme = from_member.programme
    check_points(points, programme)
    key = f"transfer:{check_key(idempotency_key)}"
    authorise_for_member(actor, from_member)
    if from_member.pk == to_member.pk:
        raise ValidationFailed(
            _("A member cannot transfer points to itself."),
            code="same_member",
            fields={"to_member": _("Choose another member.")},
        )
    if (
        to_member.programme_id != from_member.programme_id
        or from_member.household_id is None
        or from_member.household_id != to_member.household_id
    ):
        raise ValidationFailed(
            _("Points can only be transferred between members of the same household."),
            code="not_same_household",
            fields={"to_member": _("Not in the same household.")},
        )
    if points > programme.transfer_max_points:
        raise ValidationFailed(
            _("At most %(max)s points can be transferred at once.") % {"max": programme.transfer_max_points},
            code="transfer_limit_exceeded",
            fields={"points": _("Over the limit per transfer.")},
        )
    check_programme_active(programme)
    if (found := existing_transaction(programme, key)) is not None:
        return _replay(found, from_member, TransactionKind.TRANSFER)
    now = clock.now()
    with transaction.atomic():
        locked = lock_members(from_member, to_member)
        sender, receiver = locked[from_member.pk], locked[to_member.pk]
        if (found := existing_transaction(programme, key)) is not None:
            return _replay(found, from_member, TransactionKind.TRANSFER)
        check_member_active(sender)
        check_member_active(receiver)
        if sender.household_id is None or sender.household_id != receiver.household_id:
            raise ValidationFailed(
                _("Points can only be transferred between members of the same household."),
                code="not_same_household",
                fields={"to_member": _("Not in the same household.")},
            )
        start, end = _month_bounds(programme, now)
        sent = (
            PointsTransaction.objects.filter(
                member=sender, kind=TransactionKind.TRANSFER, occurred_at__gte=start, occurred_at__lt=end
            ).aggregate(total=Sum("points"))["total"]
            or 0
        )
        if sent + points > programme.transfer_max_points_per_month:
            raise ValidationFailed(
                _("This transfer would exceed the monthly limit of %(max)s points (%(sent)s already sent).")
                % {"max": programme.transfer_max_points_per_month, "sent": sent},
                code="transfer_monthly_limit_exceeded",
                fields={"points": _("Over the monthly limit.")},
            )
        if sender.available < points:
            raise insufficient(sender.available, points)
        txn, created = insert_transaction(
            PointsTransaction(
                programme=programme,
                member=sender,
                kind=TransactionKind.TRANSFER,
                points=points,
                idempotency_key=key,
                source="transfer",
                details={"from_member": str(sender.public_id), "to_member": str(receiver.public_id)},
                occurred_at=now,
                created_at=now,
                created_by_id=actor_id(actor),
            )
        )
        if not created:
            return _replay(txn, from_member, TransactionKind.TRANSFER)
        book = Book(txn, locked, now)
        for lot, amount in book.take_available(sender, points):
            book.new_lot(receiver, amount, expires_on=lot.expires_on, earned_at=lot.earned_at)
        book.settle_debt(receiver)
        book.close()
        audit.record(
            action="loyalty.points_transferred",
            object_type="loyalty.transaction",
            object_id=str(txn.public_id),
            after={"from": sender.card_number, "to": receiver.card_number, "points": points},
            actor_id=actor_id(actor),
        )
    sync_caller_copy(from_member, sender)
    sync_caller_copy(to_member, receiver)
    return txn


# ----------------------------------------------------------------------------------------------
# Reverse


def _take_back(
    book: Book, member: Member, points: int, lots: list[PointsLot], programme: Programme
) -> dict[str, int]:
    """Take ``points`` back from ``lots`` first (their pending or available remainder), then from the
    member's other available lots, and record what is still missing per the programme's policy."""
    from_own = 0
    for lot in lots:
        if from_own == points:
            break
        if lot.state in (PointsLot.State.PENDING, PointsLot.State.AVAILABLE, PointsLot.State.SPENT):
            from_own += book.take_from_lot(lot, points - from_own)
            if lot.remaining == 0 and lot.state == PointsLot.State.PENDING:
                lot.state = PointsLot.State.CANCELLED
                lot.save(update_fields=["state"])
    from_other = sum(amount for _lot, amount in book.take_available(member, points - from_own))
    short = points - from_own - from_other
    if short > 0:
        if programme.negative_balance_policy == NegativeBalancePolicy.FORFEIT:
            book.add(Account.FORFEIT, -short)
        else:
            book.add(Account.MEMBER_DEBT, -short, member=member)
    return {"from_own_lots": from_own, "from_other_lots": from_other, "shortfall": short}


def transaction_reverse(
    *,
    actor: Actor | None,
    transaction: PointsTransaction,
    reason: str,
    idempotency_key: str | None = None,
) -> PointsTransaction:
    """Reverse an EARN or a positive ADJUST (take the points back; what cannot be taken becomes debt
    or is written off to ``forfeit`` per the programme's policy), or a REDEEM (give the points back in
    new lots with the consumed lots' expiry). Once only."""
    original = transaction
    reason = check_text(reason, name="reason", max_length=REASON_MAX, required=True)
    key = check_key(idempotency_key, required=False)
    authorise_operator(actor, "loyalty.operate_loyalty", REVIEW_FRAUD)
    reversible = original.kind in (TransactionKind.EARN, TransactionKind.REDEEM) or (
        original.kind == TransactionKind.ADJUST and original.details.get("direction") == "credit"
    )
    if original.member_id is None or not reversible:
        raise ValidationFailed(
            _("Only earnings, positive adjustments and redemptions can be reversed."),
            code="not_reversible",
            fields={"transaction": _("Not reversible.")},
        )
    programme = original.programme
    stored_key = f"reverse:{key}" if key else f"reverse:{original.public_id}"
    now = clock.now()
    with _atomic():
        original = PointsTransaction.objects.select_for_update().get(pk=original.pk)
        member = original.member
        assert member is not None
        locked = lock_member(member)
        if PointsTransaction.objects.filter(reversal_of=original).exists():
            raise Conflict(_("This transaction has already been reversed."), code="already_reversed")
        if existing_transaction(programme, stored_key) is not None:
            raise _reused_key()
        # Refunds may already have taken part of an earn back: reverse only the rest.
        refunded = PointsTransaction.objects.filter(
            programme=programme, details__refund_of=str(original.public_id)
        ).aggregate(points=Sum("points"), qualifying=Sum("qualifying_points"), partner=Sum("partner_amount"))
        points = original.points - (refunded["points"] or 0)
        if points <= 0:
            raise Conflict(
                _("Refunds have already taken back every point of this transaction."), code="already_refunded"
            )
        partner_amount = original.partner_amount
        if partner_amount is not None and refunded["partner"] is not None:
            partner_amount -= refunded["partner"]
        reversal = PointsTransaction.objects.create(
            programme=programme,
            member=locked,
            kind=TransactionKind.REVERSE,
            points=points,
            idempotency_key=stored_key,
            source="reversal",
            reference=original.reference,
            amount_eur=original.amount_eur,
            cash_amount=original.cash_amount,
            qualifying_points=max(0, original.qualifying_points - (refunded["qualifying"] or 0)),
            qualifying_count=original.qualifying_count,
            partner=original.partner,
            partner_amount=partner_amount,
            campaign=original.campaign,
            reversal_of=original,
            details={
                "reason": reason,
                "reversed_kind": original.kind,
                "refunded_before": refunded["points"] or 0,
            },
            memo=reason,
            occurred_at=now,
            created_at=now,
            created_by_id=actor_id(actor),
        )
        book = Book(reversal, {locked.pk: locked}, now)
        if original.kind == TransactionKind.REDEEM:
            _give_back_redemption(book, locked, original)
            locked.lifetime_redeemed -= original.points
        else:
            if original.kind == TransactionKind.EARN:
                issuance, issuing_partner = _issuance(original.partner)
                locked.lifetime_earned -= points
            else:
                issuance, issuing_partner = Account.ADJUSTMENT, None
            book.add(issuance, points, partner=issuing_partner)
            lots = list(PointsLot.objects.filter(earn_transaction=original).order_by("id"))
            outcome = _take_back(book, locked, points, lots, programme)
            reversal.details = {**reversal.details, **outcome}
            reversal.save(update_fields=["details"])
            for lot in lots:
                if lot.remaining == 0 and lot.state in (PointsLot.State.SPENT, PointsLot.State.AVAILABLE):
                    lot.state = PointsLot.State.CANCELLED
                    lot.save(update_fields=["state"])
        book.close()
        hooks.run_after_reverse(locked, reversal)
        audit.record(
            action="loyalty.transaction_reversed",
            object_type="loyalty.transaction",
            object_id=str(original.public_id),
            after={"reversal": str(reversal.public_id), "points": points, "reason": reason},
            actor_id=actor_id(actor),
        )
    sync_caller_copy(member, locked)
    return reversal


def _atomic() -> Any:
    # ``transaction`` is a parameter name of transaction_reverse (the brief's signature), so the
    # module is reached through this helper there.
    return transaction.atomic()


def _give_back_redemption(book: Book, member: Member, original: PointsTransaction) -> None:
    """New lots for the points a redemption consumed, each with the consumed lot's expiry."""
    consumed = (
        PointsEntry.objects.filter(
            transaction=original, account=Account.MEMBER_RESERVED, lot__isnull=False, points__lt=0
        )
        .select_related("lot")
        .order_by("id")
    )
    account = Account.PARTNER_REDEMPTION if original.partner_id else Account.REDEMPTION
    book.add(account, -original.points, partner=original.partner if original.partner_id else None)
    given = 0
    for entry in consumed:
        assert entry.lot is not None
        book.new_lot(member, -entry.points, expires_on=entry.lot.expires_on, earned_at=entry.lot.earned_at)
        given += -entry.points
    if given != original.points:
        # A redemption posted without lot-level legs: give the rest back with normal expiry.
        book.new_lot(member, original.points - given, expires_on=lot_expiry(member.programme, book.now))
    book.settle_debt(member)


# ----------------------------------------------------------------------------------------------
# Purchase refunds


def _refund_share(
    points: int, amount: Decimal | None, refunded_before: Decimal, refund: Decimal | None
) -> int:
    """Points to take back for a refund: all for a full refund; otherwise proportional to the refunded
    share of the purchase, rounded down cumulatively (so refunds adding up to the whole purchase take
    back exactly every point)."""
    if refund is None or amount is None or amount <= 0:
        return points
    cumulative = min(refunded_before + refund, amount)
    return int((Decimal(points) * cumulative / amount).to_integral_value(rounding=ROUND_FLOOR))


def purchase_refund(
    *,
    actor: Actor | None,
    programme: Programme,
    reference: str,
    refund_eur: Decimal | None,
    idempotency_key: str,
) -> list[PointsTransaction]:
    """Take back the points of the EARN transactions with ``reference``: pending lots are cancelled
    (CANCEL_PENDING: ``member_pending −x`` / ``issuance +x``); matured points are taken with a
    negative ADJUST (available lots, the purchase's own lot first), the remainder becoming debt or
    written off per the programme's policy. ``refund_eur`` None = full refund, else proportional."""
    reference = check_text(reference, name="reference", max_length=REFERENCE_MAX, required=True)
    refund = check_amount(refund_eur, name="refund_eur")
    if refund is not None and refund <= 0:
        raise ValidationFailed(
            _("A refund must be greater than zero."),
            code="invalid_refund_eur",
            fields={"refund_eur": _("Enter an amount greater than zero.")},
        )
    base_key = f"refund:{check_key(idempotency_key)}"
    authorise_operator(actor)
    earns = list(
        PointsTransaction.objects.filter(
            programme=programme, reference=reference, kind=TransactionKind.EARN, reversed_by__isnull=True
        ).order_by("id")
    )
    if not earns:
        raise NotFound(
            _("No earned points carry the reference %(reference)s.") % {"reference": reference},
            code="unknown_reference",
        )
    total_amount = sum((txn.amount_eur or Decimal("0")) for txn in earns)
    if refund is not None and total_amount <= 0:
        raise ValidationFailed(
            _("The purchase has no amount, so a partial refund cannot be apportioned."),
            code="refund_without_amount",
            fields={"refund_eur": _("Refund the whole purchase instead.")},
        )
    now = clock.now()
    with transaction.atomic():
        members = lock_members(*[txn.member for txn in earns if txn.member is not None])
        previous = list(
            PointsTransaction.objects.filter(programme=programme, details__refund_key=base_key).order_by("id")
        )
        if previous:
            return previous
        results: list[PointsTransaction] = []
        for earn in earns:
            member = members[earn.member_id] if earn.member_id is not None else None
            if member is None:
                continue
            refunded = PointsTransaction.objects.filter(
                programme=programme, details__refund_of=str(earn.public_id)
            )
            taken_before = refunded.aggregate(total=Sum("points"))["total"] or 0
            eur_before = sum(
                (Decimal(str(txn.details.get("refund_eur", "0"))) for txn in refunded), Decimal("0")
            )
            share = None
            if refund is not None:
                share = (refund * (earn.amount_eur or Decimal("0")) / total_amount).quantize(Decimal("0.01"))
            target = _refund_share(earn.points, earn.amount_eur, eur_before, share)
            to_take = min(target, earn.points) - taken_before
            if to_take <= 0:
                continue
            results.extend(
                _refund_earn(actor, programme, member, earn, to_take, share, base_key, len(results), now)
            )
        if not results:
            raise ValidationFailed(
                _("Nothing left to refund for this reference."),
                code="already_refunded",
                fields={"refund_eur": _("Already refunded.")},
            )
        audit.record(
            action="loyalty.purchase_refunded",
            object_type="loyalty.programme",
            object_id=str(programme.public_id),
            after={
                "reference": reference,
                "refund_eur": refund,
                "transactions": [str(txn.public_id) for txn in results],
                "points": sum(txn.points for txn in results),
            },
            actor_id=actor_id(actor),
        )
    for earn in earns:
        if earn.member is not None and earn.member_id in members:
            sync_caller_copy(earn.member, members[earn.member_id])
    return results


def _refund_earn(
    actor: Actor | None,
    programme: Programme,
    member: Member,
    earn: PointsTransaction,
    points: int,
    refund_share: Decimal | None,
    key: str,
    position: int,
    now: datetime,
) -> list[PointsTransaction]:
    """Up to two transactions: cancel what is still pending, then take back what has matured."""
    results: list[PointsTransaction] = []
    lots = list(PointsLot.objects.filter(earn_transaction=earn).order_by("id"))
    pending_lots = [lot for lot in lots if lot.state == PointsLot.State.PENDING and lot.remaining > 0]
    pending_total = sum(lot.remaining for lot in pending_lots)
    from_pending = min(points, pending_total)
    issuance, issuing_partner = _issuance(earn.partner)
    refunded_eur = refund_share if refund_share is not None else (earn.amount_eur or Decimal("0"))
    base: dict[str, Any] = {"refund_of": str(earn.public_id), "refund_key": key, "reference": earn.reference}

    def transaction_for(kind: str, amount: int, suffix: str, extra: dict[str, Any]) -> PointsTransaction:
        share = Decimal(amount) / Decimal(points)
        partner_amount = None
        if earn.partner_amount is not None:
            partner_amount = (earn.partner_amount * Decimal(amount) / Decimal(earn.points)).quantize(
                Decimal("0.01")
            )
        return PointsTransaction.objects.create(
            programme=programme,
            member=member,
            kind=kind,
            points=amount,
            idempotency_key=f"{key}:{position}:{suffix}",
            source="refund",
            reference=earn.reference,
            amount_eur=(refund_share * share).quantize(Decimal("0.01"))
            if refund_share is not None
            else earn.amount_eur,
            qualifying_points=min(earn.qualifying_points, amount),
            qualifying_count=earn.qualifying_count if refund_share is None else 0,
            partner=earn.partner,
            partner_amount=partner_amount,
            # The refunded EUR is counted once per refund: on its first transaction.
            details={**base, "refund_eur": str(refunded_eur if not results else Decimal("0.00")), **extra},
            memo=_("Refund of %(reference)s") % {"reference": earn.reference},
            occurred_at=now,
            created_at=now,
            created_by_id=actor_id(actor),
        )

    if from_pending > 0:
        txn = transaction_for(TransactionKind.CANCEL_PENDING, from_pending, "pending", {})
        book = Book(txn, {member.pk: member}, now)
        book.add(issuance, from_pending, partner=issuing_partner)
        left = from_pending
        for lot in pending_lots:
            taken = book.take_from_lot(lot, left)
            left -= taken
            if lot.remaining == 0:
                lot.state = PointsLot.State.CANCELLED
                lot.save(update_fields=["state"])
            if left == 0:
                break
        book.close()
        hooks.run_after_reverse(member, txn)
        results.append(txn)
    matured = points - from_pending
    if matured > 0:
        txn = transaction_for(TransactionKind.ADJUST, matured, "matured", {"direction": "debit"})
        book = Book(txn, {member.pk: member}, now)
        book.add(issuance, matured, partner=issuing_partner)
        own = [lot for lot in lots if lot.state == PointsLot.State.AVAILABLE]
        outcome = _take_back(book, member, matured, own, programme)
        txn.details = {**txn.details, **outcome}
        txn.save(update_fields=["details"])
        book.close()
        hooks.run_after_reverse(member, txn)
        results.append(txn)
    member.lifetime_earned -= points
    member.save(update_fields=["lifetime_earned"])
    return results

"""Redemption through reservations: hold → confirm (REDEEM) or release (cancel / time-out).

A hold moves points from ``member_available`` to ``member_reserved`` lot by lot (first expiring
first), both legs naming the lot; a confirm takes them off ``member_reserved`` into ``redemption``
(``partner_redemption`` for a partner); a release puts them back on the same lots, or straight into
``expiry`` for a lot that expired meanwhile. All under the member's row lock, so two requests can
never spend the same point and the balance never goes negative.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.loyalty.events import PointsRedeemed
from fedele.loyalty.models import (
    Account,
    Member,
    Partner,
    PointsEntry,
    PointsLot,
    PointsTransaction,
    Reservation,
    Reward,
    TransactionKind,
)
from fedele.loyalty.services.ledger_core import (
    Book,
    actor_id,
    authorise_for_member,
    check_amount,
    check_key,
    check_member_active,
    check_partner,
    check_points,
    check_programme_active,
    check_text,
    insufficient,
    lock_member,
    member_event_fields,
    partner_price,
    programme_today,
    sync_caller_copy,
)
from fedele.shared import audit, clock, events
from fedele.shared.errors import Conflict, ValidationFailed

SOURCE_MAX = 24
REFERENCE_MAX = 80
REASON_MAX = 200
MAX_HOLD_MINUTES = 60 * 24 * 30


def _not_held() -> Conflict:
    return Conflict(_("The reservation is no longer held."), code="reservation_not_held")


def _raise_if_key_taken(member: Member, key: str) -> None:
    """After an IntegrityError: a racing request of another member took this key (the unique index
    decided), which is the caller's mistake, not ours."""
    if Reservation.objects.filter(programme_id=member.programme_id, idempotency_key=key).exists():
        raise Conflict(
            _("This idempotency key was already used for a different operation."),
            code="idempotency_key_reused",
        ) from None


def _hold_locked(
    *,
    actor: Actor | None,
    locked: Member,
    points: int,
    key: str,
    source: str,
    reference: str,
    cash_amount: Decimal,
    reward: Reward | None,
    partner: Partner | None,
    minutes: int,
    now: datetime,
) -> Reservation:
    """The hold itself, inside the caller's transaction with the member locked."""
    existing = Reservation.objects.filter(programme_id=locked.programme_id, idempotency_key=key).first()
    if existing is not None:
        if existing.member_id != locked.pk:
            raise Conflict(
                _("This idempotency key was already used for a different operation."),
                code="idempotency_key_reused",
            )
        return existing
    check_member_active(locked)
    if locked.available < points:
        raise insufficient(locked.available, points)
    hold = PointsTransaction.objects.create(
        programme_id=locked.programme_id,
        member=locked,
        kind=TransactionKind.RESERVE,
        points=points,
        idempotency_key=f"reserve:{key}",
        source=source,
        reference=reference,
        cash_amount=cash_amount,
        partner=partner,
        details={"reward": reward.code if reward else ""},
        occurred_at=now,
        created_at=now,
        created_by_id=actor_id(actor),
    )
    book = Book(hold, {locked.pk: locked}, now)
    book.take_available(locked, points, to_reserved=True)
    book.close()
    reservation = Reservation.objects.create(
        programme_id=locked.programme_id,
        member=locked,
        points=points,
        cash_amount=cash_amount,
        reward=reward,
        partner=partner,
        idempotency_key=key,
        reference=reference,
        hold_transaction=hold,
        expires_at=now + timedelta(minutes=minutes),
        created_at=now,
    )
    audit.record(
        action="loyalty.points_reserved",
        object_type="loyalty.reservation",
        object_id=str(reservation.public_id),
        after={"member": locked.card_number, "points": points, "reference": reference},
        actor_id=actor_id(actor),
    )
    return reservation


def _validate_hold(
    member: Member,
    points: int,
    idempotency_key: str,
    source: str,
    reference: str,
    cash_amount: Decimal,
    reward: Reward | None,
    partner: Partner | None,
    minutes: int | None,
) -> tuple[str, str, str, Decimal, int]:
    programme = member.programme
    check_points(points, programme)
    key = check_key(idempotency_key)
    assert key is not None
    source = check_text(source, name="source", max_length=SOURCE_MAX, required=True)
    reference = check_text(reference, name="reference", max_length=REFERENCE_MAX)
    cash = check_amount(cash_amount, name="cash_amount", allow_none=False)
    assert cash is not None
    check_partner(partner, programme, burn=True)
    if reward is not None and reward.programme_id != programme.pk:
        raise ValidationFailed(
            _("The reward does not belong to this programme."),
            code="reward_not_in_programme",
            fields={"reward": _("Unknown reward.")},
        )
    hold_minutes = programme.reservation_minutes if minutes is None else minutes
    if (
        isinstance(hold_minutes, bool)
        or not isinstance(hold_minutes, int)
        or not 1 <= hold_minutes <= MAX_HOLD_MINUTES
    ):
        raise ValidationFailed(
            _("A reservation is held between 1 minute and 30 days."),
            code="invalid_minutes",
            fields={"minutes": _("Invalid.")},
        )
    check_programme_active(programme)
    return key, source, reference, cash, hold_minutes


def reservation_hold(
    *,
    actor: Actor | None,
    member: Member,
    points: int,
    idempotency_key: str,
    source: str,
    reference: str = "",
    cash_amount: Decimal = Decimal("0"),
    reward: Reward | None = None,
    partner: Partner | None = None,
    minutes: int | None = None,
) -> Reservation:
    """Hold ``points`` for a redemption (``minutes``, default the programme's reservation time).
    Same key → the same reservation, whatever its state."""
    key, source, reference, cash, hold_minutes = _validate_hold(
        member, points, idempotency_key, source, reference, cash_amount, reward, partner, minutes
    )
    authorise_for_member(actor, member, partner=partner)
    existing = Reservation.objects.filter(programme_id=member.programme_id, idempotency_key=key).first()
    if existing is not None and existing.member_id == member.pk:
        return existing
    now = clock.now()
    try:
        with transaction.atomic():
            locked = lock_member(member)
            reservation = _hold_locked(
                actor=actor,
                locked=locked,
                points=points,
                key=key,
                source=source,
                reference=reference,
                cash_amount=cash,
                reward=reward,
                partner=partner,
                minutes=hold_minutes,
                now=now,
            )
    except IntegrityError:
        _raise_if_key_taken(member, key)
        raise
    sync_caller_copy(member, locked)
    return reservation


def _confirm_locked(
    *,
    actor: Actor | None,
    locked: Member,
    reservation: Reservation,
    partner_amount: Decimal | None,
    now: datetime,
) -> PointsTransaction:
    reservation = Reservation.objects.select_for_update().get(pk=reservation.pk)
    if reservation.state == Reservation.State.CONFIRMED:
        assert reservation.final_transaction is not None
        return reservation.final_transaction
    if reservation.state != Reservation.State.HELD or reservation.expires_at <= now:
        raise _not_held()
    partner = reservation.partner
    amount = partner_amount
    if partner is not None and amount is None:
        amount = partner_price(reservation.points, partner.burn_price_per_point)
    redeem = PointsTransaction.objects.create(
        programme_id=reservation.programme_id,
        member=locked,
        kind=TransactionKind.REDEEM,
        points=reservation.points,
        idempotency_key=f"redeem:{reservation.idempotency_key}",
        source=reservation.hold_transaction.source,
        reference=reservation.reference,
        cash_amount=reservation.cash_amount,
        partner=partner,
        partner_amount=amount if partner is not None else None,
        details={
            "reservation": str(reservation.public_id),
            "reward": reservation.reward.code if reservation.reward else "",
        },
        occurred_at=now,
        created_at=now,
        created_by_id=actor_id(actor),
    )
    book = Book(redeem, {locked.pk: locked}, now)
    for lot_id, points in _held_per_lot(reservation):
        book.add(
            Account.MEMBER_RESERVED, -points, member=locked, lot=PointsLot(pk=lot_id, member_id=locked.pk)
        )
    if partner is not None:
        book.add(Account.PARTNER_REDEMPTION, reservation.points, partner=partner)
    else:
        book.add(Account.REDEMPTION, reservation.points)
    locked.lifetime_redeemed += reservation.points
    book.close()
    reservation.state = Reservation.State.CONFIRMED
    reservation.final_transaction = redeem
    reservation.settled_at = now
    reservation.save(update_fields=["state", "final_transaction", "settled_at"])
    audit.record(
        action="loyalty.points_redeemed",
        object_type="loyalty.transaction",
        object_id=str(redeem.public_id),
        after={
            "member": locked.card_number,
            "points": reservation.points,
            "reservation": str(reservation.public_id),
        },
        actor_id=actor_id(actor),
    )
    events.publish(
        PointsRedeemed(
            transaction_id=str(redeem.public_id),
            **member_event_fields(locked),
            points=reservation.points,
            cash_amount=str(reservation.cash_amount),
            reward=reservation.reward.code if reservation.reward else "",
            partner=partner.code if partner else "",
            occurred_at=now.isoformat(),
        ),
        aggregate_type="loyalty.member",
        aggregate_id=str(locked.public_id),
    )
    return redeem


def _held_per_lot(reservation: Reservation) -> list[tuple[int, int]]:
    """(lot id, points) still held by the reservation: what its hold put on ``member_reserved``."""
    rows = PointsEntry.objects.filter(
        transaction_id=reservation.hold_transaction_id, account=Account.MEMBER_RESERVED
    ).order_by("id")
    return [(row.lot_id, row.points) for row in rows if row.lot_id is not None]


def reservation_confirm(
    *, actor: Actor | None, reservation: Reservation, partner_amount: Decimal | None = None
) -> PointsTransaction:
    """Redeem the held points. Confirmed already → its REDEEM transaction; cancelled, expired or past
    its hold time → Conflict ``reservation_not_held``."""
    amount = check_amount(partner_amount, name="partner_amount")
    member = reservation.member
    authorise_for_member(actor, member, partner=reservation.partner)
    if reservation.state == Reservation.State.CONFIRMED and reservation.final_transaction is not None:
        return reservation.final_transaction
    now = clock.now()
    with transaction.atomic():
        locked = lock_member(member)
        redeem = _confirm_locked(
            actor=actor, locked=locked, reservation=reservation, partner_amount=amount, now=now
        )
    reservation.refresh_from_db()
    sync_caller_copy(member, locked)
    return redeem


def _release_locked(
    *, actor: Actor | None, locked: Member, reservation: Reservation, reason: str, state: str, now: datetime
) -> PointsTransaction | None:
    reservation = Reservation.objects.select_for_update().get(pk=reservation.pk)
    if reservation.state != Reservation.State.HELD:
        return None
    release = PointsTransaction.objects.create(
        programme_id=reservation.programme_id,
        member=locked,
        kind=TransactionKind.RELEASE,
        points=reservation.points,
        idempotency_key=f"release:{reservation.idempotency_key}",
        source=reservation.hold_transaction.source,
        reference=reservation.reference,
        partner=reservation.partner,
        details={"reservation": str(reservation.public_id), "reason": reason, "state": state},
        memo=reason,
        occurred_at=now,
        created_at=now,
        created_by_id=actor_id(actor),
    )
    book = Book(release, {locked.pk: locked}, now)
    today = programme_today(locked.programme)
    held = dict(_held_per_lot(reservation))
    expired = 0
    for lot in PointsLot.objects.filter(pk__in=list(held)).order_by("id"):
        points = held[lot.pk]
        book.add(Account.MEMBER_RESERVED, -points, member=locked, lot=lot)
        if lot.expires_on is not None and lot.expires_on < today:
            # The lot expired while its points were held: they go to breakage, not back to the member.
            book.add(Account.EXPIRY, points)
            expired += points
            if lot.remaining == 0:
                lot.state = PointsLot.State.EXPIRED
                lot.save(update_fields=["state"])
            continue
        book.add(Account.MEMBER_AVAILABLE, points, member=locked, lot=lot)
        lot.remaining += points
        lot.state = PointsLot.State.AVAILABLE
        lot.save(update_fields=["remaining", "state"])
    locked.lifetime_expired += expired
    book.settle_debt(locked)
    book.close()
    if expired:
        release.details = {**release.details, "expired": expired}
        release.save(update_fields=["details"])
    reservation.state = state
    reservation.final_transaction = release
    reservation.settled_at = now
    reservation.save(update_fields=["state", "final_transaction", "settled_at"])
    audit.record(
        action="loyalty.reservation_released",
        object_type="loyalty.reservation",
        object_id=str(reservation.public_id),
        after={"state": state, "points": reservation.points, "reason": reason, "expired": expired},
        actor_id=actor_id(actor),
    )
    return release


def reservation_release(
    *, actor: Actor | None, reservation: Reservation, reason: str, state: str = "cancelled"
) -> PointsTransaction | None:
    """Put held points back on the lots they came from (RELEASE). Not held any more → None."""
    if state not in (Reservation.State.CANCELLED, Reservation.State.EXPIRED):
        raise ValidationFailed(
            _("A reservation is released as cancelled or expired."),
            code="invalid_state",
            fields={"state": _("Invalid.")},
        )
    reason = check_text(reason, name="reason", max_length=REASON_MAX, required=True)
    member = reservation.member
    authorise_for_member(actor, member, partner=reservation.partner)
    if reservation.state != Reservation.State.HELD:
        return None
    now = clock.now()
    with transaction.atomic():
        locked = lock_member(member)
        release = _release_locked(
            actor=actor, locked=locked, reservation=reservation, reason=reason, state=state, now=now
        )
    reservation.refresh_from_db()
    sync_caller_copy(member, locked)
    return release


def reservations_expire_due(*, now: datetime | None = None) -> int:
    """Release every reservation held past its time (state ``expired``). Returns how many."""
    moment = now or clock.now()
    released = 0
    due = list(
        Reservation.objects.filter(state=Reservation.State.HELD, expires_at__lte=moment)
        .order_by("id")
        .values_list("pk", flat=True)[:5000]
    )
    for reservation in Reservation.objects.filter(pk__in=due).select_related("member").order_by("id"):
        with transaction.atomic():
            locked = lock_member(reservation.member)
            if _release_locked(
                actor=None,
                locked=locked,
                reservation=reservation,
                reason="timeout",
                state=Reservation.State.EXPIRED,
                now=clock.now() if now is None else moment,
            ):
                released += 1
    return released


def points_redeem(
    *,
    actor: Actor | None,
    member: Member,
    points: int,
    idempotency_key: str,
    source: str,
    reference: str = "",
    cash_amount: Decimal = Decimal("0"),
    reward: Reward | None = None,
    partner: Partner | None = None,
    partner_amount: Decimal | None = None,
) -> PointsTransaction:
    """Hold and confirm in one database transaction; returns the REDEEM transaction. Same key →
    the same REDEEM (a reservation held earlier under this key is confirmed)."""
    key, source, reference, cash, minutes = _validate_hold(
        member, points, idempotency_key, source, reference, cash_amount, reward, partner, None
    )
    amount = check_amount(partner_amount, name="partner_amount")
    authorise_for_member(actor, member, partner=partner)
    now = clock.now()
    try:
        with transaction.atomic():
            locked = lock_member(member)
            reservation = _hold_locked(
                actor=actor,
                locked=locked,
                points=points,
                key=key,
                source=source,
                reference=reference,
                cash_amount=cash,
                reward=reward,
                partner=partner,
                minutes=minutes,
                now=now,
            )
            redeem = _confirm_locked(
                actor=actor, locked=locked, reservation=reservation, partner_amount=amount, now=now
            )
    except IntegrityError:
        _raise_if_key_taken(member, key)
        raise
    sync_caller_copy(member, locked)
    return redeem

"""The building blocks every ledger posting shares: authorisation, validation, the member lock, lot
expiry dates, first-expiring-first consumption and the double-entry ``Book`` that writes a transaction.

Conventions (see ``docs/loyalty-ledger.md``):

* a positive entry increases its account; the entries of one transaction sum to zero;
* ``Member.available/pending/reserved`` = Σ of the member's entries on ``member_available/pending/
  reserved``; ``Member.debt`` (≥ 0) = −Σ of its ``member_debt`` entries (the debt account is a contra
  account: creating a debt of 70 posts ``member_debt −70``, settling it posts ``member_debt +70``), so
  Σ of all member accounts is always the outstanding liability;
* ``PointsLot.remaining`` = Σ of that lot's entries on ``member_available`` + ``member_pending`` (the
  spendable or maturing part); points of a lot held by a reservation sit on ``member_reserved`` entries
  that name the lot, so a release can put them back on the same lot.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, connection, transaction
from django.db.models import F, QuerySet
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.customers.facade import customer_for_user
from fedele.loyalty.models import (
    Account,
    ExpiryPolicy,
    Member,
    MemberStatus,
    Partner,
    PointsEntry,
    PointsLot,
    PointsTransaction,
    Programme,
    ProgrammeStatus,
)
from fedele.shared import clock
from fedele.shared.bulk import column_in, column_of
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed

CENT = Decimal("0.01")
MAX_KEY_LENGTH = 100
OPERATE = "loyalty.operate_loyalty"
VIEW = "loyalty.view_loyalty"
MANAGE = "loyalty.manage_loyalty"
REVIEW_FRAUD = "loyalty.review_loyalty_fraud"
BALANCE_FIELDS = (
    "available",
    "pending",
    "reserved",
    "debt",
    "lifetime_earned",
    "lifetime_redeemed",
    "lifetime_expired",
)
_CACHE_OF_ACCOUNT = {
    Account.MEMBER_AVAILABLE: "available",
    Account.MEMBER_PENDING: "pending",
    Account.MEMBER_RESERVED: "reserved",
}


# ----------------------------------------------------------------------------------------------
# Authorisation


def actor_id(actor: Actor | None) -> int | None:
    """The user id for ``created_by_id`` and the audit row (the system acts as nobody)."""
    return actor.user_id if actor is not None and actor.user_id else None


def portal_customer_id(actor: Actor) -> int | None:
    """The internal id of the customer a portal login acts for (None if not linked)."""
    summary = customer_for_user(actor.user_id)
    return summary.customer_id if summary is not None else None


def owns_member(actor: Actor, member: Member) -> bool:
    return actor.is_portal_customer and portal_customer_id(actor) == member.customer_id


def acts_for_partner(actor: Actor, partner: Partner | None) -> bool:
    return (
        partner is not None
        and actor.is_partner
        and actor.organisation_id is not None
        and actor.organisation_id == partner.organisation_id
    )


def deny() -> PermissionDenied:
    return PermissionDenied(_("You do not have permission for this action."))


def authorise_operator(actor: Actor | None, *permissions: str) -> None:
    """The system (None) or staff holding one of ``permissions`` (default: operate_loyalty)."""
    if actor is None:
        return
    if any(actor.can(permission) for permission in (permissions or (OPERATE,))):
        return
    raise deny()


def authorise_for_member(
    actor: Actor | None, member: Member, *, partner: Partner | None = None, allow_portal: bool = True
) -> None:
    """Staff with operate_loyalty, the member itself through the portal, or the acting partner."""
    if actor is None or actor.can(OPERATE):
        return
    if allow_portal and owns_member(actor, member):
        return
    if acts_for_partner(actor, partner):
        return
    raise deny()


# ----------------------------------------------------------------------------------------------
# Validation


def check_points(points: Any, programme: Programme, *, field_name: str = "points") -> int:
    """A whole number of points, > 0 and within the programme's maximum per transaction."""
    if isinstance(points, bool) or not isinstance(points, int):
        raise ValidationFailed(
            _("Points must be a whole number."),
            code="invalid_points",
            fields={field_name: _("Enter a whole number of points.")},
        )
    if points <= 0:
        raise ValidationFailed(
            _("Points must be greater than zero."),
            code="invalid_points",
            fields={field_name: _("Enter a number of points greater than zero.")},
        )
    if points > programme.max_points_per_transaction:
        raise ValidationFailed(
            _("At most %(max)s points can move in one transaction.")
            % {"max": programme.max_points_per_transaction},
            code="points_too_large",
            fields={field_name: _("Too many points for one transaction.")},
        )
    return points


def check_key(key: str | None, *, required: bool = True) -> str | None:
    if key is None or (isinstance(key, str) and not key.strip()):
        if required:
            raise ValidationFailed(
                _("An idempotency key is required."),
                code="idempotency_key_required",
                fields={"idempotency_key": _("Required.")},
            )
        return None
    key = str(key).strip()
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed(
            _("The idempotency key may have at most %(max)s characters.") % {"max": MAX_KEY_LENGTH},
            code="invalid_idempotency_key",
            fields={"idempotency_key": _("Too long.")},
        )
    return key


def check_text(value: str, *, name: str, max_length: int, required: bool = False) -> str:
    text = (value or "").strip()
    if required and not text:
        raise ValidationFailed(
            _("%(field)s is required.") % {"field": name.capitalize()},
            code=f"{name}_required",
            fields={name: _("Required.")},
        )
    if len(text) > max_length:
        raise ValidationFailed(
            _("%(field)s may have at most %(max)s characters.")
            % {"field": name.capitalize(), "max": max_length},
            code=f"invalid_{name}",
            fields={name: _("Too long.")},
        )
    return text


def check_amount(value: Any, *, name: str, allow_none: bool = True) -> Decimal | None:
    """A EUR amount ≥ 0, quantised half-up to the cent."""
    if value is None:
        if allow_none:
            return None
        raise ValidationFailed(
            _("An amount is required."), code=f"invalid_{name}", fields={name: _("Required.")}
        )
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError) as error:
        raise ValidationFailed(
            _("The amount is not a number."), code=f"invalid_{name}", fields={name: _("Enter an amount.")}
        ) from error
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1000000000000"):
        raise ValidationFailed(
            _("The amount must be zero or more."),
            code=f"invalid_{name}",
            fields={name: _("Enter an amount of zero or more.")},
        )
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def check_programme_active(programme: Programme) -> None:
    if programme.status != ProgrammeStatus.ACTIVE:
        raise ValidationFailed(
            _("The programme is not active."),
            code="programme_not_active",
            fields={"programme": _("Not active.")},
        )


def check_member_active(member: Member) -> None:
    if member.status != MemberStatus.ACTIVE:
        raise ValidationFailed(
            _("The membership is %(status)s: points cannot move.") % {"status": member.get_status_display()},
            code="member_not_active",
            fields={"member": _("Not active.")},
        )


def check_partner(partner: Partner | None, programme: Programme, *, burn: bool) -> None:
    if partner is None:
        return
    if partner.programme_id != programme.pk:
        raise ValidationFailed(
            _("The partner does not belong to this programme."),
            code="partner_not_in_programme",
            fields={"partner": _("Unknown partner.")},
        )
    if partner.status != Partner.Status.ACTIVE or not (partner.can_burn if burn else partner.can_earn):
        raise ValidationFailed(
            _("The partner may not accept points.") if burn else _("The partner may not issue points."),
            code="partner_not_allowed",
            fields={"partner": _("Not allowed.")},
        )


def insufficient(available: int, wanted: int) -> ValidationFailed:
    return ValidationFailed(
        _("Not enough points: %(available)s available, %(wanted)s needed.")
        % {"available": available, "wanted": wanted},
        code="insufficient_balance",
        fields={"points": _("Not enough points.")},
    )


def partner_price(points: int, price_per_point: Decimal) -> Decimal:
    return (Decimal(points) * price_per_point).quantize(CENT, rounding=ROUND_HALF_UP)


# ----------------------------------------------------------------------------------------------
# Time and expiry


def add_months(day: date, months: int) -> date:
    """Same day ``months`` later, clamped to the month's end (31 Jan + 1 → 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def programme_day(programme: Programme, moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(programme.timezone)).date()


def programme_today(programme: Programme) -> date:
    return clock.today(programme.timezone)


def lot_expiry(programme: Programme, earned_at: datetime) -> date | None:
    """The last day a lot earned at ``earned_at`` can be used, in the programme's time zone."""
    day = programme_day(programme, earned_at)
    if programme.expiry_policy == ExpiryPolicy.ROLLING_MONTHS:
        return add_months(day, programme.expiry_months)
    if programme.expiry_policy == ExpiryPolicy.END_OF_YEAR:
        return date(day.year + programme.expiry_years, 12, 31)
    return None


# ----------------------------------------------------------------------------------------------
# Locks and lots


def lock_members(*members: Member) -> dict[int, Member]:
    """Lock the members' rows (ordered by pk, so two postings never deadlock) and return fresh copies.

    ``FOR NO KEY UPDATE``: postings never delete a member or change its key, and this lock, unlike
    ``FOR UPDATE``, lets other transactions insert rows that reference the member (a ledger row's
    foreign key check takes a key-share lock) while still excluding every other posting."""
    ids = sorted({member.pk for member in members})
    locked = {
        m.pk: m for m in Member.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk")
    }
    if len(locked) != len(ids):
        raise NotFound(_("Member not found."), code="member_not_found")
    return locked


# What a batch posting reads of the members it locks (the others load on first use, which the ledger
# and its hooks do only in rare branches such as a tier upgrade).
LOCKED_MEMBER_FIELDS = (
    "id",
    "programme_id",
    "customer_id",
    "public_id",
    "card_number",
    "status",
    "tier_id",
    "flagged",
    "available",
    "pending",
    "reserved",
    "debt",
    "lifetime_earned",
)


def lock_member_rows(member_ids: Iterable[int]) -> dict[int, Member]:
    """``lock_members`` for batches of thousands: one plain statement (no ORM query building, no
    placeholder per member) that locks the rows in pk order and loads ``LOCKED_MEMBER_FIELDS``."""
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    meta = Member._meta
    columns = ", ".join(column_of(Member, name) for name in LOCKED_MEMBER_FIELDS)
    pk_column = str(meta.pk.column)
    where, params = column_in(pk_column, ids)
    lock = " FOR NO KEY UPDATE" if connection.features.has_select_for_no_key_update else ""
    sql = f"SELECT {columns} FROM {meta.db_table} WHERE {where} ORDER BY {pk_column}{lock}"  # noqa: S608
    locked = {member.pk: member for member in Member.objects.raw(sql, params)}
    if len(locked) != len(ids):
        raise NotFound(_("Member not found."), code="member_not_found")
    return locked


def lock_member(member: Member) -> Member:
    return lock_members(member)[member.pk]


def sync_caller_copy(original: Member, locked: Member) -> None:
    """Copy the new balances onto the instance the caller passed, so it is not stale afterwards."""
    if original is locked:
        return
    for name in (*BALANCE_FIELDS, "status", "updated_at"):
        setattr(original, name, getattr(locked, name))


def fifo_lots(member: Member) -> QuerySet[PointsLot]:
    """Spendable lots, nearest expiry first (never-expiring last), then the oldest."""
    return PointsLot.objects.filter(member=member, state=PointsLot.State.AVAILABLE, remaining__gt=0).order_by(
        F("expires_on").asc(nulls_last=True), "id"
    )


# ----------------------------------------------------------------------------------------------
# The double-entry book of one transaction


@dataclass
class Book:
    """Collects the entries of one transaction and keeps the locked members' caches in step.

    Entries are written in one INSERT by ``close()``, which checks they sum to zero and saves the
    members. Lots are saved as they change (they are read back by the FIFO query in the same posting).
    """

    transaction: PointsTransaction
    members: dict[int, Member]
    now: datetime
    entries: list[PointsEntry] = field(default_factory=list)

    def add(
        self,
        account: str,
        points: int,
        *,
        member: Member | None = None,
        lot: PointsLot | None = None,
        partner: Partner | None = None,
    ) -> None:
        if points == 0:
            return
        self.entries.append(
            PointsEntry(
                transaction=self.transaction,
                programme_id=self.transaction.programme_id,
                account=account,
                member=member,
                partner=partner,
                lot=lot,
                points=points,
                created_at=self.now,
            )
        )
        if member is not None:
            cached = self.members[member.pk]
            if account == Account.MEMBER_DEBT:
                cached.debt -= points
            else:
                name = _CACHE_OF_ACCOUNT[Account(account)]
                setattr(cached, name, getattr(cached, name) + points)

    def new_lot(
        self,
        member: Member,
        points: int,
        *,
        expires_on: date | None,
        pending_until: datetime | None = None,
        earned_at: datetime | None = None,
    ) -> PointsLot:
        """A new lot for ``member`` with its credit entry (pending while ``pending_until`` is set)."""
        lot = PointsLot.objects.create(
            programme_id=self.transaction.programme_id,
            member=member,
            earn_transaction=self.transaction,
            points=points,
            remaining=points,
            state=PointsLot.State.PENDING if pending_until else PointsLot.State.AVAILABLE,
            earned_at=earned_at or self.transaction.occurred_at,
            matures_at=pending_until,
            expires_on=expires_on,
        )
        account = Account.MEMBER_PENDING if pending_until else Account.MEMBER_AVAILABLE
        self.add(account, points, member=member, lot=lot)
        return lot

    def take_from_lot(self, lot: PointsLot, points: int, *, to_reserved: bool = False) -> int:
        """Take up to ``points`` from one lot (its available or pending remainder)."""
        taken = min(points, lot.remaining)
        if taken <= 0:
            return 0
        member = self.members[lot.member_id]
        account = Account.MEMBER_PENDING if lot.state == PointsLot.State.PENDING else Account.MEMBER_AVAILABLE
        self.add(account, -taken, member=member, lot=lot)
        if to_reserved:
            self.add(Account.MEMBER_RESERVED, taken, member=member, lot=lot)
        lot.remaining -= taken
        if lot.remaining == 0 and lot.state == PointsLot.State.AVAILABLE:
            lot.state = PointsLot.State.SPENT
        lot.save(update_fields=["remaining", "state"])
        return taken

    def take_available(
        self, member: Member, points: int, *, to_reserved: bool = False, exclude: Iterable[int] = ()
    ) -> list[tuple[PointsLot, int]]:
        """Take ``points`` (or as many as there are) from the member's lots, first expiring first."""
        taken: list[tuple[PointsLot, int]] = []
        wanted = points
        if wanted <= 0:
            return taken
        lots = fifo_lots(member).exclude(pk__in=list(exclude))
        for lot in lots.iterator(chunk_size=200):
            amount = self.take_from_lot(lot, wanted, to_reserved=to_reserved)
            taken.append((lot, amount))
            wanted -= amount
            if wanted == 0:
                break
        return taken

    def settle_debt(self, member: Member) -> int:
        """Pay what the member owes out of its available points, so available never hides a debt."""
        cached = self.members[member.pk]
        owed = min(cached.debt, cached.available)
        if owed <= 0:
            return 0
        taken = sum(amount for _lot, amount in self.take_available(cached, owed))
        self.add(Account.MEMBER_DEBT, taken, member=cached)
        return taken

    def close(self) -> None:
        total = sum(entry.points for entry in self.entries)
        if total != 0 or len(self.entries) < 2:
            raise AssertionError(f"Unbalanced ledger transaction: {total} over {len(self.entries)} entries")
        PointsEntry.objects.bulk_create(self.entries)
        touched = {entry.member_id for entry in self.entries if entry.member_id is not None}
        for member_pk in sorted(touched):
            cached = self.members[member_pk]
            cached.updated_at = self.now
            cached.save(update_fields=[*BALANCE_FIELDS, "updated_at"])


def insert_transaction(candidate: PointsTransaction) -> tuple[PointsTransaction, bool]:
    """Save a new transaction; if its idempotency key is taken (a racing request), return the first."""
    if candidate.idempotency_key is None:
        candidate.save()
        return candidate, True
    try:
        with transaction.atomic():
            candidate.save()
    except IntegrityError:
        existing = PointsTransaction.objects.filter(
            programme_id=candidate.programme_id, idempotency_key=candidate.idempotency_key
        ).first()
        if existing is None:
            raise
        return existing, False
    return candidate, True


def existing_transaction(programme: Programme, key: str | None) -> PointsTransaction | None:
    if key is None:
        return None
    return PointsTransaction.objects.filter(programme=programme, idempotency_key=key).first()


def member_event_fields(member: Member) -> dict[str, str]:
    return {
        "member_id": str(member.public_id),
        "customer_id": str(member.customer.public_id),
        "programme": member.programme.code,
    }

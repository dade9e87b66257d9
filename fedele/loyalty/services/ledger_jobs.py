"""Periodic ledger work (maturity, expiry, expiry notices) and the ledger's own checks and figures.

Expiry on PostgreSQL is set-based: per batch of members, one SQL statement locks nothing it does not
change (the members are locked first, in pk order, like every posting), then writes the EXPIRE
transactions, their entries, the lot and member updates and the ``PointsExpired`` outbox rows. Other
databases (SQLite, the embedded mode) take the same steps through the ORM.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import translation
from django.utils.translation import gettext as _

from fedele.customers.facade import consents_in_force, customer_summary
from fedele.loyalty.events import PointsExpired, PointsExpiring
from fedele.loyalty.models import (
    MEMBER_ACCOUNTS,
    Account,
    ExpiryNotice,
    ExpiryPolicy,
    Member,
    PointsEntry,
    PointsLot,
    PointsTransaction,
    Programme,
    ProgrammeStatus,
    TransactionKind,
)
from fedele.loyalty.services.ledger_core import (
    Book,
    lock_member,
    lock_members,
    member_event_fields,
    programme_today,
)
from fedele.shared import audit, clock, events, sms
from fedele.shared.models import OutboxEvent

logger = logging.getLogger(__name__)

EXPIRY_BATCH_MEMBERS = 50_000
MATURE_BATCH = 2_000
CENT = Decimal("0.01")


def _programmes(programme: Programme | None) -> list[Programme]:
    if programme is not None:
        return [programme]
    return list(Programme.objects.exclude(status=ProgrammeStatus.DRAFT).order_by("id"))


# ----------------------------------------------------------------------------------------------
# Maturity of pending points


def lots_mature_due(*, now: datetime | None = None, programme: Programme | None = None) -> int:
    """Make pending lots whose return window has ended available (one MATURE transaction per member:
    ``member_pending −x`` / ``member_available +x`` on each lot, then any debt is settled).
    Returns how many lots matured."""
    moment = now or clock.now()
    matured = 0
    for current in _programmes(programme):
        while True:
            member_ids = list(
                PointsLot.objects.filter(
                    programme=current, state=PointsLot.State.PENDING, matures_at__lte=moment, remaining__gt=0
                )
                .order_by("member_id")
                .values_list("member_id", flat=True)
                .distinct()[:MATURE_BATCH]
            )
            if not member_ids:
                break
            for member in Member.objects.filter(pk__in=member_ids).order_by("pk"):
                matured += _mature_member(member, moment)
            if len(member_ids) < MATURE_BATCH:
                break
    if matured:
        with transaction.atomic():
            audit.record(
                action="loyalty.lots_matured",
                object_type="loyalty.ledger",
                object_id=str(programme.public_id) if programme else "all",
                after={"lots": matured, "at": moment},
            )
    return matured


def _mature_member(member: Member, moment: datetime) -> int:
    with transaction.atomic():
        locked = lock_member(member)
        lots = list(
            PointsLot.objects.filter(
                member=locked, state=PointsLot.State.PENDING, matures_at__lte=moment, remaining__gt=0
            ).order_by("id")
        )
        if not lots:
            return 0
        now = clock.now()
        total = sum(lot.remaining for lot in lots)
        txn = PointsTransaction.objects.create(
            programme_id=locked.programme_id,
            member=locked,
            kind=TransactionKind.MATURE,
            points=total,
            source="maturity",
            details={"lots": [lot.pk for lot in lots]},
            occurred_at=now,
            created_at=now,
        )
        book = Book(txn, {locked.pk: locked}, now)
        for lot in lots:
            book.add(Account.MEMBER_PENDING, -lot.remaining, member=locked, lot=lot)
            book.add(Account.MEMBER_AVAILABLE, lot.remaining, member=locked, lot=lot)
            lot.state = PointsLot.State.AVAILABLE
            lot.save(update_fields=["state"])
        book.settle_debt(locked)
        book.close()
    return len(lots)


# ----------------------------------------------------------------------------------------------
# Expiry


def lots_expire_due(*, today: date | None = None, programme: Programme | None = None) -> int:
    """Expire every available lot whose last day (``expires_on``) is before ``today`` (by default
    today in each programme's time zone): one EXPIRE transaction per member and run, ``member_available
    −remaining`` per lot and ``expiry +total``; one ``PointsExpired`` event per member.
    Idempotent: an expired lot has nothing left to expire. Returns how many lots expired."""
    expired = 0
    for current in _programmes(programme):
        day = today or programme_today(current)
        if connection.vendor == "postgresql":
            lots, members = _expire_postgresql(current, day)
        else:
            lots, members = _expire_orm(current, day)
        if lots:
            with transaction.atomic():
                audit.record(
                    action="loyalty.points_expired",
                    object_type="loyalty.programme",
                    object_id=str(current.public_id),
                    after={"day": day, "lots": lots, "members": members},
                )
        expired += lots
    return expired


def _due_members(programme: Programme, day: date) -> list[int]:
    return list(
        PointsLot.objects.filter(
            programme=programme, state=PointsLot.State.AVAILABLE, expires_on__lt=day, remaining__gt=0
        )
        .order_by("member_id")
        .values_list("member_id", flat=True)
        .distinct()
    )


def _table(model: type) -> str:
    return str(model._meta.db_table)  # type: ignore[attr-defined]


def expiry_statement() -> str:
    """The set-based expiry of one batch of (already locked) members, as one SQL statement."""
    customer_table = _table(Member._meta.get_field("customer").related_model)
    return f"""
        WITH due AS (
            SELECT l.id, l.member_id, l.remaining FROM {_table(PointsLot)} l
            WHERE l.member_id = ANY(%(members)s) AND l.programme_id = %(programme)s
              AND l.state = 'available' AND l.expires_on < %(day)s AND l.remaining > 0
        ), totals AS (
            SELECT member_id, SUM(remaining)::bigint AS points FROM due GROUP BY member_id
        ), txns AS (
            INSERT INTO {_table(PointsTransaction)} (public_id, programme_id, member_id, kind, points, source,
                reference, qualifying_points, qualifying_count, details, memo, occurred_at, created_at)
            SELECT gen_random_uuid(), %(programme)s, member_id, 'expire', points, 'expiry', '', 0, 0,
                %(details)s::jsonb, '', %(now)s, %(now)s
            FROM totals
            RETURNING id, member_id, points
        ), member_legs AS (
            INSERT INTO {_table(PointsEntry)}
                (transaction_id, programme_id, account, member_id, lot_id, points, created_at)
            SELECT t.id, %(programme)s, 'member_available', d.member_id, d.id, -d.remaining, %(now)s
            FROM due d JOIN txns t ON t.member_id = d.member_id
        ), expiry_legs AS (
            INSERT INTO {_table(PointsEntry)} (transaction_id, programme_id, account, points, created_at)
            SELECT t.id, %(programme)s, 'expiry', t.points, %(now)s FROM txns t
        ), expired_lots AS (
            UPDATE {_table(PointsLot)} l SET remaining = 0, state = 'expired' FROM due d WHERE l.id = d.id
            RETURNING 1
        ), member_rows AS (
            UPDATE {_table(Member)} m
            SET available = m.available - t.points, lifetime_expired = m.lifetime_expired + t.points,
                updated_at = %(now)s
            FROM txns t WHERE m.id = t.member_id
            RETURNING m.public_id, m.customer_id, t.points
        ), outbox AS (
            INSERT INTO {_table(OutboxEvent)} (event_id, event_type, aggregate_type, aggregate_id, payload,
                occurred_at, attempts, last_error)
            SELECT gen_random_uuid(), %(event_type)s, 'loyalty.member', r.public_id::text,
                jsonb_build_object('member_id', r.public_id::text, 'customer_id', c.public_id::text,
                    'programme', %(code)s, 'points', r.points, 'expired_on', %(day_text)s),
                %(now)s, 0, ''
            FROM member_rows r JOIN {customer_table} c ON c.id = r.customer_id
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM expired_lots), (SELECT count(*) FROM outbox)
    """  # noqa: S608 (table names come from the models, values are parameters)


def _expire_batch(programme: Programme, day: date, batch: list[int], now: datetime) -> tuple[int, int]:
    """One batch of members in its own transaction: lock them (pk order), then the one statement."""
    with transaction.atomic(), connection.cursor() as cursor:
        # Room for the batch's hash joins in memory; the job is idempotent, so a crash that loses
        # the last commit only means the next run expires those lots.
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute(
            f"SELECT id FROM {_table(Member)} WHERE id = ANY(%s) ORDER BY id FOR UPDATE",  # noqa: S608
            [batch],
        )
        cursor.execute(
            expiry_statement(),
            {
                "members": batch,
                "programme": programme.pk,
                "day": day,
                "day_text": day.isoformat(),
                "now": now,
                "details": json.dumps({"expired_on": day.isoformat()}),
                "event_type": PointsExpired.event_type,
                "code": programme.code,
            },
        )
        row = cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _expire_postgresql(programme: Programme, day: date) -> tuple[int, int]:
    """Batches of members, one transaction each. (Two batches at once on two connections was tried:
    the statement is bound by writing rows, index entries and WAL, not by one core, and was slower.)"""
    member_ids = _due_members(programme, day)
    now = clock.now()
    lots = members = 0
    for start in range(0, len(member_ids), EXPIRY_BATCH_MEMBERS):
        batch_lots, batch_members = _expire_batch(
            programme, day, member_ids[start : start + EXPIRY_BATCH_MEMBERS], now
        )
        lots += batch_lots
        members += batch_members
    # The outbox rows were written in bulk, without a dispatch task each: the outbox sweep delivers them.
    return lots, members


def _expire_orm(programme: Programme, day: date) -> tuple[int, int]:
    member_ids = _due_members(programme, day)
    lots_expired = members_done = 0
    for start in range(0, len(member_ids), EXPIRY_BATCH_MEMBERS):
        batch = member_ids[start : start + EXPIRY_BATCH_MEMBERS]
        with transaction.atomic():
            locked = lock_members(*Member.objects.filter(pk__in=batch))
            due: dict[int, list[PointsLot]] = defaultdict(list)
            for lot in PointsLot.objects.filter(
                member_id__in=batch,
                programme=programme,
                state=PointsLot.State.AVAILABLE,
                expires_on__lt=day,
                remaining__gt=0,
            ).order_by("member_id", "id"):
                due[lot.member_id].append(lot)
            now = clock.now()
            for member_pk, lots in due.items():
                member = locked[member_pk]
                total = sum(lot.remaining for lot in lots)
                txn = PointsTransaction.objects.create(
                    programme=programme,
                    member=member,
                    kind=TransactionKind.EXPIRE,
                    points=total,
                    source="expiry",
                    details={"expired_on": day.isoformat()},
                    occurred_at=now,
                    created_at=now,
                )
                book = Book(txn, locked, now)
                for lot in lots:
                    book.add(Account.MEMBER_AVAILABLE, -lot.remaining, member=member, lot=lot)
                    lot.remaining = 0
                    lot.state = PointsLot.State.EXPIRED
                book.add(Account.EXPIRY, total)
                PointsLot.objects.bulk_update(lots, ["remaining", "state"])
                member.lifetime_expired += total
                book.close()
                events.publish(
                    PointsExpired(**member_event_fields(member), points=total, expired_on=day.isoformat()),
                    aggregate_type="loyalty.member",
                    aggregate_id=str(member.public_id),
                )
                lots_expired += len(lots)
                members_done += 1
    return lots_expired, members_done


# ----------------------------------------------------------------------------------------------
# Expiry notices


def expiry_notices_send(*, today: date | None = None) -> int:
    """One ``PointsExpiring`` event per member and expiry date falling within the programme's
    ``expiry_notice_days`` (the ``ExpiryNotice`` row makes it once only). The notice goes by the channels
    the customer consented to for the programme's messages (``NOTICE_PURPOSES``, the consent in force
    through the customers facade): by e-mail to the customer's address with an e-mail consent, by SMS
    (``fedele.shared.sms``) to the customer's mobile phone with an SMS consent, both with both.
    ``channel`` records what was sent ("email", "sms", "email,sms"; empty: the event only). Returns how
    many notices were created."""
    created = 0
    for programme in Programme.objects.filter(status=ProgrammeStatus.ACTIVE).exclude(
        expiry_policy=ExpiryPolicy.NONE
    ):
        if programme.expiry_notice_days == 0:
            continue
        day = today or programme_today(programme)
        horizon = day + timedelta(days=programme.expiry_notice_days)
        rows = (
            PointsLot.objects.filter(
                programme=programme,
                state=PointsLot.State.AVAILABLE,
                remaining__gt=0,
                expires_on__gte=day,
                expires_on__lte=horizon,
            )
            .values("member_id", "expires_on")
            .annotate(points=Sum("remaining"))
            .order_by("member_id", "expires_on")
        )
        already = set(
            ExpiryNotice.objects.filter(
                member__programme=programme, expires_on__gte=day, expires_on__lte=horizon
            ).values_list("member_id", "expires_on")
        )
        for row in rows:
            if (row["member_id"], row["expires_on"]) in already:
                continue
            expires_on = row["expires_on"]
            if expires_on is not None and _notice_once(row["member_id"], expires_on, int(row["points"])):
                created += 1
    return created


NOTICE_PURPOSES = frozenset({"service", "marketing"})
"""A granted consent for either purpose lets the programme send its notices on that channel."""


def _notice_channels(customer_public_id: str) -> tuple[str, str]:
    """(e-mail address, E.164 mobile number) the expiry notice may go to; empty where it may not."""
    summary = customer_summary(customer_public_id)
    if summary is None:
        return "", ""
    consents = consents_in_force(str(summary.public_id))

    def granted(channel: str) -> bool:
        return any(
            state.granted
            for (name, purpose), state in consents.items()
            if name == channel and purpose in NOTICE_PURPOSES
        )

    address = summary.email if summary.email and granted("email") else ""
    number = ""
    if summary.phone and granted("sms"):
        region = summary.country or "IT"
        if sms.can_receive_sms(summary.phone, default_region=region):
            number = sms.e164(summary.phone, default_region=region)
        else:
            logger.info("Expiry notice: customer %s has SMS consent but no mobile number", summary.public_id)
    return address, number


def _notice_once(member_id: int, expires_on: date, points: int) -> bool:
    member = Member.objects.select_related("customer", "programme").get(pk=member_id)
    address, number = _notice_channels(str(member.customer.public_id))
    channels = [name for name, target in (("email", address), ("sms", number)) if target]
    now = clock.now()
    try:
        with transaction.atomic():
            ExpiryNotice.objects.create(
                member=member, expires_on=expires_on, points=points, channel=",".join(channels), sent_at=now
            )
            events.publish(
                PointsExpiring(
                    **member_event_fields(member), points=points, expires_on=expires_on.isoformat()
                ),
                aggregate_type="loyalty.member",
                aggregate_id=str(member.public_id),
            )
            if address:
                transaction.on_commit(lambda: _send_expiry_mail(member, address, points, expires_on))
            if number:
                transaction.on_commit(lambda: _send_expiry_sms(member, number, points, expires_on))
    except IntegrityError:
        return False
    return True


def _notice_language(member: Member) -> str:
    return member.language if member.language in ("it", "en") else "it"


def _club_url() -> str:
    return f"{settings.FEDELE_PUBLIC_URL}/club/"


def _send_expiry_mail(member: Member, address: str, points: int, expires_on: date) -> None:
    language = _notice_language(member)
    with translation.override(language):
        currency = member.programme.currency_name(language)
        subject = _("%(points)s %(currency)s expire on %(date)s") % {
            "points": points,
            "currency": currency,
            "date": expires_on.strftime("%d/%m/%Y"),
        }
        body = _(
            "Hello,\n\n%(points)s %(currency)s on your card %(card)s (%(programme)s) expire on %(date)s.\n"
            "Use them before then in the member area: %(url)s\n"
        ) % {
            "points": points,
            "currency": currency,
            "card": member.card_number,
            "programme": member.programme.name(language),
            "date": expires_on.strftime("%d/%m/%Y"),
            "url": _club_url(),
        }
    try:
        send_mail(subject, body, None, [address])
    except Exception:
        logger.exception("Could not send the expiry notice of member %s", member.pk)


def expiry_sms_text(member: Member, points: int, expires_on: date) -> str:
    """The SMS in the member's language: short enough for one SMS with a plain-letter programme name."""
    language = _notice_language(member)
    with translation.override(language):
        return _(
            "%(programme)s: %(points)s %(currency)s on your card ending %(card)s expire on %(date)s. "
            "Use them: %(url)s"
        ) % {
            "programme": member.programme.name(language),
            "points": points,
            "currency": member.programme.currency_name(language),
            "card": member.card_number[-4:],
            "date": expires_on.strftime("%d/%m/%Y"),
            "url": _club_url(),
        }


def _send_expiry_sms(member: Member, number: str, points: int, expires_on: date) -> None:
    try:
        sms.send_sms(number, expiry_sms_text(member, points, expires_on))
    except Exception:
        logger.exception("Could not send the expiry notice SMS of member %s", member.pk)


# ----------------------------------------------------------------------------------------------
# Checks and figures


def _entry_sum(account: str | tuple[str, ...], **filters: object) -> Coalesce:
    accounts = (account,) if isinstance(account, str) else account
    subquery = (
        PointsEntry.objects.filter(account__in=accounts, **filters)
        .order_by()
        .values(*filters.keys())
        .annotate(total=Sum("points"))
        .values("total")
    )
    return Coalesce(Subquery(subquery, output_field=IntegerField()), Value(0))


def ledger_check(*, programme: Programme | None = None) -> list[str]:
    """Everything that is not as the ledger says, as readable lines; empty when all is well:
    unbalanced transactions, member caches that differ from their entries (or from their lots), lots
    whose ``remaining`` differs from their entries, negative reserved legs, a debt beside available
    points, and the liability (Σ member accounts) against Σ of the member caches."""
    problems: list[str] = []
    entries = PointsEntry.objects.all()
    transactions = PointsTransaction.objects.all()
    members = Member.objects.all()
    lots = PointsLot.objects.all()
    if programme is not None:
        entries = entries.filter(programme=programme)
        transactions = transactions.filter(programme=programme)
        members = members.filter(programme=programme)
        lots = lots.filter(programme=programme)

    for row in entries.order_by().values("transaction_id").annotate(total=Sum("points")).exclude(total=0):
        problems.append(f"transaction {row['transaction_id']}: entries sum to {row['total']}, not 0")
    for lonely in transactions.annotate(legs=Count("entries")).filter(legs__lt=2).values("id", "legs"):
        problems.append(f"transaction {lonely['id']}: {lonely['legs']} entries (a posting needs at least 2)")

    outer = OuterRef("pk")
    checked = members.annotate(
        ledger_available=_entry_sum(Account.MEMBER_AVAILABLE, member=outer),
        ledger_pending=_entry_sum(Account.MEMBER_PENDING, member=outer),
        ledger_reserved=_entry_sum(Account.MEMBER_RESERVED, member=outer),
        ledger_debt=_entry_sum(Account.MEMBER_DEBT, member=outer),
        lots_available=Coalesce(
            Subquery(
                PointsLot.objects.filter(member=outer, state=PointsLot.State.AVAILABLE)
                .order_by()
                .values("member")
                .annotate(total=Sum("remaining"))
                .values("total"),
                output_field=IntegerField(),
            ),
            Value(0),
        ),
        lots_pending=Coalesce(
            Subquery(
                PointsLot.objects.filter(member=outer, state=PointsLot.State.PENDING)
                .order_by()
                .values("member")
                .annotate(total=Sum("remaining"))
                .values("total"),
                output_field=IntegerField(),
            ),
            Value(0),
        ),
    ).filter(
        ~Q(available=F("ledger_available"))
        | ~Q(pending=F("ledger_pending"))
        | ~Q(reserved=F("ledger_reserved"))
        | ~Q(debt=-F("ledger_debt"))
        | ~Q(available=F("lots_available"))
        | ~Q(pending=F("lots_pending"))
        | Q(debt__gt=0, available__gt=0)
    )
    for member in checked.order_by("id"):
        cache = (
            f"available={member.available} pending={member.pending} "
            f"reserved={member.reserved} debt={member.debt}"
        )
        ledger = (
            f"available={member.ledger_available} pending={member.ledger_pending} "
            f"reserved={member.ledger_reserved} debt={-member.ledger_debt}"
        )
        lot_view = f"lots available={member.lots_available} pending={member.lots_pending}"
        problems.append(f"member {member.card_number}: cache {cache}; ledger {ledger}; {lot_view}")

    lot_outer = OuterRef("pk")
    bad_lots = lots.annotate(
        ledger_remaining=_entry_sum((Account.MEMBER_AVAILABLE, Account.MEMBER_PENDING), lot=lot_outer),
        ledger_reserved=_entry_sum(Account.MEMBER_RESERVED, lot=lot_outer),
    ).filter(
        ~Q(remaining=F("ledger_remaining"))
        | Q(remaining__lt=0)
        | Q(ledger_reserved__lt=0)
        | Q(
            remaining__gt=0,
            state__in=[PointsLot.State.SPENT, PointsLot.State.EXPIRED, PointsLot.State.CANCELLED],
        )
    )
    for lot in bad_lots.order_by("id"):
        problems.append(
            f"lot {lot.pk} (member {lot.member_id}, {lot.state}): remaining {lot.remaining}, "
            f"ledger {lot.ledger_remaining}, reserved {lot.ledger_reserved}"
        )

    for current in _programmes(programme) if programme else Programme.objects.order_by("id"):
        figures = liability(programme=current)
        cached = Member.objects.filter(programme=current).aggregate(
            available=Coalesce(Sum("available"), 0),
            pending=Coalesce(Sum("pending"), 0),
            reserved=Coalesce(Sum("reserved"), 0),
            debt=Coalesce(Sum("debt"), 0),
        )
        outstanding = cached["available"] + cached["pending"] + cached["reserved"] - cached["debt"]
        if outstanding != figures.outstanding:
            problems.append(
                f"programme {current.code}: liability {figures.outstanding} points in the ledger, "
                f"{outstanding} in the member balances"
            )
    return problems


@dataclass(frozen=True, slots=True)
class LiabilityFigures:
    """A programme's outstanding points (Σ member accounts of the ledger) and their value in EUR."""

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


def _eur(points: int, point_value: Decimal) -> Decimal:
    return (Decimal(points) * point_value).quantize(CENT, rounding=ROUND_HALF_UP)


def liability(*, programme: Programme) -> LiabilityFigures:
    """Outstanding = available + pending + reserved − debt (the sum of every member account)."""
    totals = {
        row["account"]: int(row["total"] or 0)
        for row in PointsEntry.objects.filter(programme=programme)
        .order_by()
        .values("account")
        .annotate(total=Sum("points"))
    }
    available = totals.get(Account.MEMBER_AVAILABLE, 0)
    pending = totals.get(Account.MEMBER_PENDING, 0)
    reserved = totals.get(Account.MEMBER_RESERVED, 0)
    debt = -totals.get(Account.MEMBER_DEBT, 0)
    outstanding = sum(totals.get(account, 0) for account in MEMBER_ACCOUNTS)
    value = programme.point_value
    return LiabilityFigures(
        programme=programme.code,
        available=available,
        pending=pending,
        reserved=reserved,
        debt=debt,
        outstanding=outstanding,
        point_value=value,
        outstanding_eur=_eur(outstanding, value),
        available_eur=_eur(available, value),
        pending_eur=_eur(pending, value),
        reserved_eur=_eur(reserved, value),
        issued=-(totals.get(Account.ISSUANCE, 0) + totals.get(Account.PARTNER_ISSUANCE, 0)),
        redeemed=totals.get(Account.REDEMPTION, 0) + totals.get(Account.PARTNER_REDEMPTION, 0),
        expired=totals.get(Account.EXPIRY, 0),
        forfeited=totals.get(Account.FORFEIT, 0),
    )

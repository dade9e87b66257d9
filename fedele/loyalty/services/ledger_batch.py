"""Many earns in one database transaction: partner transaction files, POS end-of-day uploads and
event backlogs, where thousands of earns arrive together.

The same rows as ``points_earn`` (a transaction, a lot, an issuance leg and a member leg each; the
member caches; the tier and fraud hooks; one audit row and one ``PointsEarned`` event per earn),
written with a handful of multi-row statements instead of a dozen statements per earn. All or
nothing: one bad item refuses the whole batch before anything is written, naming the item.
Idempotent per item: an item whose key was already used returns the first transaction and writes
nothing (a retried upload re-posts only what is new).

Two batches that share members wait for each other at the member locks, so the time a batch holds
them bounds the throughput of concurrent uploads: every row is built before the locks are taken
(from one unlocked read of the members), and under the locks only the statements run (the key
check, the inserts, the balances, the hooks). What the rows depend on (the member is active and owes
nothing) is checked again under the locks.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.loyalty import hooks
from fedele.loyalty.events import PointsEarned
from fedele.loyalty.models import (
    Account,
    Campaign,
    Member,
    MemberStatus,
    Partner,
    PointsEntry,
    PointsLot,
    PointsTransaction,
    Programme,
    TransactionKind,
)
from fedele.loyalty.services import ledger
from fedele.loyalty.services.ledger_core import (
    actor_id,
    authorise_for_member,
    check_amount,
    check_key,
    check_member_active,
    check_partner,
    check_points,
    check_programme_active,
    check_text,
    lock_member_rows,
    lot_expiry,
    partner_price,
)
from fedele.shared import audit, clock, events
from fedele.shared.bulk import BulkTable, column_in, column_of, int_array, text_array, time_ordered_uuid
from fedele.shared.errors import Conflict, NotFound, ValidationFailed

MAX_BATCH = 5_000
_TRANSACTION_FIELDS = tuple(f.attname for f in PointsTransaction._meta.concrete_fields if not f.primary_key)
_DETAILS = _TRANSACTION_FIELDS.index("details")
_TRANSACTIONS = BulkTable(PointsTransaction, _TRANSACTION_FIELDS)
_LOTS = BulkTable(
    PointsLot,
    (
        "programme_id",
        "member_id",
        "earn_transaction_id",
        "points",
        "remaining",
        "state",
        "earned_at",
        "matures_at",
        "expires_on",
    ),
)
_ENTRIES = BulkTable(
    PointsEntry,
    (
        "transaction_id",
        "programme_id",
        "account",
        "member_id",
        "partner_id",
        "lot_id",
        "points",
        "created_at",
    ),
)


@dataclass(frozen=True, slots=True)
class EarnItem:
    member: Member
    points: int
    idempotency_key: str
    reference: str = ""
    amount_eur: Decimal | None = None
    qualifying_points: int | None = None
    qualifying_count: int = 0
    occurred_at: datetime | None = None
    memo: str = ""
    # Per item, for batches of events whose rules differ: None takes the batch's ``pending_days``.
    pending_days: int | None = None
    campaign_id: int | None = None
    details: Mapping[str, Any] | None = None


def _item_error(index: int, error: ValidationFailed) -> ValidationFailed:
    fields = {f"items[{index}].{name}": message for name, message in (error.fields or {}).items()}
    return ValidationFailed(
        _("Item %(index)s: %(message)s") % {"index": index, "message": error.message},
        code=error.code,
        fields=fields or {f"items[{index}]": error.message},
    )


def _checked(items: Sequence[EarnItem], source: str) -> list[EarnItem]:
    if not 1 <= len(items) <= MAX_BATCH:
        raise ValidationFailed(
            _("A batch holds from 1 to %(max)s earns.") % {"max": MAX_BATCH},
            code="invalid_batch_size",
            fields={"items": _("Between 1 and %(max)s.") % {"max": MAX_BATCH}},
        )
    check_text(source, name="source", max_length=24, required=True)
    programme_ids = {item.member.programme_id for item in items}
    if len(programme_ids) != 1:
        raise ValidationFailed(
            _("All the earns of a batch must be in the same programme."),
            code="mixed_programmes",
            fields={"items": _("More than one programme.")},
        )
    seen: dict[str, int] = {}
    clean: list[EarnItem] = []
    for index, item in enumerate(items):
        programme = item.member.programme
        try:
            points = check_points(item.points, programme)
            key = check_key(item.idempotency_key, required=True)
            assert key is not None
            check_text(item.reference, name="reference", max_length=80)
            check_text(item.memo, name="memo", max_length=200)
            amount = check_amount(item.amount_eur, name="amount_eur")
            qualifying = points if item.qualifying_points is None else item.qualifying_points
            if isinstance(qualifying, bool) or not isinstance(qualifying, int) or qualifying < 0:
                raise ValidationFailed(
                    _("Qualifying points must be a whole number of zero or more."),
                    code="invalid_qualifying_points",
                    fields={"qualifying_points": _("Invalid.")},
                )
            if not isinstance(item.qualifying_count, int) or not 0 <= item.qualifying_count <= 1000:
                raise ValidationFailed(
                    _("The qualifying count must be between 0 and 1000."),
                    code="invalid_qualifying_count",
                    fields={"qualifying_count": _("Invalid.")},
                )
            if item.pending_days is not None and (
                isinstance(item.pending_days, bool)
                or not isinstance(item.pending_days, int)
                or not 0 <= item.pending_days <= 365
            ):
                raise ValidationFailed(
                    _("Pending days must be between 0 and 365."),
                    code="invalid_pending_days",
                    fields={"pending_days": _("Invalid.")},
                )
        except ValidationFailed as error:
            raise _item_error(index, error) from None
        if key in seen:
            raise _item_error(
                index,
                ValidationFailed(
                    _("The same idempotency key is used twice in the batch (first at item %(first)s).")
                    % {"first": seen[key]},
                    code="duplicate_key_in_batch",
                    fields={"idempotency_key": _("Duplicate.")},
                ),
            )
        seen[key] = index
        clean.append(
            EarnItem(
                member=item.member,
                points=points,
                idempotency_key=key,
                reference=item.reference,
                amount_eur=amount,
                qualifying_points=qualifying,
                qualifying_count=item.qualifying_count,
                occurred_at=item.occurred_at,
                memo=item.memo,
                pending_days=item.pending_days,
                campaign_id=item.campaign_id,
                details=item.details,
            )
        )
    return clean


def points_earn_many(
    *,
    actor: Actor | None,
    items: Sequence[EarnItem],
    source: str,
    partner: Partner | None = None,
    pending_days: int = 0,
    savepoint: bool = True,
) -> list[PointsTransaction]:
    """Post every earn of ``items`` (one programme) in one transaction; returns one transaction per
    item, in order (the first transaction for an item whose key was used before).

    ``savepoint=False`` for a caller whose own transaction is rolled back as a whole when this raises
    (the group commit of inbound events): no SAVEPOINT and RELEASE round trips."""
    clean = _checked(items, source)
    programme = clean[0].member.programme
    if not isinstance(pending_days, int) or not 0 <= pending_days <= 365:
        raise ValidationFailed(
            _("Pending days must be between 0 and 365."),
            code="invalid_pending_days",
            fields={"pending_days": _("Invalid.")},
        )
    check_partner(partner, programme, burn=False)
    check_programme_active(programme)
    for member in {item.member.pk: item.member for item in clean}.values():
        authorise_for_member(actor, member, partner=partner, allow_portal=False)
    now = clock.now()
    keys = [str(item.idempotency_key) for item in clean]

    with transaction.atomic(savepoint=savepoint):
        facts = _member_facts(sorted({item.member.pk for item in clean}))
        for status, _debt, _customer in facts.values():
            _check_active(status)
        plan = _Plan.build(actor, clean, facts, source, partner, pending_days, now)
        locked = lock_member_rows(facts)
        for member in locked.values():
            check_member_active(member)
        earlier = _earlier(programme, keys)
        position = {key: index for index, key in enumerate(keys)}
        for key, row in earlier.items():
            item = clean[position[key]]
            if row.kind != TransactionKind.EARN or row.member_id != item.member.pk:
                raise Conflict(
                    _("This idempotency key was already used for a different request."),
                    code="idempotency_key_reused",
                )
        # A member who owes points settles the debt out of the new points, with the lots it takes:
        # the one-by-one path does that, for every earn of the member in the batch (rare: only after
        # a reversal took more than was left; the debt is read under the lock, so a debt that
        # appeared since the rows were built counts). Those members stay out of the batch's rows and
        # hooks (their locked copies do not follow what the one-by-one path changed).
        owing = {pk for pk, member in locked.items() if member.debt > 0}
        for index, item in enumerate(clean):
            if item.member.pk not in owing or keys[index] in earlier:
                continue
            earlier[keys[index]] = ledger.points_earn(
                actor=actor,
                member=locked[item.member.pk],
                points=item.points,
                source=source,
                idempotency_key=item.idempotency_key,
                reference=item.reference,
                amount_eur=item.amount_eur,
                qualifying_points=item.qualifying_points,
                qualifying_count=item.qualifying_count,
                pending_days=pending_days if item.pending_days is None else item.pending_days,
                partner=partner,
                campaign=Campaign.objects.get(pk=item.campaign_id) if item.campaign_id else None,
                details=dict(item.details) if item.details else None,
                occurred_at=item.occurred_at,
                memo=item.memo,
            )
        chosen = [index for index, key in enumerate(keys) if key not in earlier]
        posted = plan.post(chosen, locked, now) if chosen else {}
    return [posted.get(key) or earlier[key] for key in keys]


def _earlier(programme: Programme, keys: list[str]) -> dict[str, PointsTransaction]:
    """The transactions already posted under ``keys``, by key. Read after the members are locked, in a
    statement of its own: a batch that posted one of these keys for the same member and committed
    while this one waited for the lock is seen (a statement sees what was committed when it began).

    On PostgreSQL one index probe per key (a lateral join on the unique (programme, key) index), so
    the plan does not depend on statistics: on a ledger that grew since it was last analysed the
    planner would otherwise read every key of the programme to find a few hundred."""
    if connection.vendor != "postgresql":
        found = PointsTransaction.objects.filter(programme=programme, idempotency_key__in=keys)
        return {str(row.idempotency_key): row for row in found}
    table = PointsTransaction._meta.db_table
    sql = (
        f"SELECT t.id FROM unnest(%s::text[]) AS k(key) CROSS JOIN LATERAL (SELECT id FROM {table} "  # noqa: S608
        "WHERE programme_id = %s AND idempotency_key = k.key LIMIT 1) AS t"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [text_array(keys), programme.pk])
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:  # the usual case: only the rare replay pays for loading the rows
        return {}
    return {str(row.idempotency_key): row for row in PointsTransaction.objects.filter(pk__in=ids)}


def _check_active(status: str) -> None:
    if status != MemberStatus.ACTIVE:
        raise ValidationFailed(
            _("The membership is %(status)s: points cannot move.") % {"status": MemberStatus(status).label},
            code="member_not_active",
            fields={"member": _("Not active.")},
        )


def _member_facts(member_ids: list[int]) -> dict[int, tuple[str, int, str]]:
    """(status, debt, customer public id) of each member, read without a lock, in one statement: what
    the rows are built from before the locks are taken (status and debt are read again under them)."""
    customer = Member._meta.get_field("customer").related_model
    assert isinstance(customer, type)
    where, params = column_in("m.id", member_ids)
    # The customer's public id as a correlated subquery: one primary-key probe per member, where a
    # join would hash the whole customer table for a few hundred rows.
    sql = (
        f"SELECT m.id, m.status, m.debt, (SELECT c.{column_of(customer, 'public_id')} "  # noqa: S608
        f"FROM {customer._meta.db_table} c WHERE c.{column_of(customer, 'id')} = "
        f"m.{column_of(Member, 'customer')}) FROM {Member._meta.db_table} m WHERE {where}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        facts = {
            int(pk): (str(status), int(debt), str(_as_uuid(customer)))
            for pk, status, debt, customer in cursor.fetchall()
        }
    if len(facts) != len(member_ids):
        raise NotFound(_("Member not found."), code="member_not_found")
    return facts


def _as_uuid(value: Any) -> uuid.UUID:
    # PostgreSQL gives UUIDs; SQLite keeps them as 32 hex digits.
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _add_to_members(deltas: dict[int, list[int]], *, now: datetime) -> None:
    """Add each member's new points (available, pending) to its caches in one statement (the rows are
    locked): ``UPDATE ... FROM unnest(arrays)`` on PostgreSQL, ``FROM (VALUES ...)`` elsewhere."""
    table = Member._meta.db_table
    member_ids = sorted(deltas)
    assignments = (
        f"available = {table}.available + v.available, pending = {table}.pending + v.pending, "
        f"lifetime_earned = {table}.lifetime_earned + v.available + v.pending, updated_at = %s"
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # "id = ANY" lets the planner reach the rows through the primary key (without it, it hashes
            # the whole member table to join the few hundred rows of the batch).
            cursor.execute(
                f"UPDATE {table} SET {assignments} "  # noqa: S608
                "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS v(member_id, available, pending) "
                f"WHERE {table}.id = v.member_id AND {table}.id = ANY(%s::bigint[])",
                [
                    now,
                    int_array(member_ids),
                    int_array([deltas[pk][0] for pk in member_ids]),
                    int_array([deltas[pk][1] for pk in member_ids]),
                    int_array(member_ids),
                ],
            )
            return
        for start in range(0, len(member_ids), 300):
            chunk = member_ids[start : start + 300]
            params: list[Any] = []
            for member_id in chunk:
                params.extend([member_id, *deltas[member_id]])
            rows = ", ".join(["(%s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"WITH v(member_id, available, pending) AS (VALUES {rows}) "  # noqa: S608
                f"UPDATE {table} SET {assignments} FROM v WHERE {table}.id = v.member_id",
                [*params, now],
            )


@dataclass(slots=True)
class _Plan:
    """Every row of a batch, built before the member locks are taken; ``post`` writes those of the
    chosen items (the ones not posted before) under the locks."""

    programme: Programme
    source: str
    partner: Partner | None
    created_by: int | None
    member_ids: list[int]
    waits: list[int]
    transactions: list[PointsTransaction]
    transaction_rows: list[tuple[Any, ...]]
    lot_tails: list[tuple[Any, ...]]
    audit_rows: list[tuple[str, dict[str, Any]]]
    events: list[tuple[PointsEarned, str, str]]

    @classmethod
    def build(
        cls,
        actor: Actor | None,
        items: list[EarnItem],
        facts: dict[int, tuple[str, int, str]],
        source: str,
        partner: Partner | None,
        pending_days: int,
        now: datetime,
    ) -> _Plan:
        programme = items[0].member.programme
        created_by = actor_id(actor)
        partner_id = partner.pk if partner is not None else None
        expiry: dict[datetime, date | None] = {}
        member_ids: list[int] = []
        waits: list[int] = []
        transactions: list[PointsTransaction] = []
        transaction_rows: list[tuple[Any, ...]] = []
        lot_tails: list[tuple[Any, ...]] = []
        audit_rows: list[tuple[str, dict[str, Any]]] = []
        events: list[tuple[PointsEarned, str, str]] = []
        names = ("id", *_TRANSACTION_FIELDS)
        earn = TransactionKind.EARN.value
        pending_state, available_state = PointsLot.State.PENDING.value, PointsLot.State.AVAILABLE.value
        for item in items:
            member = item.member
            occurred = item.occurred_at or now
            wait = pending_days if item.pending_days is None else item.pending_days
            public_id = time_ordered_uuid()
            details = dict(item.details) if item.details else {}
            values = [
                public_id,
                programme.pk,
                member.pk,
                earn,
                item.points,
                item.idempotency_key,
                source,
                item.reference,
                item.amount_eur,
                None,
                item.qualifying_points or 0,
                item.qualifying_count,
                partner_id,
                partner_price(item.points, partner.earn_price_per_point) if partner is not None else None,
                item.campaign_id,
                None,
                details,
                item.memo,
                occurred,
                now,
                created_by,
            ]
            row = PointsTransaction.from_db(connection.alias, names, [None, *values])
            row.programme = programme
            transactions.append(row)
            values[_DETAILS] = json.dumps(details, cls=DjangoJSONEncoder) if details else "{}"
            transaction_rows.append(tuple(values))
            if occurred not in expiry:
                expiry[occurred] = lot_expiry(programme, occurred)
            lot_tails.append(
                (
                    item.points,
                    item.points,
                    pending_state if wait else available_state,
                    occurred,
                    occurred + timedelta(days=wait) if wait else None,
                    expiry[occurred],
                )
            )
            member_ids.append(member.pk)
            waits.append(wait)
            transaction_id, member_public_id = str(public_id), str(member.public_id)
            audit_rows.append(
                (
                    transaction_id,
                    {
                        "member": member.card_number,
                        "points": item.points,
                        "source": source,
                        "reference": item.reference,
                        "batch": True,
                    },
                )
            )
            events.append(
                (
                    PointsEarned(
                        transaction_id=transaction_id,
                        member_id=member_public_id,
                        customer_id=facts[member.pk][2],
                        programme=programme.code,
                        points=item.points,
                        pending=bool(wait),
                        source=source,
                        reference=item.reference,
                        occurred_at=occurred.isoformat(),
                    ),
                    "loyalty.member",
                    member_public_id,
                )
            )
        return cls(
            programme=programme,
            source=source,
            partner=partner,
            created_by=created_by,
            member_ids=member_ids,
            waits=waits,
            transactions=transactions,
            transaction_rows=transaction_rows,
            lot_tails=lot_tails,
            audit_rows=audit_rows,
            events=events,
        )

    def post(
        self, chosen: list[int], locked: dict[int, Member], now: datetime
    ) -> dict[str, PointsTransaction]:
        """Write the rows of the items at ``chosen`` (indexes), raise the members' caches and run the
        hooks; returns the new transactions by idempotency key."""
        programme_id = self.programme.pk
        transaction_ids = _TRANSACTIONS.insert_tuples(
            [self.transaction_rows[index] for index in chosen], returning_ids=True
        )
        lot_ids = _LOTS.insert_tuples(
            [
                (programme_id, self.member_ids[index], transaction_id, *self.lot_tails[index])
                for index, transaction_id in zip(chosen, transaction_ids, strict=True)
            ],
            returning_ids=True,
        )
        issuance = (Account.PARTNER_ISSUANCE if self.partner is not None else Account.ISSUANCE).value
        partner_id = self.partner.pk if self.partner is not None else None
        pending_account, available_account = Account.MEMBER_PENDING.value, Account.MEMBER_AVAILABLE.value
        entries: list[tuple[Any, ...]] = []
        # Each member's new points: [available, pending]; and its new transactions, for the hooks.
        deltas: dict[int, list[int]] = {}
        by_member: dict[int, list[PointsTransaction]] = defaultdict(list)
        for index, transaction_id, lot_id in zip(chosen, transaction_ids, lot_ids, strict=True):
            row = self.transactions[index]
            row.id = transaction_id
            member_id, points, wait = self.member_ids[index], row.points, self.waits[index]
            entries.append((transaction_id, programme_id, issuance, None, partner_id, None, -points, now))
            entries.append(
                (
                    transaction_id,
                    programme_id,
                    pending_account if wait else available_account,
                    member_id,
                    None,
                    lot_id,
                    points,
                    now,
                )
            )
            delta = deltas.setdefault(member_id, [0, 0])
            delta[1 if wait else 0] += points
            by_member[member_id].append(row)
        _ENTRIES.insert_tuples(entries)
        _add_to_members(deltas, now=now)
        for member_id, (available, pending) in deltas.items():
            member = locked[member_id]
            member.available += available
            member.pending += pending
            member.lifetime_earned += available + pending
            member.updated_at = now
        hooks.run_after_earn_many(
            [(locked[member_id], postings) for member_id, postings in by_member.items()]
        )
        audit.record_many(
            action="loyalty.points_earned",
            object_type="loyalty.transaction",
            rows=[self.audit_rows[index] for index in chosen],
            actor_id=self.created_by,
        )
        events.publish_many([self.events[index] for index in chosen])
        return {str(self.transactions[index].idempotency_key): self.transactions[index] for index in chosen}

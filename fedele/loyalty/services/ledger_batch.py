"""Many earns in one database transaction: partner transaction files, POS end-of-day uploads and
event backlogs, where thousands of earns arrive together.

The same rows as ``points_earn`` (a transaction, a lot, an issuance leg and a member leg each; the
member caches; the tier and fraud hooks; one audit row and one ``PointsEarned`` event per earn),
written with a handful of multi-row statements instead of a dozen statements per earn. All or
nothing: one bad item refuses the whole batch before anything is written, naming the item.
Idempotent per item: an item whose key was already used returns the first transaction and writes
nothing (a retried upload re-posts only what is new).
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
    Partner,
    PointsEntry,
    PointsLot,
    PointsTransaction,
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
    lock_members,
    lot_expiry,
    partner_price,
)
from fedele.shared import audit, clock, events
from fedele.shared.bulk import BulkTable
from fedele.shared.errors import Conflict, ValidationFailed

MAX_BATCH = 5_000
_TRANSACTIONS = BulkTable(PointsTransaction)
_LOTS = BulkTable(PointsLot)
_ENTRIES = BulkTable(PointsEntry)


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
) -> list[PointsTransaction]:
    """Post every earn of ``items`` (one programme) in one transaction; returns one transaction per
    item, in order (the first transaction for an item whose key was used before)."""
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

    with transaction.atomic():
        locked = lock_members(*(item.member for item in clean))
        for member in locked.values():
            check_member_active(member)
        keys = [str(item.idempotency_key) for item in clean]
        earlier = {
            str(row.idempotency_key): row
            for row in PointsTransaction.objects.filter(programme=programme, idempotency_key__in=keys)
        }
        position = {key: index for index, key in enumerate(keys)}
        for key, row in earlier.items():
            item = clean[position[key]]
            if row.kind != TransactionKind.EARN or row.member_id != item.member.pk:
                raise Conflict(
                    _("This idempotency key was already used for a different request."),
                    code="idempotency_key_reused",
                )
        fresh = [item for item in clean if str(item.idempotency_key) not in earlier]
        # A member who owes points settles the debt out of the new points, with the lots it takes:
        # the one-by-one path does that (rare: only after a reversal took more than was left).
        owing = [item for item in fresh if locked[item.member.pk].debt > 0]
        for item in owing:
            earlier[str(item.idempotency_key)] = ledger.points_earn(
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
        if owing:
            locked = lock_members(*(item.member for item in clean))
        fresh = [item for item in fresh if str(item.idempotency_key) not in earlier]
        posted = _post(actor, fresh, locked, source, partner, pending_days, now) if fresh else {}
    return [posted.get(key) or earlier[key] for key in keys]


def _add_to_members(by_member: dict[int, list[PointsTransaction]], *, pending: bool, now: datetime) -> None:
    """One UPDATE ... FROM (VALUES ...) adds each member's new points to its cache (the rows are locked)."""
    column = "pending" if pending else "available"
    table = Member._meta.db_table
    member_ids = sorted(by_member)
    for start in range(0, len(member_ids), 1_000):
        chunk = member_ids[start : start + 1_000]
        values = ", ".join(["(%s, %s)"] * len(chunk))
        params: list[int] = []
        for member_id in chunk:
            params.extend([member_id, sum(row.points for row in by_member[member_id])])
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH v(member_id, points) AS (VALUES {values}) "  # noqa: S608
                f"UPDATE {table} SET {column} = {table}.{column} + v.points, "
                f"lifetime_earned = {table}.lifetime_earned + v.points, updated_at = %s "
                f"FROM v WHERE {table}.id = v.member_id",
                [*params, now],
            )


def _post(
    actor: Actor | None,
    items: list[EarnItem],
    locked: dict[int, Member],
    source: str,
    partner: Partner | None,
    pending_days: int,
    now: datetime,
) -> dict[str, PointsTransaction]:
    programme = items[0].member.programme
    created_by = actor_id(actor)
    owners = [locked[item.member.pk] for item in items]  # the member of each row, in order
    rows: list[PointsTransaction] = []
    transaction_rows: list[dict[str, Any]] = []
    expiry: dict[datetime, date | None] = {}
    waits = [pending_days if item.pending_days is None else item.pending_days for item in items]
    for item, owner in zip(items, owners, strict=True):
        occurred = item.occurred_at or now
        details = dict(item.details) if item.details else {}
        values: dict[str, Any] = {
            "public_id": uuid.uuid4(),
            "programme_id": programme.pk,
            "member_id": owner.pk,
            "kind": TransactionKind.EARN.value,
            "points": item.points,
            "idempotency_key": item.idempotency_key,
            "source": source,
            "reference": item.reference,
            "amount_eur": item.amount_eur,
            "qualifying_points": item.qualifying_points or 0,
            "qualifying_count": item.qualifying_count,
            "partner_id": partner.pk if partner is not None else None,
            "partner_amount": partner_price(item.points, partner.earn_price_per_point) if partner else None,
            "campaign_id": item.campaign_id,
            "memo": item.memo,
            "occurred_at": occurred,
            "created_at": now,
            "created_by_id": created_by,
        }
        transaction_rows.append({**values, "details": json.dumps(details, cls=DjangoJSONEncoder)})
        rows.append(PointsTransaction(**values, details=details))
    for row, pk in zip(rows, _TRANSACTIONS.insert(transaction_rows, returning_ids=True), strict=True):
        row.pk = row.id = pk
        row.programme = programme
    lot_rows = []
    for row, owner, wait in zip(rows, owners, waits, strict=True):
        if row.occurred_at not in expiry:
            expiry[row.occurred_at] = lot_expiry(programme, row.occurred_at)
        lot_rows.append(
            {
                "programme_id": programme.pk,
                "member_id": owner.pk,
                "earn_transaction_id": row.pk,
                "points": row.points,
                "remaining": row.points,
                "state": PointsLot.State.PENDING.value if wait else PointsLot.State.AVAILABLE.value,
                "earned_at": row.occurred_at,
                "matures_at": row.occurred_at + timedelta(days=wait) if wait else None,
                "expires_on": expiry[row.occurred_at],
            }
        )
    lot_ids = _LOTS.insert(lot_rows, returning_ids=True)
    issuance = Account.PARTNER_ISSUANCE if partner is not None else Account.ISSUANCE
    entries: list[dict[str, Any]] = []
    by_member: dict[int, list[PointsTransaction]] = defaultdict(list)
    # The members' caches to raise, by whether the points wait (pending) or not (available).
    added: dict[bool, dict[int, list[PointsTransaction]]] = {
        False: defaultdict(list),
        True: defaultdict(list),
    }
    partner_id = partner.pk if partner is not None else None
    for row, lot_id, member, wait in zip(rows, lot_ids, owners, waits, strict=True):
        member_account = Account.MEMBER_PENDING if wait else Account.MEMBER_AVAILABLE
        entries.append(
            {
                "transaction_id": row.pk,
                "programme_id": programme.pk,
                "account": issuance.value,
                "member_id": None,
                "partner_id": partner_id,
                "lot_id": None,
                "points": -row.points,
                "created_at": now,
            }
        )
        entries.append(
            {
                "transaction_id": row.pk,
                "programme_id": programme.pk,
                "account": member_account.value,
                "member_id": member.pk,
                "partner_id": None,
                "lot_id": lot_id,
                "points": row.points,
                "created_at": now,
            }
        )
        if wait:
            member.pending += row.points
        else:
            member.available += row.points
        member.lifetime_earned += row.points
        by_member[member.pk].append(row)
        added[bool(wait)][member.pk].append(row)
    _ENTRIES.insert(entries)
    for pending, group in added.items():
        if group:
            _add_to_members(group, pending=pending, now=now)
    for member in locked.values():
        member.updated_at = now
    hooks.run_after_earn_many([(locked[member_id], postings) for member_id, postings in by_member.items()])
    audit.record_many(
        action="loyalty.points_earned",
        object_type="loyalty.transaction",
        rows=[
            (
                str(row.public_id),
                {
                    "member": member.card_number,
                    "points": row.points,
                    "source": source,
                    "reference": row.reference,
                    "batch": True,
                },
            )
            for row, member in zip(rows, owners, strict=True)
        ],
        actor_id=created_by,
    )
    customers = {
        member.pk: str(member.customer.public_id)
        for member in Member.objects.filter(pk__in=list(by_member)).select_related("customer")
    }
    events.publish_many(
        [
            (
                PointsEarned(
                    transaction_id=str(row.public_id),
                    member_id=str(member.public_id),
                    customer_id=customers[member.pk],
                    programme=programme.code,
                    points=row.points,
                    pending=bool(wait),
                    source=source,
                    reference=row.reference,
                    occurred_at=row.occurred_at.isoformat(),
                ),
                "loyalty.member",
                str(member.public_id),
            )
            for row, member, wait in zip(rows, owners, waits, strict=True)
        ]
    )
    return {str(row.idempotency_key): row for row in rows}

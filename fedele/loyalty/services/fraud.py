"""Fraud and abuse guards: automatic flags on earning, manual flags, and the review (clear, or confirm
and reverse the fraudulent transactions with an audit row naming the reviewer).

Guards run on every earn (``fraud_check_earn``, registered with ``hooks.on_earn``) inside the earn's
database transaction, with the member row locked — so two earns of one member never race on a flag.
They **flag, they do not block**: the earn goes through, the member is marked ``flagged`` and a
``FraudFlag`` waits in the review queue. Blocking would turn every false positive into a customer
complaint at the till; a confirmed flag is undone by reversing the transactions.

Rules (the time of an earn is its ``occurred_at``):

* ``velocity_count`` — more than ``programme.velocity_max_earns_per_hour`` earn transactions in the
  hour up to this one (this one included); at most one flag per member in any hour;
* ``velocity_points`` — more than ``programme.velocity_max_points_per_day`` points earned on this
  day (programme time zone); at most one flag per member and day;
* ``unusual_amount`` — this earn is more than 10 × the member's median earn over the previous 90 days
  (at least 5 earlier earns, the latest 500 at most are read); one flag per transaction.

Cost per earn: one aggregate over the member's earns of the last day (index member, kind,
occurred_at) and, for earns over 10 points, one indexed read of at most 500 earlier earns.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db import transaction as db_transaction
from django.db.models import Count, Q, Sum
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.loyalty.events import FraudFlagRaised, FraudFlagReviewed
from fedele.loyalty.models import (
    FraudFlag,
    Member,
    MemberStatus,
    PointsTransaction,
    Programme,
    TransactionKind,
)
from fedele.loyalty.services.ledger import transaction_reverse
from fedele.loyalty.services.members import member_set_status
from fedele.shared import audit, clock, events
from fedele.shared.bulk import id_table
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

REVIEW = "loyalty.review_loyalty_fraud"
OPERATE = "loyalty.operate_loyalty"
HOUR = timedelta(hours=1)
UNUSUAL_MULTIPLE = 10
UNUSUAL_LOOKBACK = timedelta(days=90)
UNUSUAL_MIN_EARNS = 5
UNUSUAL_SAMPLE = 500
NOTE_MAX = 300
MAX_REVERSALS = 200


# ----------------------------------------------------------------------------------------------
# The guard on every earn


def fraud_check_earn(member: Member, transaction: PointsTransaction) -> None:
    """The ``hooks.on_earn`` hook: run the earn guards (inside the earn's transaction, member locked)."""
    earn_guards(member, transaction)


def earn_guards(member: Member, transaction: PointsTransaction) -> list[FraudFlag]:
    """Check a new EARN against the rules; returns the flags it raised (usually none)."""
    if transaction.kind != TransactionKind.EARN:
        return []
    programme = transaction.programme
    at = transaction.occurred_at
    tz = ZoneInfo(programme.timezone)
    local_day = at.astimezone(tz).date()
    day_start = datetime.combine(local_day, datetime.min.time(), tzinfo=tz)
    day_end = datetime.combine(local_day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    hour_from = at - HOUR
    earns = PointsTransaction.objects.filter(member_id=member.pk, kind=TransactionKind.EARN)
    figures = earns.filter(
        occurred_at__gte=min(hour_from, day_start), occurred_at__lt=max(day_end, at + HOUR)
    ).aggregate(
        hour_count=Count("id", filter=Q(occurred_at__gt=hour_from, occurred_at__lte=at)),
        day_points=Sum("points", filter=Q(occurred_at__gte=day_start, occurred_at__lt=day_end)),
    )
    raised: list[FraudFlag] = []
    hour_count = int(figures["hour_count"] or 0)
    # One flag per member in any hour: none for an earn less than an hour before or after this one.
    if hour_count > programme.velocity_max_earns_per_hour and not _already_flagged(
        member, FraudFlag.Rule.VELOCITY_COUNT, hour_from + timedelta(microseconds=1), at + HOUR
    ):
        details: dict[str, Any] = {
            "earns_in_hour": hour_count,
            "limit": programme.velocity_max_earns_per_hour,
        }
        raised.append(_raise(member, programme, transaction, FraudFlag.Rule.VELOCITY_COUNT, details))
    day_points = int(figures["day_points"] or 0)
    if day_points > programme.velocity_max_points_per_day and not _already_flagged(
        member, FraudFlag.Rule.VELOCITY_POINTS, day_start, day_end
    ):
        details = {
            "day": local_day.isoformat(),
            "points_today": day_points,
            "limit": programme.velocity_max_points_per_day,
        }
        raised.append(_raise(member, programme, transaction, FraudFlag.Rule.VELOCITY_POINTS, details))
    # The median of positive earns is at least 1: an earn of 10 points or fewer is never 10× above it.
    if transaction.points > UNUSUAL_MULTIPLE:
        history = list(
            earns.filter(occurred_at__gte=at - UNUSUAL_LOOKBACK, occurred_at__lte=at)
            .exclude(pk=transaction.pk)
            .order_by("-occurred_at")
            .values_list("points", flat=True)[:UNUSUAL_SAMPLE]
        )
        if len(history) >= UNUSUAL_MIN_EARNS:
            median = statistics.median(Decimal(points) for points in history)
            if transaction.points > UNUSUAL_MULTIPLE * median:
                details = {
                    "points": transaction.points,
                    "median_90_days": str(median),
                    "earns_90_days": len(history),
                }
                raised.append(_raise(member, programme, transaction, FraudFlag.Rule.UNUSUAL_AMOUNT, details))
    return raised


def earn_guards_many(groups: Sequence[tuple[Member, Sequence[PointsTransaction]]]) -> None:
    """The batch variant of the earn guards (``hooks.on_earn_many``): two grouped queries find the
    members of the batch that may break a rule; only those go through ``earn_guards`` one by one,
    which raises the flags exactly as for single earns (and never twice)."""
    latest: dict[int, tuple[Member, PointsTransaction]] = {}
    for member, postings in groups:
        earns = [p for p in postings if p.kind == TransactionKind.EARN]
        if earns:
            latest[member.pk] = (member, max(earns, key=lambda p: (p.occurred_at, p.pk)))
    if not latest:
        return
    programme = next(iter(latest.values()))[1].programme
    at = max(posting.occurred_at for _member, posting in latest.values())
    tz = ZoneInfo(programme.timezone)
    local_day = at.astimezone(tz).date()
    day_start = datetime.combine(local_day, datetime.min.time(), tzinfo=tz)
    day_end = datetime.combine(local_day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    hour_from = at - HOUR
    suspects: set[int] = set()
    for member_id, hour_count, day_points in _velocity_figures(
        list(latest), hour_from, at, day_start, day_end
    ):
        if hour_count > programme.velocity_max_earns_per_hour:
            suspects.add(member_id)
        if day_points > programme.velocity_max_points_per_day:
            suspects.add(member_id)
    big = {
        member_id: [p for p in postings if p.kind == TransactionKind.EARN and p.points > UNUSUAL_MULTIPLE]
        for member, postings in groups
        if (member_id := member.pk) in latest
    }
    big = {member_id: rows for member_id, rows in big.items() if rows}
    if big:
        history = _recent_earns(sorted(big), at - UNUSUAL_LOOKBACK, at)
        for member_id, big_earns in big.items():
            for big_earn in big_earns:
                # The same sample earn_guards takes: the member's other earns, newest first.
                sample = [points for pk, points in history.get(member_id, []) if pk != big_earn.pk][
                    :UNUSUAL_SAMPLE
                ]
                if len(sample) < UNUSUAL_MIN_EARNS:
                    continue
                if big_earn.points > UNUSUAL_MULTIPLE * statistics.median(
                    Decimal(points) for points in sample
                ):
                    suspects.add(member_id)
    for member_id in sorted(suspects):
        member, _latest = latest[member_id]
        for _member, postings in groups:
            if _member.pk != member_id:
                continue
            for posting in postings:
                earn_guards(member, posting)


# Per member, two correlated subqueries on the index (member, kind, occurred_at): each member's own
# earns are read whatever the planner's statistics say (a grouped "member_id IN (...)" statement read
# every earn of the programme that day when the table had grown since it was last analysed).
_VELOCITY_SQL = """
SELECT m.id,
    (SELECT COUNT(*) FROM {table} t WHERE t.member_id = m.id AND t.kind = %(earn)s
       AND t.occurred_at > %(hour_from)s AND t.occurred_at <= %(at)s),
    (SELECT COALESCE(SUM(t.points), 0) FROM {table} t WHERE t.member_id = m.id AND t.kind = %(earn)s
       AND t.occurred_at >= %(day_start)s AND t.occurred_at < %(day_end)s)
FROM {members}
"""

# The latest earns of each member (at most one more than the sample, since the sample leaves out the
# earn it judges), newest first: a lateral read per member on PostgreSQL, bounded by the limit.
_RECENT_SQL = """
SELECT m.id, r.id, r.points FROM {members} CROSS JOIN LATERAL (
    SELECT t.id, t.points FROM {table} t WHERE t.member_id = m.id AND t.kind = %(earn)s
      AND t.occurred_at >= %(since)s AND t.occurred_at <= %(at)s
    ORDER BY t.occurred_at DESC, t.id DESC LIMIT %(limit)s) AS r
ORDER BY m.id
"""


def _velocity_figures(
    member_ids: list[int], hour_from: datetime, at: datetime, day_start: datetime, day_end: datetime
) -> list[tuple[int, int, int]]:
    """(member, earns in (hour_from, at], points earned in [day_start, day_end)) of each member."""
    members, member_params = id_table("m", "id", member_ids)
    adapt = connection.ops.adapt_datetimefield_value
    sql = _VELOCITY_SQL.format(
        table=PointsTransaction._meta.db_table, members=members.replace("%s", "%(members)s")
    )
    params = {
        "earn": TransactionKind.EARN.value,
        "hour_from": adapt(hour_from),
        "at": adapt(at),
        "day_start": adapt(day_start),
        "day_end": adapt(day_end),
        "members": member_params[0],
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(int(pk), int(count or 0), int(points or 0)) for pk, count, points in cursor.fetchall()]


def _recent_earns(member_ids: list[int], since: datetime, at: datetime) -> dict[int, list[tuple[int, int]]]:
    """(id, points) of each member's earns in [since, at], newest first (``UNUSUAL_SAMPLE`` + 1 at most)."""
    history: dict[int, list[tuple[int, int]]] = {}
    if connection.vendor != "postgresql":
        rows = (
            PointsTransaction.objects.filter(
                member_id__in=member_ids,
                kind=TransactionKind.EARN,
                occurred_at__gte=since,
                occurred_at__lte=at,
            )
            .order_by("member_id", "-occurred_at", "-id")
            .values_list("member_id", "pk", "points")
        )
        for member_id, pk, points in rows:
            history.setdefault(member_id, []).append((pk, points))
        return history
    members, member_params = id_table("m", "id", member_ids)
    adapt = connection.ops.adapt_datetimefield_value
    sql = _RECENT_SQL.format(
        table=PointsTransaction._meta.db_table, members=members.replace("%s", "%(members)s")
    )
    params = {
        "earn": TransactionKind.EARN.value,
        "since": adapt(since),
        "at": adapt(at),
        "limit": UNUSUAL_SAMPLE + 1,
        "members": member_params[0],
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for member_id, pk, points in cursor.fetchall():
            history.setdefault(int(member_id), []).append((int(pk), int(points)))
    return history


def _already_flagged(member: Member, rule: str, start: datetime, end: datetime) -> bool:
    """A flag of ``rule`` for this member whose earn happened in [start, end)."""
    return FraudFlag.objects.filter(
        member_id=member.pk, rule=rule, transaction__occurred_at__gte=start, transaction__occurred_at__lt=end
    ).exists()


def _raise(
    member: Member,
    programme: Programme,
    transaction: PointsTransaction | None,
    rule: str,
    details: dict[str, Any],
    *,
    actor: Actor | None = None,
    note: str = "",
) -> FraudFlag:
    now = clock.now()
    flag = FraudFlag.objects.create(
        member_id=member.pk,
        transaction=transaction,
        rule=rule,
        details=details,
        created_at=now,
        review_note="",
    )
    if not member.flagged:
        Member.objects.filter(pk=member.pk).update(flagged=True)
        member.flagged = True
    audit.record(
        action="loyalty.fraud_flag_raised",
        object_type="loyalty.fraud_flag",
        object_id=str(flag.pk),
        after={
            "member": member.card_number,
            "rule": rule,
            "transaction": str(transaction.public_id) if transaction else None,
            "details": details,
            "note": note,
        },
        actor_id=actor.user_id if actor is not None else None,
    )
    events.publish(
        FraudFlagRaised(
            flag_id=flag.pk,
            member_id=str(member.public_id),
            programme=programme.code,
            rule=rule,
            transaction_id=str(transaction.public_id) if transaction else None,
            created_at=now.isoformat(),
        ),
        aggregate_type="loyalty.member",
        aggregate_id=str(member.public_id),
    )
    return flag


# ----------------------------------------------------------------------------------------------
# Staff actions


def _require_reviewer(actor: Actor | None) -> None:
    if actor is not None and not (actor.is_internal and actor.can(REVIEW)):
        raise PermissionDenied(_("You may not review fraud flags."), code="permission_denied")


def _clean_note(note: str, *, required: bool) -> str:
    text = (note or "").strip()
    if required and not text:
        raise ValidationFailed(
            _("Write a note for the review."), code="note_required", fields={"note": _("Required.")}
        )
    if len(text) > NOTE_MAX:
        raise ValidationFailed(
            _("The note may have at most 300 characters."),
            code="invalid_note",
            fields={"note": _("Too long.")},
        )
    return text


def require_flagger(actor: Actor | None) -> None:
    """Staff who may flag members by hand: ``operate_loyalty`` or ``review_loyalty_fraud``."""
    if actor is not None and not (actor.is_internal and (actor.can(REVIEW) or actor.can(OPERATE))):
        raise PermissionDenied(_("You may not flag members."), code="permission_denied")


def fraud_flag_manual(*, actor: Actor | None, member: Member, note: str) -> FraudFlag:
    """Staff flag a member for review (``operate_loyalty`` or ``review_loyalty_fraud``). A member
    with an open manual flag cannot get a second one (Conflict)."""
    require_flagger(actor)
    text = _clean_note(note, required=True)
    with db_transaction.atomic():
        locked = Member.objects.select_for_update().select_related("programme").get(pk=member.pk)
        if FraudFlag.objects.filter(
            member=locked, rule=FraudFlag.Rule.MANUAL, state=FraudFlag.State.OPEN
        ).exists():
            raise Conflict(_("This member already has an open manual flag."), code="already_flagged")
        flag = _raise(
            locked, locked.programme, None, FraudFlag.Rule.MANUAL, {"note": text}, actor=actor, note=text
        )
    member.flagged = True
    return flag


def _locked_open_flag(flag: FraudFlag) -> FraudFlag:
    locked = FraudFlag.objects.select_for_update().filter(pk=flag.pk).first()
    if locked is None:
        raise NotFound(_("Fraud flag not found."), code="flag_not_found")
    if locked.state != FraudFlag.State.OPEN:
        raise Conflict(_("This flag has already been reviewed."), code="flag_already_reviewed")
    return locked


def _close(
    flag: FraudFlag,
    *,
    actor: Actor | None,
    state: str,
    note: str,
    reversed_ids: list[str],
    suspended: bool,
) -> FraudFlag:
    """Write the review on a locked flag, refresh the member's ``flagged`` mark, audit and publish."""
    now = clock.now()
    before = {"state": flag.state}
    flag.state = state
    flag.reviewed_by_id = actor.user_id if actor is not None else None
    flag.reviewed_at = now
    flag.review_note = note
    flag.save(update_fields=["state", "reviewed_by_id", "reviewed_at", "review_note"])
    member = Member.objects.select_for_update().select_related("programme").get(pk=flag.member_id)
    still_open = FraudFlag.objects.filter(member=member, state=FraudFlag.State.OPEN).exists()
    if member.flagged != still_open:
        Member.objects.filter(pk=member.pk).update(flagged=still_open)
    audit.record(
        action=f"loyalty.fraud_flag_{state}",
        object_type="loyalty.fraud_flag",
        object_id=str(flag.pk),
        before=before,
        after={
            "state": state,
            "reviewer": actor.email if actor is not None else "system",
            "reviewer_id": flag.reviewed_by_id,
            "note": note,
            "member": member.card_number,
            "rule": flag.rule,
            "reversed_transactions": reversed_ids,
            "member_suspended": suspended,
        },
        actor_id=flag.reviewed_by_id,
    )
    events.publish(
        FraudFlagReviewed(
            flag_id=flag.pk,
            member_id=str(member.public_id),
            programme=member.programme.code,
            rule=flag.rule,
            state=state,
            reviewer_id=flag.reviewed_by_id,
            reversed_transaction_ids=reversed_ids,
            member_suspended=suspended,
            reviewed_at=now.isoformat(),
        ),
        aggregate_type="loyalty.member",
        aggregate_id=str(member.public_id),
    )
    return flag


def fraud_clear(*, actor: Actor | None, flag: FraudFlag, note: str) -> FraudFlag:
    """A false alarm: the flag is cleared, nothing is reversed; the member stays flagged only while
    another flag of theirs is open."""
    _require_reviewer(actor)
    text = _clean_note(note, required=True)
    with db_transaction.atomic():
        locked = _locked_open_flag(flag)
        result = _close(
            locked, actor=actor, state=FraudFlag.State.CLEARED, note=text, reversed_ids=[], suspended=False
        )
    return result


def fraud_confirm(
    *,
    actor: Actor | None,
    flag: FraudFlag,
    note: str,
    reverse_transaction_ids: list[str],
    suspend: bool = False,
) -> FraudFlag:
    """Confirmed fraud: reverse the named transactions of the flagged member (public ids; earns,
    positive adjustments or redemptions — see ``transaction_reverse``) and optionally suspend the
    membership, all in one database transaction: if any reversal fails nothing is reversed and
    the flag stays open. The audit row names the reviewer and every reversal."""
    _require_reviewer(actor)
    text = _clean_note(note, required=True)
    ids = [str(value).strip() for value in reverse_transaction_ids or []]
    if len(ids) > MAX_REVERSALS:
        raise ValidationFailed(
            _("Reverse at most 200 transactions at once."),
            code="too_many_transactions",
            fields={"reverse_transaction_ids": _("Too many.")},
        )
    if len(set(ids)) != len(ids):
        raise ValidationFailed(
            _("A transaction is listed twice."),
            code="duplicate_transaction",
            fields={"reverse_transaction_ids": _("Listed twice.")},
        )
    if suspend and actor is not None and not actor.can(OPERATE):
        raise PermissionDenied(_("You may not suspend members."), code="permission_denied")
    with db_transaction.atomic():
        # The flag is locked before the transactions are checked: a second reviewer confirming the
        # same flag waits here and then gets a Conflict, not a half-checked list. Nothing has been
        # written when a check fails.
        locked = _locked_open_flag(flag)
        targets = _transactions_to_reverse(locked, ids)
        reversed_ids: list[str] = []
        for target in targets:
            transaction_reverse(
                actor=actor,
                transaction=target,
                reason=_("Fraud confirmed (flag %(flag)s): %(note)s")
                % {"flag": locked.pk, "note": text[:150]},
                idempotency_key=f"fraud-{locked.pk}-{target.public_id}",
            )
            reversed_ids.append(str(target.public_id))
        member = Member.objects.get(pk=locked.member_id)
        suspended = False
        if suspend and member.status == MemberStatus.ACTIVE:
            member_set_status(
                actor=actor, member=member, status=MemberStatus.SUSPENDED, reason=_("Fraud confirmed")
            )
            suspended = True
        result = _close(
            locked,
            actor=actor,
            state=FraudFlag.State.CONFIRMED,
            note=text,
            reversed_ids=reversed_ids,
            suspended=suspended,
        )
    return result


def _reversible(row: PointsTransaction) -> bool:
    return row.kind in (TransactionKind.EARN, TransactionKind.REDEEM) or (
        row.kind == TransactionKind.ADJUST and (row.details or {}).get("direction") == "credit"
    )


def _transactions_to_reverse(flag: FraudFlag, ids: list[str]) -> list[PointsTransaction]:
    """The flagged member's transactions with these public ids, or a clear error naming the bad ones
    (unknown, another member's, not reversible, already reversed)."""
    if not ids:
        return []
    valid: list[str] = []
    bad: list[str] = []
    for value in ids:
        try:
            valid.append(str(uuid.UUID(value)))
        except ValueError:
            bad.append(value)
    found = {
        str(row.public_id): row
        for row in PointsTransaction.objects.filter(public_id__in=valid, member_id=flag.member_id)
    }
    bad += [value for value in valid if value not in found]
    if bad:
        raise ValidationFailed(
            _("Some transactions are not this member's: %(ids)s.") % {"ids": ", ".join(bad[:10])},
            code="unknown_transaction",
            fields={
                "reverse_transaction_ids": [
                    _("Unknown transaction: %(id)s") % {"id": value} for value in bad[:10]
                ]
            },
        )
    refused = [key for key, row in found.items() if not _reversible(row)]
    if refused:
        raise ValidationFailed(
            _("Only earnings, positive adjustments and redemptions can be reversed: %(ids)s.")
            % {"ids": ", ".join(refused[:10])},
            code="not_reversible",
            fields={"reverse_transaction_ids": _("Not reversible.")},
        )
    already = sorted(
        str(value)
        for value in PointsTransaction.objects.filter(reversal_of__in=list(found.values())).values_list(
            "reversal_of__public_id", flat=True
        )
    )
    if already:
        raise ValidationFailed(
            _("Some transactions have already been reversed: %(ids)s.") % {"ids": ", ".join(already[:10])},
            code="already_reversed",
            fields={"reverse_transaction_ids": _("Already reversed.")},
        )
    return [found[value] for value in valid]

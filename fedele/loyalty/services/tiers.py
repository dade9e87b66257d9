"""Tier changes: immediate upgrades on earning, reviews with a soft landing, manual changes.

Review dates (programme time zone) — the tier is guaranteed until the day before ``tier_review_on``:

- rolling 12 months: the day after the first anniversary of the upgrade (upgraded 10 Mar 2026 → Gold
  through 10 Mar 2027, reviewed on 11 Mar 2027 over the 12 months that ended when that day began, so
  the earnings of the upgrade day have left the window; upgraded 29 Feb 2028 → reviewed 1 Mar 2029);
- calendar year: 1 January of the second year after the upgrade (upgraded any day of 2026 → Gold through
  31 Dec 2027, reviewed on 1 Jan 2028 over the calendar year 2027).

A review evaluates the window that ended when the review day began (``review_moment``): the member
keeps the tier if the metric still reaches it (``retained``, next review one period later), moves up if
it reaches a higher one, and otherwise goes down ONE tier (soft landing), even when the metric would
justify a lower one; the lower tier is reviewed one period later (the base tier, rank 0, never is).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db import transaction as db_transaction
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.loyalty.events import TierChanged
from fedele.loyalty.models import (
    Member,
    MemberStatus,
    PointsTransaction,
    Programme,
    ProgrammeStatus,
    Tier,
    TierChange,
    TierMetric,
    TierWindow,
    TransactionKind,
)
from fedele.loyalty.selectors.tiers import (
    add_months,
    qualifying_value,
    qualifying_values,
    review_moment,
    tier_benefits,
    tier_multiplier,
    tier_reached,
    tiers_of,
)
from fedele.shared import audit, clock, events
from fedele.shared.errors import PermissionDenied, ValidationFailed

__all__ = [
    "qualifying_value",
    "review_date_after",
    "tier_benefits",
    "tier_check_upgrade",
    "tier_check_upgrade_many",
    "tier_multiplier",
    "tier_set_manual",
    "tiers_review_due",
]

MAX_REASON_LENGTH = 200


def review_date_after(programme: Programme, moment: datetime) -> date:
    """The review date of a tier reached at ``moment``."""
    local_day = clock.local(moment, programme.timezone).date()
    if programme.tier_window == TierWindow.CALENDAR_YEAR:
        return date(local_day.year + 2, 1, 1)
    return add_months(local_day, 12) + timedelta(days=1)


def _next_review(programme: Programme, review_on: date, today: date) -> date:
    """One period after ``review_on``; further periods when the job is late, so the next date is after
    ``today`` and a second run on the same day finds nothing to do."""
    following = review_on
    while following <= today:
        if programme.tier_window == TierWindow.CALENDAR_YEAR:
            following = date(following.year + 1, 1, 1)
        else:
            following = add_months(following, 12)
    return following


def _record_change(
    *,
    member: Member,
    to_tier: Tier | None,
    reason: str,
    value: Decimal,
    at: datetime,
    review_on: date | None,
    actor_id: int | None,
    note: str = "",
) -> TierChange:
    """Write the member's new tier, its history row, the audit row and (for a real change) TierChanged.
    The caller holds the member's row lock."""
    from_tier = member.tier
    before = {
        "tier": from_tier.code if from_tier else "",
        "tier_since": member.tier_since,
        "tier_review_on": member.tier_review_on,
    }
    changed = (from_tier.pk if from_tier else None) != (to_tier.pk if to_tier else None)
    member.tier = to_tier
    if changed:
        member.tier_since = at
    member.tier_review_on = review_on
    member.updated_at = at
    member.save(update_fields=["tier", "tier_since", "tier_review_on", "updated_at"])
    change = TierChange.objects.create(
        member=member,
        from_tier=from_tier,
        to_tier=to_tier,
        reason=reason,
        metric_value=value,
        changed_at=at,
        changed_by_id=actor_id,
        note=note[:MAX_REASON_LENGTH],
    )
    audit.record(
        action=f"loyalty.tier_{reason}",
        object_type="loyalty.member",
        object_id=str(member.public_id),
        before=before,
        after={
            "tier": to_tier.code if to_tier else "",
            "tier_since": member.tier_since,
            "tier_review_on": member.tier_review_on,
            "metric_value": value,
            "note": note,
        },
        actor_id=actor_id,
    )
    if changed:
        programme = member.programme
        customer_public_id = (
            Member.objects.filter(pk=member.pk).values_list("customer__public_id", flat=True).first()
        )
        events.publish(
            TierChanged(
                member_id=str(member.public_id),
                customer_id=str(customer_public_id or ""),
                programme=programme.code,
                from_tier=from_tier.code if from_tier else "",
                to_tier=to_tier.code if to_tier else "",
                reason=reason,
                changed_at=at.isoformat(),
            ),
            aggregate_type="loyalty.member",
            aggregate_id=str(member.public_id),
        )
    return change


def _contributes(programme: Programme, posting: PointsTransaction) -> bool:
    if programme.tier_metric == TierMetric.SPEND:
        return bool(posting.amount_eur and posting.amount_eur > 0)
    if programme.tier_metric == TierMetric.COUNT:
        return posting.qualifying_count > 0
    return posting.qualifying_points > 0


_LADDER_SQL = "SELECT id, rank, threshold FROM {table} WHERE programme_id = %s ORDER BY rank"


def _ladder(programme_id: int) -> list[tuple[int, int, Decimal]]:
    """(id, rank, threshold) of the programme's tiers by rank, in plain SQL: it runs in every earn."""
    with connection.cursor() as cursor:
        cursor.execute(_LADDER_SQL.format(table=Tier._meta.db_table), [programme_id])
        return [(int(pk), int(rank), Decimal(str(threshold))) for pk, rank, threshold in cursor.fetchall()]


def tier_check_upgrade(member: Member, transaction: PointsTransaction) -> None:
    """Earn hook (runs inside the earn's transaction, the member row locked by the ledger): move the
    member up at once to the highest tier its metric now reaches (several tiers at once if need be).
    Cheap: nothing when the earn does not count; otherwise the ladder (one small query), and one
    aggregate unless the member is already at the top."""
    if transaction.kind != TransactionKind.EARN:
        return
    programme = transaction.programme
    if not _contributes(programme, transaction):
        return
    ladder = _ladder(programme.pk)
    current_rank = next((rank for pk, rank, _threshold in ladder if pk == member.tier_id), -1)
    if not ladder or ladder[-1][1] <= current_rank:
        return
    at = max(clock.now(), transaction.occurred_at)
    value = qualifying_value(member=member, at=at, programme=programme)
    reached = [(pk, rank) for pk, rank, threshold in ladder if value >= threshold]
    if not reached or reached[-1][1] <= current_rank:
        return
    target = Tier.objects.get(pk=reached[-1][0])
    member.programme = programme
    _record_change(
        member=member,
        to_tier=target,
        reason=TierChange.Reason.UPGRADE,
        value=value,
        at=at,
        review_on=review_date_after(programme, at) if target.rank > 0 else None,
        actor_id=transaction.created_by_id,
    )


def tier_check_upgrade_many(groups: Sequence[tuple[Member, Sequence[PointsTransaction]]]) -> None:
    """The batch variant of ``tier_check_upgrade`` (``hooks.on_earn_many``): one grouped metric query
    for every member of the batch that could move up, then the upgrades (rare) one by one."""
    candidates: list[tuple[Member, datetime, int | None]] = []
    programme: Programme | None = None
    tiers: list[Tier] = []
    for member, postings in groups:
        counting = [p for p in postings if p.kind == TransactionKind.EARN and _contributes(p.programme, p)]
        if not counting:
            continue
        if programme is None:
            programme = counting[0].programme
            tiers = tiers_of(programme)
        current = next((tier for tier in tiers if tier.pk == member.tier_id), None)
        if not tiers or tiers[-1].rank <= (current.rank if current is not None else -1):
            continue
        at = max(clock.now(), *(p.occurred_at for p in counting))
        candidates.append((member, at, counting[-1].created_by_id))
    if programme is None or not candidates:
        return
    at = max(moment for _member, moment, _by in candidates)
    values = qualifying_values(
        members=[member for member, _at, _by in candidates], at=at, programme=programme
    )
    for member, _moment, created_by in candidates:
        current = next((tier for tier in tiers if tier.pk == member.tier_id), None)
        reached = tier_reached(tiers, values[member.pk])
        if reached is None or reached.rank <= (current.rank if current is not None else -1):
            continue
        member.programme = programme
        member.tier = current
        _record_change(
            member=member,
            to_tier=reached,
            reason=TierChange.Reason.UPGRADE,
            value=values[member.pk],
            at=at,
            review_on=review_date_after(programme, at) if reached.rank > 0 else None,
            actor_id=created_by,
        )


def _review_member(member: Member, programme: Programme, tiers: list[Tier], today: date) -> None:
    review_on = member.tier_review_on
    current = member.tier
    if review_on is None:
        return
    now = clock.now()
    if current is None:
        member.tier_review_on = None
        member.save(update_fields=["tier_review_on"])
        return
    value = qualifying_value(member=member, at=review_moment(programme, review_on), programme=programme)
    reached = tier_reached(tiers, value)
    reached_rank = reached.rank if reached is not None else -1
    following = _next_review(programme, review_on, today)
    if reached is not None and reached_rank > current.rank:
        _record_change(
            member=member,
            to_tier=reached,
            reason=TierChange.Reason.UPGRADE,
            value=value,
            at=now,
            review_on=following,
            actor_id=None,
        )
        return
    if reached_rank == current.rank:
        _record_change(
            member=member,
            to_tier=current,
            reason=TierChange.Reason.RETAINED,
            value=value,
            at=now,
            review_on=following,
            actor_id=None,
        )
        return
    lower = [tier for tier in tiers if tier.rank < current.rank]
    target = lower[-1] if lower else None
    _record_change(
        member=member,
        to_tier=target,
        reason=TierChange.Reason.DOWNGRADE,
        value=value,
        at=now,
        review_on=following if target is not None and target.rank > 0 else None,
        actor_id=None,
    )


def tiers_review_due(*, today: date | None = None) -> int:
    """Review every member whose ``tier_review_on`` ≤ today (each programme's own calendar day).
    Returns how many members were reviewed. Each member is reviewed in its own transaction under its
    row lock; running again on the same day does nothing (the next review date is in the future)."""
    reviewed = 0
    for programme in Programme.objects.exclude(status=ProgrammeStatus.CLOSED).order_by("pk"):
        day = today or clock.today(programme.timezone)
        due = list(
            Member.objects.filter(programme=programme, tier_review_on__lte=day)
            .exclude(status=MemberStatus.CLOSED)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not due:
            continue
        tiers = tiers_of(programme)
        for member_pk in due:
            with db_transaction.atomic():
                member = (
                    Member.objects.select_for_update(of=("self",)).select_related("tier").get(pk=member_pk)
                )
                if member.tier_review_on is None or member.tier_review_on > day:
                    continue
                member.programme = programme
                _review_member(member, programme, tiers, day)
            reviewed += 1
    return reviewed


def tier_set_manual(*, actor: Actor | None, member: Member, tier: Tier, reason: str) -> Member:
    """Put a member in a tier by hand (a goodwill gesture, a status match). Needs operate or manage
    permission; the tier is reviewed one period later like an upgrade (the base tier never is)."""
    if actor is not None and not (
        actor.is_internal and (actor.can("loyalty.operate_loyalty") or actor.can("loyalty.manage_loyalty"))
    ):
        raise PermissionDenied(_("You may not change members' tiers."), code="permission_denied")
    reason = (reason or "").strip()
    errors: dict[str, str] = {}
    if not reason:
        errors["reason"] = _("Give the reason of the change.")
    elif len(reason) > MAX_REASON_LENGTH:
        errors["reason"] = _("The reason is too long (200 characters at most).")
    if tier.programme_id != member.programme_id:
        errors["tier"] = _("The tier belongs to another programme.")
    if errors:
        raise ValidationFailed(_("The tier change is not valid."), code="validation_error", fields=errors)
    with db_transaction.atomic():
        locked = (
            Member.objects.select_for_update(of=("self",))
            .select_related("tier", "programme")
            .get(pk=member.pk)
        )
        if locked.status == MemberStatus.CLOSED:
            raise ValidationFailed(
                _("The membership is closed."), code="member_closed", fields={"member": _("Closed.")}
            )
        if locked.tier_id == tier.pk:
            raise ValidationFailed(
                _("The member is already in this tier."),
                code="same_tier",
                fields={"tier": _("The member is already in this tier.")},
            )
        now = clock.now()
        programme = locked.programme
        _record_change(
            member=locked,
            to_tier=tier,
            reason=TierChange.Reason.MANUAL,
            value=qualifying_value(member=locked, at=now, programme=programme),
            at=now,
            review_on=review_date_after(programme, now) if tier.rank > 0 else None,
            actor_id=actor.user_id if actor is not None else None,
            note=reason,
        )
    return locked

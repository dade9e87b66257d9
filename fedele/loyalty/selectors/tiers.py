"""Reads of the tiers area: the qualifying metric over a programme's tier window, a member's progress
towards the next tier, benefits and the earn multiplier.

Windows (programme time zone):

- ``rolling_12_months``: the earns with ``at − 12 months < occurred_at ≤ at`` (an earn made exactly
  twelve months before ``at`` has left the window; 29 February minus a year is 28 February).
- ``calendar_year``: the earns from 1 January 00:00 of ``at``'s local year up to ``at`` included.

The metric sums the member's EARN transactions in the window that were not reversed
(``reversed_by`` is empty), less what partial refunds took back (see ``qualifying_value``).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils.translation import gettext_lazy

from fedele.loyalty.models import (
    Member,
    PointsTransaction,
    Programme,
    Tier,
    TierMetric,
    TierWindow,
    TransactionKind,
)
from fedele.shared import clock
from fedele.shared.bulk import id_table

REFUND_SOURCE = "refund"
ONE = Decimal("1")
ZERO = Decimal("0")
_CENT = Decimal("0.01")

BENEFIT_LABELS = {
    "free_shipping": gettext_lazy("Free shipping"),
    "priority_support": gettext_lazy("Priority support"),
    "lounge": gettext_lazy("Lounge access"),
    "birthday_bonus": gettext_lazy("Birthday bonus"),
    "early_access": gettext_lazy("Early access to sales"),
    "upgrade": gettext_lazy("Free upgrades"),
}


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (or earlier), clamped to the month's end (31 Jan + 1 → 28/29 Feb)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def local_midnight(day: date, timezone: str) -> datetime:
    """00:00 of ``day`` in the programme's time zone, as an aware datetime."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(timezone))


def window_start(programme: Programme, at: datetime) -> datetime:
    """The (exclusive for rolling, inclusive for calendar) start of the tier window that ends at ``at``."""
    local = at.astimezone(ZoneInfo(programme.timezone))
    if programme.tier_window == TierWindow.CALENDAR_YEAR:
        return local_midnight(date(local.year, 1, 1), programme.timezone)
    earlier = add_months(local.date(), -12)
    return datetime.combine(earlier, local.timetz().replace(tzinfo=None), tzinfo=ZoneInfo(programme.timezone))


def _metric_field(metric: str) -> str:
    if metric == TierMetric.SPEND:
        return "amount_eur"
    if metric == TierMetric.COUNT:
        return "qualifying_count"
    return "qualifying_points"


# One row per member, each sum a correlated subquery: every member's earns are read through the index
# (member, kind, occurred_at), whatever the planner's statistics say (a grouped statement over
# "member_id IN (...)" read every earn of the programme in the window when the table had grown since
# it was last analysed).
_METRIC_SQL = """
SELECT m.id,
    (SELECT COALESCE(SUM(COALESCE(t.{field}, 0)), 0) FROM {table} t
     WHERE t.member_id = m.id AND t.kind = %(earn)s
       AND t.occurred_at {lower} %(start)s AND t.occurred_at <= %(end)s
       AND NOT EXISTS (SELECT 1 FROM {table} r WHERE r.reversal_of_id = t.id)),
    (SELECT COALESCE(SUM(COALESCE(t.{field}, 0)), 0) FROM {table} t
     WHERE t.member_id = m.id AND t.kind IN (%(cancel)s, %(adjust)s) AND t.source = %(refund)s
       AND t.reference IN (
           SELECT e.reference FROM {table} e
           WHERE e.member_id = m.id AND e.kind = %(earn)s AND e.reference <> ''
             AND e.occurred_at {lower} %(start)s AND e.occurred_at <= %(end)s
             AND NOT EXISTS (SELECT 1 FROM {table} r2 WHERE r2.reversal_of_id = e.id)))
FROM {members}
"""


def _metric_sums(
    member_ids: list[int], programme: Programme, start: datetime, end: datetime, *, inclusive: bool
) -> dict[int, Decimal]:
    """One SQL statement over the members' transactions (index ``member, kind, occurred_at``), per member:
    + each EARN with ``start < occurred_at ≤ end`` (``start ≤`` when ``inclusive``) that was not
    reversed (``transaction_reverse`` points ``reversal_of`` at it), − each purchase-refund take-back
    of one of those earns (``source="refund"``, CANCEL_PENDING or ADJUST, written by the ledger's
    ``purchase_refund`` with the same member and ``reference``). A refund row carries what it took
    back: ``qualifying_points`` (points taken), ``amount_eur`` (the refunded share) and
    ``qualifying_count`` (the whole count on a full refund, 0 on a partial one). Never below 0.

    Written in SQL because it runs inside every earn (and once per batch of earns): building the
    equivalent ORM expression costs more than the query itself."""
    values = dict.fromkeys(member_ids, ZERO)
    if not member_ids:
        return values
    adapt = connection.ops.adapt_datetimefield_value
    members, member_params = id_table("m", "id", member_ids)
    params: dict[str, Any] = {
        "earn": TransactionKind.EARN.value,
        "cancel": TransactionKind.CANCEL_PENDING.value,
        "adjust": TransactionKind.ADJUST.value,
        "refund": REFUND_SOURCE,
        "start": adapt(start),
        "end": adapt(end),
        "members": member_params[0],
    }
    sql = _METRIC_SQL.format(
        field=_metric_field(programme.tier_metric),
        table=PointsTransaction._meta.db_table,
        lower=">=" if inclusive else ">",
        members=members.replace("%s", "%(members)s"),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for member_id, earned, refunded in cursor.fetchall():
            total = Decimal(str(earned)) - Decimal(str(refunded))
            values[int(member_id)] = max(total, ZERO).quantize(_CENT, rounding=ROUND_HALF_UP)
    return values


def _metric_sum(
    member: Member, programme: Programme, start: datetime, end: datetime, *, inclusive: bool
) -> Decimal:
    return _metric_sums([member.pk], programme, start, end, inclusive=inclusive)[member.pk]


def qualifying_values(*, members: list[Member], at: datetime, programme: Programme) -> dict[int, Decimal]:
    """``qualifying_value`` of many members of one programme in one grouped statement (batch earns)."""
    inclusive = programme.tier_window == TierWindow.CALENDAR_YEAR
    return _metric_sums(
        [member.pk for member in members], programme, window_start(programme, at), at, inclusive=inclusive
    )


def qualifying_value(*, member: Member, at: datetime, programme: Programme | None = None) -> Decimal:
    """The programme's tier metric for ``member`` over the tier window ending at ``at``: Σ qualifying
    points, Σ spend (EUR, to the cent) or Σ qualifying purchases of the earns not reversed."""
    programme = programme or member.programme
    inclusive = programme.tier_window == TierWindow.CALENDAR_YEAR
    return _metric_sum(member, programme, window_start(programme, at), at, inclusive=inclusive)


def tiers_of(programme: Programme) -> list[Tier]:
    """The programme's tiers by rank (cached per process under the loyalty-config version within a
    request scope; read from the database elsewhere)."""
    from fedele.loyalty.selectors import config_cache

    return sorted(config_cache.tiers(programme).values(), key=lambda tier: (tier.rank, tier.pk))


def tier_reached(tiers: list[Tier], value: Decimal) -> Tier | None:
    """The highest tier whose threshold ``value`` reaches (tiers ordered by rank)."""
    reached = None
    for tier in tiers:
        if value >= tier.threshold:
            reached = tier
    return reached


def tier_multiplier(member: Member) -> Decimal:
    """The member's tier earn multiplier; 1 when the member has no tier."""
    if member.tier_id is None:
        return ONE
    return Decimal(member.tier.earn_multiplier) if member.tier is not None else ONE


def tier_benefits(member: Member) -> list[str]:
    """The benefit codes of the member's tier (``free_shipping``, ``priority_support``...)."""
    if member.tier_id is None or member.tier is None:
        return []
    return [str(code) for code in (member.tier.benefits or [])]


def benefit_label(code: str) -> str:
    return str(BENEFIT_LABELS.get(code, code.replace("_", " ").capitalize()))


@dataclass(frozen=True, slots=True)
class TierProgress:
    """Where a member stands: the values are the tier metric (points, EUR or a count)."""

    tier: Tier | None
    next_tier: Tier | None
    metric: str
    value: Decimal
    next_threshold: Decimal | None
    percent: int
    remaining: Decimal | None
    review_on: date | None
    keep_threshold: Decimal | None
    keep_value: Decimal | None
    keep_remaining: Decimal | None
    window: str

    @property
    def valid_until(self) -> date | None:
        """The last day the current tier is guaranteed (the day before the review)."""
        return self.review_on - timedelta(days=1) if self.review_on is not None else None

    @property
    def is_top(self) -> bool:
        return self.tier is not None and self.next_tier is None

    @property
    def is_money(self) -> bool:
        return self.metric == TierMetric.SPEND


def review_moment(programme: Programme, review_on: date) -> datetime:
    """The instant a review on ``review_on`` evaluates: the last moment of the day before, so the window
    is the 12 months (or the calendar year) that ended when the review day began."""
    return local_midnight(review_on, programme.timezone) - timedelta(microseconds=1)


def _display(value: Decimal, metric: str) -> Decimal:
    return value if metric == TierMetric.SPEND else value.quantize(ONE, rounding=ROUND_DOWN)


def tier_progress(member: Member, *, at: datetime | None = None) -> TierProgress:
    """The member's tier, the next one and how far it is; what must be reached by the review date to
    keep the current tier (``keep_*``; None for the base tier, which is never reviewed)."""
    at = at or clock.now()
    programme = member.programme
    tiers = tiers_of(programme)
    metric = programme.tier_metric
    value = _display(qualifying_value(member=member, at=at, programme=programme), metric)
    current = next((tier for tier in tiers if tier.pk == member.tier_id), None)
    current_rank = current.rank if current is not None else -1
    next_tier = next((tier for tier in tiers if tier.rank > current_rank), None)
    next_threshold = _display(next_tier.threshold, metric) if next_tier is not None else None
    if next_threshold is None:
        percent = 100
        remaining = None
    else:
        remaining = max(next_threshold - value, ZERO)
        percent = 100 if next_threshold <= 0 else int(min(value * 100 / next_threshold, Decimal(100)))
        percent = max(percent, 0)
    keep_threshold = keep_value = keep_remaining = None
    review_on = member.tier_review_on
    if current is not None and current.rank > 0 and review_on is not None:
        keep_threshold = _display(current.threshold, metric)
        moment = review_moment(programme, review_on)
        counted = min(at, moment)
        start = window_start(programme, moment)
        if counted < start:
            keep_value = ZERO
        else:
            inclusive = programme.tier_window == TierWindow.CALENDAR_YEAR
            keep_value = _display(_metric_sum(member, programme, start, counted, inclusive=inclusive), metric)
        keep_remaining = max(keep_threshold - keep_value, ZERO)
    return TierProgress(
        tier=current,
        next_tier=next_tier,
        metric=metric,
        value=value,
        next_threshold=next_threshold,
        percent=percent,
        remaining=remaining,
        review_on=review_on,
        keep_threshold=keep_threshold,
        keep_value=keep_value,
        keep_remaining=keep_remaining,
        window=programme.tier_window,
    )

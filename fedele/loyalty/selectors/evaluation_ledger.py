"""Programme evaluation from the ledger: activity and redemption, earn/burn, breakage (to date, by
earning cohort, and a forecast for the points still open) and the outstanding liability over time.

Accounting figures (issued, redeemed, expired, outstanding) are sums of ``PointsEntry`` rows by
posting time (``created_at``), so a reversal or a cancelled pending earn nets out where it happened.
Behaviour figures (who was active) read the transactions' ``occurred_at``.

* issued = −Σ ``issuance`` + ``partner_issuance`` entries (positive adjustments are not issuance);
* redeemed = Σ ``redemption`` + ``partner_redemption`` entries;
* expired = Σ ``expiry`` entries (breakage);
* outstanding = Σ of the member accounts (available + pending + reserved − debt), valued at the
  programme's current ``point_value``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMonth

from fedele.loyalty.models import (
    MEMBER_ACCOUNTS,
    Account,
    Member,
    MemberStatus,
    PointsEntry,
    PointsLot,
    PointsTransaction,
    TransactionKind,
)
from fedele.loyalty.selectors.evaluation_common import (
    Period,
    add_months,
    local_midnight,
    month_end,
    month_start,
    percent,
    points_value,
    ratio,
)

ACTIVE_WINDOW_DAYS = 90
ISSUING_ACCOUNTS = (Account.ISSUANCE, Account.PARTNER_ISSUANCE)
REDEEMING_ACCOUNTS = (Account.REDEMPTION, Account.PARTNER_REDEMPTION)
LOT_ACCOUNTS = (Account.MEMBER_AVAILABLE, Account.MEMBER_PENDING)
ACTIVITY_KINDS = (TransactionKind.EARN, TransactionKind.REDEEM)


def _month_day(value: date | datetime) -> date:
    """TruncMonth gives an aware datetime in the programme's zone: its local date is the month."""
    return value.date() if isinstance(value, datetime) else value


def _by_month(rows: object) -> dict[date, int]:
    totals: dict[date, int] = defaultdict(int)
    for row in rows:  # type: ignore[attr-defined]
        totals[_month_day(row["month"])] += int(row["points"] or 0)
    return totals


# ----------------------------------------------------------------------------------------------
# Summary: active rate, earn/burn ratio, redemption rate


@dataclass(frozen=True, slots=True)
class Summary:
    as_of: date
    active_members: int
    active_last_90_days: int
    active_rate: Decimal | None
    points_issued: int
    points_redeemed: int
    points_expired: int
    earn_burn_ratio: Decimal | None
    members: int
    members_redeemed: int
    redemption_rate: Decimal | None


def summary(period: Period) -> Summary:
    """As of the end of the period:

    * active rate = active members (status active, enrolled by then) with an earn or a redemption in
      the last 90 days / active members;
    * earn/burn = points issued in the period / points redeemed in the period;
    * redemption rate = members (any status, enrolled by then) who ever redeemed (a redemption not
      reversed) / members."""
    programme, ends_at = period.programme, period.ends_at
    recent_from = ends_at - timedelta(days=ACTIVE_WINDOW_DAYS)
    enrolled = Member.objects.filter(programme=programme, enrolled_at__lt=ends_at)
    transactions = PointsTransaction.objects.filter(programme=programme, member__isnull=False)
    recent = transactions.filter(
        kind__in=ACTIVITY_KINDS, occurred_at__gte=recent_from, occurred_at__lt=ends_at
    )
    counts = enrolled.aggregate(
        members=Count("id"),
        active=Count("id", filter=Q(status=MemberStatus.ACTIVE)),
    )
    active_recent = enrolled.filter(status=MemberStatus.ACTIVE, pk__in=recent.values("member_id")).count()
    redeemers = (
        transactions.filter(kind=TransactionKind.REDEEM, occurred_at__lt=ends_at, reversed_by__isnull=True)
        .values("member_id")
        .distinct()
    )
    members_redeemed = enrolled.filter(pk__in=redeemers).count()
    in_period = PointsEntry.objects.filter(period.within("created_at"), programme=programme)
    flows = in_period.aggregate(
        issued=Sum("points", filter=Q(account__in=ISSUING_ACCOUNTS)),
        redeemed=Sum("points", filter=Q(account__in=REDEEMING_ACCOUNTS)),
        expired=Sum("points", filter=Q(account=Account.EXPIRY)),
    )
    issued = -int(flows["issued"] or 0)
    redeemed = int(flows["redeemed"] or 0)
    return Summary(
        as_of=period.end,
        active_members=counts["active"],
        active_last_90_days=active_recent,
        active_rate=percent(active_recent, counts["active"]),
        points_issued=issued,
        points_redeemed=redeemed,
        points_expired=int(flows["expired"] or 0),
        earn_burn_ratio=ratio(issued, redeemed),
        members=counts["members"],
        members_redeemed=members_redeemed,
        redemption_rate=percent(members_redeemed, counts["members"]),
    )


# ----------------------------------------------------------------------------------------------
# Breakage to date and by cohort


@dataclass(frozen=True, slots=True)
class BreakageCohort:
    month: date
    issued: int
    used: int
    expired: int
    open: int
    breakage: Decimal | None


@dataclass(frozen=True, slots=True)
class Breakage:
    as_of: date
    issued: int
    expired: int
    breakage: Decimal | None
    cohorts: list[BreakageCohort]


def breakage(period: Period) -> Breakage:
    """Breakage = points expired / points issued, everything posted up to the end of the period.

    By cohort: the lots earned in each month of the period (programme time zone; earn lots only, not
    cancelled — a reversed or refunded earn is not issuance): their points, what expired of them,
    what is still open on them at the end of the period, and the rest (used: redeemed or
    transferred)."""
    programme, ends_at = period.programme, period.ends_at
    to_date = PointsEntry.objects.filter(programme=programme, created_at__lt=ends_at).aggregate(
        issued=Sum("points", filter=Q(account__in=ISSUING_ACCOUNTS)),
        expired=Sum("points", filter=Q(account=Account.EXPIRY)),
    )
    issued, expired = -int(to_date["issued"] or 0), int(to_date["expired"] or 0)
    lots = PointsLot.objects.filter(
        programme=programme,
        earn_transaction__kind=TransactionKind.EARN,
        earned_at__gte=local_midnight(month_start(period.start), period.tz),
        earned_at__lt=ends_at,
    ).exclude(state=PointsLot.State.CANCELLED)
    month = TruncMonth("earned_at", tzinfo=period.tz)
    lot_points = _by_month(
        lots.annotate(month=month).values("month").annotate(points=Sum("points")).order_by()
    )
    lot_entries = PointsEntry.objects.filter(
        lot__in=lots, account__in=LOT_ACCOUNTS, created_at__lt=ends_at
    ).annotate(month=TruncMonth("lot__earned_at", tzinfo=period.tz))
    lot_expired = _by_month(
        lot_entries.filter(transaction__kind=TransactionKind.EXPIRE)
        .values("month")
        .annotate(points=Sum("points"))
        .order_by()
    )
    lot_open = _by_month(lot_entries.values("month").annotate(points=Sum("points")).order_by())
    cohorts = []
    for first_day in period.months():
        points, gone = lot_points.get(first_day, 0), -lot_expired.get(first_day, 0)
        cohorts.append(
            BreakageCohort(
                month=first_day,
                issued=points,
                used=points - gone - lot_open.get(first_day, 0),
                expired=gone,
                open=lot_open.get(first_day, 0),
                breakage=percent(gone, points),
            )
        )
    return Breakage(
        as_of=period.end, issued=issued, expired=expired, breakage=percent(expired, issued), cohorts=cohorts
    )


# ----------------------------------------------------------------------------------------------
# Liability over time


@dataclass(frozen=True, slots=True)
class LiabilityMonth:
    month_end: date
    available: int
    pending: int
    reserved: int
    debt: int
    outstanding: int
    value_eur: Decimal


def liability(period: Period) -> list[LiabilityMonth]:
    """Month-end outstanding points and their EUR value, from cumulative sums of the member accounts
    (the last row is the period's end when it is not a month end). The value uses the programme's
    current point value (the model keeps no history of it)."""
    programme, tz = period.programme, period.tz
    opening_cut = local_midnight(month_start(period.start), tz)
    member_entries = PointsEntry.objects.filter(programme=programme, account__in=list(MEMBER_ACCOUNTS))
    balances: dict[str, int] = defaultdict(int)
    for row in (
        member_entries.filter(created_at__lt=opening_cut).values("account").annotate(points=Sum("points"))
    ):
        balances[row["account"]] += int(row["points"] or 0)
    monthly: dict[tuple[date, str], int] = defaultdict(int)
    rows = (
        member_entries.filter(created_at__gte=opening_cut, created_at__lt=period.ends_at)
        .annotate(month=TruncMonth("created_at", tzinfo=tz))
        .values("month", "account")
        .annotate(points=Sum("points"))
        .order_by()
    )
    for row in rows:
        monthly[(_month_day(row["month"]), row["account"])] += int(row["points"] or 0)
    result = []
    for first_day in period.months():
        for account in MEMBER_ACCOUNTS:
            balances[account] += monthly.get((first_day, account), 0)
        outstanding = sum(balances.values())
        result.append(
            LiabilityMonth(
                month_end=min(month_end(first_day), period.end),
                available=balances[Account.MEMBER_AVAILABLE],
                pending=balances[Account.MEMBER_PENDING],
                reserved=balances[Account.MEMBER_RESERVED],
                debt=-balances[Account.MEMBER_DEBT],
                outstanding=outstanding,
                value_eur=points_value(outstanding, programme),
            )
        )
    return result


# ----------------------------------------------------------------------------------------------
# Breakage forecast


@dataclass(frozen=True, slots=True)
class CurvePoint:
    months_to_expiry: int
    unredeemed: int
    expired: int
    expiry_share: Decimal | None
    lots: int


@dataclass(frozen=True, slots=True)
class ForecastMonth:
    expiry_month: date
    open_points: int
    expected_expiry: int | None
    expected_share: Decimal | None


@dataclass(frozen=True, slots=True)
class BreakageForecast:
    as_of: date
    has_history: bool
    resolved_lots: int
    open_points: int
    open_points_never_expiring: int
    expected_expiry: int | None
    expected_expiry_eur: Decimal | None
    expected_share: Decimal | None
    curve: list[CurvePoint]
    months: list[ForecastMonth]


def months_to_expiry(expires_on: date, day: date) -> int:
    """How many monthly checkpoints before the expiry are still ahead on ``day``: the number of
    k ≥ 0 with ``expires_on − k months`` after ``day`` (0 once the last usable day has begun)."""
    if expires_on <= day:
        return 0
    whole = (expires_on.year - day.year) * 12 + expires_on.month - day.month
    return whole + 1 if add_months(expires_on, -whole) > day else whole


def breakage_forecast(period: Period) -> BreakageForecast:
    """Expected expiry of the points still open at the end of the period, from history.

    Method (a survival curve by months to expiry): a lot is *resolved* when its last usable day is
    before the as-of day — what it finally lost to expiry is known (expired entries, plus what is
    still on it and will expire at the next run of the job). Checkpoints are the days k = 0, 1, 2…
    months before a lot's last usable day (k = 0: the start of that day). For each k, over the
    resolved lots that already existed then: share(k) = Σ points finally expired / Σ points still
    unredeemed at checkpoint k. An open lot whose next checkpoint is k is expected to lose
    ``remaining × share(k)``; when k has no history the nearest k that has some is used. Lots that
    never expire are expected to lose nothing. With no resolved lot at all no forecast is made
    (``has_history`` false, values null) rather than inventing one. All lots count (earned,
    transferred, given back) except cancelled ones; only postings up to the as-of day are read."""
    programme, tz, as_of = period.programme, period.tz, period.end
    cut = period.ends_at
    # A lot starts the day its first posting was made (its transaction's creation, not a back-dated
    # purchase time), so the lot and its first entry meet the same checkpoints.
    lots = {
        lot_id: (created_at.astimezone(tz).date(), expires_on)
        for lot_id, created_at, expires_on in PointsLot.objects.filter(
            programme=programme, earn_transaction__created_at__lt=cut
        )
        .exclude(state=PointsLot.State.CANCELLED)
        .values_list("id", "earn_transaction__created_at", "expires_on")
        .iterator(chunk_size=5000)
    }
    remaining: dict[int, int] = defaultdict(int)
    expired_posted: dict[int, int] = defaultdict(int)
    # Difference arrays over k: a posting made on day d on a resolved lot expiring on E counts
    # towards every checkpoint k < months_to_expiry(E, d), i.e. the checkpoints after day d.
    unredeemed_diff: dict[int, int] = defaultdict(int)
    entries = (
        PointsEntry.objects.filter(
            programme=programme, lot__isnull=False, account__in=LOT_ACCOUNTS, created_at__lt=cut
        )
        .values_list("lot_id", "created_at", "points", "transaction__kind")
        .iterator(chunk_size=5000)
    )
    for lot_id, created_at, points, kind in entries:
        info = lots.get(lot_id)
        if info is None:
            continue
        remaining[lot_id] += points
        if kind == TransactionKind.EXPIRE:
            expired_posted[lot_id] -= points
            continue
        expires_on = info[1]
        if expires_on is not None and expires_on < as_of:
            span = months_to_expiry(expires_on, created_at.astimezone(tz).date())
            unredeemed_diff[0] += points
            unredeemed_diff[span] -= points
    expired_diff: dict[int, int] = defaultdict(int)
    lots_diff: dict[int, int] = defaultdict(int)
    resolved = never_expiring = 0
    open_lots: list[tuple[date, int]] = []
    for lot_id, (started_on, expires_on) in lots.items():
        left = remaining.get(lot_id, 0)
        if expires_on is None:
            never_expiring += max(left, 0)
        elif expires_on < as_of:
            resolved += 1
            span = months_to_expiry(expires_on, started_on)
            final = expired_posted.get(lot_id, 0) + left
            expired_diff[0] += final
            expired_diff[span] -= final
            lots_diff[0] += 1
            lots_diff[span] -= 1
        elif left > 0:
            open_lots.append((expires_on, left))
    curve, fractions = _curve(unredeemed_diff, expired_diff, lots_diff)
    has_history = bool(fractions)
    open_by_month: dict[date, int] = defaultdict(int)
    expected_by_month: dict[date, Decimal] = defaultdict(Decimal)
    for expires_on, left in open_lots:
        month = month_start(expires_on)
        open_by_month[month] += left
        if has_history:
            next_checkpoint = max(months_to_expiry(expires_on, as_of) - 1, 0)
            expected_by_month[month] += left * _nearest(fractions, next_checkpoint)
    months = []
    for month in sorted(open_by_month):
        # Rounded half up to whole points once per month, not per lot (small lots would all round to 0).
        expected = _whole(expected_by_month[month]) if has_history else None
        months.append(
            ForecastMonth(
                expiry_month=month,
                open_points=open_by_month[month],
                expected_expiry=expected,
                expected_share=percent(expected, open_by_month[month]) if expected is not None else None,
            )
        )
    open_points = sum(open_by_month.values()) + never_expiring
    expected_total = sum(month.expected_expiry or 0 for month in months) if has_history else None
    return BreakageForecast(
        as_of=as_of,
        has_history=has_history,
        resolved_lots=resolved,
        open_points=open_points,
        open_points_never_expiring=never_expiring,
        expected_expiry=expected_total,
        expected_expiry_eur=points_value(expected_total, programme) if expected_total is not None else None,
        expected_share=percent(expected_total, open_points) if expected_total is not None else None,
        curve=curve,
        months=months,
    )


def _curve(
    unredeemed_diff: dict[int, int], expired_diff: dict[int, int], lots_diff: dict[int, int]
) -> tuple[list[CurvePoint], dict[int, Decimal]]:
    """The curve rows and the exact share (a fraction, not rounded) at each k that has history."""
    last = max([*unredeemed_diff, *expired_diff, *lots_diff], default=0)
    curve: list[CurvePoint] = []
    fractions: dict[int, Decimal] = {}
    unredeemed = expired = lot_count = 0
    for k in range(last):
        unredeemed += unredeemed_diff.get(k, 0)
        expired += expired_diff.get(k, 0)
        lot_count += lots_diff.get(k, 0)
        if unredeemed > 0:
            # A released reservation can put points back on a lot after a checkpoint: cap at 100 %.
            fractions[k] = Decimal(min(expired, unredeemed)) / Decimal(unredeemed)
        curve.append(
            CurvePoint(
                months_to_expiry=k,
                unredeemed=unredeemed,
                expired=expired,
                expiry_share=percent(min(expired, unredeemed), unredeemed) if unredeemed > 0 else None,
                lots=lot_count,
            )
        )
    return curve, fractions


def _nearest(fractions: dict[int, Decimal], k: int) -> Decimal:
    return fractions[min(fractions, key=lambda known: (abs(known - k), known))]


def _whole(points: Decimal) -> int:
    return int(points.quantize(Decimal(1), rounding=ROUND_HALF_UP))

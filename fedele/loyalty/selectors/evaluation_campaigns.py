"""Campaign uplift against the random holdout, the tier migration matrix and enrolment cohorts."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMonth
from django.utils import translation
from django.utils.translation import gettext as _

from fedele.loyalty.models import (
    Campaign,
    CampaignAssignment,
    Member,
    PointsTransaction,
    Tier,
    TierChange,
    TransactionKind,
)
from fedele.loyalty.selectors.evaluation_common import (
    CENT,
    Period,
    local_midnight,
    month_start,
    months_between,
    percent,
)
from fedele.loyalty.selectors.evaluation_ledger import ACTIVITY_KINDS
from fedele.loyalty.selectors.evaluation_stats import t_quantile, t_two_sided_p
from fedele.shared.errors import NotFound

CONFIDENCE = 0.95
UPLIFT_METRICS = ("spend", "earn_events")


# ----------------------------------------------------------------------------------------------
# Campaign uplift


@dataclass(frozen=True, slots=True)
class UpliftMetric:
    metric: str
    treatment_members: int
    holdout_members: int
    treatment_mean: Decimal | None
    holdout_mean: Decimal | None
    difference: Decimal | None
    relative_uplift: Decimal | None
    ci_low: Decimal | None
    ci_high: Decimal | None
    degrees_of_freedom: Decimal | None
    p_value: Decimal | None


@dataclass(frozen=True, slots=True)
class Uplift:
    campaign: str
    campaign_name: str
    starts_at: datetime
    ends_at: datetime
    holdout_percent: int
    metrics: list[UpliftMetric]


def campaign_for(period: Period, code: str | None) -> Campaign:
    """The programme's campaign ``code``, or its latest one when no code is given."""
    campaigns = Campaign.objects.filter(programme=period.programme)
    found = (
        campaigns.filter(code=code[:40]).first() if code else campaigns.order_by("-starts_at", "-id").first()
    )
    if found is None:
        raise NotFound(_("Campaign not found."), code="campaign_not_found")
    return found


def _q(value: Decimal | float | None, places: Decimal = CENT) -> Decimal | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return Decimal(str(value)).quantize(places, rounding=ROUND_HALF_UP)


def welch(treatment: list[Decimal], holdout: list[Decimal], metric: str) -> UpliftMetric:
    """Difference of the means (treatment − holdout) with Welch's 95 % confidence interval:
    SE = √(s₁²/n₁ + s₂²/n₂), Welch–Satterthwaite degrees of freedom, Student's t quantile.
    The means and the difference are exact (Decimal) before rounding to the cent; with fewer than
    two members in a group the interval is undefined (null); with no spread at all it is the
    difference itself."""
    n_t, n_h = len(treatment), len(holdout)
    mean_t = sum(treatment, Decimal(0)) / n_t if n_t else None
    mean_h = sum(holdout, Decimal(0)) / n_h if n_h else None
    difference = mean_t - mean_h if mean_t is not None and mean_h is not None else None
    relative = percent(difference, mean_h) if difference is not None and mean_h else None
    low = high = df = p_value = None
    if difference is not None and n_t >= 2 and n_h >= 2:
        assert mean_t is not None and mean_h is not None
        var_t = sum(((x - mean_t) ** 2 for x in treatment), Decimal(0)) / (n_t - 1)
        var_h = sum(((x - mean_h) ** 2 for x in holdout), Decimal(0)) / (n_h - 1)
        a, b = float(var_t) / n_t, float(var_h) / n_h
        standard_error = math.sqrt(a + b)
        if standard_error == 0:
            low = high = float(difference)
        else:
            df = (a + b) ** 2 / (a**2 / (n_t - 1) + b**2 / (n_h - 1))
            critical = t_quantile(0.5 + CONFIDENCE / 2, df)
            low = float(difference) - critical * standard_error
            high = float(difference) + critical * standard_error
            p_value = t_two_sided_p(float(difference) / standard_error, df)
    return UpliftMetric(
        metric=metric,
        treatment_members=n_t,
        holdout_members=n_h,
        treatment_mean=_q(mean_t),
        holdout_mean=_q(mean_h),
        difference=_q(difference),
        relative_uplift=relative,
        ci_low=_q(low),
        ci_high=_q(high),
        degrees_of_freedom=_q(df),
        p_value=_q(p_value, Decimal("0.0001")),
    )


def campaign_uplift(period: Period, *, campaign_code: str | None = None) -> Uplift:
    """Treatment against holdout (``CampaignAssignment``) during the campaign (its own dates, not
    the period's): per member, the spend (Σ ``amount_eur`` of its earn transactions) and the number
    of earn transactions; reversed earns do not count. Members without any count as 0."""
    campaign = campaign_for(period, campaign_code)
    groups = dict(CampaignAssignment.objects.filter(campaign=campaign).values_list("member_id", "group"))
    per_member = {
        row["member_id"]: (row["spend"] or Decimal(0), row["events"])
        for row in PointsTransaction.objects.filter(
            programme=period.programme,
            kind=TransactionKind.EARN,
            member_id__in=list(groups),
            occurred_at__gte=campaign.starts_at,
            occurred_at__lt=campaign.ends_at,
            reversed_by__isnull=True,
        )
        .values("member_id")
        .annotate(spend=Sum("amount_eur"), events=Count("id"))
        .order_by()
    }
    values: dict[str, dict[str, list[Decimal]]] = {
        group: {metric: [] for metric in UPLIFT_METRICS} for group in CampaignAssignment.Group.values
    }
    for member_id, group in groups.items():
        spend, events = per_member.get(member_id, (Decimal(0), 0))
        values[group]["spend"].append(Decimal(spend))
        values[group]["earn_events"].append(Decimal(events))
    treatment, holdout = CampaignAssignment.Group.TREATMENT, CampaignAssignment.Group.HOLDOUT
    language = translation.get_language() or "it"
    return Uplift(
        campaign=campaign.code,
        campaign_name=campaign.name_it if language.startswith("it") else campaign.name_en,
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        holdout_percent=campaign.holdout_percent,
        metrics=[
            welch(values[treatment][metric], values[holdout][metric], metric) for metric in UPLIFT_METRICS
        ],
    )


# ----------------------------------------------------------------------------------------------
# Tier migration matrix


@dataclass(frozen=True, slots=True)
class TierRef:
    code: str
    name: str
    rank: int


@dataclass(frozen=True, slots=True)
class MigrationRow:
    from_tier: str
    counts: dict[str, int]
    total: int


@dataclass(frozen=True, slots=True)
class TierMigration:
    start: date
    end: date
    tiers: list[TierRef]
    rows: list[MigrationRow]
    total: int


NO_TIER = ""


def tier_migration(period: Period) -> TierMigration:
    """Tier changes recorded in the period (``TierChange``: enrolments, upgrades, downgrades,
    retentions at review, manual changes), counted by from-tier × to-tier. The from-tier ``""``
    is "no tier yet" (an enrolment). Rows and columns follow the tiers' rank."""
    language = translation.get_language() or "it"
    tiers = list(Tier.objects.filter(programme=period.programme).order_by("rank"))
    code_of = {tier.pk: tier.code for tier in tiers}
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = (
        TierChange.objects.filter(period.within("changed_at"), member__programme=period.programme)
        .values("from_tier_id", "to_tier_id")
        .annotate(count=Count("id"))
        .order_by()
    )
    for row in rows:
        source = code_of.get(row["from_tier_id"], NO_TIER)
        target = code_of.get(row["to_tier_id"], NO_TIER)
        counts[source][target] += row["count"]
    columns = [tier.code for tier in tiers]
    if any(NO_TIER in targets for targets in counts.values()):
        columns.append(NO_TIER)
    matrix = [
        MigrationRow(
            from_tier=source,
            counts={target: counts[source].get(target, 0) for target in columns},
            total=sum(counts[source].values()),
        )
        for source in [NO_TIER, *(tier.code for tier in tiers)]
    ]
    return TierMigration(
        start=period.start,
        end=period.end,
        tiers=[TierRef(code=tier.code, name=tier.name(language[:2]), rank=tier.rank) for tier in tiers],
        rows=matrix,
        total=sum(row.total for row in matrix),
    )


# ----------------------------------------------------------------------------------------------
# Enrolment cohorts


@dataclass(frozen=True, slots=True)
class Cohort:
    month: date
    members: int
    active: list[int]
    share: list[Decimal | None]


def cohorts(period: Period) -> list[Cohort]:
    """Members enrolled in each month of the period (programme time zone) and, for each month since
    (0 = the enrolment month, up to the period's last month), how many of them were active — an earn
    or a redemption that month — and that share of the cohort."""
    tz = period.tz
    first_month = month_start(period.start)
    since = local_midnight(first_month, tz)
    enrolled = Member.objects.filter(
        programme=period.programme, enrolled_at__gte=since, enrolled_at__lt=period.ends_at
    )
    cohort_of: dict[int, date] = {
        member_id: month_start(enrolled_at.astimezone(tz).date())
        for member_id, enrolled_at in enrolled.values_list("id", "enrolled_at")
    }
    sizes: dict[date, int] = defaultdict(int)
    for month in cohort_of.values():
        sizes[month] += 1
    active: dict[tuple[date, int], int] = defaultdict(int)
    activity = (
        PointsTransaction.objects.filter(
            Q(member__in=enrolled),
            programme=period.programme,
            kind__in=ACTIVITY_KINDS,
            occurred_at__gte=since,
            occurred_at__lt=period.ends_at,
        )
        .annotate(month=TruncMonth("occurred_at", tzinfo=tz))
        .values_list("member_id", "month")
        .order_by()
        .distinct()
    )
    for member_id, month in activity:
        cohort = cohort_of[member_id]
        active_month = month.date() if isinstance(month, datetime) else month
        offset = months_between(cohort, active_month)
        if offset >= 0:
            active[(cohort, offset)] += 1
    result = []
    for month in period.months():
        width = months_between(month, period.end) + 1
        counts = [active.get((month, offset), 0) for offset in range(width)]
        result.append(
            Cohort(
                month=month,
                members=sizes.get(month, 0),
                active=counts,
                share=[percent(count, sizes.get(month, 0)) for count in counts],
            )
        )
    return result

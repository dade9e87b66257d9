"""Loyalty API: programme evaluation reports (``loyalty.view_loyalty_reports``, token scope ``read``).

``GET /api/v1/loyalty/programmes/{code}/evaluation/<report>?from=YYYY-MM-DD&to=YYYY-MM-DD`` — the
period is in the programme's time zone, both days included (default: the last twelve months);
``format=csv`` returns the report's table as a CSV file with the same numbers. Amounts are decimal
strings in EUR, rates are percentages with two decimals, null when undefined.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema

from fedele.accounts.facade import actor_for
from fedele.loyalty.selectors import evaluation
from fedele.loyalty.selectors.evaluation_common import DEFAULT_MARGIN_PERCENT, Period, Table
from fedele.shared.api import ERROR_RESPONSES, require_scope

router = Router(tags=["loyalty: evaluation"])


class PeriodQuery(Schema):
    start: date | None = Field(None, alias="from", description="First day, YYYY-MM-DD (programme time zone).")
    end: date | None = Field(None, alias="to", description="Last day, YYYY-MM-DD (default: today).")
    format: Literal["json", "csv"] = "json"


class UpliftQuery(PeriodQuery):
    campaign: str | None = Field(None, max_length=40, description="Campaign code (default: the latest).")


class RoiQuery(PeriodQuery):
    margin_percent: Decimal = Field(DEFAULT_MARGIN_PERCENT, ge=0, le=100, decimal_places=2)
    reward_costs: Decimal = Field(Decimal("0"), ge=0, lt=Decimal("1000000000"), decimal_places=2)


# ----------------------------------------------------------------------------------------------
# Schemas


class SummaryOut(Schema):
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


class GroupOut(Schema):
    group: str
    customers: int
    spend_total: Decimal
    spend_per_customer: Decimal | None
    purchases: int
    purchase_frequency: Decimal | None
    active_first_half: int
    retained: int
    retention_rate: Decimal | None
    subscribers: int
    churned: int
    churn_rate: Decimal | None


class MembersOut(Schema):
    start: date
    end: date
    first_half: tuple[date, date]
    second_half: tuple[date, date]
    groups: list[GroupOut]


class BreakageCohortOut(Schema):
    month: date
    issued: int
    used: int
    expired: int
    open: int
    breakage: Decimal | None


class BreakageOut(Schema):
    as_of: date
    issued: int
    expired: int
    breakage: Decimal | None
    cohorts: list[BreakageCohortOut]


class CurvePointOut(Schema):
    months_to_expiry: int
    unredeemed: int
    expired: int
    expiry_share: Decimal | None
    lots: int


class ForecastMonthOut(Schema):
    expiry_month: date
    open_points: int
    expected_expiry: int | None
    expected_share: Decimal | None


class ForecastOut(Schema):
    as_of: date
    has_history: bool
    resolved_lots: int
    open_points: int
    open_points_never_expiring: int
    expected_expiry: int | None
    expected_expiry_eur: Decimal | None
    expected_share: Decimal | None
    curve: list[CurvePointOut]
    months: list[ForecastMonthOut]


class LiabilityMonthOut(Schema):
    month_end: date
    available: int
    pending: int
    reserved: int
    debt: int
    outstanding: int
    value_eur: Decimal


class LiabilityOut(Schema):
    programme: str
    point_value: Decimal
    months: list[LiabilityMonthOut]


class UpliftMetricOut(Schema):
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


class UpliftOut(Schema):
    campaign: str
    campaign_name: str
    starts_at: datetime
    ends_at: datetime
    holdout_percent: int
    metrics: list[UpliftMetricOut]


class TierRefOut(Schema):
    code: str
    name: str
    rank: int


class MigrationRowOut(Schema):
    from_tier: str
    counts: dict[str, int]
    total: int


class TierMigrationOut(Schema):
    start: date
    end: date
    tiers: list[TierRefOut]
    rows: list[MigrationRowOut]
    total: int


class CohortOut(Schema):
    month: date
    members: int
    active: list[int]
    share: list[Decimal | None]


class CohortsOut(Schema):
    start: date
    end: date
    cohorts: list[CohortOut]


class StratumOut(Schema):
    baseline_spend_band: str
    subscribed_at_baseline_end: bool
    members: int
    non_members: int
    member_mean_spend: Decimal | None
    non_member_mean_spend: Decimal | None
    incremental_spend: Decimal | None


class RoiOut(Schema):
    start: date
    end: date
    baseline_start: date
    baseline_end: date
    margin_percent: Decimal
    matched_members: int
    unmatched_members: int
    incremental_spend: Decimal
    incremental_margin: Decimal
    points_redeemed: int
    points_cost: Decimal
    reward_costs: Decimal
    total_cost: Decimal
    net_benefit: Decimal
    roi_percent: Decimal | None
    strata: list[StratumOut]


# ----------------------------------------------------------------------------------------------
# Helpers


def _period(request: HttpRequest, code: str, query: PeriodQuery) -> Period:
    require_scope(request, "read")
    return evaluation.evaluation_period(
        actor=actor_for(request.user), programme_code=code, start=query.start, end=query.end
    )


def csv_response(report_table: Table, period: Period) -> HttpResponse:
    response = HttpResponse(report_table.as_csv(), content_type="text/csv; charset=utf-8")
    name = (
        f"{period.programme.code}-{report_table.name}-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _answer(name: str, period: Period, query: PeriodQuery, options: evaluation.Options | None = None) -> Any:
    result = evaluation.report(name, period, options)
    if query.format == "csv":
        return csv_response(evaluation.report_table(name, result), period)
    return result


def _responses(schema: type[Schema]) -> dict[int, Any]:
    return {200: schema, **ERROR_RESPONSES}


PATH = "/programmes/{code}/evaluation"


# ----------------------------------------------------------------------------------------------
# Endpoints


@router.get(
    f"{PATH}/summary", response=_responses(SummaryOut), summary="Active rate, earn/burn, redemption rate"
)
def evaluation_summary(request: HttpRequest, code: str, query: Query[PeriodQuery]) -> Any:
    return _answer("summary", _period(request, code, query), query)


@router.get(f"{PATH}/members", response=_responses(MembersOut), summary="Members against non-members")
def evaluation_members(request: HttpRequest, code: str, query: Query[PeriodQuery]) -> Any:
    return _answer("members", _period(request, code, query), query)


@router.get(f"{PATH}/breakage", response=_responses(BreakageOut), summary="Breakage to date and by cohort")
def evaluation_breakage(request: HttpRequest, code: str, query: Query[PeriodQuery]) -> Any:
    return _answer("breakage", _period(request, code, query), query)


@router.get(f"{PATH}/breakage-forecast", response=_responses(ForecastOut), summary="Breakage forecast")
def evaluation_breakage_forecast(request: HttpRequest, code: str, query: Query[PeriodQuery]) -> Any:
    return _answer("breakage-forecast", _period(request, code, query), query)


@router.get(f"{PATH}/liability", response=_responses(LiabilityOut), summary="Outstanding liability per month")
def evaluation_liability(request: HttpRequest, code: str, query: Query[PeriodQuery]) -> Any:
    period = _period(request, code, query)
    answer = _answer("liability", period, query)
    if isinstance(answer, HttpResponse):
        return answer
    return {"programme": period.programme.code, "point_value": period.programme.point_value, "months": answer}


@router.get(f"{PATH}/uplift", response=_responses(UpliftOut), summary="Campaign uplift against the holdout")
def evaluation_uplift(request: HttpRequest, code: str, query: Query[UpliftQuery]) -> Any:
    options = evaluation.Options(campaign=query.campaign)
    return _answer("uplift", _period(request, code, query), query, options)


@router.get(f"{PATH}/tier-migration", response=_responses(TierMigrationOut), summary="Tier migration matrix")
def evaluation_tier_migration(request: HttpRequest, code: str, query: Query[PeriodQuery]) -> Any:
    return _answer("tier-migration", _period(request, code, query), query)


@router.get(f"{PATH}/cohorts", response=_responses(CohortsOut), summary="Enrolment cohorts still active")
def evaluation_cohorts(request: HttpRequest, code: str, query: Query[PeriodQuery]) -> Any:
    period = _period(request, code, query)
    answer = _answer("cohorts", period, query)
    if isinstance(answer, HttpResponse):
        return answer
    return {"start": period.start, "end": period.end, "cohorts": answer}


@router.get(f"{PATH}/roi", response=_responses(RoiOut), summary="Programme ROI")
def evaluation_roi(request: HttpRequest, code: str, query: Query[RoiQuery]) -> Any:
    options = evaluation.Options(margin_percent=query.margin_percent, reward_costs=query.reward_costs)
    return _answer("roi", _period(request, code, query), query, options)

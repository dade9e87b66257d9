"""Programme evaluation: one entry point per report, and the table (page and CSV) of each.

Every report takes a ``Period`` (programme, start, end — programme time zone, both days included)
and returns a frozen dataclass the API serialises as JSON; ``report_table`` turns the same result
into the rows of the page table and the CSV file, so the CSV always carries the JSON's numbers.
Reports: ``summary`` (active rate, earn/burn, redemption rate), ``members`` (members against
non-members), ``breakage`` (to date and by cohort), ``breakage-forecast``, ``liability``,
``uplift`` (a campaign against its holdout), ``tier-migration``, ``cohorts`` and ``roi``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from fedele.accounts.contracts import Actor
from fedele.loyalty.selectors.evaluation_campaigns import (
    NO_TIER,
    Cohort,
    TierMigration,
    Uplift,
    campaign_uplift,
    cohorts,
    tier_migration,
)
from fedele.loyalty.selectors.evaluation_common import (
    DEFAULT_MARGIN_PERCENT,
    Period,
    Table,
    period_for,
    programme_for_reports,
    table,
)
from fedele.loyalty.selectors.evaluation_ledger import (
    Breakage,
    BreakageForecast,
    LiabilityMonth,
    Summary,
    breakage,
    breakage_forecast,
    liability,
    summary,
)
from fedele.loyalty.selectors.evaluation_members import (
    MembersComparison,
    Roi,
    members_comparison,
    programme_roi,
)
from fedele.shared.errors import NotFound, ValidationFailed

REPORTS = (
    "summary",
    "members",
    "breakage",
    "breakage-forecast",
    "liability",
    "uplift",
    "tier-migration",
    "cohorts",
    "roi",
)
MAX_REWARD_COSTS = Decimal("1000000000")


@dataclass(frozen=True, slots=True)
class Options:
    """Report-specific inputs: the campaign of ``uplift``; the margin and reward costs of ``roi``."""

    campaign: str | None = None
    margin_percent: Decimal = DEFAULT_MARGIN_PERCENT
    reward_costs: Decimal = Decimal("0.00")

    def __post_init__(self) -> None:
        errors: dict[str, str] = {}
        if not Decimal(0) <= self.margin_percent <= Decimal(100):
            errors["margin_percent"] = str(_("Enter a margin between 0 and 100 %."))
        if not Decimal(0) <= self.reward_costs < MAX_REWARD_COSTS:
            errors["reward_costs"] = str(_("Enter an amount of zero or more."))
        if errors:
            raise ValidationFailed(
                str(_("Some parameters are not valid.")), code="invalid_parameters", fields=errors
            )


def evaluation_period(
    *, actor: Actor | None, programme_code: str, start: date | None, end: date | None
) -> Period:
    """The programme (the actor needs ``loyalty.view_loyalty_reports``) and the validated period."""
    programme = programme_for_reports(actor=actor, code=programme_code)
    return period_for(programme, start, end)


def report(name: str, period: Period, options: Options | None = None) -> Any:
    """The result dataclass of report ``name``."""
    options = options or Options()
    if name == "summary":
        return summary(period)
    if name == "members":
        return members_comparison(period)
    if name == "breakage":
        return breakage(period)
    if name == "breakage-forecast":
        return breakage_forecast(period)
    if name == "liability":
        return liability(period)
    if name == "uplift":
        return campaign_uplift(period, campaign_code=options.campaign)
    if name == "tier-migration":
        return tier_migration(period)
    if name == "cohorts":
        return cohorts(period)
    if name == "roi":
        return programme_roi(period, margin_percent=options.margin_percent, reward_costs=options.reward_costs)
    raise NotFound(str(_("Unknown report.")), code="report_not_found")


# ----------------------------------------------------------------------------------------------
# Tables


def _summary_table(result: Summary) -> Table:
    columns = (
        ("as_of", _("As of")),
        ("active_members", _("Active members")),
        ("active_last_90_days", _("Active in the last 90 days")),
        ("active_rate", _("Active rate %")),
        ("points_issued", _("Points issued")),
        ("points_redeemed", _("Points redeemed")),
        ("points_expired", _("Points expired")),
        ("earn_burn_ratio", _("Earn/burn ratio")),
        ("members", pgettext_lazy("loyalty programme", "Members")),
        ("members_redeemed", _("Members who redeemed")),
        ("redemption_rate", _("Redemption rate %")),
    )
    return table("summary", columns, [{key: getattr(result, key) for key, _label in columns}])


def _members_table(result: MembersComparison) -> Table:
    labels = {"members": pgettext_lazy("loyalty programme", "Members"), "non_members": _("Non-members")}
    columns = (
        ("group", _("Group")),
        ("customers", _("Customers")),
        ("spend_total", _("Spend (EUR, net)")),
        ("spend_per_customer", _("Spend per customer (EUR)")),
        ("purchases", _("Invoices paid")),
        ("purchase_frequency", _("Purchases per customer")),
        ("active_first_half", _("Paid in the first half")),
        ("retained", _("Paid in both halves")),
        ("retention_rate", _("Retention %")),
        ("subscribers", _("Subscribers")),
        ("churned", _("Churned")),
        ("churn_rate", _("Churn rate %")),
    )
    rows = []
    for group in result.groups:
        row: dict[str, object] = {key: getattr(group, key) for key, _label in columns}
        row["group_label"] = labels.get(group.group, group.group)
        rows.append(row)
    return table("members", columns, rows)


def _breakage_table(result: Breakage) -> Table:
    columns = (
        ("month", _("Earned in")),
        ("issued", _("Points issued")),
        ("used", _("Used")),
        ("expired", _("Expired")),
        ("open", _("Still open")),
        ("breakage", _("Breakage %")),
    )
    rows = [{key: getattr(cohort, key) for key, _label in columns} for cohort in result.cohorts]
    rows.append(
        {
            "month": None,
            "issued": result.issued,
            "used": None,
            "expired": result.expired,
            "open": None,
            "breakage": result.breakage,
            "is_total": True,
        }
    )
    return table("breakage", columns, rows)


def _forecast_table(result: BreakageForecast) -> Table:
    columns = (
        ("expiry_month", _("Expiring in")),
        ("open_points", _("Open points")),
        ("expected_expiry", _("Expected to expire")),
        ("expected_share", _("Expected share %")),
    )
    rows = [{key: getattr(month, key) for key, _label in columns} for month in result.months]
    return table("breakage-forecast", columns, rows)


def _curve_table(result: BreakageForecast) -> Table:
    columns = (
        ("months_to_expiry", _("Months to expiry")),
        ("lots", _("Resolved lots")),
        ("unredeemed", _("Points unredeemed")),
        ("expired", _("Of which expired")),
        ("expiry_share", _("Expiry share %")),
    )
    rows = [{key: getattr(point, key) for key, _label in columns} for point in result.curve]
    return table("breakage-curve", columns, rows)


def _liability_table(result: list[LiabilityMonth]) -> Table:
    columns = (
        ("month_end", _("Month end")),
        ("available", _("Available")),
        ("pending", _("Pending")),
        ("reserved", _("Reserved")),
        ("debt", _("Owed by members")),
        ("outstanding", _("Outstanding points")),
        ("value_eur", _("Liability (EUR)")),
    )
    return table(
        "liability", columns, [{key: getattr(row, key) for key, _label in columns} for row in result]
    )


def _uplift_table(result: Uplift) -> Table:
    columns = (
        ("metric", _("Metric")),
        ("treatment_members", _("Treatment members")),
        ("holdout_members", _("Holdout members")),
        ("treatment_mean", _("Treatment mean")),
        ("holdout_mean", _("Holdout mean")),
        ("difference", _("Difference")),
        ("relative_uplift", _("Uplift %")),
        ("ci_low", _("95% CI low")),
        ("ci_high", _("95% CI high")),
        ("degrees_of_freedom", _("Degrees of freedom")),
        ("p_value", _("p-value")),
    )
    return table(
        "uplift", columns, [{key: getattr(row, key) for key, _label in columns} for row in result.metrics]
    )


def _migration_table(result: TierMigration) -> Table:
    none_label = _("No tier")
    names = {tier.code: tier.name for tier in result.tiers}
    targets = list(result.rows[0].counts) if result.rows else []
    columns: list[tuple[str, Any]] = [("from_tier", _("From \\ to"))]
    columns += [(f"to:{code or 'none'}", names.get(code, none_label)) for code in targets]
    columns.append(("total", _("Total")))
    rows = []
    for row in result.rows:
        cells: dict[str, object] = {"from_tier": row.from_tier or "none", "total": row.total}
        cells["from_tier_label"] = (
            names.get(row.from_tier, none_label) if row.from_tier != NO_TIER else none_label
        )
        for code in targets:
            cells[f"to:{code or 'none'}"] = row.counts[code]
        rows.append(cells)
    return table("tier-migration", columns, rows)


def _cohorts_table(result: list[Cohort]) -> Table:
    width = max((len(cohort.share) for cohort in result), default=0)
    columns: list[tuple[str, Any]] = [
        ("month", _("Enrolled in")),
        ("members", pgettext_lazy("loyalty programme", "Members")),
    ]
    columns += [(f"m{offset}", f"+{offset}") for offset in range(width)]
    rows = []
    for cohort in result:
        cells: dict[str, object] = {"month": cohort.month, "members": cohort.members}
        for offset, share in enumerate(cohort.share):
            cells[f"m{offset}"] = share
        rows.append(cells)
    return table("cohorts", columns, rows)


def _roi_table(result: Roi) -> Table:
    columns = (
        ("start", _("From")),
        ("end", _("To")),
        ("margin_percent", _("Margin %")),
        ("matched_members", _("Matched members")),
        ("unmatched_members", _("Unmatched members")),
        ("incremental_spend", _("Incremental spend (EUR)")),
        ("incremental_margin", _("Incremental margin (EUR)")),
        ("points_redeemed", _("Points redeemed")),
        ("points_cost", _("Cost of points (EUR)")),
        ("reward_costs", _("Reward costs (EUR)")),
        ("total_cost", _("Total cost (EUR)")),
        ("net_benefit", _("Net benefit (EUR)")),
        ("roi_percent", _("ROI %")),
    )
    return table("roi", columns, [{key: getattr(result, key) for key, _label in columns}])


def _strata_table(result: Roi) -> Table:
    columns = (
        ("baseline_spend_band", _("Baseline spend band")),
        ("subscribed_at_baseline_end", _("Subscribed at baseline end")),
        ("members", pgettext_lazy("loyalty programme", "Members")),
        ("non_members", _("Non-members")),
        ("member_mean_spend", _("Members' mean spend (EUR)")),
        ("non_member_mean_spend", _("Non-members' mean spend (EUR)")),
        ("incremental_spend", _("Incremental spend (EUR)")),
    )
    return table(
        "roi-strata", columns, [{key: getattr(row, key) for key, _label in columns} for row in result.strata]
    )


TABLES: dict[str, Callable[[Any], Table]] = {
    "summary": _summary_table,
    "members": _members_table,
    "breakage": _breakage_table,
    "breakage-forecast": _forecast_table,
    "liability": _liability_table,
    "uplift": _uplift_table,
    "tier-migration": _migration_table,
    "cohorts": _cohorts_table,
    "roi": _roi_table,
}
EXTRA_TABLES: dict[str, Callable[[Any], Table]] = {
    "breakage-forecast": _curve_table,
    "roi": _strata_table,
}


TABLE_REPORT = {
    **{name: name for name in TABLES},
    "breakage-curve": "breakage-forecast",
    "roi-strata": "roi",
}
"""The report each downloadable table comes from."""


def report_table(name: str, result: Any) -> Table:
    """The main table of a report (the API's CSV)."""
    return TABLES[name](result)


def table_of(table_name: str, result: Any) -> Table:
    """A table by its name (``breakage-curve`` is the forecast's second table...)."""
    for candidate in report_tables(TABLE_REPORT[table_name], result):
        if candidate.name == table_name:
            return candidate
    raise NotFound(str(_("Unknown report.")), code="report_not_found")


def report_tables(name: str, result: Any) -> list[Table]:
    """Every table the page shows for a report (the main one first)."""
    tables = [TABLES[name](result)]
    if name in EXTRA_TABLES:
        tables.append(EXTRA_TABLES[name](result))
    return tables

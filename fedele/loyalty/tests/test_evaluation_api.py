"""Evaluation API: JSON and CSV with the same numbers, permissions, scopes and the error envelope."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.test import Client

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.loyalty.models import Campaign, CampaignAssignment, Programme
from fedele.loyalty.tests.evaluation_support import earn, expire, member_at, redeem, rome
from fedele.loyalty.tests.factories import ProgrammeFactory, standard_tiers

pytestmark = pytest.mark.django_db
BASE = "/api/v1/loyalty/programmes/club-api/evaluation"
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


@pytest.fixture
def programme() -> Programme:
    created: Programme = ProgrammeFactory(code="club-api", expiry_months=2)
    standard_tiers(created)
    alice = member_at(created, rome(2026, 1, 5))
    bruno = member_at(created, rome(2026, 1, 6))
    earn(alice, 600, rome(2026, 1, 10), amount="60.00")
    earn(bruno, 400, rome(2026, 1, 20), amount="40.00")
    redeem(alice, 550, rome(2026, 2, 1))
    redeem(bruno, 300, rome(2026, 2, 15))
    expire(created, date(2026, 3, 25))
    campaign = Campaign.objects.create(
        programme=created,
        code="winter",
        name_it="Inverno",
        name_en="Winter",
        starts_at=rome(2026, 1, 1, 0),
        ends_at=rome(2026, 2, 1, 0),
    )
    CampaignAssignment.objects.create(
        campaign=campaign, member=alice, group="treatment", assigned_at=rome(2026, 1, 1)
    )
    CampaignAssignment.objects.create(
        campaign=campaign, member=bruno, group="holdout", assigned_at=rome(2026, 1, 1)
    )
    return created


@pytest.fixture
def analyst() -> dict[str, str]:
    return auth_header(user_with_roles("analyst"), scopes=("read",))


def _csv(response) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    return list(csv.DictReader(io.StringIO(response.content.decode())))


@pytest.mark.parametrize("report", REPORTS)
def test_every_report_answers_json_and_csv(
    client: Client, programme: Programme, analyst: dict[str, str], report: str
) -> None:
    response = client.get(f"{BASE}/{report}", {"from": "2026-01-01", "to": "2026-03-31"}, **analyst)
    assert response.status_code == 200, response.content
    as_csv = client.get(
        f"{BASE}/{report}", {"from": "2026-01-01", "to": "2026-03-31", "format": "csv"}, **analyst
    )
    assert as_csv.status_code == 200
    assert as_csv["Content-Type"].startswith("text/csv")
    assert f'filename="club-api-{report}-2026-01-01-2026-03-31.csv"' in as_csv["Content-Disposition"]


def test_breakage_json_and_csv_carry_the_same_numbers(
    client: Client, programme: Programme, analyst: dict[str, str]
) -> None:
    query = {"from": "2026-01-01", "to": "2026-03-31"}
    body = client.get(f"{BASE}/breakage", query, **analyst).json()
    assert (body["issued"], body["expired"], body["breakage"]) == (1000, 150, "15.00")
    assert body["cohorts"][0] == {
        "month": "2026-01-01",
        "issued": 1000,
        "used": 850,
        "expired": 150,
        "open": 0,
        "breakage": "15.00",
    }
    rows = _csv(client.get(f"{BASE}/breakage", {**query, "format": "csv"}, **analyst))
    assert rows[0] == {
        "month": "2026-01-01",
        "issued": "1000",
        "used": "850",
        "expired": "150",
        "open": "0",
        "breakage": "15.00",
    }
    assert rows[-1] == {
        "month": "",
        "issued": "1000",
        "used": "",
        "expired": "150",
        "open": "",
        "breakage": "15.00",
    }


def test_liability_json_and_csv_month_ends(
    client: Client, programme: Programme, analyst: dict[str, str]
) -> None:
    query = {"from": "2026-01-01", "to": "2026-03-31"}
    body = client.get(f"{BASE}/liability", query, **analyst).json()
    assert body["programme"] == "club-api"
    assert [(m["month_end"], m["outstanding"], m["value_eur"]) for m in body["months"]] == [
        ("2026-01-31", 1000, "10.00"),
        ("2026-02-28", 150, "1.50"),
        ("2026-03-31", 0, "0.00"),
    ]
    rows = _csv(client.get(f"{BASE}/liability", {**query, "format": "csv"}, **analyst))
    assert [(r["month_end"], r["outstanding"], r["value_eur"]) for r in rows] == [
        (m["month_end"], str(m["outstanding"]), m["value_eur"]) for m in body["months"]
    ]


def test_summary_uplift_and_roi_json_match_csv(
    client: Client, programme: Programme, analyst: dict[str, str]
) -> None:
    query = {"from": "2026-01-01", "to": "2026-03-31"}
    summary = client.get(f"{BASE}/summary", query, **analyst).json()
    (summary_row,) = _csv(client.get(f"{BASE}/summary", {**query, "format": "csv"}, **analyst))
    assert summary["earn_burn_ratio"] == summary_row["earn_burn_ratio"] == "1.18"
    assert summary["redemption_rate"] == summary_row["redemption_rate"] == "100.00"
    uplift = client.get(f"{BASE}/uplift", {**query, "campaign": "winter"}, **analyst).json()
    spend = uplift["metrics"][0]
    assert (spend["treatment_mean"], spend["holdout_mean"], spend["difference"], spend["ci_low"]) == (
        "60.00",
        "40.00",
        "20.00",
        None,
    )
    uplift_rows = _csv(client.get(f"{BASE}/uplift", {**query, "format": "csv"}, **analyst))
    assert uplift_rows[0]["difference"] == "20.00" and uplift_rows[0]["ci_low"] == ""
    roi = client.get(
        f"{BASE}/roi", {**query, "margin_percent": "25", "reward_costs": "1.50"}, **analyst
    ).json()
    assert (roi["margin_percent"], roi["points_redeemed"], roi["points_cost"], roi["reward_costs"]) == (
        "25.00",
        850,
        "8.50",
        "1.50",
    )
    assert roi["total_cost"] == "10.00"


def test_tier_migration_and_cohorts_json(
    client: Client, programme: Programme, analyst: dict[str, str]
) -> None:
    from fedele.loyalty.services.members import member_enrol

    with time_machine.travel(rome(2026, 2, 3), tick=False):
        member_enrol(actor=None, programme=programme, customer_public_id=str(CustomerFactory().public_id))
    matrix = client.get(
        f"{BASE}/tier-migration", {"from": "2026-02-01", "to": "2026-02-28"}, **analyst
    ).json()
    assert matrix["total"] == 1
    assert matrix["rows"][0] == {"from_tier": "", "counts": {"bronze": 1, "silver": 0, "gold": 0}, "total": 1}
    cohorts = client.get(f"{BASE}/cohorts", {"from": "2026-01-01", "to": "2026-02-28"}, **analyst).json()
    assert [(c["month"], c["members"], c["active"]) for c in cohorts["cohorts"]] == [
        ("2026-01-01", 2, [2, 2]),
        ("2026-02-01", 1, [0]),
    ]


def test_errors_use_the_envelope(client: Client, programme: Programme, analyst: dict[str, str]) -> None:
    agent = auth_header(user_with_roles("agent"))
    refused = client.get(f"{BASE}/summary", **agent)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    missing = client.get("/api/v1/loyalty/programmes/nope/evaluation/summary", **analyst)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "programme_not_found")
    inverted = client.get(f"{BASE}/summary", {"from": "2026-03-01", "to": "2026-02-01"}, **analyst)
    assert inverted.status_code == 422
    assert inverted.json() == {
        "error": {
            "code": "invalid_period",
            "message": "The period is not valid.",
            "fields": {"to": ["The end must be on or after the start."]},
        }
    }
    bad_date = client.get(f"{BASE}/summary", {"from": "2026-13-01"}, **analyst)
    assert (bad_date.status_code, bad_date.json()["error"]["code"]) == (422, "validation_error")
    bad_margin = client.get(f"{BASE}/roi", {"margin_percent": "101"}, **analyst)
    assert (bad_margin.status_code, list(bad_margin.json()["error"]["fields"])) == (422, ["margin_percent"])
    no_campaign = client.get(f"{BASE}/uplift", {"campaign": "summer"}, **analyst)
    assert (no_campaign.status_code, no_campaign.json()["error"]["code"]) == (404, "campaign_not_found")
    assert client.get(f"{BASE}/summary").status_code == 401
    no_scope = client.get(f"{BASE}/summary", **auth_header(user_with_roles("analyst"), scopes=("write",)))
    assert (no_scope.status_code, no_scope.json()["error"]["code"]) == (403, "insufficient_scope")
    assert Decimal(client.get(f"{BASE}/summary", **analyst).json()["redemption_rate"]) == Decimal("100.00")

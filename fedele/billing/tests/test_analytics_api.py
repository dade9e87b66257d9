"""Revenue analytics API: permissions, parameters, exact figures, CSV, bounded query counts."""

from __future__ import annotations

from datetime import date

import pytest
import time_machine
from django.test import Client

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.billing.tests import analytics_helpers as h

pytestmark = pytest.mark.django_db
BASE = "/api/v1/billing/analytics"


@pytest.fixture
def analyst() -> dict[str, str]:
    return auth_header(user_with_roles("analyst"), scopes=("read",))


@pytest.fixture
def history() -> None:
    first, second = h.account("Anna"), h.account("Bruno")
    h.mrr_history(first, [(date(2026, 1, 10), "100.00"), (date(2026, 2, 10), "130.00")])
    h.mrr_history(second, [(date(2026, 1, 20), "50.00"), (date(2026, 3, 1), "0")])
    h.invoice(
        first,
        issued=date(2026, 1, 10),
        lines=[("100.00", date(2026, 1, 10), date(2026, 2, 10))],
        due=date(2026, 2, 9),
    )


def test_mrr_json(client: Client, analyst: dict[str, str], history: None) -> None:
    response = client.get(f"{BASE}/mrr", {"from": "2026-01", "to": "2026-03"}, **analyst)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["from"], body["to"], body["currency"]) == ("2026-01-01", "2026-03-01", "EUR")
    assert [(m["month"], m["new"], m["expansion"], m["churn"], m["closing_mrr"]) for m in body["months"]] == [
        ("2026-01-01", "150.00", "0.00", "0.00", "150.00"),
        ("2026-02-01", "0.00", "30.00", "0.00", "180.00"),
        ("2026-03-01", "0.00", "0.00", "-50.00", "130.00"),
    ]
    march = body["months"][2]
    assert (march["arr"], march["arpa"], march["logo_churn_rate"], march["net_revenue_retention"]) == (
        "1560.00",
        "130.00",
        "50.00",
        "72.22",
    )
    assert body["months"][0]["net_revenue_retention"] is None


def test_mrr_csv(client: Client, analyst: dict[str, str], history: None) -> None:
    response = client.get(f"{BASE}/mrr", {"from": "2026-02-14", "to": "2026-03", "format": "csv"}, **analyst)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="mrr-EUR-2026-02-2026-03.csv"'
    lines = response.content.decode().splitlines()
    assert lines[0].startswith(
        "Month,Opening MRR,New,Expansion,Contraction,Churn,Reactivation,Closing MRR,ARR"
    )
    assert lines[1].startswith("2026-02-01,150.00,0.00,30.00,0.00,0.00,0.00,180.00,2160.00,2,")
    assert len(lines) == 3


@time_machine.travel("2026-03-15 10:00 +01:00", tick=False)
def test_default_range_is_the_last_twelve_months(
    client: Client, analyst: dict[str, str], history: None
) -> None:
    body = client.get(f"{BASE}/mrr", **analyst).json()
    assert (body["from"], body["to"], len(body["months"])) == ("2025-04-01", "2026-03-01", 12)


def test_cohorts_deferred_usage_and_payments(client: Client, analyst: dict[str, str], history: None) -> None:
    cohorts = client.get(f"{BASE}/cohorts", {"from": "2026-01", "to": "2026-03"}, **analyst).json()
    assert cohorts["cohorts"] == [
        {
            "cohort": "2026-01-01",
            "customers": 2,
            "starting_mrr": "150.00",
            "customers_retained": [2, 2, 1],
            "mrr_retained": ["150.00", "180.00", "130.00"],
            "customer_retention": ["100.00", "100.00", "50.00"],
            "mrr_retention": ["100.00", "120.00", "86.67"],
        }
    ]
    deferred = client.get(f"{BASE}/deferred-revenue", {"from": "2026-01", "to": "2026-02"}, **analyst).json()
    # 10 Jan → 10 Feb: 22 days of 31 in January (70.967.. → 70.97), 9 in February (29.03).
    assert deferred["months"] == [
        {"month": "2026-01-01", "billed": "100.00", "recognised": "70.97", "deferred_closing": "29.03"},
        {"month": "2026-02-01", "billed": "0.00", "recognised": "29.03", "deferred_closing": "0.00"},
    ]
    usage = client.get(f"{BASE}/usage", {"from": "2026-01", "to": "2026-01", "group_by": "plan"}, **analyst)
    assert usage.status_code == 200
    assert usage.json()["rows"] == [] and usage.json()["group_by"] == "plan"
    payments = client.get(f"{BASE}/payments", {"from": "2026-01", "to": "2026-01"}, **analyst).json()
    assert payments["months"][0]["invoices_paid"] == 0 and payments["customers"] == []


def test_ageing(client: Client, analyst: dict[str, str], history: None) -> None:
    response = client.get(f"{BASE}/ageing", {"as_of": "2026-03-20"}, **analyst)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["totals"] == {
        "current": "0.00",
        "days_1_30": "0.00",
        "days_31_60": "100.00",
        "days_61_90": "0.00",
        "days_over_90": "0.00",
    }
    assert [(row["customer_name"], row["invoices"], row["total"]) for row in body["customers"]] == [
        ("Anna", 1, "100.00")
    ]
    csv_lines = client.get(f"{BASE}/ageing", {"as_of": "2026-03-20", "format": "csv"}, **analyst).content
    assert csv_lines.decode().splitlines()[-1] == "Total,,1,0.00,0.00,100.00,0.00,0.00,100.00"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("mrr", {"from": "2026-13"}, "from"),
        ("mrr", {"from": "yesterday"}, "from"),
        ("mrr", {"from": "2026-05", "to": "2026-01"}, "to"),
        ("mrr", {"currency": "XXXX"}, "currency"),
        ("mrr", {"currency": "ABC"}, "currency"),
        ("mrr", {"format": "xlsx"}, "format"),
        ("usage", {"group_by": "region"}, "group_by"),
        ("mrr", {"from": "2000-01", "to": "2026-01"}, "to"),
    ],
)
def test_bad_parameters_get_a_422(
    client: Client, analyst: dict[str, str], path: str, params: dict[str, str], field: str
) -> None:
    response = client.get(f"{BASE}/{path}", params, **analyst)
    assert response.status_code == 422, response.content
    assert field in response.json()["error"]["fields"]


@pytest.mark.parametrize("role", ["technician", "portal_customer"])
def test_without_view_revenue_access_is_denied(client: Client, role: str) -> None:
    response = client.get(f"{BASE}/mrr", **auth_header(user_with_roles(role)))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_anonymous_is_refused(client: Client) -> None:
    assert client.get(f"{BASE}/mrr").status_code == 401


def test_query_count_does_not_grow_with_data(
    client: Client, analyst: dict[str, str], django_assert_max_num_queries: object
) -> None:
    for index in range(30):
        owner = h.account(f"Customer {index}")
        h.mrr_history(owner, [(date(2026, 1, 1 + index % 28), "10.00"), (date(2026, 2, 3), "20.00")])
        h.invoice(
            owner,
            issued=date(2026, 1, 2),
            lines=[("10.00", date(2026, 1, 2), date(2026, 2, 2))],
            due=date(2026, 1, 20),
        )
    # Authentication (token, user, groups, permissions) plus one to three reads per table.
    for path in ("mrr", "cohorts", "deferred-revenue", "ageing", "usage", "payments"):
        with django_assert_max_num_queries(12):  # type: ignore[operator]
            response = client.get(f"{BASE}/{path}", {"from": "2026-01", "to": "2026-03"}, **analyst)
        assert response.status_code == 200, (path, response.content)


# the Revenue page --------------------------------------------------------------------------------


@time_machine.travel("2026-03-20 10:00 +01:00", tick=False)
def test_revenue_page_shows_kpis_charts_and_tables(client: Client, history: None) -> None:
    client.force_login(user_with_roles("analyst"))
    response = client.get("/billing/revenue/", {"from": "2026-01", "to": "2026-03"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-kpi="mrr">130.00' in page
    assert 'data-kpi="arr">1,560.00' in page
    assert 'data-kpi="arpa">130.00' in page
    assert 'data-kpi="logo_churn">50.00%' in page
    assert 'data-kpi="nrr">—' in page  # nobody paid in March 2025
    for chart in ("chart-movements", "chart-cohorts", "chart-deferred", "chart-ageing"):
        assert f'id="{chart}"' in page
    for table in ("mrr", "cohorts", "deferred", "ageing", "usage", "payments", "payers"):
        assert f'data-csv="{table}"' in page
    assert response.context["charts"]["movements"]["line"]["values"] == [150.0, 180.0, 130.0]
    assert response.context["charts"]["ageing"]["values"] == [0.0, 0.0, 100.0, 0.0, 0.0]


@time_machine.travel("2026-03-20 10:00 +01:00", tick=False)
def test_revenue_csv_export(client: Client, history: None) -> None:
    client.force_login(user_with_roles("billing_clerk"))
    response = client.get("/billing/revenue/cohorts.csv", {"from": "2026-01", "to": "2026-03"})
    assert response.status_code == 200
    assert response.content.decode().splitlines() == [
        "Cohort,Customers,Starting MRR,Customers % month 0,Customers % month 1,Customers % month 2,"
        "MRR % month 0,MRR % month 1,MRR % month 2",
        "2026-01-01,2,150.00,100.00,100.00,50.00,100.00,120.00,86.67",
    ]
    assert client.get("/billing/revenue/secrets.csv").status_code == 404
    assert client.get("/billing/revenue/mrr.csv", {"from": "2026-05", "to": "2026-01"}).status_code == 422


@time_machine.travel("2026-03-20 10:00 +01:00", tick=False)
def test_revenue_page_with_a_bad_range_falls_back_and_says_so(client: Client, history: None) -> None:
    client.force_login(user_with_roles("analyst"))
    response = client.get("/billing/revenue/", {"from": "2026-05", "to": "2026-01", "currency": "ZZZ"})
    assert response.status_code == 422
    assert response.context["query"].from_month == date(2025, 4, 1)
    assert "Some filters were not valid" in response.content.decode()


def test_revenue_page_needs_view_revenue(client: Client) -> None:
    client.force_login(user_with_roles("technician"))
    assert client.get("/billing/revenue/").status_code == 403
    assert client.get("/billing/revenue/mrr.csv").status_code == 403

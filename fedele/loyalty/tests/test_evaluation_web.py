"""The evaluation page: KPIs, charts data, tables and CSV links for one programme and period;
permissions, bad filters, Italian rendering, and the CSV download of each table."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from fedele.accounts.tests.factories import user_with_roles
from fedele.loyalty.models import Programme
from fedele.loyalty.selectors.evaluation import TABLE_REPORT
from fedele.loyalty.tests.evaluation_support import earn, expire, member_at, redeem, rome
from fedele.loyalty.tests.factories import ProgrammeFactory, standard_tiers
from fedele.shared.navigation import SECTIONS

pytestmark = pytest.mark.django_db
QUERY = {"programme": "club-web-eval", "from": "2026-01-01", "to": "2026-03-31"}


@pytest.fixture
def programme() -> Programme:
    created: Programme = ProgrammeFactory(
        code="club-web-eval", name_it="Club Amici", name_en="Friends Club", expiry_months=2
    )
    standard_tiers(created)
    alice = member_at(created, rome(2026, 1, 5))
    bruno = member_at(created, rome(2026, 1, 6))
    earn(alice, 600, rome(2026, 1, 10))
    earn(bruno, 400, rome(2026, 1, 20))
    redeem(alice, 550, rome(2026, 2, 1))
    redeem(bruno, 300, rome(2026, 2, 15))
    expire(created, date(2026, 3, 25))
    return created


@pytest.fixture
def analyst_client(client: Client) -> Client:
    client.force_login(user_with_roles("analyst"))
    return client


def test_page_shows_kpis_charts_and_tables(analyst_client: Client, programme: Programme) -> None:
    response = analyst_client.get(reverse("loyalty:evaluation_page"), QUERY)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-kpi="breakage">15.00%' in html
    assert 'data-kpi="redemption_rate">100.00%' in html
    for name in (
        "summary",
        "members",
        "breakage",
        "breakage-forecast",
        "breakage-curve",
        "liability",
        "tier-migration",
        "cohorts",
        "roi",
        "roi-strata",
    ):
        assert f'id="table-{name}"' in html, name
        assert f'data-csv="{name}"' in html
    assert 'id="no-campaign"' in html
    charts = json.loads(
        html.split('<script id="evaluation-charts" type="application/json">')[1].split("</script>")[0]
    )
    assert charts["liability"]["labels"] == ["2026-01-31", "2026-02-28", "2026-03-31"]
    assert charts["liability"]["series"][0]["values"] == [1000, 150, 0]
    assert charts["breakage"]["series"][2]["values"] == [150, 0, 0]
    assert charts["cohorts"]["values"][:3] == [[0, 0, 100.0], [1, 0, 100.0], [2, 0, 0.0]]
    assert 'src="/static/vendor/echarts/echarts.min.js"' in html or "echarts.min.js" in html
    assert any(item.url_name == "loyalty:evaluation_page" for item in SECTIONS["loyalty"].items)


def test_every_table_downloads_as_csv(analyst_client: Client, programme: Programme) -> None:
    for name in TABLE_REPORT:
        response = analyst_client.get(reverse("loyalty:evaluation_csv", args=[name]), QUERY)
        if name == "uplift":  # this programme has no campaign
            assert response.status_code == 404
            continue
        assert response.status_code == 200, name
        assert response["Content-Type"].startswith("text/csv")
    rows = list(
        csv.DictReader(
            io.StringIO(
                analyst_client.get(
                    reverse("loyalty:evaluation_csv", args=["breakage"]), QUERY
                ).content.decode()
            )
        )
    )
    assert (rows[-1]["issued"], rows[-1]["expired"], rows[-1]["breakage"]) == ("1000", "150", "15.00")
    assert analyst_client.get(reverse("loyalty:evaluation_csv", args=["nope"]), QUERY).status_code == 404
    bad = analyst_client.get(
        reverse("loyalty:evaluation_csv", args=["breakage"]), {**QUERY, "to": "2025-01-01"}
    )
    assert bad.status_code == 422


def test_bad_filters_fall_back_with_a_message(analyst_client: Client, programme: Programme) -> None:
    response = analyst_client.get(
        reverse("loyalty:evaluation_page"),
        {**QUERY, "from": "yesterday", "margin_percent": "250", "campaign": "zz"},
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "Enter a date as YYYY-MM-DD." in html
    assert "Enter a margin between 0 and 100 %." in html
    assert "Campaign not found." in html
    assert 'id="table-summary"' in html


def test_permissions_and_empty_installation(client: Client) -> None:
    client.force_login(user_with_roles("agent"))
    assert client.get(reverse("loyalty:evaluation_page")).status_code == 403
    assert client.get(reverse("loyalty:evaluation_csv", args=["summary"])).status_code == 403
    client.force_login(user_with_roles("analyst"))
    empty = client.get(reverse("loyalty:evaluation_page"))
    assert empty.status_code == 200
    assert b"There is no loyalty programme yet." in empty.content


def test_page_in_italian(client: Client, programme: Programme) -> None:
    client.force_login(user_with_roles("analyst", language="it"))
    html = client.get(reverse("loyalty:evaluation_page"), QUERY, HTTP_ACCEPT_LANGUAGE="it").content.decode()
    assert 'lang="it"' in html
    assert "Club Amici" in html and "Friends Club" not in html
    assert 'data-kpi="breakage">15,00%' in html  # Italian decimal comma
    with translation.override("it"):
        assert translation.gettext("Programme evaluation") in html
        assert translation.gettext("Breakage to date") in html

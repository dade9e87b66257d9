"""In a real browser: the evaluation page draws its charts (ECharts SVG) and the fraud queue leads to a
flag whose confirmation reverses the transaction. Debian's Chromium through Playwright against
pytest-django's live server. Screenshots: /tmp/loyalty-evaluation.png, /tmp/loyalty-fraud.png."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from fedele.accounts.tests.factories import DEFAULT_PASSWORD, user_with_roles
from fedele.loyalty.models import FraudFlag
from fedele.loyalty.tests.evaluation_support import earn, expire, member_at, redeem, rome, utc
from fedele.loyalty.tests.factories import ProgrammeFactory, standard_tiers
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect


@pytest.fixture
def tab(chromium, live_server) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = chromium.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-GB", base_url=live_server.url
    )
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    context.close()


def test_evaluation_page_draws_its_charts(tab) -> None:  # type: ignore[no-untyped-def]
    programme = ProgrammeFactory(code="club-browser", expiry_months=2)
    standard_tiers(programme)
    alice = member_at(programme, rome(2026, 1, 5))
    bruno = member_at(programme, rome(2026, 1, 6))
    earn(alice, 600, rome(2026, 1, 10))
    earn(bruno, 400, rome(2026, 1, 20))
    redeem(alice, 550, rome(2026, 2, 1))
    redeem(bruno, 300, rome(2026, 2, 15))
    expire(programme, date(2026, 3, 25))
    user = user_with_roles("analyst")
    sign_in(tab, user.email, DEFAULT_PASSWORD)
    tab.goto("/loyalty/evaluation/?programme=club-browser&from=2026-01-01&to=2026-03-31")
    expect(tab.locator('[data-kpi="breakage"]')).to_have_text("15.00%")
    for chart in (
        "liability",
        "breakage",
        "members-spend",
        "members-rates",
        "cohorts",
        "migration",
        "forecast",
    ):
        expect(tab.locator(f"#chart-{chart} svg").first).to_be_visible()
    tab.screenshot(path="/tmp/loyalty-evaluation.png", full_page=True)


def test_fraud_review_in_the_browser(tab) -> None:  # type: ignore[no-untyped-def]
    programme = ProgrammeFactory(code="club-browser-fraud", velocity_max_earns_per_hour=2)
    member = member_at(programme, utc(2026, 3, 1))
    flood = [earn(member, 100, utc(2026, 3, 10, 10, minute)) for minute in range(3)]
    flag = FraudFlag.objects.get(member=member)
    user = user_with_roles("supervisor")
    sign_in(tab, user.email, DEFAULT_PASSWORD)
    tab.goto("/loyalty/fraud/")
    tab.locator(f'[data-flag="{flag.public_id}"] a').first.click()
    expect(tab.locator("#member-available")).to_have_text("300")
    tab.locator(f'input[name="reverse"][value="{flood[0].public_id}"]').check()
    tab.fill("#review-note", "Scripted earns from one terminal")
    tab.screenshot(path="/tmp/loyalty-fraud.png", full_page=True)
    tab.click("#confirm-button")
    expect(tab.locator("#flag-state")).to_have_text("confirmed fraud (reversed)")
    expect(tab.locator("#member-available")).to_have_text("100")

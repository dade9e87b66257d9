"""In a real browser at phone width (375 px): a supervisor opens a campaign, runs the simulator and
sees the distribution and its chart without the page scrolling sideways. Debian's Chromium through
Playwright against pytest-django's live server. Screenshot: /tmp/cc-dialer-simulator.png."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import DEFAULT_PASSWORD, user_with_roles
from fedele.contact_center.services import dialer as services
from fedele.contact_center.tests.factories import QueueFactory
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect


@pytest.fixture
def phone(chromium, live_server) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = chromium.new_context(
        viewport={"width": 375, "height": 812}, locale="en-GB", base_url=live_server.url
    )
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    context.close()


def test_supervisor_runs_the_simulator_on_a_phone(phone) -> None:  # type: ignore[no-untyped-def]
    user = user_with_roles("supervisor")
    queue = QueueFactory(code="outbound")
    services.campaign_create(
        actor=actor_for(user), code="spring", name="Spring offers", queue_code=queue.code, mode="predictive"
    )
    sign_in(phone, user.email, DEFAULT_PASSWORD)
    phone.goto("/contact-center/dialer/spring/")
    expect(phone.locator("#dialer-meter")).to_contain_text("0.0%")
    phone.fill("#id_hours", "1")
    phone.fill("#id_seeds", "3")
    phone.click("#simulation-form button[type=submit]")
    result = phone.locator("#simulation-result")
    expect(result).to_contain_text("3 runs; 0 over the cap.")
    expect(result.locator("svg rect")).to_have_count(2)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    phone.screenshot(path="/tmp/cc-dialer-simulator.png", full_page=True)

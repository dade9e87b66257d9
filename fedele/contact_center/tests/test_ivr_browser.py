"""In a real browser: the IVR editor validates as you type, runs a test call on the text in the editor,
and a publish of an invalid flow is refused with its problems. Debian's Chromium through Playwright
against pytest-django's live server. Screenshot: /tmp/ivr-editor.png."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from fedele.accounts.tests.factories import DEFAULT_PASSWORD, user_with_roles
from fedele.contact_center.models import IvrFlow
from fedele.contact_center.tests.ivr_support import billing_flow, make_queues, published_flow
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


def test_editor_live_validation_test_call_and_refused_publish(tab) -> None:  # type: ignore[no-untyped-def]
    make_queues()
    published_flow()
    admin = user_with_roles("admin")
    sign_in(tab, admin.email, DEFAULT_PASSWORD)
    tab.goto("/contact-center/ivr/main-line/")
    expect(tab.locator("#ivr-valid")).to_be_visible()
    expect(tab.locator('[data-node="main"]')).to_contain_text("Press 1 for support, 2 for billing.")

    # Type a broken flow: the problems appear without saving.
    broken = billing_flow()
    broken["nodes"]["tell"]["next"] = "ghost"
    tab.locator("#ivr-source").fill(json.dumps(broken, indent=2))
    expect(tab.locator("#ivr-problems")).to_contain_text("tell: Goes to “ghost”, which is not a node.")

    # The test call refuses a flow with problems, then walks the fixed text.
    tab.locator("#ivr-sim-inputs").fill("2, 000123#")
    tab.locator("#ivr-sim-run").click()
    expect(tab.locator("#ivr-simulation")).to_contain_text("Fix the flow's problems before a test call.")
    tab.locator("#ivr-source").fill(json.dumps(billing_flow(), indent=2))
    expect(tab.locator("#ivr-valid")).to_be_visible()
    tab.locator("#ivr-sim-inputs").fill("7, 1")
    tab.locator("#ivr-sim-run").click()
    expect(tab.locator("#ivr-simulation [data-turn]")).to_have_count(3)
    expect(tab.locator("#ivr-simulation")).to_contain_text("Spiacenti, la scelta non è valida.")
    expect(tab.locator("#ivr-simulation")).to_contain_text("Posizione in coda: 1.")

    # Save and publish a broken flow: refused with the problem, the live version stays v1.
    tab.locator("#ivr-source").fill(json.dumps(broken, indent=2))
    tab.locator("#ivr-save-publish").click()
    expect(tab.locator("#ivr-publish-refused")).to_contain_text("tell: Goes to “ghost”, which is not a node.")
    expect(tab.locator("#ivr-live-version")).to_have_text("v1")
    tab.screenshot(path="/tmp/ivr-editor.png", full_page=True)
    flow = IvrFlow.objects.get(code="main-line")
    assert flow.published_version is not None and flow.published_version.number == 1

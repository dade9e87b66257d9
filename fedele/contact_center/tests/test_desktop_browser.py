"""Acceptance in a real browser: an agent signs in, goes available on the desktop, a call rings in through
the simulator provider and the real router, the offer card appears (by the page's poll: the live server
speaks no websocket), the agent accepts, sees the screen pop with the customer's tickets, balance and
tier, hangs up with the softphone and completes the wrap-up with a new ticket. Then the wallboard and
the interval report, and the desktop on a 375 px phone without sideways scrolling.

Debian's Chromium through Playwright, against pytest-django's live server. Screenshots go to
/tmp/cc-desktop-*.png (and $FEDELE_SCREENSHOTS_DIR when set).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedele.accounts.contracts import Role
from fedele.accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from fedele.contact_center.models import AgentState, Interaction, InteractionState
from fedele.contact_center.services.interactions import interaction_create, interaction_enqueue
from fedele.contact_center.tests.desktop_support import known_customer, make_desk
from fedele.contact_center.tests.factories import WrapUpCodeFactory
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 375, "height": 812}


def screenshot(tab: object, name: str) -> None:
    paths = [Path("/tmp") / name]
    if os.environ.get("FEDELE_SCREENSHOTS_DIR"):
        paths.append(Path(os.environ["FEDELE_SCREENSHOTS_DIR"]) / name)
    for path in paths:
        tab.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]


def _tab(chromium, live_server, viewport: dict[str, int], **options: object) -> Iterator[object]:
    context = chromium.new_context(viewport=viewport, locale="en-GB", base_url=live_server.url, **options)
    # Generous: the live server shares two cores with everything else a CI run does.
    context.set_default_timeout(30_000)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def laptop(chromium, live_server) -> Iterator[object]:
    yield from _tab(chromium, live_server, LAPTOP)


@pytest.fixture
def phone(chromium, live_server) -> Iterator[object]:
    yield from _tab(chromium, live_server, PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)


def test_agent_takes_a_call_from_offer_to_wrap_up(laptop) -> None:
    from fedele.contact_center.telephony.simulator import simulator_reset

    desk = make_desk(extension="201")
    customer = known_customer()
    WrapUpCodeFactory(code="solved", name_en="Solved")
    sign_in(laptop, desk.user.email, DEFAULT_PASSWORD)
    laptop.goto("/contact-center/desktop/")
    expect(laptop.get_by_test_id("desktop-idle")).to_be_visible()
    laptop.get_by_test_id("state-available").click()
    expect(laptop.get_by_test_id("agent-state")).to_have_attribute("data-state", "available")

    # A call rings in: the simulator reports call.new, the contact is queued and the router offers it.
    sim = simulator_reset(answer_inbound=False)
    call_ref = sim.incoming_call(from_number=customer.phone, to_number="+390200000000")
    interaction = Interaction.objects.get(provider="simulator", provider_ref=call_ref)
    interaction_enqueue(interaction=interaction, queue_code=desk.queue.code)

    card = laptop.get_by_test_id("offer-card")
    expect(card).to_be_visible()
    expect(card).to_have_attribute("data-interaction", str(interaction.public_id))
    expect(laptop.get_by_test_id("offer-caller")).to_have_text("Mario Rossi")
    screenshot(laptop, "cc-desktop-offer.png")
    laptop.get_by_test_id("offer-accept").click()

    expect(laptop.get_by_test_id("work-panel")).to_have_attribute("data-state", "connected")
    expect(laptop.get_by_test_id("pop-customer")).to_have_text("Mario Rossi")
    expect(laptop.get_by_test_id("pop-tickets")).to_contain_text("Modem lampeggia")
    expect(laptop.get_by_test_id("pop-overdue-amount")).to_have_text("122.00 EUR")
    expect(laptop.get_by_test_id("pop-tier")).to_have_attribute("data-tier", "gold")
    assert ("connect_agent", call_ref, {"agent": "201"}) in sim.commands
    screenshot(laptop, "cc-desktop-call.png")

    laptop.get_by_test_id("call-hangup").click()
    expect(laptop.get_by_test_id("work-panel")).to_have_attribute("data-state", "wrap_up")
    laptop.get_by_test_id("wrap-up-code").select_option("solved")
    laptop.get_by_test_id("wrap-up-ticket").select_option("create")
    laptop.get_by_test_id("wrap-up-notes").fill("Modem riavviato, linea ok")
    screenshot(laptop, "cc-desktop-wrap-up.png")
    laptop.get_by_test_id("wrap-up-submit").click()

    expect(laptop.get_by_test_id("desktop-idle")).to_be_visible()
    expect(laptop.get_by_test_id("agent-state")).to_have_attribute("data-state", "available")
    interaction.refresh_from_db()
    assert interaction.state == InteractionState.ENDED
    assert interaction.wrap_up_code is not None and interaction.wrap_up_code.code == "solved"
    assert interaction.wrap_up_notes == "Modem riavviato, linea ok"
    assert interaction.ticket_public_id
    assert ("hangup", call_ref, {}) in sim.commands
    desk.agent.refresh_from_db()
    assert desk.agent.state == AgentState.AVAILABLE


def test_wallboard_report_and_desktop_fit_the_screen(laptop, phone) -> None:
    desk = make_desk()
    supervisor = UserFactory(roles=[Role.SUPERVISOR])
    sign_in(laptop, supervisor.email, DEFAULT_PASSWORD)
    laptop.goto("/contact-center/wallboard/")
    expect(laptop.get_by_test_id("wallboard-row-care-voice")).to_be_visible()
    # No websocket behind the live server: the page says so and polls.
    expect(laptop.get_by_test_id("wallboard-live")).to_have_attribute("data-live", "0")
    screenshot(laptop, "cc-wallboard.png")
    laptop.goto("/contact-center/wallboard/?tv=1")
    expect(laptop.get_by_test_id("wallboard-queue-care")).to_be_visible()
    screenshot(laptop, "cc-wallboard-tv.png")
    laptop.goto("/contact-center/reports/intervals/?interval=60")
    expect(laptop.locator("#interval-table")).to_be_visible()
    expect(laptop.locator("#interval-chart svg")).to_be_visible()
    screenshot(laptop, "cc-report.png")

    sign_in(phone, desk.user.email, DEFAULT_PASSWORD)
    phone.goto("/contact-center/desktop/")
    phone.get_by_test_id("state-available").click()
    expect(phone.get_by_test_id("agent-state")).to_have_attribute("data-state", "available")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    known_customer()
    call = interaction_create(channel="voice", direction="inbound", from_address="+390612345678")
    interaction_enqueue(interaction=call, queue_code=desk.queue.code)
    expect(phone.get_by_test_id("offer-card")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(phone, "cc-desktop-phone-offer.png")
    phone.get_by_test_id("offer-accept").click()
    expect(phone.get_by_test_id("pop-customer")).to_have_text("Mario Rossi")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(phone, "cc-desktop-phone.png")

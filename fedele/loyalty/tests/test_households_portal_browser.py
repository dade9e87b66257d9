"""Acceptance in a real browser on a 390 px phone: a member starts a household, a family member joins
through the invitation link, the first one gives points (choosing the recipient, typing the points)
and sees the pooled balance and the limit left; nothing overflows sideways. Screenshot
/tmp/club-household-phone.png (and under $FEDELE_SCREENSHOTS_DIR when it is set)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fedele.accounts.tests.factories import DEFAULT_PASSWORD
from fedele.loyalty.tests.club_fixtures import earn, enrol, portal_customer, programme_with_tiers
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect
PHONE = {"width": 390, "height": 844}


def _phone(chromium, live_server):
    context = chromium.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="en-GB",
        base_url=live_server.url,
    )
    context.set_default_timeout(30_000)
    return context


def _no_sideways_scroll(tab) -> bool:
    return bool(tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_a_family_pools_points_on_phones(chromium, live_server) -> None:
    programme = programme_with_tiers(
        household_max_members=4, transfer_max_points=500, transfer_max_points_per_month=800
    )
    giulia = portal_customer(name="Giulia Neri")
    giulia_member = enrol(programme, giulia.customer)
    earn(giulia_member, 1_000)
    marco = portal_customer(name="Marco Neri")
    marco_member = enrol(programme, marco.customer)

    first = _phone(chromium, live_server)
    tab = first.new_page()
    sign_in(tab, giulia.user.email, DEFAULT_PASSWORD)
    tab.goto("/club/preferences/")
    tab.click("#club-household-entry")
    tab.fill("#id_name", "Neri")
    tab.click("#club-household-create")
    expect(tab.locator("#club-household-name")).to_have_text("Neri")
    link = tab.locator("#club-household-link").input_value()
    assert _no_sideways_scroll(tab)

    second = _phone(chromium, live_server)
    other = second.new_page()
    sign_in(other, marco.user.email, DEFAULT_PASSWORD)
    other.goto(link.removeprefix(live_server.url))
    expect(other.locator("#club-join-title")).to_contain_text("Giulia invites you to the household Neri")
    other.click("#club-join")
    expect(other.locator("#club-household-members")).to_contain_text("Marco")
    second.close()

    tab.reload()
    tab.select_option("#id_to_member", str(marco_member.public_id))
    tab.fill("#id_points", "300")
    tab.click("#club-household-give")
    expect(tab.locator("#flash-area")).to_contain_text("300 points sent to Marco.")
    expect(tab.locator("#club-household-pooled")).to_contain_text("1,000")
    expect(tab.locator("#club-household-limit")).to_contain_text("You can still give 500 points this month")
    tab.fill("#id_points", "600")
    tab.click("#club-household-give")
    expect(tab.locator("#club-household-error")).to_be_visible()
    expect(tab.locator("[data-field=points] .invalid-feedback")).to_contain_text(
        "Over the limit per transfer."
    )
    assert _no_sideways_scroll(tab)
    for directory in [
        Path("/tmp"),
        *([Path(os.environ["FEDELE_SCREENSHOTS_DIR"])] if os.environ.get("FEDELE_SCREENSHOTS_DIR") else []),
    ]:
        tab.screenshot(path=str(directory / "club-household-phone.png"), full_page=True)
    first.close()
    giulia_member.refresh_from_db()
    marco_member.refresh_from_db()
    assert (giulia_member.available, marco_member.available) == (700, 300)

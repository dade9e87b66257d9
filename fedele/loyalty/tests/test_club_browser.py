"""Acceptance in a real browser: a member signs in on a 375 px phone, sees the balance and the tier
progress bar, redeems a voucher through the confirmation step and sees the code; nothing overflows
sideways. Debian's Chromium through Playwright, against pytest-django's live server.

Screenshots: /tmp/club-phone.png (home) and /tmp/club-phone-code.png (the code), and the same names
under $FEDELE_SCREENSHOTS_DIR when it is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedele.accounts.tests.factories import DEFAULT_PASSWORD
from fedele.loyalty.models import Redemption
from fedele.loyalty.tests.club_fixtures import earn, enrol, portal_customer, programme_with_tiers, voucher
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect
PHONE = {"width": 375, "height": 812}


def _screenshot_paths(name: str) -> list[Path]:
    paths = [Path("/tmp") / name]
    if os.environ.get("FEDELE_SCREENSHOTS_DIR"):
        paths.append(Path(os.environ["FEDELE_SCREENSHOTS_DIR"]) / name)
    return paths


@pytest.fixture
def phone(chromium, live_server) -> Iterator[object]:
    context = chromium.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="en-GB",
        base_url=live_server.url,
    )
    # Generous: the live server shares two cores with everything else a CI run does.
    context.set_default_timeout(30_000)
    tab = context.new_page()
    yield tab
    context.close()


def _no_sideways_scroll(tab) -> bool:
    return bool(tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_member_on_a_phone_sees_balance_and_progress_and_redeems_a_voucher(phone) -> None:
    programme = programme_with_tiers()
    portal = portal_customer(name="Giulia Neri")
    member = enrol(programme, portal.customer)
    earn(member, 1_200)  # Silver (1,000); Gold at 5,000
    reward = voucher(programme, cost=500, codes=2, name_en="€5 voucher")

    sign_in(phone, portal.user.email, DEFAULT_PASSWORD)
    phone.goto("/club/")
    expect(phone.locator("#club-balance")).to_contain_text("1,200")
    expect(phone.locator("#club-tier-badge")).to_contain_text("Silver")
    expect(phone.locator("#club-tier-remaining")).to_contain_text("3,800 points to Gold")
    expect(phone.locator("#club-tier-progress .progress-bar")).to_be_visible()
    expect(phone.locator(".club-tabs")).to_be_visible()
    assert _no_sideways_scroll(phone)
    for path in _screenshot_paths("club-phone.png"):
        phone.screenshot(path=str(path), full_page=True)

    phone.locator(".club-tabs").get_by_text("Rewards").click()
    card = phone.locator(f'[data-reward="{reward.code}"]')
    card.get_by_role("link", name="Redeem").click()
    expect(phone.locator("#club-balance-after")).to_have_text("700 points")
    assert _no_sideways_scroll(phone)
    # A double tap on the confirmation button still redeems once.
    phone.locator("#club-redeem-confirm").dblclick()
    code = phone.locator(".club-voucher").first
    expect(code).to_be_visible()
    redemption = Redemption.objects.get(member=member)
    expect(code).to_have_text(redemption.voucher.code)
    expect(phone.locator("#flash-area")).to_contain_text("Done! You redeemed €5 voucher.")
    assert _no_sideways_scroll(phone)
    for path in _screenshot_paths("club-phone-code.png"):
        phone.screenshot(path=str(path), full_page=True)

    member.refresh_from_db()
    assert (member.available, Redemption.objects.filter(member=member).count()) == (700, 1)
    phone.goto("/club/")
    expect(phone.locator("#club-balance")).to_contain_text("700")
    expect(phone.locator("#club-recent")).to_contain_text("-500")

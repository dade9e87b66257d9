"""The screen pop's equipment and work-order blocks in a real browser on a 375 px phone: visible, worded,
and without sideways scrolling. Debian's Chromium through Playwright; screenshot in
/tmp/cc-field-service-pop-phone.png (and $FEDELE_SCREENSHOTS_DIR when set)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fedele.accounts.tests.factories import DEFAULT_PASSWORD
from fedele.contact_center.models import InteractionState
from fedele.contact_center.tests.desktop_support import make_desk
from fedele.contact_center.tests.factories import InteractionFactory
from fedele.contact_center.tests.test_desktop_browser import PHONE, screenshot
from fedele.contact_center.tests.test_field_service_pop import customer_with_field_service
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect


@pytest.fixture
def phone(chromium, live_server) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = chromium.new_context(
        viewport=PHONE,
        locale="en-GB",
        base_url=live_server.url,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        timezone_id="Europe/Rome",
    )
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


def test_equipment_and_work_orders_fit_a_phone(phone, time_machine) -> None:  # type: ignore[no-untyped-def]
    time_machine.move_to("2026-12-08T08:00:00+00:00", tick=True)
    desk = make_desk()
    customer = customer_with_field_service()
    contact = InteractionFactory(
        customer_public_id=str(customer.public_id),
        from_address="+393330000000",
        agent=desk.agent,
        queue=desk.queue,
        state=InteractionState.CONNECTED,
    )
    sign_in(phone, desk.user.email, DEFAULT_PASSWORD)
    phone.goto(f"/contact-center/desktop/?i={contact.public_id}")
    equipment = phone.get_by_test_id("pop-equipment")
    expect(equipment).to_be_visible()
    expect(equipment).to_contain_text("Caldaia ecoTEC plus 25")
    expect(equipment).to_contain_text("under warranty until 31/03/2027")
    expect(equipment).to_contain_text("out of warranty")
    orders = phone.get_by_test_id("pop-work-orders")
    expect(orders).to_contain_text("Tue 8 Dec, 10:00–12:00")
    expect(orders.get_by_test_id("field-eta")).to_have_text("ETA 09:40")
    orders.scroll_into_view_if_needed()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(phone, "cc-field-service-pop-phone.png")

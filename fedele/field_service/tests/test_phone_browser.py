"""In a real browser at phone width (375 px): a technician opens their work order list, the work order,
says they are on their way, starts and completes it; no page scrolls sideways. Debian's Chromium
through Playwright against pytest-django's live server. Screenshot: /tmp/fs-work-order-phone.png."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from fedele.accounts.tests.factories import DEFAULT_PASSWORD, user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.field_service.models import WorkOrder
from fedele.field_service.services import work_orders
from fedele.field_service.tests.factories import EquipmentFactory, TechnicianFactory
from fedele.shared import clock
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


def test_technician_works_a_visit_on_a_phone(phone) -> None:  # type: ignore[no-untyped-def]
    user = user_with_roles("technician")
    technician = TechnicianFactory(user=user, display_name="Luca Gallo")
    customer = CustomerFactory(street="Via dei Mille 123, scala B, interno 14", city="Reggio nell'Emilia")
    equipment = EquipmentFactory(customer=customer, name="Pompa di calore Daikin Altherma 3 H HT ECH2O 500")
    start = clock.now() + timedelta(hours=1)
    order = work_orders.work_order_create(
        actor=None,
        customer_public_id=str(customer.public_id),
        summary="Nessun riscaldamento al piano superiore, termostato spento e spia rossa lampeggiante",
        equipment_public_id=str(equipment.public_id),
        window_start=start,
        window_end=start + timedelta(hours=3),
        technician_public_id=str(technician.public_id),
    )
    work_orders.work_order_dispatch(actor=None, work_order_public_id=str(order.public_id))
    sign_in(phone, user.email, DEFAULT_PASSWORD)
    phone.goto("/field-service/")
    expect(phone.locator("#work-order-rows")).to_contain_text(order.number)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    phone.click(f"text={order.number}")
    expect(phone.locator("#work-order-status")).to_contain_text("Dispatched")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    phone.click("#action-en-route")
    expect(phone.locator("#work-order-status")).to_contain_text("En route")
    phone.click("#action-start")
    expect(phone.locator("#work-order-status")).to_contain_text("In progress")
    phone.fill("#complete-resolution", "Sostituito il sensore di mandata")
    phone.click("#action-complete")
    expect(phone.locator("#work-order-status")).to_contain_text("Completed")
    expect(phone.locator("#work-order-history")).to_contain_text("In progress → Completed")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    phone.screenshot(path="/tmp/fs-work-order-phone.png", full_page=True)
    phone.goto(f"/field-service/equipment/{equipment.public_id}/")
    expect(phone.locator("#warranty-badge")).to_contain_text("Under warranty")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    stored = WorkOrder.objects.get(pk=order.pk)
    assert (stored.status, stored.resolution) == ("completed", "Sostituito il sensore di mandata")

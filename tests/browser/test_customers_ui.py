"""The customer pages in a real browser: sign in, create, find, the phone layout, the language switch."""

from __future__ import annotations

import re

import pytest

from fedele.accounts.tests.factories import DEFAULT_PASSWORD, user_with_roles
from fedele.customers.models import Customer
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect


def test_an_agent_creates_a_person_and_finds_them_in_the_list(page):
    agent = user_with_roles("agent", email="agente@example.it")
    sign_in(page, agent.email, DEFAULT_PASSWORD)

    page.goto("/customers/new/")
    expect(page.locator("#id_company_name")).to_be_hidden()
    page.fill("#id_first_name", "Mario")
    page.fill("#id_last_name", "Rossi")
    page.fill("#id_fiscal_code", "rssmra85t10a562s")
    page.fill("#id_phone", "06 1234 5678")
    page.fill("#id_city", "Roma")
    page.click("#save-customer")

    page.wait_for_url(re.compile(r"/customers/[0-9a-f-]{36}/$"))
    expect(page.locator("#customer-name")).to_have_text("Mario Rossi")
    expect(page.locator("#customer-phone")).to_have_text("+390612345678")
    expect(page.locator("#customer-fiscal-code")).to_have_text("RSSMRA85T10A562S")
    customer = Customer.objects.get()
    expect(page.locator("#customer-number")).to_have_text(customer.number)

    page.click("#sidebar a.nav-link[href='/customers/']")
    page.wait_for_url(re.compile(r"/customers/$"))
    row = page.locator(f"#customer-table tr[data-customer='{customer.public_id}']")
    expect(row).to_contain_text("Mario Rossi")
    expect(row).to_contain_text(customer.number)

    # The filters refresh only the table, through htmx.
    page.fill("#filter-q", "nobody-matches-this")
    expect(page.locator("#customer-table")).to_contain_text("No customers match these filters.")
    page.fill("#filter-q", "rossi")
    expect(row).to_be_visible()
    assert "q=rossi" in page.url


def test_the_company_fields_appear_when_company_is_chosen_and_errors_show_under_fields(page):
    agent = user_with_roles("agent")
    sign_in(page, agent.email, DEFAULT_PASSWORD)

    page.goto("/customers/new/")
    page.click("label[for=id_kind_company]")
    expect(page.locator("#id_company_name")).to_be_visible()
    expect(page.locator("#id_first_name")).to_be_hidden()
    page.fill("#id_company_name", "Acme S.p.A.")
    page.fill("#id_vat_number", "IT123")
    page.click("#save-customer")

    expect(page.locator("#id_vat_number_errors")).to_have_text("'IT123' is not a valid VAT number.")
    expect(page.locator("#id_company_name")).to_be_visible()
    assert Customer.objects.count() == 0


def test_on_a_phone_the_sidebar_hides_behind_a_toggle(phone_page):
    agent = user_with_roles("agent")
    sign_in(phone_page, agent.email, DEFAULT_PASSWORD)
    phone_page.goto("/customers/")

    sidebar = phone_page.locator("#sidebar")
    toggle = phone_page.locator("#sidebar-toggle")
    expect(toggle).to_be_visible()
    expect(sidebar).to_be_hidden()

    toggle.click()
    expect(sidebar).to_be_visible()
    expect(sidebar.locator("a.nav-link[href='/customers/']")).to_be_visible()
    expect(sidebar.locator("[data-section='insights']")).to_contain_text("coming soon")

    sidebar.locator("button.btn-close").click()
    expect(sidebar).to_be_hidden()
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390


def test_switching_to_italian_translates_the_pages(page):
    agent = user_with_roles("agent", language="en")
    sign_in(page, agent.email, DEFAULT_PASSWORD)
    page.goto("/customers/")
    expect(page.locator("h1")).to_have_text("Customers")

    page.click("#language-button")
    page.click("button[name=language][value=it]")

    page.wait_for_load_state()
    expect(page.locator("h1")).to_have_text("Clienti")
    expect(page.locator("#new-customer-button")).to_contain_text("Nuovo cliente")
    expect(page.locator("html")).to_have_attribute("lang", "it")
    agent.refresh_from_db()
    assert agent.language == "it"


def test_the_global_search_opens_a_dropdown_of_customers(page):
    from fedele.customers.tests.factories import CustomerFactory

    customer = CustomerFactory(first_name="Ottavia", last_name="Quaranta")
    agent = user_with_roles("agent")
    sign_in(page, agent.email, DEFAULT_PASSWORD)

    page.locator("#global-search").press_sequentially("quaranta", delay=20)
    results = page.locator("#search-results")
    expect(results).to_be_visible()
    expect(results.locator("a.dropdown-item").first).to_contain_text("Ottavia Quaranta")
    results.locator("a.dropdown-item").first.click()

    page.wait_for_url(re.compile(f"/customers/{customer.public_id}/$"))
    expect(page.locator("#customer-name")).to_have_text("Ottavia Quaranta")


def test_the_bell_lists_notifications_and_marks_them_read(page):
    from django.utils import timezone

    from fedele.shared.models import Notification

    agent = user_with_roles("agent")
    Notification.objects.create(recipient=agent, title="Import finished", created_at=timezone.now())
    sign_in(page, agent.email, DEFAULT_PASSWORD)

    badge = page.locator("#notification-count")
    expect(badge).to_have_attribute("data-notification-count", "1")
    page.click("#notification-button")
    menu = page.locator("#notification-menu")
    expect(menu).to_contain_text("Import finished")
    menu.get_by_role("button", name="Mark all as read").click()

    expect(badge).to_be_hidden()
    expect(badge).to_have_attribute("data-notification-count", "0")
    assert Notification.objects.get().read_at is not None


def test_the_theme_switch_applies_at_once_and_is_saved(page):
    agent = user_with_roles("agent")
    sign_in(page, agent.email, DEFAULT_PASSWORD)

    page.click("#theme-button")
    with page.expect_response(lambda response: "/accounts/profile/" in response.url) as saved:
        page.click("[data-theme-value=dark]")

    assert saved.value.status == 204
    expect(page.locator("html")).to_have_attribute("data-bs-theme", "dark")
    agent.refresh_from_db()
    assert agent.theme == "dark"
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-bs-theme", "dark")


FAKE_WEBSOCKET = """
window.__sockets = [];
window.WebSocket = class {
  constructor(url) { this.url = url; this.listeners = {}; window.__sockets.push(this); }
  addEventListener(type, listener) { (this.listeners[type] = this.listeners[type] || []).push(listener); }
  emit(type, event) { (this.listeners[type] || []).forEach((listener) => listener(event)); }
  close() {}
};
"""


def test_a_pushed_notification_bumps_the_bell_and_shows_a_toast(page):
    agent = user_with_roles("agent")
    page.add_init_script(FAKE_WEBSOCKET)
    sign_in(page, agent.email, DEFAULT_PASSWORD)
    page.goto("/customers/")

    socket_url = page.evaluate("window.__sockets.length && window.__sockets[0].url")
    assert socket_url.endswith("/ws/notifications/")
    message = {"type": "notification", "id": "n1", "title": "Ticket T-000001 assigned to you", "link": "/"}
    page.evaluate(
        "(message) => window.__sockets[0].emit('message', {data: JSON.stringify(message)})", message
    )

    badge = page.locator("#notification-count")
    expect(badge).to_be_visible()
    expect(badge).to_have_attribute("data-notification-count", "1")
    expect(page.locator("#toast-region")).to_contain_text("Ticket T-000001 assigned to you")


def test_an_htmx_error_lands_in_the_flash_area(page):
    agent = user_with_roles("agent")
    sign_in(page, agent.email, DEFAULT_PASSWORD)
    page.goto("/customers/")

    page.evaluate(
        "htmx.ajax('GET', '/customers/00000000-0000-0000-0000-000000000000/', {target: '#customer-results'})"
    )

    expect(page.locator("#flash-area .alert-danger")).to_contain_text("Customer not found.")
    expect(page.locator("#customer-table")).to_be_visible()

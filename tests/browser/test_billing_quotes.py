"""Quotes in a browser: the clerk's editor (lines added and removed with htmx, live totals) on a
desktop, and the customer's public accept page on a phone (390×844) with its confirmation step.

Screenshots (FEDELE_SCREENSHOTS_DIR=docs/screenshots) go to docs/screenshots/billing-quote-*.png.
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fedele.accounts.tests.factories import DEFAULT_PASSWORD, user_with_roles
from fedele.billing.models import Order, Quote
from fedele.billing.services.quote_pricing import LineInput
from fedele.billing.services.quotes import accept_token, quote_create, quote_send
from fedele.billing.tests.factories import BillingAccountFactory, ProductFactory
from fedele.billing.tests.test_orders import seat_plan
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared import clock
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect
# Screenshots stay out of the tree; FEDELE_SCREENSHOTS_DIR=docs/screenshots refreshes the docs.
SCREENSHOTS = Path(
    os.environ.get("FEDELE_SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "fedele-screenshots"
)
SCREENSHOTS.mkdir(parents=True, exist_ok=True)


def test_a_clerk_builds_a_quote_with_live_totals(page):
    customer = CustomerFactory(display_name="Bar Centrale")
    version = seat_plan()
    product = ProductFactory(name="Installation")
    user = user_with_roles("billing_clerk", email="clerk@example.it", language="en")
    sign_in(page, user.email, DEFAULT_PASSWORD)
    page.goto(f"/billing/quotes/new/?customer={customer.public_id}")
    page.fill("#valid_until", (clock.today() + timedelta(days=20)).isoformat())
    page.select_option("#lines-0-item", f"plan:{version.pk}")
    page.fill("#lines-0-quantity", "2")
    expect(page.locator("#total-total")).to_have_text("75.00 EUR")  # 2 x 12.50 + 50.00 setup fee

    page.click("#add-line")
    row = page.locator(".quote-line").nth(1)
    expect(row).to_be_visible()
    row.locator("select").select_option(f"product:{product.pk}")
    row.locator("input[name$='-unit_amount']").fill("99.99")
    row.locator("input[name$='-discount_percent']").fill("33.33")
    page.fill("#discount_percent", "2.5")
    expect(page.locator("#total-subtotal")).to_have_text("141.66 EUR")
    expect(page.locator("#total-total")).to_have_text("138.12 EUR")

    page.click("#add-line")
    page.locator(".quote-line").nth(2).locator("button[aria-label='Remove line']").click()
    expect(page.locator(".quote-line")).to_have_count(2)
    page.screenshot(path=str(SCREENSHOTS / "billing-quote-editor.png"), full_page=True)
    page.get_by_role("button", name="Save quote").click()
    expect(page.locator("#quote-total")).to_have_text("138.12 EUR")
    quote = Quote.objects.get()
    assert (quote.total, quote.lines.count()) == (Decimal("138.12"), 3)


def test_a_customer_accepts_a_quote_on_a_phone(phone_page):
    page = phone_page
    account = BillingAccountFactory(customer=CustomerFactory(display_name="Giulia Neri", language="en"))
    quote = quote_create(
        account=account,
        lines=[
            LineInput(plan_version=seat_plan(), quantity=Decimal(3)),
            LineInput(product=ProductFactory(name="Router"), unit_amount=Decimal("39.90")),
        ],
        valid_until=clock.today() + timedelta(days=10),
        discount_percent=Decimal(5),
        language="en",
    )
    quote = quote_send(quote=quote, to_email="giulia@example.it", accept_url="https://example.it")
    page.goto(f"/billing/q/{accept_token(quote)}/")
    # 37.50 + 50.00 + 39.90 = 127.40, less 5% (6.37) = 121.03
    expect(page.locator("#public-total")).to_have_text("121.03 EUR")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    page.screenshot(path=str(SCREENSHOTS / "billing-quote-public-phone.png"), full_page=True)
    page.get_by_role("link", name="Accept the quote").click()
    expect(page.locator("#confirm-accept")).to_be_visible()
    assert Order.objects.count() == 0
    page.get_by_role("button", name="Yes, I accept").click()
    expect(page.locator("#public-result")).to_contain_text("Thank you, the quote is accepted")
    order = Order.objects.get()
    expect(page.locator("#public-result")).to_contain_text(order.number)
    page.screenshot(path=str(SCREENSHOTS / "billing-quote-accepted-phone.png"), full_page=True)
    page.reload()
    expect(page.locator("#public-result")).to_contain_text(order.number)
    page.goto(f"/billing/q/{accept_token(quote)}/")
    expect(page.locator("#public-error")).to_have_text("This quote was already answered")

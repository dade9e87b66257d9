"""The customer portal's billing pages on a phone (390×844): subscriptions with usage, the change-plan
proration preview with its exact figures, and an invoice's bank details and PDF download.

Screenshots (FEDELE_SCREENSHOTS_DIR=docs/screenshots) go to docs/screenshots/billing-portal-*.png.
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from fedele.accounts.tests.factories import DEFAULT_PASSWORD, user_with_roles
from fedele.billing.pricing import proration_for_change
from fedele.billing.services.invoicing import invoice_create_draft, invoice_finalise, invoice_line_add
from fedele.billing.tests import analytics_helpers as h
from fedele.billing.tests.factories import BillingAccountFactory, MetricFactory, flat_plan, usage_charge
from fedele.billing.tests.subscription_helpers import billed_subscription
from fedele.customers.tests.factories import ContactFactory
from fedele.shared import clock
from fedele.shared.money import Money
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect
# Screenshots stay out of the tree; FEDELE_SCREENSHOTS_DIR=docs/screenshots refreshes the docs.
SCREENSHOTS = Path(
    os.environ.get("FEDELE_SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "fedele-screenshots"
)
SCREENSHOTS.mkdir(parents=True, exist_ok=True)


def test_a_portal_customer_previews_a_plan_change_and_downloads_an_invoice(phone_page):
    page = phone_page
    today = clock.today()
    account = BillingAccountFactory(customer__display_name="Giulia Neri")
    basic = flat_plan("30.00", name="Basic")
    premium = flat_plan("60.00", name="Premium")
    # Started ten days ago and already invoiced: a change today is prorated on the days left.
    sub = billed_subscription(basic, account=account, start=today - timedelta(days=10))
    calls = MetricFactory(code="calls", name="API calls", unit="call")
    usage_charge(basic, calls, unit_amount=Decimal("0.10"))
    h.usage(account, calls, "240", timezone.now() - timedelta(days=2), sub=sub)
    draft = invoice_create_draft(account=account)
    invoice_line_add(invoice=draft, description="Basic, monthly fee", unit_amount=Decimal("30.00"))
    invoice = invoice_finalise(invoice=draft)
    user = user_with_roles("portal_customer", email="giulia@example.it", language="en")
    ContactFactory(customer=account.customer, portal_user=user)

    sign_in(page, user.email, DEFAULT_PASSWORD)
    page.goto("/billing/my/")
    card = page.locator(f"#subscription-{sub.public_id}")
    expect(card).to_contain_text("Basic")
    expect(card.locator("[data-field=price]")).to_contain_text("€30.00")
    expect(card.locator("[data-metric=calls]")).to_contain_text("240")
    expect(card.locator("[data-metric=calls]")).to_contain_text("€24.00")
    page.screenshot(path=str(SCREENSHOTS / "billing-portal-subscriptions.png"), full_page=True)

    card.locator("[data-action=change]").click()
    page.wait_for_url(f"**/billing/my/subscriptions/{sub.public_id}/change/")
    page.click(f"label[for='plan-{premium.public_id}']")
    result = page.locator("#preview-result")
    expect(result).to_be_visible()
    expected = proration_for_change(
        Money.of("30.00"), Money.of("60.00"), sub.current_period_start, sub.current_period_end, today
    )
    assert expected.days_remaining > 0
    expect(result).to_have_attribute("data-credit", str(expected.credit.amount))
    expect(result).to_have_attribute("data-charge", str(expected.charge.amount))
    expect(result).to_have_attribute("data-net", str(expected.net.amount))
    expect(result.locator("[data-field=credit]")).to_have_text(f"−€{expected.credit.amount}")
    expect(result.locator("[data-field=charge]")).to_have_text(f"€{expected.charge.amount}")
    expect(result.locator("[data-field=net]")).to_contain_text(f"You pay €{expected.net.amount} more")
    result.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "billing-portal-change-preview.png"), full_page=True)

    page.click("#tab-invoices")
    row = page.locator(f"[data-invoice='{invoice.number}']")
    expect(row).to_contain_text("€36.60")  # 30.00 + 22% VAT
    page.screenshot(path=str(SCREENSHOTS / "billing-portal-invoices.png"), full_page=True)
    row.locator("a.fw-semibold").click()
    expect(page.locator("[data-field=iban]")).to_have_text("IT60X0542811101000000123456")
    expect(page.locator("[data-field=amount]")).to_have_text("€36.60")
    page.screenshot(path=str(SCREENSHOTS / "billing-portal-invoice.png"), full_page=True)
    with page.expect_download() as download_info:
        page.click("#download-pdf")
    download = download_info.value
    assert download.suggested_filename == f"{invoice.number}.pdf"
    assert Path(download.path()).read_bytes().startswith(b"%PDF")


def test_an_analyst_sees_the_revenue_charts(page):
    month = clock.today().replace(day=1)
    first, second = h.account("Anna"), h.account("Bruno")
    h.mrr_history(first, [(month - timedelta(days=40), "100.00"), (month, "130.00")])
    h.mrr_history(second, [(month - timedelta(days=40), "50.00"), (month, "0")])
    h.invoice(
        first,
        issued=month - timedelta(days=40),
        lines=[("100.00", None, None)],
        due=month - timedelta(days=35),
    )
    analyst = user_with_roles("analyst", language="en")
    sign_in(page, analyst.email, DEFAULT_PASSWORD)
    page.goto("/billing/revenue/")
    expect(page.locator("[data-kpi=mrr]")).to_contain_text("130.00")
    for chart in ("chart-movements", "chart-cohorts", "chart-deferred", "chart-ageing"):
        expect(page.locator(f"#{chart} svg")).to_be_visible()
    # The heat map draws one cell per cohort and month offset, the ageing chart one bar per bucket.
    expect(page.locator("#chart-cohorts svg")).to_contain_text("100")
    page.screenshot(path=str(SCREENSHOTS / "billing-revenue-desktop.png"), full_page=True)

"""Customer portal billing pages: own data only, proration preview with exact figures, change,
cancel at period end, invoices with PDF and bank transfer details, statement."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client

from fedele.accounts.tests.factories import user_with_roles
from fedele.billing.models import BillingAccount, Invoice, OneOffCharge, Subscription, SubscriptionChange
from fedele.billing.services.invoicing import invoice_create_draft, invoice_finalise, invoice_line_add
from fedele.billing.tests import analytics_helpers as h
from fedele.billing.tests.factories import BillingAccountFactory, MetricFactory, flat_plan, usage_charge
from fedele.billing.tests.subscription_helpers import billed_subscription, side_effects
from fedele.customers.tests.factories import ContactFactory

pytestmark = pytest.mark.django_db
TODAY = "2026-01-16 10:00 +01:00"


def portal_login(client: Client, account: BillingAccount) -> Any:
    user = user_with_roles("portal_customer")
    ContactFactory(customer=account.customer, portal_user=user)
    client.force_login(user)
    return user


@pytest.fixture
def mine(client: Client) -> dict[str, object]:
    """A portal customer with a billed monthly subscription (30.00, January) and another plan at 60.00."""
    account = BillingAccountFactory(customer__display_name="Giulia Neri")
    current = flat_plan("30.00", name="Basic")
    bigger = flat_plan("60.00", name="Premium")
    sub = billed_subscription(current, account=account, start=date(2026, 1, 1))
    user = portal_login(client, account)
    return {"account": account, "sub": sub, "bigger": bigger, "user": user}


@pytest.fixture
def theirs() -> dict[str, object]:
    account = BillingAccountFactory()
    sub = billed_subscription(flat_plan("99.00"), account=account)
    invoice = finalised_invoice(account, "99.00")
    return {"sub": sub, "invoice": invoice}


def finalised_invoice(account: BillingAccount, amount: str) -> Invoice:
    draft = invoice_create_draft(account=account)
    invoice_line_add(invoice=draft, description="Service", unit_amount=Decimal(amount))
    return invoice_finalise(invoice=draft)


@time_machine.travel(TODAY, tick=False)
def test_home_lists_my_subscriptions_with_usage(client: Client, mine: dict[str, object]) -> None:
    sub = mine["sub"]
    assert isinstance(sub, Subscription)
    metric = MetricFactory(code="calls", name="API calls", unit="call")
    usage_charge(sub.plan_version, metric, unit_amount=Decimal("0.10"))
    h.usage(sub.account, metric, "120", h.rome(2026, 1, 10), sub=sub)
    h.usage(sub.account, metric, "30", h.rome(2026, 1, 12), sub=sub)
    response = client.get("/billing/my/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Basic" in page
    assert f'id="subscription-{sub.public_id}"' in page
    # 150 calls at 0.10 = 15.00 estimated; 15 of 31 days elapsed = 48%.
    assert "<strong>150</strong> call" in page
    assert "€15.00" in page
    assert 'aria-valuenow="48"' in page
    assert "02/01/2026" in page  # next invoice date


@time_machine.travel(TODAY, tick=False)
def test_preview_shows_exact_proration_and_writes_nothing(client: Client, mine: dict[str, object]) -> None:
    sub, bigger = mine["sub"], mine["bigger"]
    assert isinstance(sub, Subscription)
    before = side_effects()
    response = client.post(
        f"/billing/my/subscriptions/{sub.public_id}/change/preview/",
        {"plan": str(bigger.public_id), "quantity": "1", "at": "now"},  # type: ignore[attr-defined]
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200, response.content
    page = response.content.decode()
    # 16 Jan → 1 Feb is 16 of 31 days: credit 30 × 16/31 = 15.48, charge 60 × 16/31 = 30.97, net 15.49.
    assert 'data-net="15.49" data-credit="15.48" data-charge="30.97"' in page
    assert "unused 16 of 31 days" in page
    assert side_effects() == before


@time_machine.travel(TODAY, tick=False)
def test_confirm_change_now_creates_proration_charges(client: Client, mine: dict[str, object]) -> None:
    sub, bigger = mine["sub"], mine["bigger"]
    assert isinstance(sub, Subscription)
    response = client.post(
        f"/billing/my/subscriptions/{sub.public_id}/change/",
        {"plan": str(bigger.public_id), "quantity": "1", "at": "now"},  # type: ignore[attr-defined]
    )
    assert response.status_code == 302
    sub.refresh_from_db()
    assert sub.plan_version_id == bigger.pk  # type: ignore[attr-defined]
    amounts = sorted(OneOffCharge.objects.filter(subscription=sub).values_list("unit_amount", flat=True))
    assert amounts == [Decimal("-15.48"), Decimal("30.97")]
    change = SubscriptionChange.objects.filter(subscription=sub).latest("id")
    assert change.actor_id == mine["user"].pk  # type: ignore[attr-defined]


@time_machine.travel(TODAY, tick=False)
def test_change_at_period_end_is_scheduled(client: Client, mine: dict[str, object]) -> None:
    sub, bigger = mine["sub"], mine["bigger"]
    assert isinstance(sub, Subscription)
    preview = client.post(
        f"/billing/my/subscriptions/{sub.public_id}/change/preview/",
        {"plan": str(bigger.public_id), "quantity": "2", "at": "period_end"},  # type: ignore[attr-defined]
    )
    assert "Nothing to pay now: the new price applies from 02/01/2026." in preview.content.decode()
    response = client.post(
        f"/billing/my/subscriptions/{sub.public_id}/change/",
        {"plan": str(bigger.public_id), "quantity": "2", "at": "period_end"},  # type: ignore[attr-defined]
    )
    assert response.status_code == 302
    sub.refresh_from_db()
    assert sub.pending_change == {"plan_version_id": bigger.pk, "quantity": "2"}  # type: ignore[attr-defined]
    assert not OneOffCharge.objects.filter(subscription=sub).exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"plan": "not-a-plan", "quantity": "1", "at": "now"}, "Choose one of the plans listed."),
        ({"quantity": "0", "at": "now"}, "Enter a quantity between 1 and 100000."),
        ({"quantity": "-3", "at": "now"}, "Enter a quantity between 1 and 100000."),
        ({"quantity": "1e9", "at": "now"}, "Enter a quantity between 1 and 100000."),
        ({"quantity": "abc", "at": "now"}, "Enter a quantity between 1 and 100000."),
        ({"quantity": "2", "at": "tomorrow"}, "Choose when the change applies."),
        ({"quantity": "1", "at": "now"}, "The change leaves the plan and the quantity as they are."),
    ],
)
@time_machine.travel(TODAY, tick=False)
def test_bad_changes_are_refused_and_write_nothing(
    client: Client, mine: dict[str, object], data: dict[str, str], field: str
) -> None:
    sub = mine["sub"]
    assert isinstance(sub, Subscription)
    data = {"plan": str(sub.plan_version.public_id), **data}
    before = side_effects()
    preview = client.post(f"/billing/my/subscriptions/{sub.public_id}/change/preview/", data)
    assert preview.status_code == 422
    assert field in preview.content.decode()
    confirm = client.post(f"/billing/my/subscriptions/{sub.public_id}/change/", data)
    assert confirm.status_code == 422
    assert field in confirm.content.decode()
    assert side_effects() == before


@time_machine.travel(TODAY, tick=False)
def test_cancel_at_period_end(client: Client, mine: dict[str, object]) -> None:
    sub = mine["sub"]
    assert isinstance(sub, Subscription)
    assert client.get(f"/billing/my/subscriptions/{sub.public_id}/cancel/").status_code == 200
    response = client.post(f"/billing/my/subscriptions/{sub.public_id}/cancel/", {"reason": "Too expensive"})
    assert response.status_code == 302
    sub.refresh_from_db()
    assert (sub.cancel_at_period_end, sub.status, sub.cancellation_reason) == (
        True,
        "active",
        "Too expensive",
    )
    home = client.get("/billing/my/", follow=True).content.decode()
    assert "Ends on 02/01/2026: it will not renew." in home
    again = client.post(f"/billing/my/subscriptions/{sub.public_id}/cancel/")
    assert again.status_code == 409


@time_machine.travel(TODAY, tick=False)
def test_invoices_pdf_and_bank_transfer(client: Client, mine: dict[str, object]) -> None:
    account = mine["account"]
    assert isinstance(account, BillingAccount)
    invoice = finalised_invoice(account, "100.00")
    listing = client.get("/billing/my/invoices/").content.decode()
    assert invoice.number is not None
    assert invoice.number in listing and "€122.00" in listing  # 100.00 + 22% VAT
    detail = client.get(f"/billing/my/invoices/{invoice.public_id}/").content.decode()
    assert 'data-field="iban">IT60X0542811101000000123456<' in detail
    assert f"Invoice {invoice.number}" in detail
    pdf = client.get(f"/billing/my/invoices/{invoice.public_id}/pdf/")
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert pdf["Content-Disposition"] == f'attachment; filename="{invoice.number}.pdf"'


@time_machine.travel(TODAY, tick=False)
def test_drafts_are_not_shown(client: Client, mine: dict[str, object]) -> None:
    account = mine["account"]
    assert isinstance(account, BillingAccount)
    draft = invoice_create_draft(account=account)
    assert client.get(f"/billing/my/invoices/{draft.public_id}/").status_code == 404
    assert client.get(f"/billing/my/invoices/{draft.public_id}/pdf/").status_code == 404


@time_machine.travel(TODAY, tick=False)
def test_statement(client: Client, mine: dict[str, object]) -> None:
    account = mine["account"]
    assert isinstance(account, BillingAccount)
    finalised_invoice(account, "100.00")
    page = client.get("/billing/my/statement/").content.decode()
    assert 'data-field="balance">€122.00<' in page
    csv_response = client.get("/billing/my/statement/?format=csv")
    assert csv_response["Content-Type"] == "text/csv; charset=utf-8"
    assert len(csv_response.content.decode().splitlines()) == 2


@time_machine.travel(TODAY, tick=False)
def test_another_customers_objects_are_404(
    client: Client, mine: dict[str, object], theirs: dict[str, object]
) -> None:
    sub, invoice = theirs["sub"], theirs["invoice"]
    assert isinstance(sub, Subscription) and isinstance(invoice, Invoice)
    before = side_effects()
    for url in (
        f"/billing/my/subscriptions/{sub.public_id}/change/",
        f"/billing/my/subscriptions/{sub.public_id}/cancel/",
        f"/billing/my/invoices/{invoice.public_id}/",
        f"/billing/my/invoices/{invoice.public_id}/pdf/",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/billing/my/subscriptions/{sub.public_id}/cancel/").status_code == 404
    assert (
        client.post(
            f"/billing/my/subscriptions/{sub.public_id}/change/preview/",
            {"plan": str(sub.plan_version.public_id), "quantity": "2", "at": "now"},
        ).status_code
        == 404
    )
    assert side_effects() == before
    sub.refresh_from_db()
    assert not sub.cancel_at_period_end
    assert invoice.number is not None
    assert invoice.number not in client.get("/billing/my/invoices/").content.decode()


def test_staff_and_anonymous_users_cannot_open_the_portal(client: Client) -> None:
    assert client.get("/billing/my/").status_code == 302  # to the login page
    client.force_login(user_with_roles("billing_clerk"))
    assert client.get("/billing/my/").status_code == 403


def test_portal_customer_without_billing_account_sees_empty_pages(client: Client) -> None:
    user = user_with_roles("portal_customer")
    ContactFactory(portal_user=user)
    client.force_login(user)
    assert "You have no subscriptions yet." in client.get("/billing/my/").content.decode()
    assert "You have no invoices yet." in client.get("/billing/my/invoices/").content.decode()
    assert client.get("/billing/my/statement/").status_code == 200


@time_machine.travel(TODAY, tick=False)
def test_home_widget_for_portal_customers(client: Client, mine: dict[str, object]) -> None:
    page = client.get("/").content.decode()
    assert 'id="portal-billing-card"' in page
    assert "Next invoice on 02/01/2026" in page


def test_invoice_list_query_count(
    client: Client, mine: dict[str, object], django_assert_max_num_queries: object
) -> None:
    account = mine["account"]
    assert isinstance(account, BillingAccount)
    for _ in range(5):
        finalised_invoice(account, "10.00")
    with django_assert_max_num_queries(12):  # type: ignore[operator]
        response = client.get("/billing/my/invoices/")
    assert response.content.decode().count('data-action="pdf"') == 5


# the portal API ----------------------------------------------------------------------------------

API = "/api/v1/billing/portal"


@pytest.fixture
def api_mine(mine: dict[str, object]) -> dict[str, object]:
    from fedele.accounts.tests.factories import auth_header

    user: Any = mine["user"]
    return {**mine, "headers": auth_header(user)}


@time_machine.travel(TODAY, tick=False)
def test_api_lists_my_subscriptions_and_previews_a_change(
    client: Client, api_mine: dict[str, object]
) -> None:
    sub, bigger, headers = api_mine["sub"], api_mine["bigger"], api_mine["headers"]
    assert isinstance(sub, Subscription) and isinstance(headers, dict)
    listed = client.get(f"{API}/subscriptions", **headers).json()
    assert [(row["number"], row["price_per_period"], row["next_billing_on"]) for row in listed] == [
        (sub.number, "30.00", "2026-02-01")
    ]
    before = side_effects()
    response = client.post(
        f"{API}/subscriptions/{sub.public_id}/preview-change",
        {"plan_version_id": str(bigger.public_id), "at": "now"},  # type: ignore[attr-defined]
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["credit"], body["charge"], body["net"], body["days_remaining"], body["days_in_period"]) == (
        "15.48",
        "30.97",
        "15.49",
        16,
        31,
    )
    assert side_effects() == before


@time_machine.travel(TODAY, tick=False)
def test_api_change_and_cancel(client: Client, api_mine: dict[str, object]) -> None:
    sub, headers = api_mine["sub"], api_mine["headers"]
    assert isinstance(sub, Subscription) and isinstance(headers, dict)
    changed = client.post(
        f"{API}/subscriptions/{sub.public_id}/change",
        {"quantity": "3", "at": "period_end"},
        content_type="application/json",
        **headers,
    )
    assert changed.status_code == 200, changed.content
    sub.refresh_from_db()
    assert sub.pending_change == {"plan_version_id": sub.plan_version_id, "quantity": "3"}
    cancelled = client.post(
        f"{API}/subscriptions/{sub.public_id}/cancel",
        {"reason": "moving"},
        content_type="application/json",
        **headers,
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["cancel_at_period_end"] is True


@time_machine.travel(TODAY, tick=False)
def test_api_refuses_bad_input_and_other_customers(
    client: Client, api_mine: dict[str, object], theirs: dict[str, object]
) -> None:
    sub, headers = api_mine["sub"], api_mine["headers"]
    other_sub, other_invoice = theirs["sub"], theirs["invoice"]
    assert isinstance(sub, Subscription) and isinstance(headers, dict)
    assert isinstance(other_sub, Subscription) and isinstance(other_invoice, Invoice)
    before = side_effects()
    foreign_plan = client.post(
        f"{API}/subscriptions/{sub.public_id}/preview-change",
        {"plan_version_id": str(other_sub.plan_version.public_id)},
        content_type="application/json",
        **headers,
    )
    # The other customer's plan is a plan like any other: sellable, same period and currency.
    assert foreign_plan.status_code == 200
    for payload in ({"quantity": "-1"}, {"quantity": "0"}, {"at": "later"}, {"surprise": 1}):
        response = client.post(
            f"{API}/subscriptions/{sub.public_id}/change", payload, content_type="application/json", **headers
        )
        assert response.status_code == 422, payload
    unknown = client.post(
        f"{API}/subscriptions/{sub.public_id}/change",
        {"plan_version_id": "00000000-0000-0000-0000-000000000000"},
        content_type="application/json",
        **headers,
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["fields"] == {
        "plan_version_id": ["Choose a plan of the same currency and billing period."]
    }
    assert (
        client.post(
            f"{API}/subscriptions/{other_sub.public_id}/cancel",
            {},
            content_type="application/json",
            **headers,
        ).status_code
        == 404
    )
    assert client.get(f"{API}/invoices/{other_invoice.public_id}/pdf", **headers).status_code == 404
    assert client.get(f"{API}/invoices", **headers).json() == {"items": [], "next_cursor": None}
    assert side_effects() == before


@time_machine.travel(TODAY, tick=False)
def test_api_invoices_and_pdf(client: Client, api_mine: dict[str, object]) -> None:
    account, headers = api_mine["account"], api_mine["headers"]
    assert isinstance(account, BillingAccount) and isinstance(headers, dict)
    invoice = finalised_invoice(account, "100.00")
    body = client.get(f"{API}/invoices", **headers).json()
    assert [(row["number"], row["total"], row["amount_due"], row["status"]) for row in body["items"]] == [
        (invoice.number, "122.00", "122.00", "finalised")
    ]
    pdf = client.get(f"{API}/invoices/{invoice.public_id}/pdf", **headers)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_api_is_for_portal_customers_only(client: Client) -> None:
    from fedele.accounts.tests.factories import auth_header

    response = client.get(f"{API}/subscriptions", **auth_header(user_with_roles("billing_clerk")))
    assert response.status_code == 403

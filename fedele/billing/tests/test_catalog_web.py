"""Billing pages for catalog and subscriptions: they render for clerks, refuse others, and their
forms go through the services (tier editor, live proration preview, actions, create, import)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from fedele.accounts.tests.factories import user_with_roles
from fedele.billing.models import Coupon, PlanCharge, PlanVersion, Subscription, SubscriptionAddOn
from fedele.billing.tests.factories import PlanFactory, flat_plan, subscription
from fedele.billing.tests.subscription_helpers import billed_subscription, sibling_version
from fedele.customers.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _only_resolvable_navigation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other areas register their menu entries before their pages exist; keep these tests about ours."""
    from django.urls import NoReverseMatch, reverse

    from fedele.shared import navigation

    for section in navigation.SECTIONS.values():
        kept = []
        for item in section.items:
            try:
                reverse(item.url_name)
                kept.append(item)
            except NoReverseMatch:
                continue
        monkeypatch.setattr(section, "items", kept)


@pytest.fixture
def clerk(client: Client, time_machine) -> Client:
    time_machine.move_to(datetime(2026, 1, 16, 10, tzinfo=UTC), tick=False)
    client.force_login(user_with_roles("billing_clerk"))
    return client


def test_catalog_pages_render_and_create(clerk: Client) -> None:
    version = flat_plan("30.00", code="basic")
    page = clerk.get("/billing/catalog/")
    assert page.status_code == 200 and b"plan-basic" in page.content
    assert (
        clerk.post(
            "/billing/catalog/", {"form": "product", "code": "f", "name": "F", "vat_rate": "0"}
        ).status_code
        == 422
    )
    created = clerk.post(
        "/billing/catalog/",
        {"form": "product", "code": "f", "name": "F", "vat_rate": "0", "vat_nature": "N4"},
    )
    assert created.status_code == 302
    assert clerk.get(f"/billing/catalog/versions/{version.public_id}/").status_code == 200
    assert clerk.get("/billing/coupons/").status_code == 200
    coupon = clerk.post(
        "/billing/coupons/", {"code": "x10", "name": "X", "percent_off": "10", "duration": "once"}
    )
    assert coupon.status_code == 302 and Coupon.objects.get().code == "X10"


def test_tier_editor_adds_a_graduated_charge(clerk: Client) -> None:
    draft = PlanVersion.objects.create(plan=PlanFactory(), version=1, created_at=datetime.now(UTC))
    url = f"/billing/catalog/versions/{draft.public_id}/"
    tiers = [
        {"up_to": 10, "unit_amount": "5", "flat_amount": "0"},
        {"up_to": 5, "unit_amount": "4", "flat_amount": "0"},
    ]
    form = {
        "code": "seats",
        "name": "Seats",
        "kind": "recurring",
        "model": "graduated",
        "tiers": json.dumps(tiers),
    }
    refused = clerk.post(url, form)
    assert refused.status_code == 422 and b"tiers[1].up_to" in refused.content
    tiers[1]["up_to"] = None
    assert clerk.post(url, {**form, "tiers": json.dumps(tiers)}).status_code == 302
    assert PlanCharge.objects.get(plan_version=draft).tiers[1] == {
        "up_to": None,
        "unit_amount": "4",
        "flat_amount": "0",
    }
    assert clerk.post(f"{url}publish/").status_code == 302
    draft.refresh_from_db()
    assert draft.published_at is not None


def test_subscription_pages_and_live_preview(clerk: Client) -> None:
    old = flat_plan("30.00")
    new = sibling_version(old, "60.00")
    sub = billed_subscription(old)
    assert clerk.get("/billing/subscriptions/").status_code == 200
    detail = clerk.get(f"/billing/subscriptions/{sub.public_id}/")
    assert detail.status_code == 200 and b"change-form" in detail.content
    preview = clerk.post(
        f"/billing/subscriptions/{sub.public_id}/preview/", {"plan_version": new.pk, "at": "now"}
    )
    assert preview.status_code == 200
    assert b"15.48" in preview.content and b"30.97" in preview.content and b"15.49" in preview.content
    assert Subscription.objects.get(pk=sub.pk).plan_version_id == old.pk  # the preview changed nothing
    done = clerk.post(
        f"/billing/subscriptions/{sub.public_id}/change/", {"plan_version": new.pk, "at": "now"}
    )
    assert done.status_code == 302 and Subscription.objects.get(pk=sub.pk).plan_version_id == new.pk
    clerk.post(f"/billing/subscriptions/{sub.public_id}/cancel/", {"at": "now"})
    assert Subscription.objects.get(pk=sub.pk).status == "cancelled"


def test_create_subscription_from_a_customer(clerk: Client) -> None:
    version = flat_plan("30.00")
    customer = CustomerFactory()
    form = clerk.get(f"/billing/subscriptions/new/?customer={customer.public_id}")
    assert form.status_code == 200 and customer.display_name.encode() in form.content
    bad = clerk.post(
        "/billing/subscriptions/new/",
        {"customer": str(customer.public_id), "plan_version": version.pk, "quantity": "-1"},
    )
    assert bad.status_code == 422 and Subscription.objects.count() == 0
    good = clerk.post(
        "/billing/subscriptions/new/",
        {"customer": str(customer.public_id), "plan_version": version.pk, "quantity": "2"},
    )
    assert good.status_code == 302 and Subscription.objects.get().quantity == Decimal(2)


def test_import_page_dry_run(clerk: Client) -> None:
    flat_plan("30.00", code="basic")
    content = (
        b"id,customer_email,customer_name,plan,quantity,status,current_period_start,current_period_end\n"
        b"sub_1,anna@example.it,Anna Neri,price_basic,1,active,2026-01-10,2026-02-10\n"
        b"sub_2,bruno@example.it,Bruno,price_x,1,active,2026-01-10,2026-02-10\n"
    )
    response = clerk.post(
        "/billing/subscriptions/import/",
        {
            "file": SimpleUploadedFile("s.csv", content),
            "price_map": '{"price_basic": "basic"}',
            "commit": "0",
        },
    )
    assert response.status_code == 200 and b"import-report" in response.content
    assert Subscription.objects.count() == 0


def test_pages_refuse_users_without_billing(client: Client) -> None:
    client.force_login(user_with_roles("technician"))
    assert client.get("/billing/subscriptions/").status_code == 403
    assert client.get("/billing/catalog/").status_code == 403


def test_addons_card_adds_and_removes(clerk: Client) -> None:
    sub = subscription(flat_plan("30.00"), start=date(2026, 1, 1))
    addon = flat_plan("6.20", name="IP statico", is_addon=True)
    page = clerk.get(f"/billing/subscriptions/{sub.public_id}/").content.decode()
    assert 'id="addons"' in page and "IP statico" in page
    url = f"/billing/subscriptions/{sub.public_id}/addon/"
    assert clerk.post(url, {"plan_version": str(addon.pk), "quantity": "2"}).status_code == 302
    row = SubscriptionAddOn.objects.get()
    assert (row.plan_version_id, row.quantity, row.removed_on) == (addon.pk, Decimal(2), None)
    bad = clerk.post(f"/billing/subscriptions/{sub.public_id}/remove-addon/", {"addon": "not-a-uuid"})
    assert bad.status_code == 302 and SubscriptionAddOn.objects.get().removed_on is None
    clerk.post(f"/billing/subscriptions/{sub.public_id}/remove-addon/", {"addon": str(row.public_id)})
    assert SubscriptionAddOn.objects.get().removed_on is not None

"""Subscriptions API: create, list with filters, detail, preview (staff and the portal owner), change,
lifecycle actions; scoping (404 for others' subscriptions), permissions and the error envelope."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.billing.models import OneOffCharge, Subscription
from fedele.billing.tests.factories import BillingAccountFactory, flat_plan, subscription
from fedele.billing.tests.subscription_helpers import billed_subscription, sibling_version, side_effects
from fedele.customers.tests.factories import ContactFactory, CustomerFactory

pytestmark = pytest.mark.django_db
BASE = "/api/v1/billing/subscriptions"
JAN_16 = datetime(2026, 1, 16, 10, 0, tzinfo=UTC)


def post(client: Client, path: str, body: Any, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(path, json.dumps(body), content_type="application/json", **headers)


@pytest.fixture
def clerk() -> dict[str, str]:
    return auth_header(user_with_roles("billing_clerk"))


def test_preview_change_returns_the_acceptance_figures(client: Client, clerk, time_machine) -> None:
    time_machine.move_to(JAN_16, tick=False)
    old = flat_plan("30.00")
    new = sibling_version(old, "60.00")
    sub = billed_subscription(old)
    before = side_effects()
    response = post(
        client, f"{BASE}/{sub.public_id}/preview-change", {"plan_version_id": str(new.public_id)}, clerk
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["credit"], body["charge"], body["net"]) == ("15.48", "30.97", "15.49")
    assert (body["days_remaining"], body["days_in_period"]) == (16, 31)
    assert (body["current_recurring"], body["new_recurring"], body["effective_on"]) == (
        "30.00",
        "60.00",
        "2026-01-16",
    )
    assert side_effects()["changes"] == before["changes"] and OneOffCharge.objects.count() == 0


def test_portal_customer_previews_own_subscription_only(client: Client, time_machine) -> None:
    time_machine.move_to(JAN_16, tick=False)
    old = flat_plan("30.00")
    new = sibling_version(old, "60.00")
    customer = CustomerFactory()
    portal_user = user_with_roles("portal_customer")
    ContactFactory(customer=customer, portal_user=portal_user)
    own = billed_subscription(old, account=BillingAccountFactory(customer=customer))
    other = billed_subscription(old)
    headers = auth_header(portal_user)
    body = {"plan_version_id": str(new.public_id)}
    assert post(client, f"{BASE}/{own.public_id}/preview-change", body, headers).json()["net"] == "15.49"
    assert post(client, f"{BASE}/{other.public_id}/preview-change", body, headers).status_code == 404
    assert client.get(f"{BASE}/{other.public_id}", **headers).status_code == 404
    # Their own subscription: visible, but changing it is for billing staff.
    assert client.get(f"{BASE}/{own.public_id}", **headers).status_code == 200
    assert post(client, f"{BASE}/{own.public_id}/change", body, headers).status_code == 403
    listed = client.get(BASE, **headers).json()["items"]
    assert [row["id"] for row in listed] == [str(own.public_id)]


def test_change_through_the_api_books_proration(client: Client, clerk, time_machine) -> None:
    time_machine.move_to(JAN_16, tick=False)
    old = flat_plan("30.00")
    new = sibling_version(old, "60.00")
    sub = billed_subscription(old)
    response = post(client, f"{BASE}/{sub.public_id}/change", {"plan_version_id": str(new.public_id)}, clerk)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["plan_code"] == new.plan.code and body["mrr"] == "60.00"
    assert body["history"][0]["kind"] == "plan_changed"
    assert (body["history"][0]["proration_credit"], body["history"][0]["proration_charge"]) == (
        "15.48",
        "30.97",
    )
    amounts = sorted(OneOffCharge.objects.values_list("unit_amount", flat=True))
    assert amounts == [Decimal("-15.48"), Decimal("30.97")]


def test_create_subscription_and_errors(client: Client, clerk, time_machine) -> None:
    time_machine.move_to(JAN_16, tick=False)
    version = flat_plan("30.00")
    customer = CustomerFactory()
    body = {
        "customer_id": str(customer.public_id),
        "plan_version_id": str(version.public_id),
        "quantity": "2",
    }
    response = post(client, BASE, body, clerk)
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["status"], created["quantity"], created["next_billing_on"]) == (
        "active",
        "2.000000",
        "2026-01-16",
    )
    assert created["history"][0]["kind"] == "created"
    before = side_effects()
    bad_quantity = post(client, BASE, {**body, "quantity": "-1"}, clerk)
    assert bad_quantity.status_code == 422
    assert bad_quantity.json()["error"]["fields"]["quantity"] == ["must be zero or more."]
    unknown = post(client, BASE, {**body, "plan_version_id": "00000000-0000-0000-0000-000000000001"}, clerk)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "plan_version_not_found"
    extra = post(client, BASE, {**body, "colour": "red"}, clerk)
    assert extra.status_code == 422 and extra.json()["error"]["fields"]["colour"] == ["Unknown field."]
    usd = flat_plan("30.00", currency="USD")
    mismatch = post(client, BASE, {**body, "plan_version_id": str(usd.public_id)}, clerk)
    assert mismatch.status_code == 422 and mismatch.json()["error"]["code"] == "currency_mismatch"
    ended = post(client, BASE, {**body, "term_end": "2026-01-01"}, clerk)
    assert ended.status_code == 422 and "term_end" in ended.json()["error"]["fields"]
    assert side_effects() == before


def test_permissions_and_scopes(client: Client, time_machine) -> None:
    time_machine.move_to(JAN_16, tick=False)
    sub = billed_subscription(flat_plan("30.00"))
    analyst = auth_header(user_with_roles("analyst"))
    assert client.get(f"{BASE}/{sub.public_id}", **analyst).status_code == 200
    assert post(client, f"{BASE}/{sub.public_id}/cancel", {}, analyst).status_code == 403
    read_only = auth_header(user_with_roles("billing_clerk"), scopes=("read",))
    response = post(client, f"{BASE}/{sub.public_id}/cancel", {}, read_only)
    assert response.status_code == 403 and response.json()["error"]["code"] == "insufficient_scope"
    technician = auth_header(user_with_roles("technician"))
    assert client.get(BASE, **technician).status_code == 403
    assert client.get(f"{BASE}/not-a-uuid", **analyst).status_code == 422


def test_lifecycle_actions(client: Client, clerk, time_machine) -> None:
    time_machine.move_to(JAN_16, tick=False)
    sub = billed_subscription(flat_plan("30.00"))
    path = f"{BASE}/{sub.public_id}"
    scheduled = post(client, f"{path}/cancel", {"reason": "too expensive"}, clerk).json()
    assert scheduled["cancel_at_period_end"] is True and scheduled["status"] == "active"
    assert post(client, f"{path}/cancel", {}, clerk).status_code == 409
    assert post(client, f"{path}/uncancel", {}, clerk).json()["cancel_at_period_end"] is False
    paused = post(client, f"{path}/pause", {"resume_on": "2026-03-01"}, clerk).json()
    assert (paused["status"], paused["resume_on"], paused["next_billing_on"]) == (
        "paused",
        "2026-03-01",
        None,
    )
    resumed = post(client, f"{path}/resume", {}, clerk).json()
    assert (resumed["status"], resumed["current_period_start"]) == ("active", "2026-01-16")
    cancelled = post(client, f"{path}/cancel", {"at": "now"}, clerk).json()
    assert cancelled["status"] == "cancelled" and cancelled["ended_on"] == "2026-01-16"
    reactivated = post(client, f"{path}/reactivate", {}, clerk).json()
    assert reactivated["status"] == "active" and reactivated["history"][0]["kind"] == "reactivated"
    scheduled_change = post(client, f"{path}/change", {"quantity": "3", "at": "period_end"}, clerk).json()
    assert scheduled_change["pending_change"]["quantity"] == "3"
    assert post(client, f"{path}/unschedule-change", {}, clerk).json()["pending_change"] is None


def test_list_filters_and_query_count(client: Client, clerk, time_machine) -> None:
    time_machine.move_to(JAN_16, tick=False)
    basic = flat_plan("30.00", code="basic")
    pro = flat_plan("60.00", code="pro")
    subs = [billed_subscription(basic) for _ in range(3)] + [billed_subscription(pro) for _ in range(2)]
    Subscription.objects.filter(pk=subs[0].pk).update(status="paused")
    assert len(client.get(BASE, **clerk).json()["items"]) == 5
    assert len(client.get(f"{BASE}?plan=pro", **clerk).json()["items"]) == 2
    assert len(client.get(f"{BASE}?status=paused", **clerk).json()["items"]) == 1
    customer = subs[1].account.customer.public_id
    only = client.get(f"{BASE}?customer={customer}", **clerk).json()["items"]
    assert [row["number"] for row in only] == [subs[1].number]
    first = client.get(f"{BASE}?limit=2&ordering=number", **clerk).json()
    second = client.get(f"{BASE}?limit=2&ordering=number&cursor={first['next_cursor']}", **clerk).json()
    assert [r["number"] for r in first["items"] + second["items"]] == sorted(s.number for s in subs)[:4]
    with CaptureQueriesContext(connection) as queries:
        assert client.get(BASE, **clerk).status_code == 200
    fixed = len(queries)
    billed_subscription(pro)
    with CaptureQueriesContext(connection) as queries:
        client.get(BASE, **clerk)
    assert len(queries) == fixed  # no query per row


def test_addons_through_the_api(client: Client, clerk, time_machine) -> None:
    time_machine.move_to("2026-01-01 09:00:00+00:00", tick=False)
    sub = subscription(flat_plan("30.00"), start=date(2026, 1, 1))
    addon = flat_plan("6.20", code="ip-statico-api", name="IP statico", is_addon=True)
    url = f"{BASE}/{sub.public_id}/addons"
    refused = post(client, url, {"plan_version_id": str(sub.plan_version.public_id)}, clerk)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_addon"
    assert (
        post(client, url, {"plan_version_id": str(addon.public_id), "quantity": "-1"}, clerk).status_code
        == 422
    )
    added = post(client, url, {"plan_version_id": str(addon.public_id), "quantity": "2"}, clerk)
    assert added.status_code == 200, added.content
    rows = added.json()["addons"]
    assert [(row["plan_code"], row["quantity"], row["removed_on"]) for row in rows] == [
        ("ip-statico-api", "2.000000", None)
    ]
    assert added.json()["mrr"] == "36.20"  # 30.00 + 6.20: a flat fee is per add-on, whatever the quantity
    removed = post(client, f"{url}/{rows[0]['id']}/remove", {}, clerk)
    assert removed.status_code == 200
    assert removed.json()["addons"][0]["removed_on"] == "2026-01-01"
    assert post(client, f"{url}/{rows[0]['id']}/remove", {}, clerk).status_code == 409
    assert post(client, f"{url}/00000000-0000-0000-0000-000000000000/remove", {}, clerk).status_code == 404

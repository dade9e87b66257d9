"""Usage API: batch and CSV ingest, current usage for clerks and portal customers (scoped)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.test import Client

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.billing.models import UsageEvent
from fedele.billing.tests.orders_helpers import event, metered_subscription
from fedele.customers.tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 20, 10, 0, tzinfo=UTC)
URL = "/api/v1/billing/usage/events"


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def _event(sub_id: str, metric: str, external_id: str, quantity: str = "1") -> dict[str, str]:
    return {
        "external_id": external_id,
        "subscription": sub_id,
        "metric": metric,
        "quantity": quantity,
        "timestamp": "2026-01-20T09:00:00Z",
    }


def test_batch_ingest_counts_accepted_duplicates_and_rejects() -> None:
    sub, metric = metered_subscription()
    headers = auth_header(user_with_roles("billing_clerk"))
    events = [_event(str(sub.public_id), metric.code, f"e{i}") for i in range(3)]
    events.append(_event(str(sub.public_id), metric.code, "e0"))
    events.append(_event(str(sub.public_id), metric.code, "bad", "-3"))
    client = Client()
    response = client.post(URL, {"events": events}, content_type="application/json", **headers)
    assert response.status_code == 422
    body = response.json()["error"]
    assert body["code"] == "usage_rejected"
    assert body["fields"] == {"events[4]": ["quantity: must not be negative (got -3)."]}
    assert UsageEvent.objects.count() == 0
    response = client.post(
        URL, {"events": events, "mode": "good_rows"}, content_type="application/json", **headers
    )
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 3,
        "duplicates": 1,
        "rejected": [
            {
                "index": 4,
                "reason": "quantity: must not be negative (got -3).",
                "fields": {"quantity": ["must not be negative (got -3)."]},
            }
        ],
    }


def test_ingest_needs_write_scope_and_manage_permission() -> None:
    sub, metric = metered_subscription()
    body = {"events": [_event(str(sub.public_id), metric.code, "x")]}
    client = Client()
    read_only = auth_header(user_with_roles("billing_clerk"), scopes=("read",))
    response = client.post(URL, body, content_type="application/json", **read_only)
    assert response.status_code == 403
    # analysts may view billing but not manage it (the agent role is not used here: see the report,
    # roles.extend() mutates the CUSTOMER_WRITE set the agent role shares with the billing clerk)
    viewer = auth_header(user_with_roles("analyst"))
    response = client.post(URL, body, content_type="application/json", **viewer)
    assert response.status_code == 403
    assert UsageEvent.objects.count() == 0


def test_csv_upload_reports_lines() -> None:
    sub, metric = metered_subscription()
    customer = sub.account.customer.public_id
    content = (
        "customer,metric,quantity,timestamp,external_id\n"
        f"{customer},{metric.code},3,2026-01-19T08:00:00Z,r1\n"
        f"{customer},{metric.code},x,2026-01-19T08:00:00Z,r2\n"
    ).encode()
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = Client().post(
        f"{URL}/csv",
        {"file": SimpleUploadedFile("usage.csv", content, "text/csv"), "mode": "good_rows"},
        **auth_header(user_with_roles("billing_clerk")),
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert [(r["index"], r["reason"]) for r in response.json()["rejected"]] == [
        (3, "quantity: 'x' is not a number.")
    ]


def test_current_usage_for_clerk_and_owning_portal_customer_only() -> None:
    sub, metric = metered_subscription(unit_amount="0.25")
    event(sub, metric, "10", datetime(2026, 1, 3, tzinfo=UTC))
    event(sub, metric, "3", datetime(2026, 1, 4, tzinfo=UTC))
    url = f"/api/v1/billing/subscriptions/{sub.public_id}/usage"
    client = Client()
    response = client.get(url, **auth_header(user_with_roles("analyst")))
    assert response.status_code == 200
    body = response.json()
    assert body["estimated_total"] == "3.25"
    assert body["metrics"] == [
        {
            "metric": metric.code,
            "name": metric.name,
            "unit": "unit",
            "aggregation": "sum",
            "value": "13",
            "estimated_amount": "3.25",
        }
    ]
    assert [(d["day"], d["value"]) for d in body["daily"]] == [("2026-01-03", "10"), ("2026-01-04", "3")]

    owner = user_with_roles("portal_customer")
    ContactFactory(customer=sub.account.customer, portal_user=owner)
    assert client.get(url, **auth_header(owner)).status_code == 200
    stranger = user_with_roles("portal_customer")
    other_sub, _ = metered_subscription()
    ContactFactory(customer=other_sub.account.customer, portal_user=stranger)
    response = client.get(url, **auth_header(stranger))
    assert response.status_code == 404
    assert Decimal(
        client.get(
            f"/api/v1/billing/subscriptions/{other_sub.public_id}/usage", **auth_header(stranger)
        ).json()["estimated_total"]
    ) == Decimal("0.00")

"""Quotes, orders, provisioning steps and entitlements through the API, and the public accept link."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.billing.models import (
    Coupon,
    Entitlement,
    OneOffCharge,
    Order,
    PlanVersion,
    ProvisioningStep,
    Quote,
    Subscription,
)
from fedele.billing.services.provisioning import StepSpec, register_kind
from fedele.billing.services.quotes import accept_token
from fedele.billing.tests.factories import ProductFactory
from fedele.billing.tests.test_orders import seat_plan
from fedele.customers.tests.factories import ContactFactory, CustomerFactory
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
BASE = "/api/v1/billing"


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def clerk() -> dict[str, str]:
    return auth_header(user_with_roles("billing_clerk"))


def _quote_body(customer_id: str, version: PlanVersion, product_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "valid_until": "2026-03-31",
        "discount_percent": "2.5",
        "lines": [
            {"plan_version_id": str(version.public_id), "quantity": "2"},
            {"product_id": product_id, "unit_amount": "99.99", "discount_percent": "33.33"},
        ],
        **extra,
    }


def _post(client: Client, url: str, body: Any, headers: dict[str, str]) -> Any:
    return client.post(url, body, content_type="application/json", **headers)


def test_quote_lifecycle_create_update_send_accept(
    clerk: dict[str, str], django_capture_on_commit_callbacks: Any
) -> None:
    client = Client()
    customer = CustomerFactory(language="en", email="buyer@example.it")
    version = seat_plan()
    product = ProductFactory(name="Installation")
    response = _post(
        client, f"{BASE}/quotes", _quote_body(str(customer.public_id), version, str(product.public_id)), clerk
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["number"], body["status"], body["language"]) == ("Q-2026-000001", "draft", "en")
    assert (body["subtotal"], body["discount_amount"], body["total"]) == ("141.66", "3.54", "138.12")
    assert [(line["kind"], line["amount"]) for line in body["lines"]] == [
        ("plan", "25.00"),
        ("setup_fee", "50.00"),
        ("product", "66.66"),
    ]
    quote_id = body["id"]

    # update while draft: one seat more, no quote discount -> 37.50 + 50.00 + 66.66
    patch = client.patch(
        f"{BASE}/quotes/{quote_id}",
        {
            "discount_percent": "0",
            "lines": [
                {"plan_version_id": str(version.public_id), "quantity": "3"},
                {"product_id": str(product.public_id), "unit_amount": "99.99", "discount_percent": "33.33"},
            ],
        },
        content_type="application/json",
        **clerk,
    )
    assert patch.status_code == 200, patch.content
    assert (patch.json()["subtotal"], patch.json()["discount_amount"], patch.json()["total"]) == (
        "154.16",
        "0.00",
        "154.16",
    )

    with django_capture_on_commit_callbacks(execute=True):
        sent = _post(client, f"{BASE}/quotes/{quote_id}/send", {}, clerk)
    assert sent.status_code == 200, sent.content
    assert sent.json()["status"] == "sent"
    assert sent.json()["sent_to"] == "buyer@example.it"
    assert sent.json()["accept_url"].startswith("http://testserver/billing/q/")
    assert [m.to for m in mail.outbox] == [["buyer@example.it"]]
    assert sent.json()["accept_url"] in mail.outbox[0].body
    assert mail.outbox[0].subject == "Quote Q-2026-000001 from fedele S.r.l."
    assert "154.16 EUR excluding VAT, valid until March 31, 2026." in mail.outbox[0].body

    accepted = _post(client, f"{BASE}/quotes/{quote_id}/accept", {"start_on": "2026-03-15"}, clerk)
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["status"] == "accepted"
    order = Order.objects.get()
    assert str(order.public_id) == accepted.json()["order_id"]
    assert (order.total, order.status) == (Decimal("154.16"), "completed")
    subscription = Subscription.objects.get(account__customer=customer)
    assert (subscription.quantity, subscription.started_on.isoformat()) == (Decimal(3), "2026-03-15")
    # a decided quote cannot change any more
    again = client.patch(
        f"{BASE}/quotes/{quote_id}", {"notes": "x"}, content_type="application/json", **clerk
    )
    assert again.status_code == 409
    assert _post(client, f"{BASE}/quotes/{quote_id}/decline", {}, clerk).status_code == 409


def test_bad_quote_input_writes_nothing(clerk: dict[str, str]) -> None:
    client = Client()
    customer = CustomerFactory()
    version = seat_plan()
    product = ProductFactory()
    body = _quote_body(str(customer.public_id), version, str(product.public_id))
    body["lines"][1]["unit_amount"] = "-1"
    body["lines"].append({"product_id": "00000000-0000-0000-0000-000000000000", "unit_amount": "1"})
    response = _post(client, f"{BASE}/quotes", body, clerk)
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"lines[2].product_id": ["not found."]}
    body["lines"].pop()
    response = _post(client, f"{BASE}/quotes", body, clerk)
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"lines[1].unit_amount": ["must not be negative."]}
    body["lines"][1]["unit_amount"] = "1"
    body["valid_until"] = "2026-03-09"
    response = _post(client, f"{BASE}/quotes", body, clerk)
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"valid_until": ["must be today or later."]}
    body["valid_until"] = "2026-03-31"
    body["surprise"] = 1
    assert _post(client, f"{BASE}/quotes", body, clerk).status_code == 422
    assert Quote.objects.count() == 0
    assert not AuditLog.objects.filter(action__startswith="billing.quote").exists()


def test_permissions_scope_and_portal_visibility(clerk: dict[str, str]) -> None:
    client = Client()
    customer = CustomerFactory()
    version = seat_plan()
    product = ProductFactory()
    body = _quote_body(str(customer.public_id), version, str(product.public_id))
    read_only = auth_header(user_with_roles("billing_clerk"), scopes=("read",))
    assert _post(client, f"{BASE}/quotes", body, read_only).status_code == 403
    analyst = auth_header(user_with_roles("analyst"))
    assert _post(client, f"{BASE}/quotes", body, analyst).status_code == 403
    assert Quote.objects.count() == 0
    quote_id = _post(client, f"{BASE}/quotes", body, clerk).json()["id"]
    assert client.get(f"{BASE}/quotes/{quote_id}", **analyst).status_code == 200

    owner = user_with_roles("portal_customer")
    ContactFactory(customer=customer, portal_user=owner)
    stranger = user_with_roles("portal_customer")
    ContactFactory(customer=CustomerFactory(), portal_user=stranger)
    # a draft is not shown to the customer yet
    assert client.get(f"{BASE}/quotes/{quote_id}", **auth_header(owner)).status_code == 404
    assert (
        _post(client, f"{BASE}/quotes/{quote_id}/send", {"to_email": "a@example.it"}, clerk).status_code
        == 200
    )
    assert client.get(f"{BASE}/quotes/{quote_id}", **auth_header(owner)).status_code == 200
    assert client.get(f"{BASE}/quotes", **auth_header(owner)).json()["items"][0]["id"] == quote_id
    assert client.get(f"{BASE}/quotes/{quote_id}", **auth_header(stranger)).status_code == 404
    assert client.get(f"{BASE}/quotes", **auth_header(stranger)).json()["items"] == []
    pdf = client.get(f"{BASE}/quotes/{quote_id}/pdf", **auth_header(owner))
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert client.get(f"{BASE}/quotes/{quote_id}/pdf", **auth_header(stranger)).status_code == 404
    # a customer cannot record decisions through the clerk endpoints
    assert _post(client, f"{BASE}/quotes/{quote_id}/accept", {}, auth_header(owner)).status_code == 403
    assert Quote.objects.get().status == "sent"


def test_public_link_accept_once_tampered_and_expired(clerk: dict[str, str]) -> None:
    client = Client()
    customer = CustomerFactory()
    version = seat_plan()
    product = ProductFactory()
    quote_id = _post(
        client, f"{BASE}/quotes", _quote_body(str(customer.public_id), version, str(product.public_id)), clerk
    ).json()["id"]
    quote = Quote.objects.get(public_id=quote_id)
    token = accept_token(quote)
    draft = client.get(f"{BASE}/public/quotes/{token}")
    assert (draft.status_code, draft.json()["error"]["code"]) == (400, "link_invalid")
    _post(client, f"{BASE}/quotes/{quote_id}/send", {"to_email": "a@example.it"}, clerk)

    shown = client.get(f"{BASE}/public/quotes/{token}")
    assert shown.status_code == 200
    assert (shown.json()["number"], shown.json()["total"], shown.json()["status"]) == (
        "Q-2026-000001",
        "138.12",
        "sent",
    )
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    response = client.post(f"{BASE}/public/quotes/{tampered}/accept")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "link_invalid")
    assert Order.objects.count() == 0

    accepted = client.post(f"{BASE}/public/quotes/{token}/accept")
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["status"] == "accepted"
    used = client.post(f"{BASE}/public/quotes/{token}/accept")
    assert (used.status_code, used.json()["error"]["code"]) == (410, "link_used")
    declined = client.post(f"{BASE}/public/quotes/{token}/decline", {}, content_type="application/json")
    assert declined.status_code == 410
    assert Order.objects.count() == 1
    assert Subscription.objects.count() == 1

    other_id = _post(
        client, f"{BASE}/quotes", _quote_body(str(customer.public_id), version, str(product.public_id)), clerk
    ).json()["id"]
    _post(client, f"{BASE}/quotes/{other_id}/send", {"to_email": "a@example.it"}, clerk)
    other_token = accept_token(Quote.objects.get(public_id=other_id))
    with time_machine.travel(
        datetime(2026, 3, 31, 22, 0, tzinfo=UTC), tick=False
    ):  # 00:00 on April 1st in Rome
        expired = client.post(f"{BASE}/public/quotes/{other_token}/accept")
    assert (expired.status_code, expired.json()["error"]["code"]) == (410, "link_expired")
    response = client.post(
        f"{BASE}/public/quotes/{other_token}/decline", {"note": "Too dear"}, content_type="application/json"
    )
    assert response.status_code == 200
    assert Quote.objects.get(public_id=other_id).decision_note == "Too dear"
    assert Order.objects.count() == 1


def _order_body(customer_id: str, version: PlanVersion, product_id: str, reference: str) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "external_reference": reference,
        "start_on": "2026-03-10",
        "discount_percent": "5",
        "lines": [
            {"plan_version_id": str(version.public_id), "quantity": "4", "discount_percent": "10"},
            {"product_id": product_id, "quantity": "2", "unit_amount": "39.90"},
        ],
    }


def test_order_post_is_idempotent_on_external_reference(
    clerk: dict[str, str], django_assert_max_num_queries: Any
) -> None:
    client = Client()
    customer = CustomerFactory()
    version = seat_plan()
    router = ProductFactory(name="Router")
    body = _order_body(str(customer.public_id), version, str(router.public_id), "crm-881")
    first = _post(client, f"{BASE}/orders", body, clerk)
    assert first.status_code == 201, first.content
    order = first.json()
    assert (order["number"], order["status"], order["total"]) == ("ORD-2026-000001", "completed", "161.31")
    assert [(line["kind"], line["amount"], line["status"]) for line in order["lines"]] == [
        ("plan", "42.75", "completed"),
        ("setup_fee", "42.75", "completed"),
        ("product", "75.81", "completed"),
    ]
    assert order["lines"][0]["subscription_number"] == Subscription.objects.get().number
    assert [step["name"] for step in order["lines"][0]["steps"]] == ["allocate_seat", "activate"]
    assert {step["status"] for step in order["lines"][0]["steps"]} == {"succeeded"}

    retried = _post(client, f"{BASE}/orders", body, clerk)
    assert retried.status_code == 200
    assert retried.json()["id"] == order["id"]
    changed = dict(body, lines=[{"product_id": str(router.public_id), "unit_amount": "1"}])
    refused = _post(client, f"{BASE}/orders", changed, clerk)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "external_reference_reused"
    assert (Order.objects.count(), Subscription.objects.count(), Coupon.objects.count()) == (1, 1, 1)
    assert OneOffCharge.objects.count() == 2

    detail = client.get(f"{BASE}/orders/{order['id']}", **clerk)
    assert detail.json() == order
    for n in range(3):
        _post(
            client,
            f"{BASE}/orders",
            _order_body(str(customer.public_id), version, str(router.public_id), f"r{n}"),
            clerk,
        )
    with django_assert_max_num_queries(12):
        listed = client.get(f"{BASE}/orders?limit=2", **clerk)
    assert [item["number"] for item in listed.json()["items"]] == ["ORD-2026-000004", "ORD-2026-000003"]
    page_two = client.get(f"{BASE}/orders?limit=2&cursor={listed.json()['next_cursor']}", **clerk).json()
    assert [item["number"] for item in page_two["items"]] == ["ORD-2026-000002", "ORD-2026-000001"]
    assert page_two["next_cursor"] is None
    with django_assert_max_num_queries(12):
        entitlements = client.get(f"{BASE}/entitlements?customer={customer.public_id}", **clerk).json()
    assert [(e["kind"], e["status"], e["identifier"]) for e in entitlements["items"]] == [
        ("licence_seat", "active", f"LIC-2026-00000{n}") for n in (4, 3, 2, 1)
    ]


def test_manual_step_mark_done_and_failed_step_retry(clerk: dict[str, str]) -> None:
    register_kind(
        "test_manual_then_http",
        [StepSpec("survey", "manual"), StepSpec("notify", "http", {"url": "http://127.0.0.1:9/hook"})],
    )
    client = Client()
    customer = CustomerFactory()
    product = ProductFactory(name="Fibre", provisioning_kind="test_manual_then_http")
    body = {
        "customer_id": str(customer.public_id),
        "lines": [{"product_id": str(product.public_id), "unit_amount": "100"}],
    }
    order = _post(client, f"{BASE}/orders", body, clerk).json()
    assert order["status"] == "fulfilling"
    survey, notify = order["lines"][0]["steps"]
    assert (survey["status"], notify["status"]) == ("pending", "pending")
    # the http step cannot be marked done by hand; the manual one can
    refused = _post(client, f"{BASE}/provisioning-steps/{notify['id']}/complete", {}, clerk)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "step_not_manual")
    done = _post(client, f"{BASE}/provisioning-steps/{survey['id']}/complete", {"identifier": "SV-1"}, clerk)
    assert done.status_code == 200, done.content
    assert (done.json()["status"], done.json()["result"]) == ("succeeded", {"identifier": "SV-1"})
    step = ProvisioningStep.objects.get(public_id=notify["id"])
    # the private target is refused: the step failed with a reason and waits for its backoff
    assert (step.status, step.attempts) == ("failed", 1)
    assert step.last_error
    retried = _post(client, f"{BASE}/provisioning-steps/{notify['id']}/retry", {}, clerk)
    assert retried.status_code == 200
    assert (retried.json()["status"], retried.json()["attempts"]) == ("failed", 2)
    assert Entitlement.objects.get().status != "active"
    stranger = user_with_roles("portal_customer")
    ContactFactory(customer=CustomerFactory(), portal_user=stranger)
    assert (
        _post(
            client, f"{BASE}/provisioning-steps/{notify['id']}/retry", {}, auth_header(stranger)
        ).status_code
        == 404
    )
    assert client.get(f"{BASE}/orders/{order['id']}", **auth_header(stranger)).status_code == 404

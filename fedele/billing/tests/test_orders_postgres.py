"""Orders on PostgreSQL: concurrent POSTs with the same external reference make one order."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.billing.models import BillingAccount, OneOffCharge, Order, OrderLine, Subscription
from fedele.billing.tests.factories import ProductFactory
from fedele.billing.tests.test_orders import seat_plan
from fedele.customers.tests.factories import CustomerFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def _race(bodies: list[dict[str, Any]], headers: dict[str, str]) -> list[tuple[int, dict[str, Any]]]:
    """POST every body at the same moment from its own thread (own connection); (status, json)."""
    results: list[tuple[int, dict[str, Any]]] = []
    barrier = threading.Barrier(len(bodies))

    def worker(body: dict[str, Any]) -> None:
        try:
            client = Client()
            barrier.wait()
            response = client.post("/api/v1/billing/orders", body, content_type="application/json", **headers)
            results.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _body(customer: str, version_id: str, product_id: str, unit: str = "39.90") -> dict[str, Any]:
    return {
        "customer_id": customer,
        "external_reference": "shop-77",
        "start_on": "2026-03-10",
        "lines": [
            {"plan_version_id": version_id, "quantity": "3"},
            {"product_id": product_id, "unit_amount": unit},
        ],
    }


def test_two_concurrent_posts_with_the_same_reference_make_one_order() -> None:
    with time_machine.travel(NOW, tick=False):
        customer = CustomerFactory()
        version = seat_plan()
        router = ProductFactory(name="Router")
        headers = auth_header(user_with_roles("billing_clerk"))
        body = _body(str(customer.public_id), str(version.public_id), str(router.public_id))
        results = _race([body, body], headers)
    assert sorted(status for status, _ in results) == [200, 201], results
    assert len({payload["id"] for _, payload in results}) == 1
    assert Order.objects.count() == 1
    assert BillingAccount.objects.filter(customer=customer).count() == 1
    assert Subscription.objects.count() == 1
    assert OrderLine.objects.count() == 3  # plan, setup fee, router
    assert OneOffCharge.objects.count() == 1  # the router; the setup fee is billed with the subscription
    order = Order.objects.get()
    assert (order.number, order.status, str(order.total)) == ("ORD-2026-000001", "completed", "127.40")


def test_concurrent_posts_with_the_same_reference_but_other_lines_refuse_one() -> None:
    with time_machine.travel(NOW, tick=False):
        customer = CustomerFactory()
        version = seat_plan()
        router = ProductFactory(name="Router")
        headers = auth_header(user_with_roles("billing_clerk"))
        first = _body(str(customer.public_id), str(version.public_id), str(router.public_id))
        second = _body(str(customer.public_id), str(version.public_id), str(router.public_id), unit="10.00")
        results = _race([first, second], headers)
    assert sorted(status for status, _ in results) == [201, 409], results
    refused = next(payload for status, payload in results if status == 409)
    assert refused["error"]["code"] == "external_reference_reused"
    assert (Order.objects.count(), Subscription.objects.count()) == (1, 1)

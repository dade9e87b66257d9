"""Usage pages: metered subscriptions, current usage with the daily chart, and the CSV upload."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from fedele.accounts.tests.factories import user_with_roles
from fedele.billing.models import UsageEvent
from fedele.billing.tests.factories import flat_plan, subscription
from fedele.billing.tests.orders_helpers import event, metered_subscription

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 1, 20, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def clerk() -> Client:
    client = Client()
    client.force_login(user_with_roles("billing_clerk"))
    return client


def test_usage_home_lists_only_metered_live_subscriptions(clerk: Client) -> None:
    metered, _metric = metered_subscription()
    flat = subscription(flat_plan("9.00"))
    cancelled, _other = metered_subscription(status="cancelled")
    page = clerk.get("/billing/usage/").content.decode()
    assert metered.number in page
    assert flat.number not in page
    assert cancelled.number not in page
    assert metered.number not in clerk.get("/billing/usage/?q=nobody-matches").content.decode()


def test_subscription_usage_page_shows_values_estimate_and_chart(clerk: Client) -> None:
    sub, metric = metered_subscription(unit_amount="0.25")
    event(sub, metric, "10", datetime(2026, 1, 3, 9, tzinfo=UTC))
    event(sub, metric, "2", datetime(2026, 1, 4, 9, tzinfo=UTC))
    event(sub, metric, "1", datetime(2026, 1, 4, 22, 30, tzinfo=UTC))  # 23:30 in Rome: still the 4th
    event(sub, metric, "1", datetime(2026, 1, 4, 23, 30, tzinfo=UTC))  # 00:30 on the 5th in Rome
    response = clerk.get(f"/billing/usage/subscriptions/{sub.public_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="usage-total">3.50 EUR' in html  # 14 x 0.25
    assert "14 unit" in html
    chart = json.loads(
        re.search(r'<script id="usage-chart" type="application/json">(.*?)</script>', html).group(1)
    )  # type: ignore[union-attr]
    assert chart == {
        "days": ["2026-01-03", "2026-01-04", "2026-01-05"],
        "series": [{"name": metric.code, "values": ["10", "3", "1"]}],
    }
    assert "echarts.min.js" in html


def test_usage_pages_need_billing_permissions() -> None:
    sub, _metric = metered_subscription()
    client = Client()
    client.force_login(user_with_roles("technician"))
    assert client.get(f"/billing/usage/subscriptions/{sub.public_id}/").status_code == 403
    viewer = Client()
    viewer.force_login(user_with_roles("analyst"))
    assert viewer.get(f"/billing/usage/subscriptions/{sub.public_id}/").status_code == 200
    assert viewer.get("/billing/usage/upload/").status_code == 403


def _csv(sub_customer: str, metric: str) -> bytes:
    return (
        "customer,metric,quantity,timestamp,external_id\n"
        f"{sub_customer},{metric},3,2026-01-19T08:00:00Z,r1\n"
        f"{sub_customer},{metric},x,2026-01-19T08:00:00Z,r2\n"
        f"{sub_customer},{metric},4,2026-01-19T09:00:00Z,r1\n"
        f"{sub_customer},{metric},5,2026-01-19T10:00:00Z,r3\n"
    ).encode()


def test_csv_upload_all_or_nothing_then_good_rows(clerk: Client) -> None:
    sub, metric = metered_subscription()
    content = _csv(str(sub.account.customer.public_id), metric.code)
    refused = clerk.post(
        "/billing/usage/upload/",
        {"file": SimpleUploadedFile("usage.csv", content, "text/csv"), "mode": "all_or_nothing"},
    )
    assert refused.status_code == 422
    html = refused.content.decode()
    assert "1 of 4 lines are not valid; nothing was stored." in html
    assert "<td>3</td><td>quantity: &#x27;x&#x27; is not a number.</td>" in html
    assert UsageEvent.objects.count() == 0

    stored = clerk.post(
        "/billing/usage/upload/",
        {"file": SimpleUploadedFile("usage.csv", content, "text/csv"), "mode": "good_rows"},
    )
    assert stored.status_code == 200
    html = stored.content.decode()
    assert "2 stored, 1 duplicates ignored, 1 lines refused." in html
    assert "<td>3</td>" in html
    assert sorted(UsageEvent.objects.values_list("external_id", flat=True)) == ["r1", "r3"]

    missing = clerk.post("/billing/usage/upload/", {"mode": "good_rows"})
    assert missing.status_code == 422
    bad_header = clerk.post(
        "/billing/usage/upload/", {"file": SimpleUploadedFile("u.csv", b"who,what\n1,2\n", "text/csv")}
    )
    assert bad_header.status_code == 422
    assert "missing column(s)" in bad_header.content.decode()
    assert UsageEvent.objects.count() == 2

"""Usage on PostgreSQL: exact numeric aggregation, JSON lookups, bulk ingest with ON CONFLICT, races."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fedele.billing.tests.factories import MetricFactory, flat_plan, subscription, usage_charge
from fedele.billing.tests.orders_helpers import event
from fedele.billing.usage_aggregation import aggregate_unbilled

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

FEB = datetime(2026, 2, 1, tzinfo=UTC)


def _at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=UTC)


def test_aggregation_is_exact_numeric_with_json_unique_count() -> None:
    total = MetricFactory(aggregation="sum")
    users = MetricFactory(aggregation="unique_count", unique_property="user")
    storage = MetricFactory(aggregation="last")
    version = flat_plan()
    for metric in (total, users, storage):
        usage_charge(version, metric, unit_amount=Decimal("1"))
    sub = subscription(version)
    event(sub, total, "12345678901234.000001", _at(3))
    event(sub, total, "0.000001", _at(4))
    for user in ("anna", "bruno", "anna", 7, "7"):
        event(sub, users, 1, _at(5), properties={"user": user})
    event(sub, storage, "5", _at(6))
    event(sub, storage, "6", _at(6))
    assert aggregate_unbilled([sub.pk], FEB) == {
        (sub.pk, total.pk): Decimal("12345678901234.000002"),
        (sub.pk, users.pk): Decimal("3"),
        (sub.pk, storage.pk): Decimal("6"),
    }


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_with_the_same_ids_store_each_event_once() -> None:
    import threading

    import time_machine
    from django.db import connection

    from fedele.billing.models import UsageEvent
    from fedele.billing.services.usage import usage_ingest
    from fedele.billing.tests.orders_helpers import metered_subscription

    with time_machine.travel(datetime(2026, 1, 20, 10, tzinfo=UTC), tick=False):
        sub, metric = metered_subscription()
        events = [
            {
                "external_id": f"e{i}",
                "subscription": str(sub.public_id),
                "metric": metric.code,
                "quantity": "1.5",
                "timestamp": "2026-01-20T09:00:00Z",
                "properties": {"n": i},
            }
            for i in range(2000)
        ]
        results = []
        barrier = threading.Barrier(4)

        def worker() -> None:
            try:
                barrier.wait()
                results.append(usage_ingest(events=events))
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(r.accepted for r in results)[-1] + sum(sorted(r.accepted for r in results)[:-1]) == 2000
    assert sum(r.accepted for r in results) == 2000
    assert sum(r.duplicates for r in results) == 6000
    assert UsageEvent.objects.count() == 2000
    assert aggregate_unbilled([sub.pk], FEB) == {(sub.pk, metric.pk): Decimal("3000.0")}
    assert UsageEvent.objects.get(external_id="e7").properties == {"n": 7}

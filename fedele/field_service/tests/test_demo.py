"""The field service demo loads through the real services, once, with work orders in every status."""

from __future__ import annotations

import pytest
from faker import Faker

from fedele.field_service import demo
from fedele.field_service.contracts import WorkOrderStatus
from fedele.field_service.models import Equipment, Technician, WorkOrder, WorkOrderEvent
from fedele.shared.demo import DemoContext, loaders

pytestmark = pytest.mark.django_db


def test_demo_loads_every_status_once() -> None:
    faker = Faker("it_IT")
    faker.seed_instance(7)
    context = DemoContext(faker=faker, seed=7, options={"customers": 30})
    registered = dict(loaders())
    assert registered["field_service"] is demo.load
    registered["accounts"](context)
    registered["customers"](context)
    demo.load(context)
    assert Technician.objects.count() == 4
    linked = Technician.objects.get(email="technician@fedele.demo")
    assert linked.user is not None and linked.user.email == "technician@fedele.demo"
    assert Equipment.objects.count() == context.counts["equipment"] == 19
    statuses = set(WorkOrder.objects.values_list("status", flat=True))
    assert statuses == {status.value for status in WorkOrderStatus}
    assert WorkOrder.objects.count() == context.counts["work_orders"] == 16
    # Gapless within each year (the demo's history may start in the previous year around New Year).
    by_year: dict[str, list[int]] = {}
    for number in WorkOrder.objects.values_list("number", flat=True):
        _prefix, year, sequence = number.split("-")
        by_year.setdefault(year, []).append(int(sequence))
    assert sum(len(values) for values in by_year.values()) == 16
    assert all(sorted(values) == list(range(1, len(values) + 1)) for values in by_year.values())
    completed = WorkOrder.objects.filter(status="completed").first()
    assert completed is not None
    assert list(WorkOrderEvent.objects.filter(work_order=completed).values_list("to_status", flat=True)) == [
        "scheduled",
        "dispatched",
        "en_route",
        "in_progress",
        "completed",
    ]
    demo.load(context)
    assert WorkOrder.objects.count() == 16
    assert Technician.objects.count() == 4

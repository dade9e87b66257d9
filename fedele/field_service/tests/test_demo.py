"""The field service demo loads through the real services, once, with work orders in every status."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from faker import Faker

from fedele.field_service import demo
from fedele.field_service.contracts import WorkOrderStatus
from fedele.field_service.models import Equipment, Technician, WorkOrder, WorkOrderEvent
from fedele.shared.demo import DemoContext, loaders

pytestmark = pytest.mark.django_db


ROME = ZoneInfo("Europe/Rome")


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 12, 8, 5, 40, tzinfo=ROME),  # before the day's first visit
        datetime(2026, 12, 8, 12, 0, tzinfo=ROME),
        datetime(2026, 12, 31, 23, 45, tzinfo=ROME),  # the history starts in the previous year
        datetime(2026, 3, 29, 1, 30, tzinfo=ROME),  # the spring DST night
    ],
    ids=["dawn", "noon", "new-year-eve", "dst-night"],
)
def test_demo_loads_every_status_once(moment: datetime, time_machine: Any) -> None:
    time_machine.move_to(moment, tick=False)
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
    # Visits in working hours, two hours long.
    for order in WorkOrder.objects.exclude(window_start=None):
        assert order.window_start is not None and order.window_end is not None
        local = order.window_start.astimezone(ROME)
        assert (local.minute, 9 <= local.hour <= 16) == (0, True), order.number
        assert (order.window_end - order.window_start).total_seconds() == 7200
    demo.load(context)
    assert WorkOrder.objects.count() == 16
    assert Technician.objects.count() == 4

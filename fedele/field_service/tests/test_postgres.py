"""PostgreSQL: real row locks. Two dispatchers booking one technician into overlapping windows at the
same moment: exactly one succeeds; concurrent creations take consecutive numbers without gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from fedele.customers.tests.factories import CustomerFactory
from fedele.field_service.models import WorkOrder
from fedele.field_service.services import work_orders
from fedele.field_service.tests.factories import TechnicianFactory
from fedele.shared.errors import Conflict
from fedele.shared.testing import in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
START = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)


def test_two_threads_booking_one_technician_into_overlapping_windows() -> None:
    assert connection.vendor == "postgresql"
    technician = TechnicianFactory()
    customer = CustomerFactory()
    orders = [
        work_orders.work_order_create(
            actor=None, customer_public_id=str(customer.public_id), summary=f"Visita {n}"
        )
        for n in range(2)
    ]
    windows = [(START, START + timedelta(hours=3)), (START + timedelta(hours=2), START + timedelta(hours=4))]

    def work(index: int) -> None:
        work_orders.work_order_schedule(
            actor=None,
            work_order_public_id=str(orders[index].public_id),
            window_start=windows[index][0],
            window_end=windows[index][1],
            technician_public_id=str(technician.public_id),
        )

    for _round in range(3):
        errors = in_threads(work, 2)
        assert len(errors) == 1
        assert isinstance(errors[0], Conflict)
        assert errors[0].code == "technician_double_booked"
        booked = WorkOrder.objects.filter(technician=technician, status="scheduled")
        assert booked.count() == 1
        # Free the technician for the next round.
        for order in booked:
            work_orders.work_order_hold(actor=None, work_order_public_id=str(order.public_id), reason="Reset")


def test_concurrent_creations_number_without_gaps() -> None:
    customer = CustomerFactory()

    def work(index: int) -> None:
        work_orders.work_order_create(
            actor=None, customer_public_id=str(customer.public_id), summary=f"N{index}"
        )

    assert in_threads(work, 6) == []
    year = datetime.now(UTC).astimezone().year
    numbers = sorted(WorkOrder.objects.values_list("number", flat=True))
    assert len(numbers) == 6
    assert [int(number.rsplit("-", 1)[1]) for number in numbers] == [1, 2, 3, 4, 5, 6]
    assert {number.split("-")[1] for number in numbers} <= {str(year), str(year + 1)}

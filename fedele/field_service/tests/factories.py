"""Factories for field service: technicians, equipment at a customer's site, work orders.

Rows only (no history, events or audit): for selector, facade and page tests. Tests of behaviour
build their data through the services."""

from __future__ import annotations

from datetime import date, timedelta

import factory
from django.utils import timezone

from fedele.customers.tests.factories import CustomerFactory
from fedele.field_service.models import Equipment, Technician, WorkOrder
from fedele.shared import clock, sequences


class TechnicianFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Technician

    display_name = factory.Sequence(lambda n: f"Luca Gallo {n}")
    phone = factory.Sequence(lambda n: f"+39335100{n % 10000:04d}")
    email = factory.Sequence(lambda n: f"technician{n}@fedele.example")
    active = True
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)


class EquipmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Equipment

    customer = factory.SubFactory(CustomerFactory)
    serial_number = factory.Sequence(lambda n: f"SN-{n:07d}")
    name = "Caldaia Vaillant ecoTEC plus 25"
    category = "boiler"
    manufacturer = "Vaillant"
    model_code = "VMW 25"
    status = "active"
    installed_on = factory.LazyFunction(lambda: clock.today() - timedelta(days=200))
    warranty_ends_on = factory.LazyAttribute(
        lambda o: (
            date(o.installed_on.year + 2, o.installed_on.month, min(o.installed_on.day, 28))
            if o.installed_on
            else None
        )
    )
    site_street = "Via Roma 12"
    site_postal_code = "00100"
    site_city = "Roma"
    site_province = "RM"
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)


class WorkOrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkOrder

    number = factory.LazyFunction(lambda: sequences.next_number("WO", year=clock.today().year))
    customer = factory.SubFactory(CustomerFactory)
    kind = "repair"
    summary = factory.Sequence(lambda n: f"Caldaia in blocco {n}")
    priority = "normal"
    status = "new"
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)

"""What a ticket is about (a billing entitlement, field-service equipment or work order) is checked
with the owning module through fedele.shared.subjects: unknown kinds and references are refused."""

from __future__ import annotations

import uuid

import pytest

from fedele.billing.tests.factories import EntitlementFactory
from fedele.customers.tests.factories import CustomerFactory
from fedele.field_service.tests.factories import EquipmentFactory
from fedele.shared.errors import ValidationFailed
from fedele.support.models import Ticket
from fedele.support.services.tickets import ticket_create, ticket_update
from fedele.support.tests.factories import ticket_kwargs

pytestmark = pytest.mark.django_db


def test_ticket_about_an_entitlement_takes_its_customer() -> None:
    line = EntitlementFactory(identifier="FTTH-000042", product__name="Fibra 1 Giga")
    ticket = ticket_create(
        actor=None,
        **ticket_kwargs(
            requester_email="sconosciuto@example.it",
            subject_kind="entitlement",
            subject_reference=f"  {line.public_id}  ",
        ),
    )
    assert (ticket.subject_kind, ticket.subject_reference) == ("entitlement", str(line.public_id))
    assert ticket.customer_id == line.account.customer_id


def test_unknown_reference_refused_and_nothing_written() -> None:
    with pytest.raises(ValidationFailed) as raised:
        ticket_create(
            actor=None, **ticket_kwargs(subject_kind="entitlement", subject_reference=str(uuid.uuid4()))
        )
    assert raised.value.code == "unknown_subject_reference"
    with pytest.raises(ValidationFailed) as raised:
        ticket_create(actor=None, **ticket_kwargs(subject_kind="entitlement", subject_reference="not-a-uuid"))
    assert raised.value.code == "unknown_subject_reference"
    assert Ticket.objects.count() == 0


def test_entitlement_of_another_customer_refused() -> None:
    mario = CustomerFactory(email="mario.rossi@example.it")
    line = EntitlementFactory()
    assert line.account.customer_id != mario.pk
    with pytest.raises(ValidationFailed) as raised:
        ticket_create(
            actor=None, **ticket_kwargs(subject_kind="entitlement", subject_reference=str(line.public_id))
        )
    assert raised.value.code == "subject_of_another_customer"
    assert Ticket.objects.count() == 0


def test_kind_without_an_installed_owner_refused() -> None:
    # No installed module answers for vehicles.
    with pytest.raises(ValidationFailed) as raised:
        ticket_create(actor=None, **ticket_kwargs(subject_kind="vehicle", subject_reference="AB123CD"))
    assert raised.value.code == "invalid_subject_kind"
    with pytest.raises(ValidationFailed) as raised:
        ticket_create(actor=None, **ticket_kwargs(subject_kind="", subject_reference="SN-1"))
    assert raised.value.code == "invalid_subject_kind"
    assert Ticket.objects.count() == 0


def test_update_checks_the_reference_and_clears_it() -> None:
    line = EntitlementFactory()
    ticket = ticket_create(actor=None, **ticket_kwargs(requester_email="nessuno@example.it"))
    with pytest.raises(ValidationFailed) as raised:
        ticket_update(
            actor=None, ticket=ticket, changes={"subject_kind": "entitlement", "subject_reference": "x"}
        )
    assert raised.value.code == "unknown_subject_reference"
    ticket.refresh_from_db()
    assert (ticket.subject_kind, ticket.subject_reference) == ("", "")
    ticket = ticket_update(
        actor=None,
        ticket=ticket,
        changes={"subject_kind": "entitlement", "subject_reference": str(line.public_id)},
    )
    assert (ticket.subject_kind, ticket.subject_reference) == ("entitlement", str(line.public_id))
    ticket = ticket_update(actor=None, ticket=ticket, changes={"subject_kind": "", "subject_reference": ""})
    assert (ticket.subject_kind, ticket.subject_reference) == ("", "")


def test_ticket_about_field_service_equipment_takes_its_customer() -> None:
    unit = EquipmentFactory(serial_number="SN-0042")
    ticket = ticket_create(
        actor=None,
        **ticket_kwargs(
            requester_email="sconosciuto@example.it",
            subject_kind="equipment",
            subject_reference=str(unit.public_id),
        ),
    )
    assert (ticket.subject_kind, ticket.subject_reference) == ("equipment", str(unit.public_id))
    assert ticket.customer_id == unit.customer_id
    for unknown in ("SN-0042", str(uuid.uuid4())):  # a serial number is not a reference
        with pytest.raises(ValidationFailed) as raised:
            ticket_create(actor=None, **ticket_kwargs(subject_kind="equipment", subject_reference=unknown))
        assert raised.value.code == "unknown_subject_reference"
    assert Ticket.objects.count() == 1

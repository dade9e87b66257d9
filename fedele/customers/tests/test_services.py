"""Customer and contact services: validation, permissions, no side effects on failure, concurrency."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import OrganisationFactory, user_with_roles
from fedele.customers.models import ConsentRecord, Contact, Customer
from fedele.customers.services import contacts as contact_services
from fedele.customers.services import customers as customer_services
from fedele.customers.tests.factories import ContactFactory, CustomerFactory
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent

User = get_user_model()


def _actor(*roles: str, **kwargs: Any):  # type: ignore[no-untyped-def]
    user = user_with_roles(*roles, **kwargs)
    return actor_for(User.objects.get(pk=user.pk))


def _counts() -> tuple[int, int, int, int, int]:
    return (
        Customer.objects.count(),
        Contact.objects.count(),
        ConsentRecord.objects.count(),
        AuditLog.objects.count(),
        OutboxEvent.objects.count(),
    )


@pytest.mark.django_db
def test_create_numbers_customers_consecutively_and_publishes() -> None:
    actor = _actor("agent")
    first = customer_services.customer_create(actor=actor, data={"kind": "person", "last_name": "Uno"})
    second = customer_services.customer_create(actor=actor, data={"kind": "person", "last_name": "Due"})
    assert (first.number, second.number) == ("C-000001", "C-000002")
    assert first.display_name == "Uno"
    assert list(OutboxEvent.objects.values_list("event_type", flat=True)) == ["customers.CustomerCreated"] * 2
    assert AuditLog.objects.filter(action="customer.created").count() == 2


@pytest.mark.django_db
def test_all_field_errors_are_reported_at_once() -> None:
    actor = _actor("agent")
    before = _counts()
    with pytest.raises(ValidationFailed) as caught:
        customer_services.customer_create(
            actor=actor,
            data={
                "kind": "company",
                "email": "bad",
                "phone": "12",
                "vat_number": "IT1",
                "province": "Roma",
                "language": "de",
                "segment": "vip",
            },
        )
    assert sorted(caught.value.fields) == [
        "company_name",
        "email",
        "language",
        "phone",
        "province",
        "segment",
        "vat_number",
    ]
    assert _counts() == before


@pytest.mark.django_db
def test_permissions_are_checked_before_anything_is_written() -> None:
    before = _counts()
    with pytest.raises(PermissionDenied):
        customer_services.customer_create(actor=_actor("analyst"), data={"kind": "person", "last_name": "X"})
    with pytest.raises(ValidationFailed) as caught:
        customer_services.customer_create(
            actor=_actor("agent"), data={"kind": "person", "last_name": "X", "number": "C-1"}
        )
    assert caught.value.fields == {"number": ["Unknown field."]}
    assert _counts() == before


@pytest.mark.django_db
def test_partner_customers_are_managed_by_the_partner_organisation() -> None:
    organisation = OrganisationFactory()
    actor = _actor("partner", organisation=organisation)
    customer = customer_services.customer_create(actor=actor, data={"kind": "person", "last_name": "P"})
    assert customer.managed_by_id == organisation.pk
    staff_customer = customer_services.customer_create(
        actor=_actor("agent"), data={"kind": "person", "last_name": "S"}
    )
    assert staff_customer.managed_by_id is None


@pytest.mark.django_db
def test_merged_customer_cannot_be_changed() -> None:
    customer = CustomerFactory(status="merged")
    before = _counts()
    with pytest.raises(Conflict) as caught:
        customer_services.customer_update(
            actor=_actor("agent"), customer_public_id=str(customer.public_id), data={"city": "X"}
        )
    assert caught.value.code == "customer_not_active"
    with pytest.raises(Conflict):
        contact_services.contact_create(
            actor=_actor("agent"), customer_public_id=str(customer.public_id), data={"first_name": "A"}
        )
    assert _counts() == before


@pytest.mark.django_db
def test_email_of_a_merged_customer_can_be_reused() -> None:
    CustomerFactory(status="merged", email="reuse@example.it")
    created = customer_services.customer_create(
        actor=_actor("agent"), data={"kind": "person", "last_name": "R", "email": "Reuse@example.it"}
    )
    assert created.email == "reuse@example.it"


@pytest.mark.django_db
def test_invisible_customer_is_not_found_whatever_the_permission() -> None:
    portal = _actor("portal_customer")
    stranger = CustomerFactory()
    before = _counts()
    with pytest.raises(NotFound):
        customer_services.customer_update(
            actor=portal, customer_public_id=str(stranger.public_id), data={"city": "X"}
        )
    with pytest.raises(NotFound):
        contact_services.contact_create(
            actor=portal, customer_public_id=str(stranger.public_id), data={"first_name": "A"}
        )
    with pytest.raises(NotFound):
        contact_services.consent_record(
            actor=portal,
            customer_public_id=str(stranger.public_id),
            channel="email",
            purpose="marketing",
            granted=True,
            source="portal",
        )
    assert _counts() == before


@pytest.mark.django_db
def test_system_consent_without_actor() -> None:
    customer = CustomerFactory()
    record = contact_services.consent_record(
        actor=None,
        customer_public_id=str(customer.public_id),
        channel="post",
        purpose="service",
        granted=True,
        source="import",
    )
    assert (record.recorded_by_id, record.source) == (None, "import")
    assert AuditLog.objects.get(action="consent.recorded").after == {
        "channel": "post",
        "purpose": "service",
        "granted": True,
        "source": "import",
    }


@pytest.mark.django_db
def test_deleting_the_primary_contact_promotes_the_oldest_other() -> None:
    customer = CustomerFactory()
    primary = ContactFactory(customer=customer, is_primary=True)
    older = ContactFactory(customer=customer)
    ContactFactory(customer=customer)
    contact_services.contact_delete(actor=_actor("agent"), contact_public_id=str(primary.public_id))
    assert list(Contact.objects.filter(customer=customer, is_primary=True)) == [older]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_with_the_same_email_make_one_customer() -> None:
    actor = _actor("agent")
    barrier = threading.Barrier(4)
    outcomes: list[str] = []
    lock = threading.Lock()

    def create(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            customer_services.customer_create(
                actor=actor, data={"kind": "person", "last_name": f"T{index}", "email": "Same@Example.it"}
            )
            outcome = "created"
        except Conflict as error:
            outcome = error.code
        except Exception as error:  # pragma: no cover - reported by the assertion
            outcome = repr(error)
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["created", "duplicate_email", "duplicate_email", "duplicate_email"]
    assert Customer.objects.filter(email="same@example.it").count() == 1
    assert OutboxEvent.objects.filter(event_type="customers.CustomerCreated").count() == 1
    numbers = list(Customer.objects.values_list("number", flat=True))
    assert numbers == ["C-000001"]  # the losers' numbers rolled back with them

"""The demo command builds its data through the real services and loads only once."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from fedele.accounts.models import User
from fedele.customers.models import Contact, Customer
from fedele.shared.demo import DEMO_PASSWORD
from fedele.shared.models import AuditLog, OutboxEvent


@pytest.mark.django_db
def test_demo_loads_staff_customers_and_a_portal_login_once(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo", "--customers", "30", "--seed", "7", stdout=out)

    assert Customer.objects.count() == 30
    assert Customer.objects.filter(status="active").count() == 30
    # every customer went through customer_create: a C-number, an audit row and an event each
    assert sorted(Customer.objects.values_list("number", flat=True))[0] == "C-000001"
    assert AuditLog.objects.filter(action="customer.created").count() == 30
    assert OutboxEvent.objects.filter(event_type="customers.CustomerCreated").count() == 30
    assert (
        OutboxEvent.objects.filter(event_type="customers.CustomerCreated", dispatched_at__isnull=True).count()
        == 0
    )
    # one user per role, the portal customer, and the support team's two extra agents
    assert User.objects.count() == 13
    assert (
        User.objects.filter(email__in=["francesca.ricci@fedele.demo", "matteo.esposito@fedele.demo"]).count()
        == 2
    )
    admin = User.objects.get(email="admin@fedele.demo")
    assert admin.check_password(DEMO_PASSWORD)
    assert admin.role_names == frozenset({"admin"})
    partner = User.objects.get(email="partner@fedele.demo")
    assert partner.organisation is not None and partner.organisation.kind == "partner"
    portal_contact = Contact.objects.get(portal_user__email="cliente@fedele.demo")
    assert portal_contact.customer.kind == "person"
    assert "cliente@fedele.demo" in out.getvalue()

    second = io.StringIO()
    call_command("demo", "--if-empty", stdout=second)
    assert "already loaded" in second.getvalue()
    assert Customer.objects.count() == 30
    assert User.objects.count() == 13


@pytest.mark.django_db
def test_demo_customers_have_valid_normalised_identifiers() -> None:
    call_command("demo", "--customers", "20", "--seed", "11", stdout=io.StringIO())
    for customer in Customer.objects.all():
        assert customer.phone.startswith("+393"), customer.phone
        if customer.kind == "company":
            assert customer.vat_number.startswith("IT") and len(customer.vat_number) == 13
            assert customer.company_name
        else:
            assert len(customer.fiscal_code) == 16
            assert customer.first_name and customer.last_name

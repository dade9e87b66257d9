"""GDPR: personal-data export (ZIP with customer.json and README.txt) and erasure by pseudonymisation."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.contrib.auth import get_user_model

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.models import ConsentRecord, Contact, Customer, TimelineEntry
from fedele.customers.services.customers import customer_create
from fedele.customers.services.gdpr import customer_erase, customer_export_personal_data
from fedele.customers.tests.factories import ContactFactory, CustomerFactory
from fedele.shared import gdpr
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def admin():
    return actor_for(user_with_roles("admin"))


@pytest.fixture
def registered_module():
    calls: list[str] = []
    gdpr.register(
        "loyalty_test",
        exporter=lambda public_id: {"points": 120, "customer": public_id},
        eraser=calls.append,
    )
    yield calls
    gdpr.unregister("loyalty_test")


def person_with_history():
    customer = CustomerFactory(
        number="C-000123",
        first_name="Mario",
        last_name="Rossi",
        display_name="Mario Rossi",
        email="mario@example.it",
        phone="+390612345678",
        fiscal_code="RSSMRA85T10A562S",
        street="Via Roma 1",
        postal_code="00184",
        city="Roma",
        province="RM",
        birth_date=date(1985, 12, 10),
        notes="Prefers calls after 18:00",
        created_at=NOW,
        updated_at=NOW,
    )
    contact = ContactFactory(
        customer=customer,
        first_name="Lucia",
        last_name="Rossi",
        job_title="Wife",
        email="lucia@example.it",
        phone="+390612345679",
        is_primary=True,
        created_at=NOW,
        updated_at=NOW,
    )
    ConsentRecord.objects.create(
        customer=customer,
        contact=contact,
        channel="email",
        purpose="marketing",
        granted=True,
        source="web form",
        evidence="IP 192.0.2.1, form v3",
        recorded_at=NOW,
    )
    TimelineEntry.objects.create(
        customer=customer,
        occurred_at=NOW,
        module="support",
        kind="ticket.opened",
        title="Ticket T-000001 opened",
        summary="Mario says the router is broken",
        data={"ticket": "T-000001"},
    )
    return customer


def read_zip(content: bytes) -> tuple[list[str], dict, str]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        names = archive.namelist()
        document = json.loads(archive.read("customer.json"))
        readme = archive.read("README.txt").decode()
    return names, document, readme


def test_export_builds_a_zip_with_every_section_and_registered_modules(admin, registered_module):
    customer = person_with_history()
    contact = customer.contacts.get()
    consent = customer.consents.get()
    entry = customer.timeline.get()

    with time_machine.travel(NOW, tick=False):
        content = customer_export_personal_data(actor=admin, customer_public_id=str(customer.public_id))

    names, document, readme = read_zip(content)
    assert names == ["customer.json", "README.txt"]
    assert list(document) == [
        "format",
        "exported_at",
        "customer",
        "contacts",
        "consents",
        "timeline",
        "modules",
    ]
    assert document["format"] == "fedele.personal-data.v1"
    assert document["exported_at"] == "2026-03-02T09:30:00+00:00"
    assert document["customer"] == {
        "id": str(customer.public_id),
        "number": "C-000123",
        "display_name": "Mario Rossi",
        "kind": "person",
        "first_name": "Mario",
        "last_name": "Rossi",
        "company_name": "",
        "fiscal_code": "RSSMRA85T10A562S",
        "vat_number": "",
        "email": "mario@example.it",
        "pec": "",
        "sdi_code": "",
        "phone": "+390612345678",
        "language": "it",
        "segment": "consumer",
        "street": "Via Roma 1",
        "postal_code": "00184",
        "city": "Roma",
        "province": "RM",
        "country": "IT",
        "birth_date": "1985-12-10",
        "notes": "Prefers calls after 18:00",
        "status": "active",
        "created_at": "2026-03-02T09:30:00+00:00",
        "updated_at": "2026-03-02T09:30:00+00:00",
        "erased_at": None,
    }
    assert document["contacts"] == [
        {
            "id": str(contact.public_id),
            "first_name": "Lucia",
            "last_name": "Rossi",
            "job_title": "Wife",
            "email": "lucia@example.it",
            "phone": "+390612345679",
            "mobile": "",
            "language": "it",
            "is_primary": True,
            "has_portal_login": False,
            "created_at": "2026-03-02T09:30:00+00:00",
        }
    ]
    assert document["consents"] == [
        {
            "id": str(consent.public_id),
            "channel": "email",
            "purpose": "marketing",
            "granted": True,
            "source": "web form",
            "evidence": "IP 192.0.2.1, form v3",
            "contact_id": str(contact.public_id),
            "recorded_at": "2026-03-02T09:30:00+00:00",
        }
    ]
    assert document["timeline"] == [
        {
            "id": str(entry.public_id),
            "occurred_at": "2026-03-02T09:30:00+00:00",
            "module": "support",
            "kind": "ticket.opened",
            "title": "Ticket T-000001 opened",
            "summary": "Mario says the router is broken",
            "data": {"ticket": "T-000001"},
        }
    ]
    assert document["modules"] == {"loyalty_test": {"points": 120, "customer": str(customer.public_id)}}
    assert "customer.json" in readme and "C-000123" in readme
    audit = AuditLog.objects.get(action="customer.personal_data_exported")
    assert (audit.object_id, audit.after) == (str(customer.public_id), {"modules": ["loyalty_test"]})


def test_export_needs_the_permission_and_hides_other_customers():
    customer = person_with_history()
    agent = actor_for(user_with_roles("agent"))
    with pytest.raises(PermissionDenied):
        customer_export_personal_data(actor=agent, customer_public_id=str(customer.public_id))
    portal_user = user_with_roles("portal_customer")
    ContactFactory(customer=CustomerFactory(), portal_user=portal_user)
    with pytest.raises(NotFound):
        customer_export_personal_data(
            actor=actor_for(portal_user), customer_public_id=str(customer.public_id)
        )
    assert not AuditLog.objects.filter(action="customer.personal_data_exported").exists()


def test_erase_pseudonymises_exactly_the_documented_fields(admin, registered_module):
    customer = person_with_history()
    portal_user = user_with_roles("portal_customer")
    Contact.objects.filter(customer=customer).update(portal_user=portal_user)
    other = CustomerFactory()
    other_contact = ContactFactory(customer=other, email="kept@example.it")
    events_before = OutboxEvent.objects.count()

    with time_machine.travel(NOW, tick=False):
        erased = customer_erase(
            actor=admin, customer_public_id=str(customer.public_id), reason="Art. 17 request"
        )

    customer.refresh_from_db()
    assert erased.pk == customer.pk
    assert {
        name: getattr(customer, name)
        for name in (
            "number",
            "kind",
            "display_name",
            "first_name",
            "last_name",
            "company_name",
            "fiscal_code",
            "vat_number",
            "email",
            "pec",
            "phone",
            "street",
            "postal_code",
            "city",
            "province",
            "country",
            "language",
            "segment",
            "birth_date",
            "notes",
            "status",
            "erased_at",
            "search_text",
        )
    } == {
        "number": "C-000123",
        "kind": "person",
        "display_name": "Erased customer C-000123",
        "first_name": "",
        "last_name": "",
        "company_name": "",
        "fiscal_code": "",
        "vat_number": "",
        "email": "",
        "pec": "",
        "phone": "",
        "street": "",
        "postal_code": "",
        "city": "",
        "province": "",
        "country": "IT",
        "language": "it",
        "segment": "consumer",
        "birth_date": None,
        "notes": "",
        "status": "erased",
        "erased_at": NOW,
        "search_text": "c-000123 erased customer c-000123",
    }
    contact = Contact.objects.get(customer=customer)
    assert (contact.first_name, contact.last_name, contact.job_title, contact.email, contact.phone) == (
        "",
        "Erased contact",
        "",
        "",
        "",
    )
    assert get_user_model().objects.get(pk=portal_user.pk).is_active is False
    consent = ConsentRecord.objects.get(customer=customer)
    assert (consent.channel, consent.purpose, consent.granted, consent.source, consent.evidence) == (
        "email",
        "marketing",
        True,
        "web form",
        "",
    )
    entry = TimelineEntry.objects.get(customer=customer)
    assert (entry.title, entry.summary, entry.data) == ("Ticket T-000001 opened", "", {})
    assert registered_module == [str(customer.public_id)]
    audit = AuditLog.objects.get(action="customer.erased")
    assert audit.after == {
        "reason": "Art. 17 request",
        "number": "C-000123",
        "contacts": 1,
        "portal_logins_deactivated": 1,
        "merged_customers": [],
        "modules": ["loyalty_test"],
    }
    erased_events = OutboxEvent.objects.filter(event_type="customers.CustomerErased")
    assert [e.payload for e in erased_events] == [{"customer_id": str(customer.public_id)}]
    assert OutboxEvent.objects.count() == events_before + 1
    other.refresh_from_db()
    assert other.status == "active" and Contact.objects.get(pk=other_contact.pk).email == "kept@example.it"


def test_erase_keeps_a_companys_vat_number_and_redacts_its_audit_trail(admin):
    company = customer_create(
        actor=admin,
        data={
            "kind": "company",
            "company_name": "Acme S.r.l.",
            "vat_number": "IT00743110157",
            "email": "info@acme.it",
            "pec": "acme@pec.it",
            "sdi_code": "ABC1234",
            "city": "Milano",
        },
    )

    customer_erase(actor=admin, customer_public_id=str(company.public_id), reason="Closed the account")

    company.refresh_from_db()
    assert (company.company_name, company.display_name, company.vat_number, company.sdi_code) == (
        f"Erased customer {company.number}",
        f"Erased customer {company.number}",
        "IT00743110157",
        "ABC1234",
    )
    assert (company.email, company.pec, company.city) == ("", "", "")
    created = AuditLog.objects.get(action="customer.created", object_id=str(company.public_id)).after or {}
    assert created["email"] == "[erased]"
    assert created["company_name"] == "[erased]"
    assert created["vat_number"] == "IT00743110157"
    assert created["kind"] == "company"


def test_erasing_twice_is_a_conflict_and_changes_nothing(admin):
    customer = person_with_history()
    customer_erase(actor=admin, customer_public_id=str(customer.public_id), reason="Request")
    before = (AuditLog.objects.count(), OutboxEvent.objects.count())

    with pytest.raises(Conflict) as failure:
        customer_erase(actor=admin, customer_public_id=str(customer.public_id), reason="Again")

    assert failure.value.code == "already_erased"
    assert (AuditLog.objects.count(), OutboxEvent.objects.count()) == before


def test_erase_needs_a_reason_and_the_permission_and_a_failing_eraser_rolls_back(admin):
    customer = person_with_history()
    before = (AuditLog.objects.count(), OutboxEvent.objects.count())
    with pytest.raises(ValidationFailed) as failure:
        customer_erase(actor=admin, customer_public_id=str(customer.public_id), reason="  ")
    assert failure.value.fields == {"reason": ["Give a reason of 1-500 characters."]}
    with pytest.raises(PermissionDenied):
        customer_erase(
            actor=actor_for(user_with_roles("agent")), customer_public_id=str(customer.public_id), reason="x"
        )

    def broken(public_id: str) -> None:
        raise RuntimeError("billing is down")

    gdpr.register("broken_test", eraser=broken)
    try:
        with pytest.raises(RuntimeError):
            customer_erase(actor=admin, customer_public_id=str(customer.public_id), reason="Request")
    finally:
        gdpr.unregister("broken_test")

    customer.refresh_from_db()
    assert (customer.status, customer.email, customer.first_name) == ("active", "mario@example.it", "Mario")
    assert Contact.objects.get(customer=customer).email == "lucia@example.it"
    assert ConsentRecord.objects.get(customer=customer).evidence == "IP 192.0.2.1, form v3"
    assert (AuditLog.objects.count(), OutboxEvent.objects.count()) == before


def test_erase_also_erases_duplicates_merged_into_the_customer(admin):
    customer = person_with_history()
    merged = CustomerFactory(first_name="Mario", last_name="Rossi", status="merged", merged_into=customer)

    customer_erase(actor=admin, customer_public_id=str(customer.public_id), reason="Request")

    merged.refresh_from_db()
    assert (merged.status, merged.email, merged.display_name) == (
        "erased",
        "",
        f"Erased customer {merged.number}",
    )
    erased_audit = AuditLog.objects.get(action="customer.erased").after or {}
    assert erased_audit["merged_customers"] == [merged.number]


def test_the_erase_page_confirms_then_erases(client):
    customer = person_with_history()
    client.force_login(user_with_roles("supervisor"))
    url = f"/customers/{customer.public_id}/erase/"

    page = client.get(url)
    assert page.status_code == 200
    assert 'id="erase-form"' in page.content.decode()

    wrong = client.post(url, {"confirm": "C-999999", "reason": "Request"})
    assert wrong.status_code == 422
    assert "Type C-000123 to confirm." in wrong.content.decode()
    no_reason = client.post(url, {"confirm": "C-000123"})
    assert no_reason.status_code == 422
    customer.refresh_from_db()
    assert customer.status == "active"

    done = client.post(url, {"confirm": "C-000123", "reason": "Request by e-mail"})
    assert done.status_code == 302 and done["Location"] == f"/customers/{customer.public_id}/"
    customer.refresh_from_db()
    assert customer.status == "erased"


def test_the_export_page_downloads_the_zip_and_agents_are_refused(client):
    customer = person_with_history()
    client.force_login(user_with_roles("supervisor"))
    response = client.get(f"/customers/{customer.public_id}/personal-data/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="personal-data-C-000123.zip"'
    _names, document, _readme = read_zip(response.content)
    assert document["customer"]["number"] == "C-000123"

    client.force_login(user_with_roles("agent"))
    assert client.get(f"/customers/{customer.public_id}/personal-data/").status_code == 403
    assert client.get(f"/customers/{customer.public_id}/erase/").status_code == 403


def test_erase_clears_the_import_rows_the_customer_came_from(admin):
    from fedele.customers.models import CustomerImport
    from fedele.customers.services.importing import customer_import_commit, customer_import_preview

    content = b"nome;cognome;email\nMario;Rossi;mario@example.it\nAnna;Verdi;anna@example.it\n"
    preview = customer_import_preview(actor=admin, filename="x.csv", content=content)
    customer_import_commit(actor=admin, import_public_id=str(preview.public_id), mode="valid_rows")
    mario = Customer.objects.get(email="mario@example.it")

    customer_erase(actor=admin, customer_public_id=str(mario.public_id), reason="Request")

    rows = CustomerImport.objects.get().rows
    assert [(row["line"], row["values"], row.get("erased", False)) for row in rows] == [
        (2, {}, True),
        (3, {"first_name": "Anna", "last_name": "Verdi", "email": "anna@example.it"}, False),
    ]

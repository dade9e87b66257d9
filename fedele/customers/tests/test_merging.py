"""Duplicates and merge: candidates and reasons, moves, filled fields, refusals, concurrency."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import OrganisationFactory, user_with_roles
from fedele.customers import facade, selectors
from fedele.customers.models import ConsentRecord, Contact, Customer, TimelineEntry
from fedele.customers.services.merging import customers_merge
from fedele.customers.tests.factories import CompanyFactory, ContactFactory, CustomerFactory
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def admin():
    return actor_for(user_with_roles("admin"))


def consent(customer: Customer, purpose: str = "marketing") -> ConsentRecord:
    return ConsentRecord.objects.create(
        customer=customer, channel="email", purpose=purpose, granted=True, source="web", recorded_at=NOW
    )


def timeline(customer: Customer, title: str) -> TimelineEntry:
    return TimelineEntry.objects.create(
        customer=customer, occurred_at=NOW, module="support", kind="ticket.opened", title=title
    )


def pair():
    survivor = CustomerFactory(
        first_name="Mario",
        last_name="Rossi",
        email="mario@example.it",
        phone="",
        fiscal_code="",
        street="",
        city="Roma",
        birth_date=None,
    )
    duplicate = CustomerFactory(
        first_name="Mario",
        last_name="Rossi",
        email="m.rossi@example.it",
        phone="+390612345678",
        fiscal_code="RSSMRA85T10A562S",
        street="Via Roma 1",
        city="Roma",
        birth_date=date(1985, 12, 10),
    )
    return survivor, duplicate


@pytest.mark.django_db
def test_merge_moves_contacts_consents_and_timeline_and_fills_empty_fields(admin):
    survivor, duplicate = pair()
    own_contact = ContactFactory(customer=survivor, is_primary=True)
    moved_contacts = [ContactFactory(customer=duplicate, is_primary=True), ContactFactory(customer=duplicate)]
    consent(survivor, "service")
    consent(duplicate)
    consent(duplicate, "profiling")
    timeline(survivor, "Own entry")
    timeline(duplicate, "Duplicate entry 1")
    timeline(duplicate, "Duplicate entry 2")
    unrelated = ContactFactory()

    result = customers_merge(
        actor=admin, survivor_public_id=str(survivor.public_id), duplicate_public_id=str(duplicate.public_id)
    )

    survivor.refresh_from_db()
    duplicate.refresh_from_db()
    assert result.pk == survivor.pk
    assert Contact.objects.filter(customer=survivor).count() == 3
    assert set(Contact.objects.filter(customer=survivor).values_list("pk", flat=True)) == {
        own_contact.pk,
        *(c.pk for c in moved_contacts),
    }
    assert list(Contact.objects.filter(customer=survivor, is_primary=True).values_list("pk", flat=True)) == [
        own_contact.pk
    ]
    assert ConsentRecord.objects.filter(customer=survivor).count() == 3
    assert sorted(TimelineEntry.objects.filter(customer=survivor).values_list("title", flat=True)) == [
        "Duplicate entry 1",
        "Duplicate entry 2",
        "Duplicate merged into this customer",
        "Own entry",
    ]
    assert Contact.objects.filter(customer=duplicate).count() == 0
    assert ConsentRecord.objects.filter(customer=duplicate).count() == 0
    assert TimelineEntry.objects.filter(customer=duplicate).count() == 0
    assert Contact.objects.get(pk=unrelated.pk).customer_id == unrelated.customer_id
    assert (survivor.email, survivor.phone, survivor.fiscal_code, survivor.street, survivor.birth_date) == (
        "mario@example.it",
        "+390612345678",
        "RSSMRA85T10A562S",
        "Via Roma 1",
        date(1985, 12, 10),
    )
    assert (survivor.status, duplicate.status, duplicate.merged_into_id) == ("active", "merged", survivor.pk)
    assert duplicate.email == "m.rossi@example.it"  # kept; no longer active, so no longer unique-checked
    assert facade.customer_summary(str(duplicate.public_id)).number == survivor.number

    audit = AuditLog.objects.get(action="customer.merged")
    assert audit.object_id == str(survivor.public_id)
    assert audit.before == {
        "birth_date": None,
        "fiscal_code": "",
        "merged_customer": None,
        "moved_consents": None,
        "moved_contacts": None,
        "moved_timeline_entries": None,
        "phone": "",
        "street": "",
    }
    assert audit.after == {
        "birth_date": "1985-12-10",
        "fiscal_code": "RSSMRA85T10A562S",
        "merged_customer": duplicate.number,
        "moved_consents": 2,
        "moved_contacts": 2,
        "moved_timeline_entries": 2,
        "phone": "+390612345678",
        "street": "Via Roma 1",
    }
    merged_into = AuditLog.objects.get(action="customer.merged_into")
    assert (merged_into.object_id, merged_into.after) == (
        str(duplicate.public_id),
        {"status": "merged", "merged_into": survivor.number},
    )
    event = OutboxEvent.objects.get(event_type="customers.CustomersMerged")
    assert event.payload == {
        "survivor_customer_id": str(survivor.public_id),
        "merged_customer_id": str(duplicate.public_id),
    }


@pytest.mark.django_db
def test_the_survivor_takes_the_duplicates_email_when_it_has_none(admin):
    survivor = CustomerFactory(email="")
    duplicate = CustomerFactory(email="only@example.it")

    customers_merge(
        actor=admin, survivor_public_id=str(survivor.public_id), duplicate_public_id=str(duplicate.public_id)
    )

    survivor.refresh_from_db()
    assert survivor.email == "only@example.it"


@pytest.mark.django_db
def test_self_merge_and_inactive_customers_are_refused_without_side_effects(admin):
    survivor, duplicate = pair()
    merged = CustomerFactory(status="merged")
    before = (AuditLog.objects.count(), OutboxEvent.objects.count())

    with pytest.raises(ValidationFailed) as failure:
        customers_merge(
            actor=admin,
            survivor_public_id=str(survivor.public_id),
            duplicate_public_id=str(survivor.public_id),
        )
    assert failure.value.code == "self_merge"
    with pytest.raises(Conflict) as conflict:
        customers_merge(
            actor=admin, survivor_public_id=str(survivor.public_id), duplicate_public_id=str(merged.public_id)
        )
    assert conflict.value.code == "customer_not_active"
    with pytest.raises(PermissionDenied):
        customers_merge(
            actor=actor_for(user_with_roles("agent")),
            survivor_public_id=str(survivor.public_id),
            duplicate_public_id=str(duplicate.public_id),
        )

    assert (AuditLog.objects.count(), OutboxEvent.objects.count()) == before
    duplicate.refresh_from_db()
    assert duplicate.status == "active"


@pytest.mark.django_db
def test_a_partner_cannot_merge_or_see_duplicates_of_another_organisations_customers():
    organisation, other = OrganisationFactory(), OrganisationFactory()
    partner = user_with_roles("partner", organisation=organisation)
    # Even a partner allowed to merge only reaches its own organisation's customers.
    partner.user_permissions.add(Permission.objects.get(codename="merge_customers"))
    actor = actor_for(get_user_model().objects.get(pk=partner.pk))
    own = CustomerFactory(managed_by=organisation)
    foreign = CustomerFactory(managed_by=other, email="x@example.it")

    with pytest.raises(NotFound):
        selectors.customer_find_duplicates(actor=actor, customer_public_id=str(foreign.public_id))
    with pytest.raises(NotFound):
        customers_merge(
            actor=actor, survivor_public_id=str(own.public_id), duplicate_public_id=str(foreign.public_id)
        )
    assert selectors.customer_find_duplicates(actor=actor, customer_public_id=str(own.public_id)) == []


@pytest.mark.django_db
def test_duplicates_are_found_with_scores_and_reasons(admin):
    customer = CustomerFactory(
        first_name="Mario",
        last_name="Rossi",
        email="mario@example.it",
        phone="+390612345678",
        fiscal_code="RSSMRA85T10A562S",
        city="Roma",
    )
    same_code = CustomerFactory(
        first_name="M.", last_name="Bianchi", fiscal_code="RSSMRA85T10A562S", city="Milano"
    )
    same_phone_and_name = CustomerFactory(
        first_name="Rossi", last_name="Mario", phone="+390612345678", city="roma"
    )
    contact_email = CustomerFactory(first_name="Anna", last_name="Neri", city="Torino")
    ContactFactory(customer=contact_email, email="mario@example.it")
    CustomerFactory(first_name="Mario", last_name="Rossi", city="Napoli")  # same name, other city
    CustomerFactory(first_name="Mario", last_name="Rossi", city="Roma", status="merged")
    company = CompanyFactory(vat_number="IT00743110157", city="Roma")
    company_twin = CompanyFactory(vat_number="IT00743110157", company_name="Other name", city="Bari")

    found = selectors.customer_find_duplicates(actor=admin, customer_public_id=str(customer.public_id))

    assert [(c.customer.pk, c.score, c.reasons) for c in found] == [
        (same_phone_and_name.pk, 55, ("same phone", "similar name in the same city")),
        (same_code.pk, 50, ("same fiscal code",)),
        (contact_email.pk, 40, ("same e-mail",)),
    ]
    by_vat = selectors.customer_find_duplicates(actor=admin, customer_public_id=str(company.public_id))
    assert [(c.customer.pk, c.score, c.reasons) for c in by_vat] == [
        (company_twin.pk, 50, ("same VAT number",))
    ]


@pytest.mark.django_db
def test_the_duplicates_page_lists_candidates_and_merges(client):
    survivor, duplicate = pair()
    client.force_login(user_with_roles("supervisor"))

    page = client.get(f"/customers/{survivor.public_id}/duplicates/")

    body = page.content.decode()
    assert page.status_code == 200
    assert f'id="candidate-{duplicate.public_id}"' in body
    assert "similar name in the same city" in body
    assert f'action="/customers/{survivor.public_id}/merge/"' in body

    response = client.post(
        f"/customers/{survivor.public_id}/merge/", {"duplicate_id": str(duplicate.public_id)}
    )
    assert response.status_code == 302 and response["Location"] == f"/customers/{survivor.public_id}/"
    duplicate.refresh_from_db()
    assert duplicate.status == "merged"

    again = client.post(f"/customers/{survivor.public_id}/merge/", {"duplicate_id": str(duplicate.public_id)})
    assert again.status_code == 302 and again["Location"] == f"/customers/{survivor.public_id}/duplicates/"
    assert client.get(f"/customers/{survivor.public_id}/merge/").status_code == 405

    client.force_login(user_with_roles("agent"))
    assert client.get(f"/customers/{survivor.public_id}/duplicates/").status_code == 403


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_merges_of_the_same_pair_in_opposite_directions():
    admin = actor_for(user_with_roles("admin"))
    first, second = pair()
    for customer in (first, second):
        ContactFactory(customer=customer)
        ContactFactory(customer=customer)
        consent(customer)
        timeline(customer, f"Entry of {customer.number}")
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def merge(name: str, survivor: Customer, duplicate: Customer) -> None:
        try:
            barrier.wait(timeout=10)
            customers_merge(
                actor=admin,
                survivor_public_id=str(survivor.public_id),
                duplicate_public_id=str(duplicate.public_id),
            )
            outcomes[name] = "merged"
        except Exception as error:
            outcomes[name] = error
        finally:
            connection.close()

    threads = [
        threading.Thread(target=merge, args=("first wins", first, second)),
        threading.Thread(target=merge, args=("second wins", second, first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a merge is stuck (deadlock?)"

    results = sorted(outcomes.values(), key=str)
    assert len(results) == 2
    winners = [name for name, outcome in outcomes.items() if outcome == "merged"]
    losers = [outcome for outcome in outcomes.values() if outcome != "merged"]
    assert len(winners) == 1
    assert len(losers) == 1 and isinstance(losers[0], Conflict)
    assert losers[0].code == "customer_not_active"
    survivor, duplicate = (first, second) if winners == ["first wins"] else (second, first)
    survivor.refresh_from_db()
    duplicate.refresh_from_db()
    assert (survivor.status, duplicate.status, duplicate.merged_into_id) == ("active", "merged", survivor.pk)
    assert Contact.objects.filter(customer=survivor).count() == 4
    assert ConsentRecord.objects.filter(customer=survivor).count() == 2
    assert TimelineEntry.objects.filter(customer=survivor).count() == 3
    assert Contact.objects.count() == 4
    assert OutboxEvent.objects.filter(event_type="customers.CustomersMerged").count() == 1
    assert AuditLog.objects.filter(action="customer.merged").count() == 1

"""Customer selectors: scoping per actor, filters, stats, consent in force, timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import OrganisationFactory, user_with_roles
from fedele.customers import selectors
from fedele.customers.models import ConsentRecord, TimelineEntry
from fedele.customers.tests.factories import CompanyFactory, ContactFactory, CustomerFactory
from fedele.shared.errors import NotFound

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

User = get_user_model()


def _actor(*roles: str, **kwargs: Any):  # type: ignore[no-untyped-def]
    user = user_with_roles(*roles, **kwargs)
    return actor_for(User.objects.get(pk=user.pk))


@pytest.mark.django_db
def test_scoping_per_kind_of_actor() -> None:
    organisation = OrganisationFactory()
    managed = CustomerFactory(managed_by=organisation)
    own = CustomerFactory()
    other = CustomerFactory()
    portal_user = user_with_roles("portal_customer")
    ContactFactory(customer=own, portal_user=portal_user)
    portal = actor_for(User.objects.get(pk=portal_user.pk))
    everyone = {managed.pk, own.pk, other.pk}

    def visible(actor: Any) -> set[int]:
        return set(selectors.customer_queryset_for(actor).values_list("pk", flat=True))

    assert visible(None) == set()
    assert visible(_actor("agent")) == everyone
    assert visible(_actor("analyst")) == everyone
    assert visible(portal) == {own.pk}
    assert visible(_actor("partner", organisation=organisation)) == {managed.pk}
    assert visible(_actor("partner")) == set()
    assert visible(_actor(is_staff=True)) == set()
    superuser = user_with_roles(is_superuser=True)
    assert visible(actor_for(User.objects.get(pk=superuser.pk))) == everyone
    # An employee who is also a portal customer is an employee.
    both = user_with_roles("agent", "portal_customer")
    assert visible(actor_for(User.objects.get(pk=both.pk))) == everyone
    assert set(selectors.contact_queryset_for(portal).values_list("customer_id", flat=True)) == {own.pk}


@pytest.mark.django_db
def test_customer_get_and_contact_list_are_scoped() -> None:
    portal_user = user_with_roles("portal_customer")
    own = CustomerFactory()
    ContactFactory(customer=own, portal_user=portal_user)
    other = CustomerFactory()
    portal = actor_for(User.objects.get(pk=portal_user.pk))
    assert selectors.customer_get(actor=portal, public_id=str(own.public_id)) == own
    with pytest.raises(NotFound):
        selectors.customer_get(actor=portal, public_id=str(other.public_id))
    with pytest.raises(NotFound):
        selectors.contact_list(actor=portal, customer_public_id=str(other.public_id))


@pytest.mark.django_db
def test_filters_and_stats() -> None:
    actor = _actor("agent")
    CustomerFactory(city="Roma", segment="consumer")
    CustomerFactory(city="ROMA", segment="consumer", status="merged")
    CompanyFactory(city="Milano")
    CompanyFactory(city="Roma", segment="enterprise")

    def count(**filters: str) -> int:
        return selectors.customer_list(actor=actor, filters=selectors.CustomerFilters(**filters)).count()

    assert count() == 3
    assert count(status="") == 4
    assert count(city="roma") == 2
    assert count(kind="company") == 2
    assert count(segment="enterprise") == 1
    assert count(status="merged") == 1
    assert selectors.customer_stats(actor=actor) == {"total": 3, "companies": 2, "persons": 1}
    assert selectors.customer_count_by_segment(actor) == {
        "consumer": 1,
        "small_business": 1,
        "enterprise": 1,
        "public_administration": 0,
    }
    assert selectors.customer_stats(actor=_actor("partner")) == {"total": 0, "companies": 0, "persons": 0}


@pytest.mark.django_db
def test_search_matches_every_term() -> None:
    actor = _actor("agent")
    CustomerFactory(search_text="c-000001 mario rossi roma")
    CustomerFactory(search_text="c-000002 maria rossi milano")

    def found(search: str) -> int:
        return selectors.customer_list(actor=actor, filters=selectors.CustomerFilters(search=search)).count()

    assert found("rossi") == 2
    assert found("ROSSI roma") == 1
    assert found("rossi napoli") == 0


@pytest.mark.django_db
def test_consent_in_force_is_the_latest_per_channel_and_purpose() -> None:
    customer = CustomerFactory()

    def record(channel: str, purpose: str, granted: bool, minutes: int) -> ConsentRecord:
        return ConsentRecord.objects.create(
            customer=customer,
            channel=channel,
            purpose=purpose,
            granted=granted,
            source="test",
            recorded_at=START + timedelta(minutes=minutes),
        )

    record("email", "marketing", True, 0)
    latest = record("email", "marketing", False, 5)
    sms = record("sms", "marketing", True, 1)
    current = selectors.consent_current(customer=customer)
    assert current == {("email", "marketing"): latest, ("sms", "marketing"): sms}
    assert [r.granted for r in selectors.consent_history(customer=customer)] == [False, True, True]


@pytest.mark.django_db
def test_timeline_is_newest_first_filtered_and_limited() -> None:
    customer = CustomerFactory()
    for minutes, module in ((0, "billing"), (10, "support"), (5, "billing")):
        TimelineEntry.objects.create(
            customer=customer,
            module=module,
            kind="k",
            title=f"{module}{minutes}",
            occurred_at=START + timedelta(minutes=minutes),
        )
    assert [e.title for e in selectors.timeline_list(customer=customer)] == [
        "support10",
        "billing5",
        "billing0",
    ]
    assert [e.title for e in selectors.timeline_list(customer=customer, module="billing")] == [
        "billing5",
        "billing0",
    ]
    assert [e.title for e in selectors.timeline_list(customer=customer, limit=1)] == ["support10"]

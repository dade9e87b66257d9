"""The two consent functions the club's preferences page uses from the customers facade: read the
consent in force, record a change (through the customers service: scoped, audited, event)."""

from __future__ import annotations

import pytest
import time_machine

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.facade import consent_change, consents_in_force
from fedele.customers.models import ConsentRecord
from fedele.customers.tests.factories import ConsentRecordFactory, ContactFactory, CustomerFactory
from fedele.shared.errors import NotFound, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db


def _portal_actor_of(customer):
    user = user_with_roles("portal_customer", email=f"portal-{customer.pk}@example.it")
    ContactFactory(customer=customer, portal_user=user)
    return actor_for(user)


def test_consents_in_force_takes_the_latest_record_per_channel_and_purpose() -> None:
    customer = CustomerFactory()
    with time_machine.travel("2026-01-10 10:00 +00:00", tick=False):
        ConsentRecordFactory(customer=customer, channel="email", purpose="marketing", granted=True)
    with time_machine.travel("2026-02-10 10:00 +00:00", tick=False):
        ConsentRecordFactory(customer=customer, channel="email", purpose="marketing", granted=False)
        ConsentRecordFactory(customer=customer, channel="sms", purpose="marketing", granted=True)
    ConsentRecordFactory(channel="email", purpose="marketing", granted=True)  # another customer

    found = consents_in_force(str(customer.public_id))

    assert sorted(found) == [("email", "marketing"), ("sms", "marketing")]
    assert found[("email", "marketing")].granted is False
    assert found[("sms", "marketing")].granted is True
    assert consents_in_force("00000000-0000-0000-0000-000000000000") == {}


@time_machine.travel("2026-03-01 09:30 +00:00", tick=False)
def test_consent_change_by_the_portal_customer_is_recorded_audited_and_published() -> None:
    customer = CustomerFactory()
    actor = _portal_actor_of(customer)

    state = consent_change(
        actor=actor,
        customer_public_id=str(customer.public_id),
        channel="sms",
        purpose="marketing",
        granted=True,
        evidence="club preferences",
    )

    assert (state.channel, state.purpose, state.granted, state.source) == ("sms", "marketing", True, "portal")
    record = ConsentRecord.objects.get(customer=customer)
    assert (record.granted, record.source, record.evidence, record.recorded_by_id) == (
        True,
        "portal",
        "club preferences",
        actor.user_id,
    )
    assert record.recorded_at.isoformat() == "2026-03-01T09:30:00+00:00"
    assert AuditLog.objects.filter(action="consent.recorded", object_id=str(customer.public_id)).count() == 1
    assert OutboxEvent.objects.filter(event_type="customers.ConsentChanged").count() == 1
    assert consents_in_force(str(customer.public_id))[("sms", "marketing")].granted is True


def test_consent_change_of_another_customer_is_not_found_and_writes_nothing() -> None:
    mine = CustomerFactory()
    other = CustomerFactory()
    actor = _portal_actor_of(mine)

    with pytest.raises(NotFound):
        consent_change(
            actor=actor,
            customer_public_id=str(other.public_id),
            channel="email",
            purpose="marketing",
            granted=True,
        )
    assert ConsentRecord.objects.count() == 0
    assert not AuditLog.objects.filter(action="consent.recorded").exists()


def test_consent_change_with_an_unknown_channel_is_refused() -> None:
    customer = CustomerFactory()
    with pytest.raises(ValidationFailed) as failure:
        consent_change(
            actor=None,
            customer_public_id=str(customer.public_id),
            channel="pigeon",
            purpose="marketing",
            granted=True,
        )
    assert list(failure.value.fields) == ["channel"]
    assert ConsentRecord.objects.count() == 0

"""Enrolment, status, profile edits and households."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.core import mail

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.tests.factories import ConsentRecordFactory, ContactFactory, CustomerFactory
from fedele.loyalty.models import ExpiryNotice, Household, Member, TierChange
from fedele.loyalty.services.ledger import expiry_notices_send, points_earn
from fedele.loyalty.services.members import (
    household_add,
    household_create,
    household_remove,
    luhn_valid,
    member_enrol,
    member_set_status,
    member_update,
)
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory, standard_tiers
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def programme():
    programme = ProgrammeFactory()
    standard_tiers(programme)
    return programme


def _enrol(programme, customer, **kwargs) -> Member:
    return member_enrol(actor=None, programme=programme, customer_public_id=str(customer.public_id), **kwargs)


def test_enrol_gives_a_luhn_card_a_referral_code_and_the_base_tier(programme) -> None:
    customer = CustomerFactory(language="en")
    at = datetime(2026, 4, 1, 8, tzinfo=UTC)
    member = _enrol(programme, customer, at=at, birthday=date(1990, 2, 28))
    assert re.fullmatch(r"8\d{15}", member.card_number) and luhn_valid(member.card_number)
    assert re.fullmatch(r"[A-Z2-9]{8}", member.referral_code)
    assert (member.tier.code, member.tier_since, member.enrolled_at) == ("bronze", at, at)
    assert (member.language, member.birthday, member.status) == ("en", date(1990, 2, 28), "active")
    change = TierChange.objects.get(member=member)
    assert (change.reason, change.from_tier, change.to_tier.code) == ("enrolment", None, "bronze")
    event = OutboxEvent.objects.get(event_type="loyalty.member_enrolled")
    assert event.payload["card_number"] == member.card_number
    assert event.payload["customer_id"] == str(customer.public_id)
    assert AuditLog.objects.filter(action="loyalty.member_enrolled").count() == 1


def test_enrol_is_idempotent_and_card_numbers_are_unique_across_programmes(programme) -> None:
    customer = CustomerFactory()
    first = _enrol(programme, customer)
    again = _enrol(programme, customer, channel="portal")
    assert again.pk == first.pk and again.enrolment_channel == "backoffice"
    assert Member.objects.count() == 1
    other = _enrol(ProgrammeFactory(), customer)
    assert other.card_number != first.card_number
    assert int(other.card_number[1:15]) == int(first.card_number[1:15]) + 1


def test_referral_code_links_the_referrer(programme) -> None:
    referrer = _enrol(programme, CustomerFactory())
    member = _enrol(programme, CustomerFactory(), referral_code=referrer.referral_code.lower())
    assert member.referred_by_id == referrer.pk
    event = OutboxEvent.objects.filter(event_type="loyalty.member_enrolled").order_by("id").last()
    assert event.payload["referred_by_member_id"] == str(referrer.public_id)


def test_enrol_refuses_bad_input_and_writes_nothing(programme) -> None:
    customer = CustomerFactory()
    with pytest.raises(ValidationFailed) as error:
        _enrol(programme, customer, referral_code="ZZZZ2222")
    assert error.value.code == "unknown_referral_code"
    with pytest.raises(NotFound):
        member_enrol(actor=None, programme=programme, customer_public_id=str(uuid.uuid4()))
    with pytest.raises(ValidationFailed) as error:
        _enrol(programme, customer, birthday=date(2999, 1, 1))
    assert error.value.code == "invalid_birthday"
    with pytest.raises(ValidationFailed) as error:
        _enrol(programme, customer, language="de")
    assert error.value.code == "invalid_language"
    with pytest.raises(ValidationFailed) as error:
        _enrol(ProgrammeFactory(status="draft"), customer)
    assert error.value.code == "programme_not_active"
    assert Member.objects.count() == 0
    assert not OutboxEvent.objects.filter(event_type="loyalty.member_enrolled").exists()


def test_portal_customer_enrols_only_themselves(programme) -> None:
    customer = CustomerFactory()
    user = user_with_roles("portal_customer")
    ContactFactory(customer=customer, portal_user=user)
    actor = actor_for(user)
    member = member_enrol(
        actor=actor, programme=programme, customer_public_id=str(customer.public_id), channel="portal"
    )
    assert member.enrolment_channel == "portal"
    with pytest.raises(PermissionDenied):
        member_enrol(actor=actor, programme=programme, customer_public_id=str(CustomerFactory().public_id))


def test_status_changes_need_a_reason_and_closed_is_final(programme) -> None:
    agent = actor_for(user_with_roles("agent"))
    member = _enrol(programme, CustomerFactory())
    with pytest.raises(ValidationFailed) as error:
        member_set_status(actor=agent, member=member, status="suspended", reason="")
    assert error.value.code == "reason_required"
    member_set_status(actor=agent, member=member, status="suspended", reason="card lost")
    assert Member.objects.get(pk=member.pk).status == "suspended"
    member_set_status(actor=agent, member=member, status="active", reason="card found")
    member_set_status(actor=agent, member=member, status="closed", reason="customer asked")
    with pytest.raises(ValidationFailed) as error:
        member_set_status(actor=agent, member=member, status="active", reason="reopen")
    assert error.value.code == "member_closed"
    assert AuditLog.objects.filter(action="loyalty.member_status_changed").count() == 3


def test_member_update_by_the_member_and_not_by_a_stranger(programme) -> None:
    customer = CustomerFactory()
    user = user_with_roles("portal_customer")
    ContactFactory(customer=customer, portal_user=user)
    member = _enrol(programme, customer)
    member_update(actor=actor_for(user), member=member, birthday=date(1985, 7, 3), language="en")
    member.refresh_from_db()
    assert (member.birthday, member.language) == (date(1985, 7, 3), "en")
    member_update(actor=None, member=member, birthday=None)
    member.refresh_from_db()
    assert (member.birthday, member.language) == (None, "en")
    with pytest.raises(PermissionDenied):
        member_update(actor=actor_for(user_with_roles("portal_customer")), member=member, language="it")


def test_household_owner_leaving_hands_it_over_and_the_last_deletes_it(programme) -> None:
    owner, second = MemberFactory(programme=programme), MemberFactory(programme=programme)
    household = household_create(actor=None, owner=owner, name="Bianchi")
    household_add(actor=None, household=household, member=second)
    with pytest.raises(ValidationFailed) as error:
        household_add(actor=None, household=household, member=MemberFactory())
    assert error.value.code == "not_same_programme"
    with pytest.raises(ValidationFailed) as error:
        household_create(actor=None, owner=second, name="Another")
    assert error.value.code == "already_in_household"
    household_remove(actor=None, member=owner)
    household.refresh_from_db()
    assert household.owner_id == second.pk
    household_remove(actor=None, member=second)
    assert not Household.objects.exists()


def test_expiry_notice_once_per_member_and_date_by_email_with_consent(
    django_capture_on_commit_callbacks,
) -> None:
    programme = ProgrammeFactory(expiry_policy="rolling_months", expiry_months=1, expiry_notice_days=10)
    customer = CustomerFactory(email="anna@example.it")
    ConsentRecordFactory(customer=customer, channel="email", purpose="service", granted=True)
    member = MemberFactory(programme=programme, customer=customer, language="it")
    silent = MemberFactory(programme=programme)  # no consent: event only, no e-mail
    with time_machine.travel(datetime(2026, 5, 5, 10, tzinfo=UTC), tick=False):
        points_earn(actor=None, member=member, points=40, source="t", idempotency_key="a")
        points_earn(actor=None, member=member, points=2, source="t", idempotency_key="b")
        points_earn(actor=None, member=silent, points=7, source="t", idempotency_key="c")
    assert expiry_notices_send(today=date(2026, 5, 25)) == 0  # 5 June is 11 days away
    with django_capture_on_commit_callbacks(execute=True):
        assert expiry_notices_send(today=date(2026, 5, 26)) == 2
    assert expiry_notices_send(today=date(2026, 5, 27)) == 0
    notices = {notice.member_id: notice for notice in ExpiryNotice.objects.all()}
    assert (notices[member.pk].points, notices[member.pk].channel) == (42, "email")
    assert (notices[silent.pk].points, notices[silent.pk].channel) == (7, "")
    assert OutboxEvent.objects.filter(event_type="loyalty.points_expiring").count() == 2
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["anna@example.it"]
    assert "42 punti" in mail.outbox[0].subject and "05/06/2026" in mail.outbox[0].subject

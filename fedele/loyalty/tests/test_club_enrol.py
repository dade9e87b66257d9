"""Joining through the portal (with a friend's referral code, choosing among programmes, the terms)
and the preferences page (language, birthday once, marketing consent through the customers module,
all or nothing)."""

from __future__ import annotations

import re
from datetime import date

import pytest
import time_machine

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.models import ConsentRecord, Customer
from fedele.customers.tests.factories import ConsentRecordFactory, CustomerFactory
from fedele.loyalty.models import Member
from fedele.loyalty.services import club as club_services
from fedele.loyalty.tests.club_fixtures import enrol, portal_customer, programme_with_tiers
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db
NOW = "2026-03-10 10:00 +01:00"


def _html(response) -> str:
    return response.content.decode()


# enrolment -------------------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_joining_with_a_friends_link_makes_the_friend_the_referrer() -> None:
    programme = programme_with_tiers()
    friend = enrol(programme, CustomerFactory())
    portal = portal_customer()

    page = portal.client.get(f"/club/join/?ref={friend.referral_code.lower()}")
    assert page.status_code == 200
    html = _html(page)
    assert f'name="referral_code" value="{friend.referral_code}"' in html
    assert 'type="hidden" name="programme"' in html and "Friends Club" in html

    response = portal.client.post(
        "/club/join/",
        {
            "programme": programme.code,
            "birthday": "1990-02-28",
            "referral_code": friend.referral_code,
            "accept_terms": "on",
        },
    )

    assert response.status_code == 302 and response["Location"] == "/club/"
    member = Member.objects.get(customer=portal.customer)
    assert (member.programme_id, member.referred_by_id, member.enrolment_channel) == (
        programme.pk,
        friend.pk,
        "portal",
    )
    assert (member.birthday, member.language, member.status, member.tier.code) == (
        date(1990, 2, 28),
        "en",
        "active",
        "bronze",
    )
    assert (
        AuditLog.objects.filter(action="loyalty.club_terms_accepted", object_id=str(member.public_id)).count()
        == 1
    )
    event = OutboxEvent.objects.get(event_type="loyalty.member_enrolled", aggregate_id=str(member.public_id))
    assert event.payload["referred_by_member_id"] == str(friend.public_id)
    assert event.payload["channel"] == "portal"
    home = portal.client.get("/club/")
    assert f"Welcome to Friends Club! Your card number is {member.card_number}." in _html(home)
    assert "club_referral_code" not in portal.client.session


@time_machine.travel(NOW, tick=False)
def test_the_referral_code_remembered_before_the_login_fills_the_form() -> None:
    programme_with_tiers()
    portal = portal_customer()
    session = portal.client.session
    session["club_referral_code"] = "FRIEND22"
    session.save()
    assert 'name="referral_code" value="FRIEND22"' in _html(portal.client.get("/club/join/"))


@time_machine.travel(NOW, tick=False)
def test_joining_needs_the_terms_and_a_known_referral_code() -> None:
    programme = programme_with_tiers()
    portal = portal_customer()

    no_terms = portal.client.post("/club/join/", {"programme": programme.code})
    assert no_terms.status_code == 422
    assert re.search(r'name="accept_terms"[^>]*is-invalid', _html(no_terms))
    unknown = portal.client.post(
        "/club/join/", {"programme": programme.code, "referral_code": "NOBODY99", "accept_terms": "on"}
    )
    assert unknown.status_code == 422
    assert "No member has this code." in _html(unknown)
    future = portal.client.post(
        "/club/join/", {"programme": programme.code, "birthday": "2027-01-01", "accept_terms": "on"}
    )
    assert future.status_code == 422
    assert not Member.objects.exists()
    assert not OutboxEvent.objects.filter(event_type="loyalty.member_enrolled").exists()
    assert not AuditLog.objects.filter(action__startswith="loyalty.").exists()


@time_machine.travel(NOW, tick=False)
def test_choosing_among_several_programmes_and_joining_another_one_later() -> None:
    first = programme_with_tiers(code="alpha", name_en="Alpha Club")
    second = programme_with_tiers(code="beta", name_en="Beta Miles")
    programme_with_tiers(code="gamma", name_en="Gamma Closed", status="closed")
    portal = portal_customer()

    page = _html(portal.client.get("/club/join/?programme=beta"))
    assert re.findall(r'type="radio" name="programme" value="(\w+)"', page) == ["alpha", "beta"]
    assert re.search(r'value="beta"[^>]*checked', page)
    assert "Gamma Closed" not in page

    portal.client.post("/club/join/", {"programme": "beta", "accept_terms": "on"})
    assert list(
        Member.objects.filter(customer=portal.customer).values_list("programme__code", flat=True)
    ) == ["beta"]
    assert "Beta Miles" in _html(portal.client.get("/club/"))
    # Only Alpha is left: one programme, no choice to make.
    page = _html(portal.client.get("/club/join/"))
    assert "Join another programme" in page and 'type="hidden" name="programme" value="alpha"' in page
    portal.client.post("/club/join/", {"programme": "alpha", "accept_terms": "on"})
    assert Member.objects.filter(customer=portal.customer).count() == 2
    assert portal.client.get("/club/join/")["Location"] == "/club/"
    assert first.pk != second.pk


@time_machine.travel(NOW, tick=False)
def test_the_enrol_service_is_for_portal_customers_only() -> None:
    programme = programme_with_tiers()
    staff = actor_for(user_with_roles("agent"))
    with pytest.raises(PermissionDenied):
        club_services.club_enrol(actor=staff, programme_code=programme.code, accept_terms=True)
    portal = portal_customer()
    actor = actor_for(portal.user)
    member = club_services.club_enrol(actor=actor, programme_code=programme.code, accept_terms=True)
    with pytest.raises(ValidationFailed) as again:
        club_services.club_enrol(actor=actor, programme_code=programme.code, accept_terms=True)
    assert again.value.code == "already_member"
    assert Member.objects.filter(customer=portal.customer).get() == member


# preferences -----------------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_preferences_record_consent_through_the_customers_module() -> None:
    programme = programme_with_tiers()
    portal = portal_customer()
    member = enrol(programme, portal.customer)
    ConsentRecordFactory(customer=portal.customer, channel="sms", purpose="marketing", granted=True)

    page = _html(portal.client.get("/club/preferences/"))
    assert re.search(r'name="sms_marketing"[^>]*checked', page)
    assert not re.search(r'name="email_marketing"[^>]*checked', page)

    response = portal.client.post(
        "/club/preferences/",
        {"language": "it", "birthday": "1985-07-14", "email_marketing": "on", "sms_marketing": "on"},
    )

    assert response.status_code == 302
    records = ConsentRecord.objects.filter(customer=portal.customer, source="portal")
    assert [(r.channel, r.purpose, r.granted, r.recorded_by_id) for r in records] == [
        ("email", "marketing", True, portal.user.pk)
    ]
    member.refresh_from_db()
    assert (member.language, member.birthday) == ("it", date(1985, 7, 14))
    assert OutboxEvent.objects.filter(event_type="customers.ConsentChanged").count() == 1

    # Withdrawing SMS only writes the SMS record.
    portal.client.post("/club/preferences/", {"language": "it", "email_marketing": "on"})
    latest = ConsentRecord.objects.filter(customer=portal.customer).order_by("-id").first()
    assert (latest.channel, latest.granted, latest.source) == ("sms", False, "portal")
    assert ConsentRecord.objects.filter(customer=portal.customer, source="portal").count() == 2
    # Nothing changed → nothing written.
    unchanged = portal.client.post(
        "/club/preferences/", {"language": "it", "email_marketing": "on"}, follow=True
    )
    assert ConsentRecord.objects.filter(customer=portal.customer, source="portal").count() == 2
    assert "Nothing to change." in _html(unchanged)


@time_machine.travel(NOW, tick=False)
def test_the_birthday_can_be_given_once() -> None:
    programme = programme_with_tiers()
    portal = portal_customer()
    member = enrol(programme, portal.customer, birthday=date(1990, 1, 31))

    page = _html(portal.client.get("/club/preferences/"))
    assert re.search(r'name="birthday"[^>]*disabled', page)
    # A disabled field is ignored even if a crafted request sends it.
    portal.client.post("/club/preferences/", {"language": "en", "birthday": "2000-01-01"})
    member.refresh_from_db()
    assert member.birthday == date(1990, 1, 31)
    with pytest.raises(ValidationFailed) as failure:
        club_services.club_preferences_update(
            actor=actor_for(portal.user),
            member=member,
            language="en",
            birthday=date(2000, 1, 1),
            email_marketing=False,
            sms_marketing=False,
        )
    assert list(failure.value.fields) == ["birthday"]


@time_machine.travel(NOW, tick=False)
def test_preferences_change_all_or_nothing() -> None:
    programme = programme_with_tiers()
    portal = portal_customer()
    member = enrol(programme, portal.customer)
    # The customer record was merged away: the customers module refuses consent for it.
    Customer.objects.filter(pk=portal.customer.pk).update(status="merged")
    audit_before = AuditLog.objects.count()

    with pytest.raises(Conflict):
        club_services.club_preferences_update(
            actor=actor_for(portal.user),
            member=member,
            language="it",
            birthday=date(1980, 5, 5),
            email_marketing=True,
            sms_marketing=False,
        )

    member.refresh_from_db()
    assert (member.language, member.birthday) == ("en", None)
    assert not ConsentRecord.objects.exists()
    assert AuditLog.objects.count() == audit_before


@time_machine.travel(NOW, tick=False)
def test_preferences_of_another_members_membership_are_refused() -> None:
    programme = programme_with_tiers()
    anna, bruno = portal_customer(name="Anna Rossi"), portal_customer(name="Bruno Verdi")
    enrol(programme, anna.customer)
    bruno_member = enrol(programme, bruno.customer)
    from fedele.shared.errors import NotFound

    with pytest.raises(NotFound):
        club_services.club_preferences_update(
            actor=actor_for(anna.user),
            member=bruno_member,
            language="it",
            birthday=None,
            email_marketing=True,
            sms_marketing=True,
        )
    bruno_member.refresh_from_db()
    assert bruno_member.language == "en"
    assert not ConsentRecord.objects.exists()

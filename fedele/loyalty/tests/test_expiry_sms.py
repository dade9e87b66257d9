"""Expiry notices by the channels the customer consented to: e-mail, SMS (fedele.shared.sms), both or
none; the notice row records the channels; the text follows the member's language; once only; the
Twilio backend end to end against a real local server; a refused SMS changes nothing else."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.test import override_settings

from fedele.customers.tests.factories import ConsentRecordFactory, CustomerFactory
from fedele.loyalty.models import ExpiryNotice, Member, Programme
from fedele.loyalty.services.ledger import expiry_notices_send, points_earn
from fedele.loyalty.services.ledger_jobs import expiry_sms_text
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory
from fedele.shared import sms
from fedele.shared.models import OutboxEvent
from fedele.shared.tests.test_sms import TwilioFake

pytestmark = pytest.mark.django_db
EARNED = datetime(2026, 5, 5, 10, tzinfo=UTC)
NOTICE_DAY = date(2026, 5, 26)  # the points earned on 5 May expire on 5 June: 10 days' notice


@pytest.fixture(autouse=True)
def empty_outboxes() -> Iterator[None]:
    sms.outbox.clear()
    yield
    sms.outbox.clear()


@pytest.fixture
def programme() -> Programme:
    programme: Programme = ProgrammeFactory(
        name_it="Club Fedele",
        name_en="Loyal Club",
        expiry_policy="rolling_months",
        expiry_months=1,
        expiry_notice_days=10,
    )
    return programme


def _member(
    programme: Programme,
    *,
    phone: str,
    consents: list[tuple[str, str, bool]],
    language: str = "it",
    points: int = 10,
) -> Member:
    customer = CustomerFactory(phone=phone)
    for minute, (channel, purpose, granted) in enumerate(consents):
        ConsentRecordFactory(
            customer=customer,
            channel=channel,
            purpose=purpose,
            granted=granted,
            recorded_at=EARNED - timedelta(days=1) + timedelta(minutes=minute),
        )
    member: Member = MemberFactory(programme=programme, customer=customer, language=language)
    with time_machine.travel(EARNED, tick=False):
        points_earn(actor=None, member=member, points=points, source="t", idempotency_key=f"seed-{member.pk}")
    return member


def _channels() -> dict[int, str]:
    return dict(ExpiryNotice.objects.values_list("member_id", "channel"))


def test_channels_follow_the_consents_in_force(
    programme: Programme, django_capture_on_commit_callbacks
) -> None:
    both = _member(
        programme,
        phone="+393331000001",
        consents=[("email", "service", True), ("sms", "marketing", True)],
        points=42,
    )
    sms_only = _member(
        programme, phone="+393331000002", consents=[("sms", "service", True)], language="en", points=7
    )
    withdrawn = _member(
        programme,
        phone="+393331000003",
        consents=[("sms", "marketing", True), ("email", "marketing", True), ("sms", "marketing", False)],
    )
    landline = _member(programme, phone="+390612345678", consents=[("sms", "service", True)])
    profiling = _member(programme, phone="+393331000005", consents=[("sms", "profiling", True)])
    nothing = _member(programme, phone="+393331000006", consents=[])

    with django_capture_on_commit_callbacks(execute=True):
        assert expiry_notices_send(today=NOTICE_DAY) == 6

    assert _channels() == {
        both.pk: "email,sms",
        sms_only.pk: "sms",
        withdrawn.pk: "email",
        landline.pk: "",
        profiling.pk: "",
        nothing.pk: "",
    }
    assert OutboxEvent.objects.filter(event_type="loyalty.points_expiring").count() == 6
    assert sorted(message.to[0] for message in mail.outbox) == sorted(
        [both.customer.email, withdrawn.customer.email]
    )
    by_number = {sent.to: sent for sent in sms.outbox}
    assert sorted(by_number) == ["+393331000001", "+393331000002"]
    english = by_number["+393331000002"]
    assert english.body == (
        f"Loyal Club: 7 points on your card ending {sms_only.card_number[-4:]} expire on 05/06/2026. "
        "Use them: http://127.0.0.1:8000/club/"
    )
    assert (english.sender, english.segments) == ("Fedele", 1)
    italian = by_number["+393331000001"]
    assert italian.body.startswith("Club Fedele: 42 punti ")
    assert "05/06/2026" in italian.body and italian.body.endswith("http://127.0.0.1:8000/club/")
    assert italian.segments == 1

    # Once per member and expiry date: a second run sends nothing.
    with django_capture_on_commit_callbacks(execute=True):
        assert expiry_notices_send(today=NOTICE_DAY + timedelta(days=1)) == 0
    assert (len(sms.outbox), len(mail.outbox), ExpiryNotice.objects.count()) == (2, 2, 6)


def test_nothing_is_sent_before_the_transaction_commits(
    programme: Programme, django_capture_on_commit_callbacks
) -> None:
    _member(programme, phone="+393331000001", consents=[("sms", "service", True)])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert expiry_notices_send(today=NOTICE_DAY) == 1
    assert sms.outbox == [] and len(callbacks) == 2  # the outbox relay, then the SMS
    for callback in callbacks:
        callback()
    assert [sent.to for sent in sms.outbox] == ["+393331000001"]


def test_the_sms_text_is_in_the_member_language(programme: Programme) -> None:
    member = MemberFactory(programme=programme, card_number="9000000000001234", language="en")
    assert expiry_sms_text(member, 120, date(2026, 8, 31)) == (
        "Loyal Club: 120 points on your card ending 1234 expire on 31/08/2026. Use them: http://127.0.0.1:8000/club/"
    )
    member.language = "it"
    assert expiry_sms_text(member, 120, date(2026, 8, 31)).startswith("Club Fedele: 120 punti ")


def test_through_twilio_end_to_end(programme: Programme, django_capture_on_commit_callbacks) -> None:
    member = _member(
        programme, phone="333 100 0009", consents=[("sms", "service", True)], language="en", points=15
    )
    with (
        TwilioFake() as twilio,
        override_settings(
            FEDELE_SMS_BACKEND="fedele.shared.sms.TwilioBackend",
            FEDELE_TWILIO_ACCOUNT_SID="AC1",
            FEDELE_TWILIO_AUTH_TOKEN="token",
            FEDELE_TWILIO_BASE_URL=twilio.url,
            FEDELE_SMS_FROM="FedeleClub",
        ),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert expiry_notices_send(today=NOTICE_DAY) == 1
    assert len(twilio.requests) == 1
    request = twilio.requests[0]
    assert request["path"] == "/2010-04-01/Accounts/AC1/Messages.json"
    assert request["authorization"] == "Basic " + base64.b64encode(b"AC1:token").decode()
    assert request["form"] == {
        "To": ["+393331000009"],
        "From": ["FedeleClub"],
        "Body": [
            f"Loyal Club: 15 points on your card ending {member.card_number[-4:]} expire on 05/06/2026. "
            "Use them: http://127.0.0.1:8000/club/"
        ],
    }
    assert _channels() == {member.pk: "sms"}


def test_a_refused_sms_leaves_the_notice_and_the_email(
    programme: Programme, django_capture_on_commit_callbacks
) -> None:
    member = _member(
        programme, phone="+393331000010", consents=[("sms", "service", True), ("email", "service", True)]
    )
    with (
        TwilioFake() as twilio,
        override_settings(
            FEDELE_SMS_BACKEND="fedele.shared.sms.TwilioBackend",
            FEDELE_TWILIO_ACCOUNT_SID="AC1",
            FEDELE_TWILIO_AUTH_TOKEN="token",
            FEDELE_TWILIO_BASE_URL=twilio.url,
        ),
    ):
        twilio.reply_status = 400
        twilio.reply_body = {"code": 21610, "message": "Attempt to send to unsubscribed recipient"}
        with django_capture_on_commit_callbacks(execute=True):
            assert expiry_notices_send(today=NOTICE_DAY) == 1
    assert len(twilio.requests) == 1
    assert _channels() == {member.pk: "email,sms"}
    assert [message.to for message in mail.outbox] == [[member.customer.email]]
    assert sms.outbox == []

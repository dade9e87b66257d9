"""Loyalty's handlers of domain events: InvoicePaid (EUR only, once however often delivered),
SubscriptionCancelled (forfeit when the last subscription ends, win-back custom event), SurveyCompleted,
MemberEnrolled (sign-up and referral points), and the birthday job (29 February)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.utils import timezone, translation

from fedele.billing.tests.factories import BillingAccountFactory, flat_plan, subscription
from fedele.customers.tests.factories import CustomerFactory
from fedele.loyalty.models import LoyaltyEvent, Member, PointsTransaction
from fedele.loyalty.services.consumers import on_invoice_paid, on_member_enrolled
from fedele.loyalty.services.ledger import points_earn
from fedele.loyalty.services.members import member_enrol
from fedele.loyalty.services.rules import birthdays_award
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory
from fedele.loyalty.tests.rules_support import balance, make_rule, row_counts
from fedele.shared import events
from fedele.shared.events import EventEnvelope
from fedele.shared.models import HandlerReceipt, OutboxEvent

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 9, 15, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> object:
    # Messages are asserted in English, whatever language an earlier test left active.
    with time_machine.travel(NOW, tick=False) as traveller, translation.override("en"):
        yield traveller


def _deliver(event_type: str, payload: dict[str, Any]) -> OutboxEvent:
    row = OutboxEvent.objects.create(
        event_type=event_type,
        aggregate_type="test",
        aggregate_id="1",
        payload=payload,
        occurred_at=timezone.now(),
    )
    assert events.dispatch(row.event_id)
    return row


def _invoice(
    customer: Any, *, total: str = "122.50", currency: str = "EUR", invoice_id: str | None = None
) -> dict[str, Any]:
    return {
        "invoice_id": invoice_id or str(uuid.uuid4()),
        "number": "INV-2026-000042",
        "customer_id": str(customer.public_id),
        "currency": currency,
        "total": total,
        "paid_at": "2026-09-14T18:30:00+00:00",
    }


def test_invoice_paid_earns_once_in_each_programme_with_a_rule() -> None:
    customer = CustomerFactory()
    with_rule, without_rule = ProgrammeFactory(pending_days=0), ProgrammeFactory()
    make_rule(with_rule, code="invoices", event_type="invoice_paid", points_per_euro="2")
    member = MemberFactory(programme=with_rule, customer=customer)
    MemberFactory(programme=without_rule, customer=customer)
    payload = _invoice(customer)
    row = _deliver("billing.invoice_paid", payload)
    event = LoyaltyEvent.objects.get()
    assert (event.member_id, event.source, event.external_id, event.amount_eur) == (
        member.pk,
        "billing",
        payload["invoice_id"],
        Decimal("122.50"),
    )
    assert event.occurred_at == datetime(2026, 9, 14, 18, 30, tzinfo=UTC)
    txn = PointsTransaction.objects.get()
    assert (txn.points, txn.reference, txn.qualifying_count) == (245, "INV-2026-000042", 1)
    assert (
        HandlerReceipt.objects.filter(event_id=row.event_id, handler="loyalty.rules.on_invoice_paid").count()
        == 1
    )
    before = row_counts()
    # Delivered again, and the handler itself run again: nothing more.
    assert events.dispatch(row.event_id)
    on_invoice_paid(EventEnvelope(row.event_id, row.event_type, "test", "1", row.occurred_at, payload))
    assert row_counts() == before
    assert balance(member) == (245, 0)


def test_invoice_in_another_currency_or_for_a_stranger_earns_nothing() -> None:
    customer = CustomerFactory()
    programme = ProgrammeFactory()
    make_rule(programme, code="invoices", event_type="invoice_paid")
    MemberFactory(programme=programme, customer=customer)
    suspended_customer = CustomerFactory()
    MemberFactory(programme=programme, customer=suspended_customer, status="suspended")
    before = row_counts()
    _deliver("billing.invoice_paid", _invoice(customer, currency="CHF"))
    _deliver("billing.invoice_paid", _invoice(CustomerFactory()))
    _deliver("billing.invoice_paid", _invoice(suspended_customer))
    _deliver("billing.invoice_paid", {**_invoice(customer), "customer_id": "not-a-uuid"})
    after = row_counts()
    assert (after["events"], after["transactions"]) == (before["events"], before["transactions"])


def test_subscription_cancelled_forfeits_when_the_last_one_ends_then_records_win_back() -> None:
    customer = CustomerFactory()
    programme = ProgrammeFactory(forfeit_on_cancellation=True)
    make_rule(
        programme,
        code="win-back",
        event_type="custom",
        custom_event="subscription_cancelled",
        points_per_euro="0",
        fixed_points=300,
    )
    member = MemberFactory(programme=programme, customer=customer)
    points_earn(actor=None, member=member, points=1200, source="test", idempotency_key="seed")
    subscription_id = str(uuid.uuid4())
    payload = {
        "subscription_id": subscription_id,
        "number": "SUB-000007",
        "customer_id": str(customer.public_id),
        "plan_code": "fibra-1g",
        "ended_on": "2026-09-15",
        "reason": "moving abroad",
    }
    row = _deliver("billing.subscription_cancelled", payload)
    forfeit = PointsTransaction.objects.get(member=member, kind="adjust")
    assert (forfeit.points, forfeit.details["forfeit"]) == (1200, "subscription_cancelled")
    assert forfeit.idempotency_key == f"forfeit:forfeit:{subscription_id}:{member.public_id}"
    event = LoyaltyEvent.objects.get(member=member)
    assert (event.event_type, event.custom_event, event.external_id) == (
        "custom",
        "subscription_cancelled",
        subscription_id,
    )
    assert event.attributes == {"plan_code": "fibra-1g", "reason": "moving abroad"}
    assert balance(member) == (300, 0)  # the win-back points stay
    before = row_counts()
    assert events.dispatch(row.event_id)
    assert row_counts() == before


def test_no_forfeit_while_another_subscription_is_live() -> None:
    customer = CustomerFactory()
    subscription(flat_plan(), account=BillingAccountFactory(customer=customer))
    programme = ProgrammeFactory(forfeit_on_cancellation=True)
    member = MemberFactory(programme=programme, customer=customer)
    points_earn(actor=None, member=member, points=500, source="test", idempotency_key="seed")
    _deliver(
        "billing.subscription_cancelled",
        {
            "subscription_id": str(uuid.uuid4()),
            "number": "SUB-1",
            "customer_id": str(customer.public_id),
            "plan_code": "x",
            "ended_on": "2026-09-15",
            "reason": "",
        },
    )
    assert balance(member) == (500, 0)
    assert LoyaltyEvent.objects.count() == 0  # no custom rule listens to it


def test_survey_completed_awards_points_with_score_attribute() -> None:
    customer = CustomerFactory()
    programme = ProgrammeFactory()
    make_rule(programme, code="survey", event_type="survey_completed", points_per_euro="0", fixed_points=50)
    make_rule(
        programme,
        code="promoter",
        event_type="survey_completed",
        points_per_euro="0",
        fixed_points=25,
        conditions=[
            {"field": "attributes.kind", "op": "eq", "value": "nps"},
            {"field": "attributes.score", "op": "gte", "value": 9},
        ],
    )
    member = MemberFactory(programme=programme, customer=customer)
    survey_id = str(uuid.uuid4())
    payload = {
        "survey_id": survey_id,
        "kind": "nps",
        "ticket_id": None,
        "customer_id": str(customer.public_id),
        "score": 9,
        "comment": "ok",
        "responded_at": "2026-09-15T09:00:00+00:00",
    }
    _deliver("support.survey_completed", payload)
    _deliver("support.survey_completed", payload)  # another delivery of the same survey
    event = LoyaltyEvent.objects.get()
    assert (event.external_id, event.source, event.result["points"]) == (survey_id, "support", 75)
    assert balance(member) == (75, 0)
    _deliver("support.survey_completed", {**payload, "survey_id": str(uuid.uuid4()), "customer_id": None})
    assert LoyaltyEvent.objects.count() == 1


def test_enrolment_awards_sign_up_and_the_referrer_once() -> None:
    programme = ProgrammeFactory(code="club")
    make_rule(programme, code="welcome", event_type="sign_up", points_per_euro="0", fixed_points=100)
    make_rule(
        programme,
        code="referral",
        event_type="referral",
        points_per_euro="0",
        fixed_points=250,
        cap_per_member_total=500,
    )
    referrer = member_enrol(
        actor=None, programme=programme, customer_public_id=str(CustomerFactory().public_id)
    )
    friends = [
        member_enrol(
            actor=None,
            programme=programme,
            customer_public_id=str(CustomerFactory().public_id),
            referral_code=referrer.referral_code,
        )
        for _ in range(3)
    ]
    # The outbox delivers after commit; the test's transaction never commits, so deliver them here.
    enrolled = list(OutboxEvent.objects.filter(event_type="loyalty.member_enrolled").order_by("id"))
    assert len(enrolled) == 4
    for row in enrolled:
        assert events.dispatch(row.event_id)
    assert balance(referrer) == (100 + 500, 0)  # own sign-up, then 250 + 250 and the third trimmed by the cap
    for friend in friends:
        assert balance(friend) == (100, 0)
    referrals = LoyaltyEvent.objects.filter(event_type="referral").order_by("id")
    assert [event.external_id for event in referrals] == [
        f"referral:{friend.public_id}" for friend in friends
    ]
    assert [event.result["points"] for event in referrals] == [250, 250, 0]
    # The enrolment event delivered again changes nothing.
    for row in enrolled:
        OutboxEvent.objects.filter(pk=row.pk).update(dispatched_at=None)
        assert events.dispatch(row.event_id)
        on_member_enrolled(
            EventEnvelope(row.event_id, row.event_type, "test", "1", row.occurred_at, row.payload)
        )
    assert balance(referrer) == (600, 0) and LoyaltyEvent.objects.count() == 7


@pytest.mark.parametrize(
    ("today", "awarded"),
    [
        (date(2027, 2, 28), {"leap", "feb28"}),  # no 29 February in 2027: leap-day members today
        (date(2027, 3, 1), {"mar1"}),
        (date(2028, 2, 28), {"feb28"}),  # 2028 has a 29 February
        (date(2028, 2, 29), {"leap"}),
    ],
)
def test_birthdays_including_29_february(today: date, awarded: set[str]) -> None:
    programme = ProgrammeFactory(pending_days=0)
    make_rule(programme, code="birthday", event_type="birthday", points_per_euro="0", fixed_points=200)
    members = {
        "leap": MemberFactory(programme=programme, birthday=date(2000, 2, 29)),
        "feb28": MemberFactory(programme=programme, birthday=date(1990, 2, 28)),
        "mar1": MemberFactory(programme=programme, birthday=date(1985, 3, 1)),
    }
    MemberFactory(programme=programme, birthday=date(2000, 2, 29), status="suspended")
    MemberFactory(programme=ProgrammeFactory(), birthday=date(2000, 2, 29))  # no birthday rule there
    with time_machine.travel(datetime(today.year, today.month, today.day, 9, 0, tzinfo=UTC), tick=False):
        assert birthdays_award() == len(awarded)
        assert birthdays_award() == 0  # once per year
    got = {name for name, member in members.items() if balance(member) == (200, 0)}
    assert got == awarded
    for name in awarded:
        event = LoyaltyEvent.objects.get(member=members[name])
        assert event.external_id == f"birthday:{today.year}:{members[name].public_id}"


def test_birthday_uses_the_programme_day_and_next_year_pays_again() -> None:
    programme = ProgrammeFactory(timezone="Europe/Rome", pending_days=0)
    make_rule(programme, code="birthday", event_type="birthday", points_per_euro="0", fixed_points=10)
    member = MemberFactory(programme=programme, birthday=date(1970, 9, 16))
    # 15 September 22:30 UTC is already the 16th in Rome.
    with time_machine.travel(datetime(2026, 9, 15, 22, 30, tzinfo=UTC), tick=False):
        assert birthdays_award() == 1
    with time_machine.travel(datetime(2027, 9, 16, 8, 0, tzinfo=UTC), tick=False):
        assert birthdays_award() == 1
    assert Member.objects.get(pk=member.pk).available == 20

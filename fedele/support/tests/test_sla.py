"""SLA clocks through the ticket services: start, pause/resume, reopen, next response, policy choice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared import customer_attributes
from fedele.support.calendars import clock_cache_clear
from fedele.support.models import BusinessCalendar, CalendarHours, SlaClock, SlaPolicy, SlaTarget, Ticket
from fedele.support.selectors.sla import expected_first_response, policy_for
from fedele.support.services.tickets import message_add, ticket_create, ticket_update
from fedele.support.tests.factories import default_calendar, ticket_kwargs

pytestmark = pytest.mark.django_db
ROME = ZoneInfo("Europe/Rome")


def rome(*args: int) -> datetime:
    return datetime(*args, tzinfo=ROME)  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _fresh_clocks() -> Iterator[None]:
    clock_cache_clear()
    yield
    clock_cache_clear()


def at(moment: datetime) -> Any:
    return time_machine.travel(moment, tick=False)


def clock(ticket: Ticket, metric: str) -> SlaClock:
    return SlaClock.objects.get(ticket=ticket, metric=metric)


def agent() -> Any:
    return actor_for(user_with_roles("agent"))


def test_create_starts_first_response_and_resolution_in_business_time() -> None:
    with at(rome(2026, 11, 20, 17, 30)):
        ticket = ticket_create(actor=None, **ticket_kwargs(priority="normal"))
    ticket.refresh_from_db()
    assert ticket.sla_policy is not None and ticket.sla_policy.name == "Standard"
    first = clock(ticket, "first_response")
    assert first.target_minutes == 240
    assert first.due_at.astimezone(ROME) == rome(2026, 11, 23, 12, 30)
    resolution = clock(ticket, "resolution")
    assert resolution.target_minutes == 2700  # five business days: Fri 30 min + Mon..Fri 2670 min
    assert resolution.due_at.astimezone(ROME) == rome(2026, 11, 27, 17, 30)
    assert ticket.first_response_due_at == first.due_at
    assert ticket.resolution_due_at == resolution.due_at
    assert ticket.next_response_due_at is None
    assert ticket.sla_breached is False


def test_pending_pause_of_two_business_hours_moves_resolution_by_two_business_hours() -> None:
    actor = agent()
    with at(rome(2026, 11, 23, 9, 0)):
        ticket = ticket_create(actor=None, **ticket_kwargs(priority="high"))  # resolution 1080 min
    before = clock(ticket, "resolution").due_at
    assert before.astimezone(ROME) == rome(2026, 11, 24, 18, 0)
    with at(rome(2026, 11, 23, 10, 0)):
        message_add(
            actor=actor,
            ticket=ticket,
            kind="reply",
            body="Ci serve il seriale.",
            new_status="pending_customer",
        )
    paused = clock(ticket, "resolution")
    assert paused.status == "paused"
    assert clock(ticket, "first_response").status == "fulfilled"
    ticket.refresh_from_db()
    assert ticket.resolution_due_at is None  # nothing running while we wait for the customer
    with at(rome(2026, 11, 23, 12, 0)):
        message_add(actor=None, ticket=ticket, kind="customer", body="Eccolo: 123")
    resumed = clock(ticket, "resolution")
    assert resumed.status == "running"
    assert resumed.paused_business_seconds == 2 * 3600
    assert resumed.due_at.astimezone(ROME) == rome(2026, 11, 25, 11, 0)  # Tuesday 18:00 + 2 business hours
    ticket.refresh_from_db()
    assert ticket.resolution_due_at == resumed.due_at
    # The customer's answer after our reply starts the next-response clock (high: 240 min).
    following = clock(ticket, "next_response")
    assert following.status == "running"
    assert following.due_at.astimezone(ROME) == rome(2026, 11, 23, 16, 0)
    assert ticket.next_response_due_at == following.due_at


def test_pause_across_a_weekend_counts_only_business_time() -> None:
    actor = agent()
    with at(rome(2026, 11, 20, 9, 0)):
        ticket = ticket_create(actor=None, **ticket_kwargs(priority="urgent"))  # resolution 540
    with at(rome(2026, 11, 20, 17, 0)):
        message_add(
            actor=actor, ticket=ticket, kind="reply", body="Attendiamo", new_status="pending_customer"
        )
    with at(rome(2026, 11, 23, 10, 0)):
        message_add(actor=None, ticket=ticket, kind="customer", body="Fatto")
    resolution = clock(ticket, "resolution")
    assert resolution.paused_business_seconds == 2 * 3600  # Fri 17-18 + Mon 9-10
    assert resolution.due_at.astimezone(ROME) == rome(2026, 11, 23, 11, 0)


def test_reopen_continues_the_resolution_clock_where_it_stopped() -> None:
    actor = agent()
    with at(rome(2026, 11, 23, 9, 0)):
        ticket = ticket_create(actor=None, **ticket_kwargs(priority="high"))
    with at(rome(2026, 11, 23, 11, 0)):
        message_add(actor=actor, ticket=ticket, kind="reply", body="Risolto", new_status="solved")
    solved = clock(ticket, "resolution")
    assert solved.status == "fulfilled"
    assert solved.fulfilled_at == rome(2026, 11, 23, 11, 0)
    assert solved.met is True
    ticket.refresh_from_db()
    assert ticket.resolution_due_at is None
    with at(rome(2026, 11, 24, 9, 30)):
        message_add(actor=None, ticket=ticket, kind="customer", body="Non funziona ancora")
    reopened = SlaClock.objects.get(ticket=ticket, metric="resolution")  # still one clock
    assert reopened.status == "running"
    assert reopened.fulfilled_at is None
    # Solved from Mon 11:00 to Tue 09:30 = 7 h + 30 min of business time, counted as a pause.
    assert reopened.paused_business_seconds == 7 * 3600 + 1800
    assert reopened.due_at.astimezone(ROME) == rome(2026, 11, 25, 16, 30)  # Tue 18:00 + 7 h 30
    ticket.refresh_from_db()
    assert ticket.status_kind == "open"
    assert ticket.resolution_due_at == reopened.due_at
    assert clock(ticket, "next_response").status == "running"


def test_only_one_next_response_clock_at_a_time_and_reply_fulfils_it() -> None:
    actor = agent()
    with at(rome(2026, 11, 23, 9, 0)):
        ticket = ticket_create(actor=None, **ticket_kwargs())
        message_add(actor=None, ticket=ticket, kind="customer", body="Ancora io")  # before any reply
    assert not SlaClock.objects.filter(ticket=ticket, metric="next_response").exists()
    with at(rome(2026, 11, 23, 10, 0)):
        message_add(actor=actor, ticket=ticket, kind="reply", body="Eccoci")
    with at(rome(2026, 11, 23, 11, 0)):
        message_add(actor=None, ticket=ticket, kind="customer", body="Grazie, ma...")
    with at(rome(2026, 11, 23, 11, 30)):
        message_add(actor=None, ticket=ticket, kind="customer", body="...e poi")
    assert SlaClock.objects.filter(ticket=ticket, metric="next_response").count() == 1
    with at(rome(2026, 11, 23, 12, 0)):
        message_add(actor=actor, ticket=ticket, kind="note", body="interno")
    assert clock(ticket, "next_response").status == "running"
    with at(rome(2026, 11, 23, 13, 0)):
        message_add(actor=actor, ticket=ticket, kind="reply", body="Risposta")
    following = clock(ticket, "next_response")
    assert following.status == "fulfilled"
    assert following.fulfilled_at == rome(2026, 11, 23, 13, 0)
    first = clock(ticket, "first_response")
    assert first.fulfilled_at == rome(2026, 11, 23, 10, 0)
    assert first.met is True
    ticket.refresh_from_db()
    assert ticket.first_response_due_at is None and ticket.next_response_due_at is None


def test_solving_without_a_public_reply_cancels_the_response_clock() -> None:
    actor = agent()
    with at(rome(2026, 11, 23, 9, 0)):
        ticket = ticket_create(actor=None, **ticket_kwargs())
    with at(rome(2026, 11, 23, 9, 5)):
        ticket_update(actor=actor, ticket=ticket, changes={"status": "solved"})
    assert clock(ticket, "first_response").status == "cancelled"
    assert clock(ticket, "resolution").status == "fulfilled"


def test_priority_change_retargets_running_clocks_keeping_start_and_pauses() -> None:
    actor = agent()
    with at(rome(2026, 11, 23, 9, 0)):
        ticket = ticket_create(actor=None, **ticket_kwargs(priority="low"))
    assert clock(ticket, "first_response").due_at.astimezone(ROME) == rome(2026, 11, 23, 17, 0)
    with at(rome(2026, 11, 23, 9, 30)):
        ticket_update(actor=actor, ticket=ticket, changes={"priority": "urgent"})
    first = clock(ticket, "first_response")
    assert first.target_minutes == 60
    assert first.started_at == rome(2026, 11, 23, 9, 0)
    assert first.due_at.astimezone(ROME) == rome(2026, 11, 23, 10, 0)
    ticket.refresh_from_db()
    assert ticket.first_response_due_at == first.due_at


def _policy(name: str, position: int, conditions: dict[str, Any], minutes: int) -> SlaPolicy:
    policy = SlaPolicy.objects.create(
        name=name,
        position=position,
        conditions=conditions,
        calendar=default_calendar(),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    for priority in ("low", "normal", "high", "urgent"):
        SlaTarget.objects.create(
            policy=policy, priority=priority, first_response_minutes=minutes, resolution_minutes=minutes * 4
        )
    return policy


def test_policy_choice_by_position_segment_tier_and_channel() -> None:
    gold = _policy("Gold", 1, {"tiers": ["gold"]}, 30)
    business = _policy("Business", 2, {"segments": ["business"], "channels": ["email", "phone"]}, 60)
    enterprise_customer = CustomerFactory(segment="business")
    gold_customer = CustomerFactory(segment="consumer")
    customer_attributes.register(
        "loyalty_tier", lambda public_id: "gold" if public_id == str(gold_customer.public_id) else None
    )
    try:
        chosen = policy_for(
            priority="normal",
            customer_public_id=str(gold_customer.public_id),
            ticket_type=None,
            channel="portal",
        )
        assert chosen == gold
        chosen = policy_for(
            priority="normal",
            customer_public_id=str(enterprise_customer.public_id),
            ticket_type=None,
            channel="email",
        )
        assert chosen == business
        chosen = policy_for(
            priority="normal",
            customer_public_id=str(enterprise_customer.public_id),
            ticket_type=None,
            channel="portal",
        )
        assert chosen is not None and chosen.name == "Standard"
        with at(rome(2026, 11, 23, 9, 0)):
            ticket = ticket_create(
                actor=None, **ticket_kwargs(customer_public_id=str(gold_customer.public_id), channel="email")
            )
        assert clock(ticket, "first_response").due_at.astimezone(ROME) == rome(2026, 11, 23, 9, 30)
        gold.active = False
        gold.save()
        assert policy_for(
            priority="normal",
            customer_public_id=str(gold_customer.public_id),
            ticket_type=None,
            channel="portal",
        ) == SlaPolicy.objects.get(name="Standard")
    finally:
        customer_attributes.unregister("loyalty_tier")


def test_no_matching_policy_means_no_clocks() -> None:
    SlaPolicy.objects.update(active=False)
    with at(rome(2026, 11, 23, 9, 0)):
        ticket = ticket_create(actor=None, **ticket_kwargs())
    ticket.refresh_from_db()
    assert ticket.sla_policy is None
    assert SlaClock.objects.filter(ticket=ticket).count() == 0
    assert ticket.first_response_due_at is None
    assert (
        expected_first_response(
            priority="normal",
            customer_public_id=None,
            ticket_type=None,
            channel="portal",
            at=rome(2026, 11, 23, 9),
        )
        is None
    )


def test_expected_first_response_is_the_honest_promise() -> None:
    promise = expected_first_response(
        priority="normal",
        customer_public_id=None,
        ticket_type="question",
        channel="portal",
        at=rome(2026, 11, 20, 17, 30),
    )
    assert promise is not None
    assert promise.astimezone(ROME) == rome(2026, 11, 23, 12, 30)


def test_policy_on_its_own_calendar() -> None:
    saturday_desk = BusinessCalendar.objects.create(
        name="Sabato", timezone="Europe/Rome", holiday_country="", created_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    CalendarHours.objects.create(calendar=saturday_desk, weekday=5, starts_at=time(8), ends_at=time(12))
    policy = _policy("Weekend", 0, {"channels": ["phone"]}, 60)
    policy.calendar = saturday_desk
    policy.save()
    with at(rome(2026, 11, 20, 17, 30)):
        ticket = ticket_create(actor=None, **ticket_kwargs(channel="phone"))
    assert clock(ticket, "first_response").due_at.astimezone(ROME) == rome(2026, 11, 21, 9, 0)
    assert clock(ticket, "first_response").due_at == datetime(2026, 11, 21, 8, 0, tzinfo=UTC)

"""SLA reads: which policy applies to a ticket (or to a would-be ticket), the honest first-response
promise the portal shows, and the clocks of one ticket."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Prefetch, QuerySet

from fedele.customers.contracts import CustomerSummary
from fedele.shared import customer_attributes
from fedele.support.calendars import BusinessClock, CalendarNeverOpen, clock_for
from fedele.support.models import BusinessCalendar, SlaClock, SlaPolicy, SlaTarget, Ticket

CONDITION_KEYS = ("priorities", "segments", "tiers", "ticket_types", "categories", "channels", "customers")


@dataclass(frozen=True, slots=True)
class PolicyFacts:
    """The values an SLA policy's conditions are matched against."""

    priority: str
    customer_public_id: str | None = None
    ticket_type: str | None = None
    category: str | None = None
    channel: str = ""
    segment: str | None = None
    tier: str | None = None

    def value_for(self, key: str) -> str | None:
        return {
            "priorities": self.priority,
            "segments": self.segment,
            "tiers": self.tier,
            "ticket_types": self.ticket_type,
            "categories": self.category,
            "channels": self.channel,
            "customers": self.customer_public_id,
        }.get(key)


def facts_for(
    *,
    priority: str,
    customer_public_id: str | None,
    ticket_type: str | None,
    channel: str,
    category: str | None = None,
    customer: CustomerSummary | None = None,
) -> PolicyFacts:
    """Facts with the customer's segment (customers facade) and loyalty tier (shared attribute).
    ``customer``: the caller's summary of that customer, when it has one (not read again)."""
    segment: str | None = None
    tier: str | None = None
    if customer_public_id:
        from fedele.customers.facade import customer_summary

        summary = (
            customer
            if customer is not None and str(customer.public_id) == str(customer_public_id)
            else customer_summary(str(customer_public_id))
        )
        segment = summary.segment if summary is not None else None
        tier = customer_attributes.get(str(customer_public_id), "loyalty_tier")
    return PolicyFacts(
        priority=priority,
        customer_public_id=str(customer_public_id) if customer_public_id else None,
        ticket_type=ticket_type,
        category=category,
        channel=channel,
        segment=segment,
        tier=tier,
    )


def facts_for_ticket(ticket: Ticket) -> PolicyFacts:
    return facts_for(
        priority=ticket.priority,
        customer_public_id=str(ticket.customer.public_id) if ticket.customer is not None else None,
        ticket_type=ticket.ticket_type.code if ticket.ticket_type is not None else None,
        category=ticket.category.code if ticket.category is not None else None,
        channel=ticket.channel,
    )


def conditions_match(conditions: Mapping[str, Any], facts: PolicyFacts) -> bool:
    """Every present, non-empty condition list must contain the ticket's value (absent = anything)."""
    for key in CONDITION_KEYS:
        allowed = conditions.get(key)
        if not allowed:
            continue
        value = facts.value_for(key)
        if value is None or str(value) not in {str(item) for item in allowed}:
            return False
    return True


def active_policies() -> QuerySet[SlaPolicy]:
    return (
        SlaPolicy.objects.filter(active=True)
        .select_related("calendar")
        .prefetch_related(Prefetch("targets", queryset=SlaTarget.objects.all()))
        .order_by("position", "id")
    )


def policy_matching(facts: PolicyFacts, policies: Iterable[SlaPolicy] | None = None) -> SlaPolicy | None:
    for policy in policies if policies is not None else active_policies():
        if conditions_match(policy.conditions or {}, facts):
            return policy
    return None


def policy_for(
    *,
    priority: str,
    customer_public_id: str | None,
    ticket_type: str | None,
    channel: str,
    category: str | None = None,
) -> SlaPolicy | None:
    """The first active policy (by position) whose conditions hold for these values."""
    return policy_matching(
        facts_for(
            priority=priority,
            customer_public_id=customer_public_id,
            ticket_type=ticket_type,
            channel=channel,
            category=category,
        )
    )


def target_for(policy: SlaPolicy, priority: str) -> SlaTarget | None:
    for target in policy.targets.all():
        if target.priority == priority:
            return target
    return None


def expected_first_response(
    *, priority: str, customer_public_id: str | None, ticket_type: str | None, channel: str, at: datetime
) -> datetime | None:
    """When a ticket opened now would be answered at the latest (None: no policy or no target)."""
    policy = policy_for(
        priority=priority, customer_public_id=customer_public_id, ticket_type=ticket_type, channel=channel
    )
    if policy is None:
        return None
    target = target_for(policy, priority)
    if target is None or target.first_response_minutes is None:
        return None
    try:
        return clock_for(policy.calendar).add_business_minutes(at, target.first_response_minutes)
    except CalendarNeverOpen:
        return None  # no honest promise can be made


def default_calendar() -> BusinessCalendar | None:
    return BusinessCalendar.objects.filter(is_default=True).first()


def default_clock() -> BusinessClock | None:
    calendar = default_calendar()
    return clock_for(calendar) if calendar is not None else None


def clocks_of(ticket: Ticket) -> list[SlaClock]:
    return list(SlaClock.objects.filter(ticket=ticket).select_related("policy").order_by("id"))

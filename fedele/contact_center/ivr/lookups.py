"""What a ``lookup`` node can ask other modules (through their facades), by name.

A lookup gets the caller's context and returns the variables it found (strings, for prompts like
"You owe {balance_due} euros") or ``None`` when there is nothing to say (unknown caller, no ticket):
the node then goes to ``on_missing``. Modules that arrive later (field service's work-order ETA) add
their own with ``register_lookup``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg, F

from fedele.billing import facade as billing_facade
from fedele.support import facade as support_facade


@dataclass(frozen=True, slots=True)
class LookupContext:
    customer_public_id: str
    ticket_public_id: str
    variables: dict[str, Any]
    language: str


LookupFunction = Callable[[LookupContext], dict[str, str] | None]
LOOKUPS: dict[str, LookupFunction] = {}


def register_lookup(name: str) -> Callable[[LookupFunction], LookupFunction]:
    def decorate(function: LookupFunction) -> LookupFunction:
        LOOKUPS[name] = function
        return function

    return decorate


@register_lookup("balance_due")
def balance_due(context: LookupContext) -> dict[str, str] | None:
    """What the caller owes on finalised invoices (and how much of it is overdue)."""
    if not context.customer_public_id:
        return None
    balance = billing_facade.customer_balance(context.customer_public_id)
    if balance is None:
        return None
    return {
        "balance_due": f"{balance.open_amount:.2f}",
        "balance_overdue": f"{balance.overdue_amount:.2f}",
        "open_invoices": str(balance.open_invoices),
        "currency": balance.currency,
    }


@register_lookup("ticket_status")
def ticket_status(context: LookupContext) -> dict[str, str] | None:
    """The status of the call's ticket, or else of the caller's most recent open ticket."""
    ticket = support_facade.ticket_summary(context.ticket_public_id) if context.ticket_public_id else None
    if ticket is None and context.customer_public_id:
        open_tickets = support_facade.open_tickets_for_customer(context.customer_public_id, limit=1)
        ticket = open_tickets[0] if open_tickets else None
    if ticket is None:
        return None
    return {"ticket_number": ticket.number, "ticket_status": ticket.status, "ticket_subject": ticket.subject}


# Queue announcements ------------------------------------------------------------------------------

DEFAULT_HANDLE_SECONDS = 180
HANDLE_TIME_WINDOW = timedelta(days=7)


def queue_position(*, queue_id: int, interaction_id: int, priority: int, queued_at: datetime) -> int:
    """1 + the waiting contacts the router serves first (higher priority, or same priority and
    queued earlier)."""
    from django.db.models import Q

    from fedele.contact_center.models import Interaction, InteractionState

    ahead = (
        Interaction.objects.filter(queue_id=queue_id, state=InteractionState.QUEUED)
        .exclude(pk=interaction_id)
        .filter(Q(priority__gt=priority) | Q(priority=priority, queued_at__lte=queued_at))
        .count()
    )
    return ahead + 1


def estimated_wait_seconds(*, queue_id: int, position: int, now: datetime) -> int:
    """position × the queue's average handle time over the last week (180 s with no history) ÷ the
    agents staffing it (at least one), rounded up to whole seconds."""
    from fedele.contact_center.models import Agent, AgentState, Interaction

    average = (
        Interaction.objects.filter(
            queue_id=queue_id, ended_at__gte=now - HANDLE_TIME_WINDOW, talk_seconds__gt=0
        )
        .annotate(handle=F("talk_seconds") + F("hold_seconds") + F("after_call_seconds"))
        .aggregate(value=Avg("handle"))["value"]
    )
    handle = float(average) if average else float(DEFAULT_HANDLE_SECONDS)
    staffed = Agent.objects.filter(
        queues__id=queue_id,
        active=True,
        state__in=[AgentState.AVAILABLE, AgentState.BUSY, AgentState.WRAP_UP],
    ).count()
    return math.ceil(position * handle / max(1, staffed))

"""What a ``lookup`` node can ask other modules (through their facades), by name.

A lookup gets the caller's context and returns the variables it found (strings, for prompts like
"You owe {balance_due} euros") or ``None`` when there is nothing to say (unknown caller, no ticket):
the node then goes to ``on_missing``. Modules that arrive later add their own with ``register_lookup``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg, F
from django.utils.translation import gettext as _
from django.utils.translation import override

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


# Field service: when does the technician come? ----------------------------------------------------

# The variable a ``collect`` node fills with the work-order number the caller keys in.
WORK_ORDER_VARIABLE = "work_order"
# Keyed forms: the year, then the sequence — "202642" or "2026*42" (= WO-2026-000042); the written
# forms field service reads ("WO-2026-000042", "2026-42") are accepted too.
WORK_ORDER_ETA_VARIABLES = (
    "work_order_number",
    "work_order_summary",
    "visit_date",
    "visit_day",
    "window_start",
    "window_end",
    "eta_time",
    "technician_name",
    "status_label",
)


def keyed_work_order_number(keyed: str) -> str | None:
    """ "202642" / "2026*42" / "WO-2026-000042" → "WO-2026-000042"; None when it is not one (field
    service's own reading of a number)."""
    from fedele.field_service import facade as field_service

    return field_service.normalise_work_order_number(keyed)


def spoken_work_order_number(number: str) -> str:
    """ "WO-2026-000042" → "WO 2026 42": text-to-speech reads the groups as numbers, not digit by digit
    with the padding zeros."""
    parts = number.split("-")
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return f"{parts[0]} {parts[1]} {int(parts[2])}"
    return number.replace("-", " ")


@register_lookup("work_order_eta")
def work_order_eta(context: LookupContext) -> dict[str, str] | None:
    """The identified caller's next technician visit: number, day, appointment window and — once the
    technician is dispatched or on the way — the expected arrival time, in the call's language and in
    Europe/Rome time. When the flow collected a work-order number into ``work_order`` that work order
    is told instead, only if it is the caller's own (another customer's visit is never revealed).
    None (→ on_missing) for an unidentified caller, nothing planned, or a number that is not theirs."""
    if not context.customer_public_id:
        return None
    from fedele.field_service import facade as field_service
    from fedele.shared import clock

    now = clock.now()
    keyed = str(context.variables.get(WORK_ORDER_VARIABLE) or "").strip()
    language = "it" if str(context.language or "").startswith("it") else "en"
    with override(language):
        if keyed:
            order = field_service.work_order_by_number(keyed)
            if order is None or str(order.customer_public_id or "") != str(context.customer_public_id):
                return None
        else:
            order = field_service.next_visit(context.customer_public_id, now=now)
        if order is None:
            return None
        return work_order_variables(order, language=language, now=now)


def work_order_variables(order: Any, *, language: str, now: datetime) -> dict[str, str]:
    from fedele.contact_center.selectors.desktop import ETA_STATUSES, clock_time, local_moment, long_day

    visit = order.window_start or order.eta
    visit_date = long_day(local_moment(visit).date(), language) if visit is not None else ""
    visit_day = visit_date
    if visit is not None:
        days_ahead = (local_moment(visit).date() - local_moment(now).date()).days
        if days_ahead == 0:
            visit_day = _("today")
        elif days_ahead == 1:
            visit_day = _("tomorrow")
    return {
        "work_order_number": spoken_work_order_number(order.number),
        "work_order_summary": order.summary,
        "visit_date": visit_date,
        "visit_day": visit_day,
        "window_start": clock_time(order.window_start),
        "window_end": clock_time(order.window_end),
        "eta_time": clock_time(order.eta) if order.status in ETA_STATUSES else "",
        "technician_name": order.technician_name,
        "status_label": order.status_label,
    }


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

"""SLA clocks on tickets (owned by the SLA area). The ticket services call these hooks inside their
transaction, with the ticket row already locked and saved."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fedele.support.models import Ticket, TicketMessage, TicketStatus


def sla_start(ticket: Ticket, *, at: datetime) -> None:
    """A new ticket: pick the policy, start first_response and resolution clocks, set due fields."""


def sla_on_status_change(
    ticket: Ticket, *, old_status: TicketStatus, new_status: TicketStatus, at: datetime
) -> None:
    """Pause on a pausing status, resume on leaving it, fulfil resolution on solved/closed,
    restart resolution on reopen."""


def sla_on_message(ticket: Ticket, message: TicketMessage, *, at: datetime) -> None:
    """An agent's public reply fulfils first/next response; a customer message starts next_response."""


def sla_reapply(ticket: Ticket, *, at: datetime) -> None:
    """Priority, type, category or customer changed: re-pick the policy and retarget running clocks
    (keeping their start and pauses)."""

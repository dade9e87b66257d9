"""Domain events support publishes (through the outbox). Payloads carry public ids and plain values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fedele.shared.events import DomainEvent


@dataclass(frozen=True, slots=True)
class TicketCreated(DomainEvent):
    event_type: ClassVar[str] = "support.ticket_created"
    ticket_id: str
    number: str
    customer_id: str | None
    channel: str
    priority: str
    ticket_type: str
    subject: str
    created_at: str


@dataclass(frozen=True, slots=True)
class TicketSolved(DomainEvent):
    event_type: ClassVar[str] = "support.ticket_solved"
    ticket_id: str
    number: str
    customer_id: str | None
    assignee_id: str | None
    team_id: str | None
    category: str
    solved_at: str


@dataclass(frozen=True, slots=True)
class SlaBreached(DomainEvent):
    event_type: ClassVar[str] = "support.sla_breached"
    ticket_id: str
    number: str
    customer_id: str | None
    metric: str
    due_at: str
    breached_at: str


@dataclass(frozen=True, slots=True)
class SurveyCompleted(DomainEvent):
    """Loyalty may award points for it; insights reads the score."""

    event_type: ClassVar[str] = "support.survey_completed"
    survey_id: str
    kind: str  # "csat" (score 1-5) | "nps" (score 0-10)
    ticket_id: str | None
    customer_id: str | None
    score: int
    comment: str
    responded_at: str


# Events support consumes from modules that do not exist yet publish with these types and payloads
# (documented in docs/support.md), so support handles them by name, not by import.
FIELD_SERVICE_WORK_ORDER_UPDATED = "field_service.work_order_updated"

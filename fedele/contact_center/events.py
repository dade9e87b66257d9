"""Domain events the contact center publishes (through the outbox). Payloads carry public ids and
plain values only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fedele.shared.events import DomainEvent


@dataclass(frozen=True, slots=True)
class InteractionEnded(DomainEvent):
    """A contact is over (on any channel): the dialer updates its attempt, reports count it."""

    event_type: ClassVar[str] = "contact_center.interaction_ended"
    interaction_id: str
    number: str
    channel: str
    direction: str
    outcome: str
    queue_code: str | None
    agent_id: str | None
    customer_id: str | None
    provider: str
    provider_ref: str
    wait_seconds: int
    talk_seconds: int
    hold_seconds: int
    ended_at: str


@dataclass(frozen=True, slots=True)
class InteractionWrappedUp(DomainEvent):
    event_type: ClassVar[str] = "contact_center.interaction_wrapped_up"
    interaction_id: str
    number: str
    agent_id: str
    wrap_up_code: str | None
    after_call_seconds: int
    ticket_id: str | None
    wrapped_up_at: str

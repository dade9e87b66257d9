"""Events of the dunning process (the support module opens a collections ticket on escalation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fedele.shared.events import DomainEvent


@dataclass(frozen=True, slots=True)
class DunningEscalated(DomainEvent):
    event_type: ClassVar[str] = "billing.dunning_escalated"
    case_id: str
    invoice_id: str
    invoice_number: str
    customer_id: str
    currency: str
    amount_due: str
    days_overdue: int

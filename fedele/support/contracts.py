"""What other modules may know about support. No Django imports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID


class TicketChannel(StrEnum):
    EMAIL = "email"
    PORTAL = "portal"
    PHONE = "phone"
    CHAT = "chat"
    SMS = "sms"
    SOCIAL = "social"
    API = "api"
    INTERNAL = "internal"
    IMPORT = "import"


class TicketStatusKind(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    SOLVED = "solved"
    CLOSED = "closed"


class TicketPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


@dataclass(frozen=True, slots=True)
class TicketSummary:
    public_id: UUID
    number: str
    subject: str
    status: str  # the status code, e.g. "pending_customer"
    status_kind: str
    priority: str
    channel: str
    customer_public_id: UUID | None
    requester_email: str
    assignee_name: str
    team_name: str
    created_at: datetime
    updated_at: datetime
    resolution_due_at: datetime | None
    sla_breached: bool
    url: str
    status_label: str = ""  # the status's name in the language active when the summary was made


@dataclass(frozen=True, slots=True)
class ArticleSummary:
    public_id: UUID
    language: str
    title: str
    summary: str
    internal: bool
    url: str
    score: float

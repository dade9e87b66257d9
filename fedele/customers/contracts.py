"""What other modules may know about customers. No Django imports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID


class CustomerKind(StrEnum):
    PERSON = "person"
    COMPANY = "company"


class Segment(StrEnum):
    CONSUMER = "consumer"
    SMALL_BUSINESS = "small_business"
    ENTERPRISE = "enterprise"
    PUBLIC_ADMINISTRATION = "public_administration"


class CustomerStatus(StrEnum):
    ACTIVE = "active"
    MERGED = "merged"
    ERASED = "erased"


class ConsentChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PHONE = "phone"
    POST = "post"
    PUSH = "push"
    WHATSAPP = "whatsapp"


class ConsentPurpose(StrEnum):
    SERVICE = "service"
    MARKETING = "marketing"
    PROFILING = "profiling"
    THIRD_PARTY = "third_party"


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    public_id: UUID
    number: str
    kind: str
    display_name: str
    email: str
    phone: str
    language: str
    segment: str
    status: str
    fiscal_code: str
    vat_number: str
    country: str
    first_name: str = ""
    last_name: str = ""
    company_name: str = ""
    pec: str = ""
    sdi_code: str = ""
    street: str = ""
    postal_code: str = ""
    city: str = ""
    province: str = ""
    customer_id: int = 0
    """Internal key, for modules whose tables reference customers.Customer by foreign key."""


@dataclass(frozen=True, slots=True)
class ConsentState:
    """One consent decision in force (the latest record for its channel and purpose)."""

    channel: str
    purpose: str
    granted: bool
    source: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class TimelineAppend:
    """Publish this (shared.events.publish) from any module to add a line to a customer's 360 timeline.

    The entry is written once per event, however often the event is delivered.
    """

    event_type: ClassVar[str] = "customers.TimelineAppendRequested"

    customer_public_id: str
    module: str
    kind: str
    title: str
    occurred_at: datetime
    summary: str = ""
    link: str = ""
    data: dict[str, Any] = field(default_factory=dict)

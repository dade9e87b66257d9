"""Domain events loyalty publishes (through the outbox). Payloads carry public ids and plain values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fedele.shared.events import DomainEvent


@dataclass(frozen=True, slots=True)
class MemberEnrolled(DomainEvent):
    event_type: ClassVar[str] = "loyalty.member_enrolled"
    member_id: str
    customer_id: str
    programme: str
    card_number: str
    channel: str
    referred_by_member_id: str | None
    enrolled_at: str


@dataclass(frozen=True, slots=True)
class PointsEarned(DomainEvent):
    event_type: ClassVar[str] = "loyalty.points_earned"
    transaction_id: str
    member_id: str
    customer_id: str
    programme: str
    points: int
    pending: bool
    source: str
    reference: str
    occurred_at: str


@dataclass(frozen=True, slots=True)
class PointsRedeemed(DomainEvent):
    event_type: ClassVar[str] = "loyalty.points_redeemed"
    transaction_id: str
    member_id: str
    customer_id: str
    programme: str
    points: int
    cash_amount: str
    reward: str
    partner: str
    occurred_at: str


@dataclass(frozen=True, slots=True)
class TierChanged(DomainEvent):
    event_type: ClassVar[str] = "loyalty.tier_changed"
    member_id: str
    customer_id: str
    programme: str
    from_tier: str
    to_tier: str
    reason: str
    changed_at: str


@dataclass(frozen=True, slots=True)
class PointsExpiring(DomainEvent):
    """Sent ``expiry_notice_days`` before a lot's expiry date; the notification goes by e-mail or SMS
    according to the customer's consent."""

    event_type: ClassVar[str] = "loyalty.points_expiring"
    member_id: str
    customer_id: str
    programme: str
    points: int
    expires_on: str


@dataclass(frozen=True, slots=True)
class PointsExpired(DomainEvent):
    event_type: ClassVar[str] = "loyalty.points_expired"
    member_id: str
    customer_id: str
    programme: str
    points: int
    expired_on: str


@dataclass(frozen=True, slots=True)
class PartnerCreated(DomainEvent):
    event_type: ClassVar[str] = "loyalty.partner_created"
    partner_id: str
    partner: str
    programme: str
    name: str


@dataclass(frozen=True, slots=True)
class PartnerStatusChanged(DomainEvent):
    event_type: ClassVar[str] = "loyalty.partner_status_changed"
    partner_id: str
    partner: str
    programme: str
    from_status: str
    to_status: str
    reason: str


@dataclass(frozen=True, slots=True)
class FraudFlagRaised(DomainEvent):
    event_type: ClassVar[str] = "loyalty.fraud_flag_raised"
    flag_id: int
    member_id: str
    programme: str
    rule: str
    transaction_id: str | None
    created_at: str


@dataclass(frozen=True, slots=True)
class FraudFlagReviewed(DomainEvent):
    event_type: ClassVar[str] = "loyalty.fraud_flag_reviewed"
    flag_id: int
    member_id: str
    programme: str
    rule: str
    state: str
    reviewer_id: int | None
    reversed_transaction_ids: list[str]
    member_suspended: bool
    reviewed_at: str


@dataclass(frozen=True, slots=True)
class SettlementIssued(DomainEvent):
    """A partner statement was issued: billing (or the ERP) may invoice/credit the net amount."""

    event_type: ClassVar[str] = "loyalty.partner_settlement_issued"
    settlement_id: str
    partner: str
    partner_id: str
    programme: str
    period_start: str
    period_end: str
    points_issued: int
    points_accepted: int
    amount_due_from_partner: str
    amount_due_to_partner: str
    net: str


@dataclass(frozen=True, slots=True)
class SettlementPaid(DomainEvent):
    event_type: ClassVar[str] = "loyalty.partner_settlement_paid"
    settlement_id: str
    partner: str
    partner_id: str
    net: str
    paid_at: str

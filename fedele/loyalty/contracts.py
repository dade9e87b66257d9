"""What other modules may know about loyalty members and tiers. No Django imports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MemberSummary:
    member_id: str
    customer_id: str
    programme: str
    programme_name: str
    currency_name: str
    card_number: str
    status: str
    tier_code: str
    tier_name: str
    tier_rank: int
    support_priority: int
    available: int
    pending: int
    points_value_eur: str
    portal_url: str

"""The only loyalty surface other modules may import: member summaries, tiers and routing priority."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from fedele.loyalty.contracts import MemberSummary
from fedele.loyalty.models import Member, MemberStatus

_CENT = Decimal("0.01")


def _summary(member: Member, language: str) -> MemberSummary:
    programme = member.programme
    tier = member.tier
    value = (Decimal(member.available) * programme.point_value).quantize(_CENT, rounding=ROUND_HALF_UP)
    return MemberSummary(
        member_id=str(member.public_id),
        customer_id=str(member.customer.public_id),
        programme=programme.code,
        programme_name=programme.name(language),
        currency_name=programme.currency_name(language),
        card_number=member.card_number,
        status=member.status,
        tier_code=tier.code if tier else "",
        tier_name=tier.name(language) if tier else "",
        tier_rank=tier.rank if tier else 0,
        support_priority=tier.support_priority if tier else 0,
        available=member.available,
        pending=member.pending,
        points_value_eur=str(value),
        portal_url="/club/",
    )


def memberships(customer_public_id: str, *, language: str = "it") -> list[MemberSummary]:
    """The customer's memberships (active and suspended), highest tier first."""
    rows = (
        Member.objects.filter(customer__public_id=customer_public_id)
        .exclude(status=MemberStatus.CLOSED)
        .select_related("programme", "tier", "customer")
    )
    summaries = [_summary(member, language) for member in rows]
    return sorted(summaries, key=lambda s: (-s.tier_rank, s.programme))


def loyalty_tier(customer_public_id: str) -> str | None:
    """The code of the customer's highest tier across programmes (``None`` if not a member)."""
    found = memberships(customer_public_id)
    return found[0].tier_code or None if found else None


def routing_priority(customer_public_id: str) -> int:
    """0 (normal) … 3 (highest): the support priority of the customer's best tier. The contact
    center's router and support's SLA policies read this; not a member → 0."""
    found = memberships(customer_public_id)
    return max((summary.support_priority for summary in found), default=0)

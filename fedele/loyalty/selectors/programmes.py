"""Reads of the programmes area: programmes the caller may see, their tiers, and the overview figures
(members per tier, outstanding liability)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, QuerySet
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.loyalty.models import Member, MemberStatus, Programme, Tier
from fedele.shared.errors import NotFound, PermissionDenied

VIEW = "loyalty.view_loyalty"


def require_viewer(actor: Actor) -> None:
    if not (actor.is_internal and actor.can(VIEW)):
        raise PermissionDenied(_("You may not see loyalty programmes."), code="permission_denied")


def programme_list(*, actor: Actor) -> QuerySet[Programme]:
    require_viewer(actor)
    return Programme.objects.order_by("code")


def programme_get(*, actor: Actor, code: str) -> Programme:
    require_viewer(actor)
    programme = Programme.objects.filter(code=code).first()
    if programme is None:
        raise NotFound(_("Programme not found."), code="programme_not_found")
    return programme


def tier_list(programme: Programme) -> list[Tier]:
    return list(Tier.objects.filter(programme=programme).order_by("rank"))


def tier_get(programme: Programme, code: str) -> Tier:
    tier = Tier.objects.filter(programme=programme, code=code).first()
    if tier is None:
        raise NotFound(_("Tier not found."), code="tier_not_found")
    return tier


def member_by_public_id(public_id: str | uuid.UUID) -> Member:
    try:
        key = uuid.UUID(str(public_id))
    except ValueError as error:
        raise NotFound(_("Member not found."), code="member_not_found") from error
    member = Member.objects.select_related("programme", "tier", "customer").filter(public_id=key).first()
    if member is None:
        raise NotFound(_("Member not found."), code="member_not_found")
    return member


@dataclass(frozen=True, slots=True)
class TierCount:
    tier: Tier | None
    members: int


@dataclass(frozen=True, slots=True)
class ProgrammeOverview:
    programme: Programme
    members: int
    by_tier: list[TierCount]
    points_outstanding: int
    points_pending: int
    eur_value: Decimal


def members_by_tier(programmes: list[Programme]) -> dict[int, dict[int | None, int]]:
    """Members not closed, per programme and tier id (None = no tier): one grouped query."""
    counts: dict[int, dict[int | None, int]] = defaultdict(dict)
    rows = (
        Member.objects.filter(programme__in=programmes)
        .exclude(status=MemberStatus.CLOSED)
        .order_by()
        .values("programme_id", "tier_id")
        .annotate(members=Count("id"))
    )
    for row in rows:
        counts[row["programme_id"]][row["tier_id"]] = row["members"]
    return counts


def programme_overview(*, actor: Actor) -> list[ProgrammeOverview]:
    """Each programme with its members per tier and its liability (the ledger's figures)."""
    from fedele.loyalty.services.ledger import liability

    programmes = list(programme_list(actor=actor))
    counts = members_by_tier(programmes)
    tiers: dict[int, list[Tier]] = defaultdict(list)
    for tier in Tier.objects.filter(programme__in=programmes).order_by("programme_id", "rank"):
        tiers[tier.programme_id].append(tier)
    overview = []
    for programme in programmes:
        per_tier = counts.get(programme.pk, {})
        by_tier = [TierCount(tier, per_tier.get(tier.pk, 0)) for tier in tiers[programme.pk]]
        if per_tier.get(None):
            by_tier.append(TierCount(None, per_tier[None]))
        figures = liability(programme=programme)
        overview.append(
            ProgrammeOverview(
                programme=programme,
                members=sum(per_tier.values()),
                by_tier=by_tier,
                points_outstanding=figures.outstanding,
                points_pending=figures.pending,
                eur_value=figures.outstanding_eur,
            )
        )
    return overview

"""Reading members: one member (scoped to what the caller may see), a customer's membership and the
back-office list (search by card number, name or e-mail; tier; status), keyset-paginated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet, Sum
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.customers.facade import customer_summaries, search_customer_ids
from fedele.loyalty.models import (
    Household,
    Member,
    MemberStatus,
    PointsTransaction,
    Programme,
    TransactionKind,
)
from fedele.loyalty.services.ledger_core import VIEW, owns_member
from fedele.shared import clock
from fedele.shared.errors import NotFound, ValidationFailed
from fedele.shared.pagination import DEFAULT_LIMIT, CursorPage, paginate

ORDERINGS = {"id": "id", "enrolled": "enrolled_at", "available": "available", "card": "card_number"}
QUERY_MAX = 100
CUSTOMER_MATCH_LIMIT = 1000
"""At most this many customers a name/e-mail/number search finds are considered (lowest keys first)."""


def is_staff_reader(actor: Actor) -> bool:
    return actor.is_internal and actor.can(VIEW)


def _not_found() -> NotFound:
    return NotFound(_("Member not found."), code="member_not_found")


def member_get(actor: Actor, public_id: UUID | str) -> Member:
    """A member the caller may see: staff with view_loyalty any, a portal customer only their own."""
    try:
        key = UUID(str(public_id))
    except ValueError as error:
        raise _not_found() from error
    member = (
        Member.objects.select_related("programme", "tier", "customer", "household", "referred_by")
        .filter(public_id=key)
        .first()
    )
    if member is None:
        raise _not_found()
    if is_staff_reader(actor) or owns_member(actor, member):
        return member
    raise _not_found()


def member_for_customer(programme: Programme, customer_public_id: UUID | str) -> Member | None:
    return (
        Member.objects.select_related("programme", "tier")
        .filter(programme=programme, customer__public_id=str(customer_public_id))
        .first()
    )


def member_by_card(card_number: str) -> Member | None:
    digits = "".join(char for char in card_number if char.isdigit())
    if not digits:
        return None
    return Member.objects.select_related("programme", "tier", "customer").filter(card_number=digits).first()


def member_queryset(
    actor: Actor,
    *,
    programme: Programme | None = None,
    query: str = "",
    tier: str = "",
    status: str = "",
) -> QuerySet[Member]:
    """Members the caller may list, filtered. ``query``: a card number (digits, spaces allowed), a
    referral code, or what the customers module's search finds: words of the customer's name, number,
    phone or city (every word required), or their exact e-mail address."""
    if not is_staff_reader(actor):
        raise NotFound(_("Not found."), code="not_found")
    rows = Member.objects.select_related("programme", "tier", "customer")
    if programme is not None:
        rows = rows.filter(programme=programme)
    text = (query or "").strip()
    if len(text) > QUERY_MAX:
        raise ValidationFailed(
            _("The search text is too long."), code="invalid_query", fields={"q": _("Too long.")}
        )
    if text:
        digits = text.replace(" ", "")
        if digits.isdigit():
            rows = rows.filter(card_number__startswith=digits)
        else:
            # The customers module searches its own column; loyalty filters its rows by the keys found.
            customer_ids = search_customer_ids(text, CUSTOMER_MATCH_LIMIT)
            # Referral codes are stored in capitals: an exact match keeps their unique index usable.
            rows = rows.filter(Q(customer_id__in=customer_ids) | Q(referral_code=text.upper()))
    if tier:
        rows = rows.filter(tier__code=tier)
    if status:
        rows = rows.filter(status=status)
    return rows


def member_list(
    actor: Actor,
    programme: Programme | None = None,
    query: str = "",
    tier: str = "",
    status: str = "",
    *,
    ordering: str = "-id",
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> CursorPage[Member]:
    rows = member_queryset(actor, programme=programme, query=query, tier=tier, status=status)
    return paginate(rows, ordering=ordering, allowed=ORDERINGS, cursor=cursor, limit=limit)


def household_members(household: Household | None) -> list[Member]:
    if household is None:
        return []
    return list(
        Member.objects.filter(household=household).select_related("customer").order_by("enrolled_at", "id")
    )


# ----------------------------------------------------------------------------------------------
# A member's household, as the member sees it (the portal)


def programme_pools(programme: Programme) -> bool:
    """Whether the programme offers households (family pooling): room for two members at least and
    points that may move between them."""
    return programme.household_max_members >= 2 and programme.transfer_max_points > 0


@dataclass(frozen=True, slots=True)
class HouseholdMate:
    public_id: UUID
    first_name: str
    is_owner: bool
    is_me: bool
    active: bool


@dataclass(frozen=True, slots=True)
class HouseholdView:
    """What a member may know of their household: the name, the other members by first name only, the
    pooled balance (everyone's available points together) and what they may still transfer."""

    household: Household
    mates: list[HouseholdMate]
    pooled_available: int
    max_members: int
    transfer_max_points: int
    monthly_limit: int
    sent_this_month: int

    @property
    def monthly_left(self) -> int:
        return max(self.monthly_limit - self.sent_this_month, 0)

    @property
    def is_full(self) -> bool:
        return len(self.mates) >= self.max_members

    @property
    def recipients(self) -> list[HouseholdMate]:
        return [mate for mate in self.mates if not mate.is_me and mate.active]


def month_start(programme: Programme, moment: datetime) -> datetime:
    """The first instant of ``moment``'s calendar month in the programme's time zone (the transfer
    limit counts per calendar month there)."""
    local = moment.astimezone(ZoneInfo(programme.timezone))
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def transferred_this_month(member: Member, now: datetime | None = None) -> int:
    moment = now or clock.now()
    total = PointsTransaction.objects.filter(
        member=member, kind=TransactionKind.TRANSFER, occurred_at__gte=month_start(member.programme, moment)
    ).aggregate(total=Sum("points"))["total"]
    return int(total or 0)


def household_view(member: Member, *, now: datetime | None = None) -> HouseholdView | None:
    """The member's household (None when they belong to none), in three queries."""
    if member.household_id is None:
        return None
    household = Household.objects.filter(pk=member.household_id).first()
    if household is None:
        return None
    programme = member.programme
    rows = list(
        Member.objects.filter(household=household)
        .order_by("enrolled_at", "id")
        .only("public_id", "customer_id", "status", "available")
    )
    names = customer_summaries(row.customer_id for row in rows)
    mates: list[HouseholdMate] = []
    for row in rows:
        summary = names.get(row.customer_id)
        first = (summary.first_name or summary.display_name.split(" ")[0]) if summary is not None else ""
        mates.append(
            HouseholdMate(
                public_id=row.public_id,
                first_name=first or _("Member"),
                is_owner=row.pk == household.owner_id,
                is_me=row.pk == member.pk,
                active=row.status == MemberStatus.ACTIVE,
            )
        )
    return HouseholdView(
        household=household,
        mates=mates,
        pooled_available=sum(int(row.available) for row in rows),
        max_members=programme.household_max_members,
        transfer_max_points=int(programme.transfer_max_points),
        monthly_limit=int(programme.transfer_max_points_per_month),
        sent_this_month=transferred_this_month(member, now),
    )

"""Reading members: one member (scoped to what the caller may see), a customer's membership and the
back-office list (search by card number, name or e-mail; tier; status), keyset-paginated."""

from __future__ import annotations

from uuid import UUID

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.customers.facade import search_customer_ids
from fedele.loyalty.models import Household, Member, Programme
from fedele.loyalty.services.ledger_core import VIEW, owns_member
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
            rows = rows.filter(Q(customer_id__in=customer_ids) | Q(referral_code__iexact=text))
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

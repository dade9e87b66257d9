"""Helpers for the partners and settlements tests: a coalition programme, partners with a user each,
members with points (posted through the ledger), and an independent settlement check from entries."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from fedele.accounts.contracts import Role
from fedele.accounts.facade import Actor, actor_for
from fedele.accounts.models import User
from fedele.accounts.tests.factories import OrganisationFactory, user_with_roles
from fedele.loyalty.models import (
    Account,
    EarningRule,
    Member,
    Partner,
    PointsEntry,
    PointsTransaction,
    Programme,
)
from fedele.loyalty.services.ledger import points_earn
from fedele.loyalty.tests.factories import MemberFactory, PartnerFactory, ProgrammeFactory

CENT = Decimal("0.01")


def at(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def coalition(**kwargs: Any) -> Programme:
    options: dict[str, Any] = {"is_coalition": True, "pending_days": 0, "expiry_policy": "none"}
    options.update(kwargs)
    programme: Programme = ProgrammeFactory(**options)
    return programme


def partner_with_user(programme: Programme, **kwargs: Any) -> tuple[Partner, User]:
    """A partner with its own organisation and one user holding the partner role."""
    organisation = OrganisationFactory()
    partner: Partner = PartnerFactory(programme=programme, organisation=organisation, **kwargs)
    user = user_with_roles(Role.PARTNER.value, organisation=organisation)
    return partner, user


def partner_actor(user: User) -> Actor:
    return actor_for(User.objects.get(pk=user.pk))


def manager() -> Actor:
    return actor_for(user_with_roles(Role.LOYALTY_MANAGER.value))


def member_with(programme: Programme, points: int = 0, *, card: str | None = None) -> Member:
    options: dict[str, Any] = {"programme": programme}
    if card is not None:
        options["card_number"] = card
    member: Member = MemberFactory(**options)
    if points:
        points_earn(
            actor=None,
            member=member,
            points=points,
            source="test",
            idempotency_key=f"seed:{member.card_number}",
        )
        member.refresh_from_db()
    return member


def spend_rule(programme: Programme, points_per_euro: str = "1") -> EarningRule:
    rule: EarningRule = EarningRule.objects.create(
        programme=programme,
        code=f"spend-{programme.pk}",
        name_it="Spesa",
        name_en="Spend",
        event_type="spend",
        status="active",
        points_per_euro=Decimal(points_per_euro),
    )
    return rule


def half_up(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def local_month(moment: datetime, timezone: str) -> tuple[int, int]:
    local = moment.astimezone(ZoneInfo(timezone))
    return local.year, local.month


def receivable_payable_from_entries(
    programme: Programme, year: int, month: int
) -> dict[int, tuple[Decimal, Decimal]]:
    """Independently of partner_amount: per partner, Σ over transactions of the month (programme
    time zone) of round(points on partner_issuance × earn price) and round(points on
    partner_redemption × burn price), rounding each transaction half-up to the cent."""
    partners = {p.pk: p for p in Partner.objects.filter(programme=programme)}
    per_transaction: dict[tuple[int, int, str], int] = defaultdict(int)
    entries = PointsEntry.objects.filter(
        programme=programme, account__in=[Account.PARTNER_ISSUANCE, Account.PARTNER_REDEMPTION]
    ).select_related("transaction")
    for entry in entries:
        if local_month(entry.transaction.occurred_at, programme.timezone) != (year, month):
            continue
        assert entry.partner_id is not None
        per_transaction[(entry.partner_id, entry.transaction_id, entry.account)] += entry.points
    totals: dict[int, list[Decimal]] = {pk: [Decimal("0.00"), Decimal("0.00")] for pk in partners}
    for (partner_id, _transaction_id, account), points in per_transaction.items():
        partner = partners[partner_id]
        if account == Account.PARTNER_ISSUANCE:
            # Issuing N points posts −N on partner_issuance: the partner owes N × price.
            totals[partner_id][0] += half_up(Decimal(-points) * partner.earn_price_per_point)
        else:
            totals[partner_id][1] += half_up(Decimal(points) * partner.burn_price_per_point)
    return {pk: (values[0], values[1]) for pk, values in totals.items()}


def signed_partner_amounts(partner: Partner, year: int, month: int) -> tuple[Decimal, Decimal]:
    """Σ partner_amount of the partner's own transactions of the month (reversals subtract)."""
    issued = accepted = Decimal("0.00")
    timezone = partner.programme.timezone
    for txn in PointsTransaction.objects.select_related("reversal_of").filter(partner=partner):
        if local_month(txn.occurred_at, timezone) != (year, month) or txn.partner_amount is None:
            continue
        if txn.kind == "earn":
            issued += txn.partner_amount
        elif txn.kind == "redeem":
            accepted += txn.partner_amount
        elif txn.kind == "reverse" and txn.reversal_of is not None:
            if txn.reversal_of.kind == "earn":
                issued -= txn.partner_amount
            else:
                accepted -= txn.partner_amount
    return issued, accepted


def month_start(year: int, month: int) -> date:
    return date(year, month, 1)

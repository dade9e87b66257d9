"""Coalition partner reads: partners, their transactions, month statements and masked member look-ups.

Every read is scoped to the caller: staff with ``loyalty.view_loyalty`` see every partner; a partner's
user (``actor.is_partner``) sees only the partner of its own organisation, and anything else is
``NotFound`` (never "forbidden": a partner must not learn that another partner's row exists).

A partner's month is computed from the ledger: its earn and burn transactions (``partner_amount``
written per transaction, half-up to the cent) and the reversals of those, by the transaction's
``occurred_at`` in the programme's time zone. The settlement service stores exactly this.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate, TruncMonth
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.loyalty.models import (
    Member,
    Partner,
    PartnerSettlement,
    PointsTransaction,
    Programme,
    Reservation,
    TransactionKind,
)
from fedele.shared import clock
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
VIEW = "loyalty.view_loyalty"
MANAGE_PARTNERS = "loyalty.manage_partners"

# Settlement line kinds. Reversal lines carry negative points and amounts, so lines add up to totals.
EARN = "earn"
EARN_REVERSAL = "earn_reversal"
EARN_REFUND = "earn_refund"
BURN = "burn"
BURN_REVERSAL = "burn_reversal"
LINE_KINDS = (EARN, EARN_REVERSAL, EARN_REFUND, BURN, BURN_REVERSAL)
ISSUING_KINDS = frozenset({EARN, EARN_REVERSAL, EARN_REFUND})
NEGATIVE_KINDS = frozenset({EARN_REVERSAL, EARN_REFUND, BURN_REVERSAL})
SETTLED_KINDS = (TransactionKind.EARN, TransactionKind.REDEEM)
# A refund of a purchase made at the partner (ledger.purchase_refund) takes its points back with a
# CANCEL_PENDING (still pending) or a debit ADJUST (matured) carrying the partner and its share.
REFUND_KINDS = (TransactionKind.CANCEL_PENDING, TransactionKind.ADJUST)


# -- who may see what ------------------------------------------------------------------------------


def is_staff_reader(actor: Actor | None) -> bool:
    return actor is None or (actor.is_internal and actor.can(VIEW))


def partner_of_actor(actor: Actor) -> Partner:
    """The partner a partner user works for (its organisation's partner)."""
    if not actor.is_partner or actor.organisation_id is None:
        raise PermissionDenied(_("Only a partner's users may do this."), code="not_a_partner")
    partner = (
        Partner.objects.select_related("programme")
        .filter(organisation_id=actor.organisation_id)
        .order_by("id")
        .first()
    )
    if partner is None:
        raise NotFound(_("Partner not found."))
    return partner


def actor_sees_partner(actor: Actor | None, partner: Partner) -> bool:
    if is_staff_reader(actor):
        return True
    return (
        actor is not None
        and actor.is_partner
        and actor.organisation_id is not None
        and actor.organisation_id == partner.organisation_id
    )


def partner_list(*, actor: Actor | None, programme: Programme | None = None) -> QuerySet[Partner]:
    if not is_staff_reader(actor):
        raise PermissionDenied(_("You may not see the partners."), code="permission_denied")
    queryset = Partner.objects.select_related("programme").order_by("name", "id")
    if programme is not None:
        queryset = queryset.filter(programme=programme)
    return queryset


def partner_get(*, actor: Actor | None, public_id: Any) -> Partner:
    """A partner by public id, if the caller may see it (else NotFound)."""
    try:
        partner = Partner.objects.select_related("programme").filter(public_id=str(public_id)).first()
    except (ValueError, DjangoValidationError) as error:  # a malformed UUID: as an unknown one
        raise NotFound(_("Partner not found.")) from error
    if partner is None or not actor_sees_partner(actor, partner):
        raise NotFound(_("Partner not found."))
    return partner


def coalition_programmes() -> QuerySet[Programme]:
    return Programme.objects.filter(is_coalition=True).order_by("code")


# -- members as a partner may see them -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MaskedMember:
    """What a partner's till may show about a member: no name, no contact details."""

    card_number: str
    initial: str
    status: str
    tier_code: str
    tier_name: str
    available: int
    currency_name: str


def member_for_card(*, partner: Partner, card_number: str) -> Member:
    """The member of the partner's programme holding this card (NotFound otherwise)."""
    cleaned = "".join((card_number or "").split())
    if not cleaned or len(cleaned) > 20:
        raise NotFound(_("No member with this card number."), code="member_not_found")
    member = (
        Member.objects.select_related("tier", "programme")
        .filter(programme_id=partner.programme_id, card_number=cleaned)
        .first()
    )
    if member is None:
        raise NotFound(_("No member with this card number."), code="member_not_found")
    return member


def masked_member(member: Member, *, language: str) -> MaskedMember:
    from fedele.customers.facade import customer_summaries

    summary = customer_summaries([member.customer_id]).get(member.customer_id)
    first = (summary.first_name or summary.display_name).strip() if summary else ""
    tier = member.tier
    return MaskedMember(
        card_number=member.card_number,
        initial=f"{first[:1].upper()}." if first else "",
        status=member.status,
        tier_code=tier.code if tier else "",
        tier_name=tier.name(language) if tier else "",
        available=member.available,
        currency_name=member.programme.currency_name(language),
    )


# -- transactions ----------------------------------------------------------------------------------


def month_bounds(programme: Programme, year: int, month: int) -> tuple[datetime, datetime]:
    """[start, end) of a calendar month in the programme's time zone, as aware datetimes."""
    if not (1 <= month <= 12 and 2000 <= year <= 2999):
        raise ValidationFailed(
            _("Choose a month between January 2000 and December 2999."),
            code="invalid_period",
            fields={"month": _("Not a valid month.")},
        )
    zone = ZoneInfo(programme.timezone)
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=zone)
    return start, end


def parse_month(value: str) -> tuple[int, int]:
    """``YYYY-MM`` → (year, month), with a clear error."""
    try:
        year_text, month_text = (value or "").strip().split("-")
        year, month = int(year_text), int(month_text)
    except ValueError as error:
        raise ValidationFailed(
            _("Write the month as YYYY-MM."), code="invalid_period", fields={"month": _("Use YYYY-MM.")}
        ) from error
    if not (1 <= month <= 12 and 2000 <= year <= 2999):
        raise ValidationFailed(
            _("Write the month as YYYY-MM."), code="invalid_period", fields={"month": _("Use YYYY-MM.")}
        )
    return year, month


def current_month(programme: Programme) -> tuple[int, int]:
    today = clock.today(programme.timezone)
    return today.year, today.month


def _partner_rows(partner: Partner) -> Q:
    """The partner's earns and burns, their reversals and the refunds of its purchases."""
    return (
        Q(partner_id=partner.pk, kind__in=SETTLED_KINDS)
        | Q(
            kind=TransactionKind.REVERSE,
            reversal_of__partner_id=partner.pk,
            reversal_of__kind__in=SETTLED_KINDS,
        )
        | Q(partner_id=partner.pk, kind__in=REFUND_KINDS, partner_amount__isnull=False)
    )


def partner_transactions(
    *, partner: Partner, start: datetime | None = None, end: datetime | None = None
) -> QuerySet[PointsTransaction]:
    """The partner's earns, burns and their reversals, newest first (member and original joined)."""
    queryset = (
        PointsTransaction.objects.filter(_partner_rows(partner))
        .select_related("member", "reversal_of")
        .order_by("-occurred_at", "-id")
    )
    if start is not None:
        queryset = queryset.filter(occurred_at__gte=start)
    if end is not None:
        queryset = queryset.filter(occurred_at__lt=end)
    return queryset


def partner_transaction_get(*, partner: Partner, public_id: Any) -> PointsTransaction:
    try:
        found = partner_transactions(partner=partner).filter(public_id=str(public_id)).first()
    except (ValueError, DjangoValidationError) as error:  # a malformed UUID
        raise NotFound(_("Transaction not found.")) from error
    if found is None:
        raise NotFound(_("Transaction not found."))
    return found


def partner_reservation_get(*, partner: Partner, public_id: Any) -> Reservation:
    try:
        found = (
            Reservation.objects.select_related("member")
            .filter(public_id=str(public_id), partner_id=partner.pk)
            .first()
        )
    except (ValueError, DjangoValidationError) as error:  # a malformed UUID
        raise NotFound(_("Hold not found.")) from error
    if found is None:
        raise NotFound(_("Hold not found."))
    return found


def line_kind(transaction: PointsTransaction) -> str:
    """earn / earn_reversal / earn_refund / burn / burn_reversal for one of the partner's transactions."""
    original = transaction.reversal_of if transaction.kind == TransactionKind.REVERSE else None
    return _kind_of_row(transaction.kind, original.kind if original is not None else None)


def signed_effect(transaction: PointsTransaction) -> tuple[int, Decimal]:
    """Points and EUR this transaction adds to its side of the statement (reversals subtract)."""
    amount = transaction.partner_amount
    if amount is None and transaction.reversal_of is not None:
        amount = transaction.reversal_of.partner_amount
    amount = amount or ZERO
    if line_kind(transaction) in NEGATIVE_KINDS:
        return -int(transaction.points), -amount
    return int(transaction.points), amount


# -- statements ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Statement:
    """A partner's month: per-day, per-kind lines and totals that are the exact sums of the lines."""

    period_start: date
    period_end: date
    lines: list[dict[str, Any]] = field(default_factory=list)
    points_issued: int = 0
    points_accepted: int = 0
    amount_due_from_partner: Decimal = ZERO
    amount_due_to_partner: Decimal = ZERO
    transaction_count: int = 0

    @property
    def net(self) -> Decimal:
        return self.amount_due_from_partner - self.amount_due_to_partner


def _kind_of_row(kind: str, original_kind: str | None) -> str:
    if kind == TransactionKind.REVERSE:
        return EARN_REVERSAL if original_kind == TransactionKind.EARN else BURN_REVERSAL
    if kind in REFUND_KINDS:
        return EARN_REFUND
    return EARN if kind == TransactionKind.EARN else BURN


def partner_statement(*, partner: Partner, year: int, month: int) -> Statement:
    """The month's statement, grouped in the database by local day and kind (one query)."""
    programme = partner.programme
    start, end = month_bounds(programme, year, month)
    zone = ZoneInfo(programme.timezone)
    rows = (
        PointsTransaction.objects.filter(_partner_rows(partner), occurred_at__gte=start, occurred_at__lt=end)
        .annotate(day=TruncDate("occurred_at", tzinfo=zone))
        .values("day", "kind", "reversal_of__kind")
        .annotate(
            count=Count("id"),
            points=Sum("points"),
            amount=Sum(Coalesce("partner_amount", "reversal_of__partner_amount")),
        )
        .order_by("day", "kind", "reversal_of__kind")
    )
    merged: dict[tuple[date, str], dict[str, Any]] = {}
    for row in rows:
        kind = _kind_of_row(row["kind"], row["reversal_of__kind"])
        sign = -1 if kind in NEGATIVE_KINDS else 1
        line = merged.setdefault((row["day"], kind), {"count": 0, "points": 0, "amount": ZERO})
        line["count"] += int(row["count"])
        line["points"] += sign * int(row["points"] or 0)
        line["amount"] += sign * Decimal(row["amount"] or 0).quantize(CENT)
    statement = Statement(period_start=start.date(), period_end=end.date() - timedelta(days=1))
    order = {kind: index for index, kind in enumerate(LINE_KINDS)}
    for (day, kind), values in sorted(merged.items(), key=lambda item: (item[0][0], order[item[0][1]])):
        amount = values["amount"].quantize(CENT)
        statement.lines.append(
            {
                "date": day.isoformat(),
                "kind": kind,
                "count": values["count"],
                "points": values["points"],
                "amount": str(amount),
            }
        )
        statement.transaction_count += values["count"]
        if kind in ISSUING_KINDS:
            statement.points_issued += values["points"]
            statement.amount_due_from_partner += amount
        else:
            statement.points_accepted += values["points"]
            statement.amount_due_to_partner += amount
    statement.amount_due_from_partner = statement.amount_due_from_partner.quantize(CENT)
    statement.amount_due_to_partner = statement.amount_due_to_partner.quantize(CENT)
    return statement


def settlement_list(*, actor: Actor | None, partner: Partner) -> QuerySet[PartnerSettlement]:
    if not actor_sees_partner(actor, partner):
        raise NotFound(_("Partner not found."))
    return PartnerSettlement.objects.filter(partner=partner).order_by("-period_start")


def settlement_get(
    *, actor: Actor | None, public_id: Any, partner: Partner | None = None
) -> PartnerSettlement:
    """A settlement the caller may see (a partner user: only its own partner's)."""
    try:
        queryset = PartnerSettlement.objects.select_related("partner", "partner__programme").filter(
            public_id=str(public_id)
        )
        if partner is not None:
            queryset = queryset.filter(partner=partner)
        found = queryset.first()
    except (ValueError, DjangoValidationError) as error:  # a malformed UUID
        raise NotFound(_("Settlement not found.")) from error
    if found is None or not actor_sees_partner(actor, found.partner):
        raise NotFound(_("Settlement not found."))
    return found


def settlement_csv(settlement: PartnerSettlement) -> str:
    """The statement's lines, then its totals: semicolon-separated with decimal commas, as Italian
    spreadsheets open it (the same convention as billing's account statements)."""
    import csv
    import io

    def euro(value: Decimal | str) -> str:
        return f"{Decimal(value):.2f}".replace(".", ",")

    output = io.StringIO()
    writer = csv.writer(output, delimiter=";", lineterminator="\r\n")
    writer.writerow(["date", "kind", "transactions", "points", "amount_eur"])
    for line in settlement.lines:
        writer.writerow([line["date"], line["kind"], line["count"], line["points"], euro(line["amount"])])
    partner = settlement.partner
    writer.writerow([])
    writer.writerow(["partner", partner.code])
    writer.writerow(["period", settlement.period_start.isoformat(), settlement.period_end.isoformat()])
    writer.writerow(["state", settlement.state])
    writer.writerow(["points_issued", settlement.points_issued])
    writer.writerow(["points_accepted", settlement.points_accepted])
    writer.writerow(["amount_due_from_partner", euro(settlement.amount_due_from_partner)])
    writer.writerow(["amount_due_to_partner", euro(settlement.amount_due_to_partner)])
    writer.writerow(["net", euro(settlement.net)])
    return output.getvalue()


# -- charts and dashboards ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonthPoints:
    month: date
    issued: int
    accepted: int
    amount_from_partner: Decimal
    amount_to_partner: Decimal


def months_back(programme: Programme, count: int) -> list[tuple[int, int]]:
    """The last ``count`` calendar months (programme time zone), oldest first, this month included."""
    year, month = current_month(programme)
    result = []
    for _index in range(count):
        result.append((year, month))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return list(reversed(result))


def monthly_points(*, partner: Partner, months: int = 12) -> list[MonthPoints]:
    """Points issued and accepted (net of reversals) and their EUR per month: one grouped query."""
    programme = partner.programme
    window = months_back(programme, months)
    start, _end = month_bounds(programme, *window[0])
    zone = ZoneInfo(programme.timezone)
    rows = (
        PointsTransaction.objects.filter(_partner_rows(partner), occurred_at__gte=start)
        .annotate(month=TruncMonth("occurred_at", tzinfo=zone))
        .values("month", "kind", "reversal_of__kind")
        .annotate(points=Sum("points"), amount=Sum(Coalesce("partner_amount", "reversal_of__partner_amount")))
        .order_by("month")
    )
    totals: dict[tuple[int, int], list[Any]] = {key: [0, 0, ZERO, ZERO] for key in window}
    for row in rows:
        moment = row["month"]
        key = (moment.year, moment.month)
        if key not in totals:
            continue
        kind = _kind_of_row(row["kind"], row["reversal_of__kind"])
        sign = -1 if kind in NEGATIVE_KINDS else 1
        points = sign * int(row["points"] or 0)
        amount = sign * Decimal(row["amount"] or 0).quantize(CENT)
        slot = totals[key]
        if kind in ISSUING_KINDS:
            slot[0] += points
            slot[2] += amount
        else:
            slot[1] += points
            slot[3] += amount
    return [
        MonthPoints(date(year, month, 1), values[0], values[1], values[2], values[3])
        for (year, month), values in totals.items()
    ]


def chart_bars(series: Iterable[MonthPoints]) -> list[dict[str, Any]]:
    """Geometry of an SVG bar chart (100 units high, 30 wide per month) of points issued and
    accepted per month; negative months (more reversed than posted) draw as empty bars."""
    items = list(series)
    peak = max([1, *(item.issued for item in items), *(item.accepted for item in items)])
    bars = []
    for index, item in enumerate(items):
        issued = round(max(item.issued, 0) * 90 / peak, 1)
        accepted = round(max(item.accepted, 0) * 90 / peak, 1)
        bars.append(
            {
                "label": item.month.strftime("%Y-%m"),
                "short_label": item.month.strftime("%m/%y"),
                "issued": item.issued,
                "accepted": item.accepted,
                "amount_from_partner": item.amount_from_partner,
                "amount_to_partner": item.amount_to_partner,
                "x": index * 30,
                "issued_height": issued,
                "issued_y": round(100 - issued, 1),
                "accepted_height": accepted,
                "accepted_y": round(100 - accepted, 1),
            }
        )
    return bars

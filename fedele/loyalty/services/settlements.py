"""Monthly settlement statements between coalition partners and the operator.

A statement is computed from the ledger (``selectors.partners.partner_statement``): the partner owes
the ``partner_amount`` of every point it issued (earn transactions, less their reversals) and is owed
the ``partner_amount`` of every point it accepted (burns, less their reversals). Each amount was
rounded half-up to the cent on its own transaction, so the statement is an exact sum: lines add up to
the totals and the totals to the transactions, to the cent.

Generating again replaces a draft (idempotent); an issued or paid statement never changes (Conflict).
Issuing recomputes the draft in the same transaction, so what is issued is the ledger at that moment.
"""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.loyalty.events import SettlementIssued, SettlementPaid
from fedele.loyalty.models import Partner, PartnerSettlement
from fedele.loyalty.selectors import partners as selectors
from fedele.shared import audit, clock, events
from fedele.shared.errors import Conflict, PermissionDenied

MANAGE_PARTNERS = "loyalty.manage_partners"


def _require_manager(actor: Actor | None) -> None:
    if actor is not None and not (actor.is_internal and actor.can(MANAGE_PARTNERS)):
        raise PermissionDenied(_("You may not manage partner settlements."), code="permission_denied")


def _snapshot(settlement: PartnerSettlement) -> dict[str, object]:
    return {
        "state": settlement.state,
        "period_start": settlement.period_start,
        "points_issued": settlement.points_issued,
        "points_accepted": settlement.points_accepted,
        "amount_due_from_partner": settlement.amount_due_from_partner,
        "amount_due_to_partner": settlement.amount_due_to_partner,
        "net": settlement.net,
        "transaction_count": settlement.transaction_count,
    }


def _fill(settlement: PartnerSettlement, statement: selectors.Statement) -> None:
    settlement.period_end = statement.period_end
    settlement.points_issued = statement.points_issued
    settlement.points_accepted = statement.points_accepted
    settlement.amount_due_from_partner = statement.amount_due_from_partner
    settlement.amount_due_to_partner = statement.amount_due_to_partner
    settlement.net = statement.net
    settlement.transaction_count = statement.transaction_count
    settlement.lines = statement.lines
    settlement.generated_at = clock.now()


def _locked_draft(partner: Partner, year: int, month: int) -> tuple[Partner, PartnerSettlement | None]:
    """Lock the partner (serialises statement work per partner) and its statement for the month."""
    locked = Partner.objects.select_for_update().select_related("programme").get(pk=partner.pk)
    start, _end = selectors.month_bounds(locked.programme, year, month)
    existing = (
        PartnerSettlement.objects.select_for_update()
        .filter(partner=locked, period_start=start.date())
        .first()
    )
    return locked, existing


def settlement_generate(*, actor: Actor | None, partner: Partner, year: int, month: int) -> PartnerSettlement:
    """Create or refresh the draft statement of a month (the current month gives a running draft)."""
    _require_manager(actor)
    start, _end = selectors.month_bounds(partner.programme, year, month)
    this_year, this_month = selectors.current_month(partner.programme)
    if (year, month) > (this_year, this_month):
        raise Conflict(
            _("A statement can't be generated for a month that hasn't started."),
            code="period_in_future",
            fields={"month": _("This month hasn't started yet.")},
        )
    with transaction.atomic():
        locked, settlement = _locked_draft(partner, year, month)
        if settlement is not None and settlement.state != PartnerSettlement.State.DRAFT:
            raise Conflict(
                _("This statement has been issued and can no longer change."),
                code="settlement_issued",
            )
        before = _snapshot(settlement) if settlement is not None else None
        statement = selectors.partner_statement(partner=locked, year=year, month=month)
        if settlement is None:
            settlement = PartnerSettlement(partner=locked, period_start=start.date())
        _fill(settlement, statement)
        settlement.save()
        audit.record(
            action="loyalty.settlement_generated",
            object_type="loyalty_settlement",
            object_id=str(settlement.public_id),
            before=before,
            after=_snapshot(settlement),
            actor_id=actor.user_id if actor else None,
        )
    return settlement


def settlement_issue(*, actor: Actor | None, settlement: PartnerSettlement) -> PartnerSettlement:
    """Draft → issued, recomputed from the ledger at this moment; only once the month is over."""
    _require_manager(actor)
    partner = settlement.partner
    period = settlement.period_start
    if (period.year, period.month) >= selectors.current_month(partner.programme):
        raise Conflict(
            _("A statement can be issued only after its month has ended."),
            code="period_not_over",
        )
    with transaction.atomic():
        locked_partner = Partner.objects.select_for_update().select_related("programme").get(pk=partner.pk)
        locked = PartnerSettlement.objects.select_for_update().get(pk=settlement.pk)
        if locked.state != PartnerSettlement.State.DRAFT:
            raise Conflict(_("This statement has already been issued."), code="settlement_issued")
        before = _snapshot(locked)
        _fill(
            locked, selectors.partner_statement(partner=locked_partner, year=period.year, month=period.month)
        )
        locked.state = PartnerSettlement.State.ISSUED
        locked.issued_at = clock.now()
        locked.save()
        audit.record(
            action="loyalty.settlement_issued",
            object_type="loyalty_settlement",
            object_id=str(locked.public_id),
            before=before,
            after=_snapshot(locked),
            actor_id=actor.user_id if actor else None,
        )
        events.publish(
            SettlementIssued(
                settlement_id=str(locked.public_id),
                partner=locked_partner.code,
                partner_id=str(locked_partner.public_id),
                programme=locked_partner.programme.code,
                period_start=locked.period_start.isoformat(),
                period_end=locked.period_end.isoformat(),
                points_issued=locked.points_issued,
                points_accepted=locked.points_accepted,
                amount_due_from_partner=str(locked.amount_due_from_partner),
                amount_due_to_partner=str(locked.amount_due_to_partner),
                net=str(locked.net),
            ),
            aggregate_type="loyalty_settlement",
            aggregate_id=str(locked.public_id),
        )
    return locked


def settlement_mark_paid(*, actor: Actor | None, settlement: PartnerSettlement) -> PartnerSettlement:
    """Issued → paid (the net amount has been paid by, or to, the partner). Paid twice: Conflict."""
    _require_manager(actor)
    with transaction.atomic():
        locked = PartnerSettlement.objects.select_for_update().select_related("partner").get(pk=settlement.pk)
        if locked.state != PartnerSettlement.State.ISSUED:
            raise Conflict(
                _("Only an issued statement can be marked as paid."),
                code="settlement_not_issued"
                if locked.state == PartnerSettlement.State.DRAFT
                else "settlement_paid",
            )
        now = clock.now()
        locked.state = PartnerSettlement.State.PAID
        locked.save(update_fields=["state"])
        audit.record(
            action="loyalty.settlement_paid",
            object_type="loyalty_settlement",
            object_id=str(locked.public_id),
            before={"state": PartnerSettlement.State.ISSUED},
            after={"state": PartnerSettlement.State.PAID, "paid_at": now},
            actor_id=actor.user_id if actor else None,
        )
        events.publish(
            SettlementPaid(
                settlement_id=str(locked.public_id),
                partner=locked.partner.code,
                partner_id=str(locked.partner.public_id),
                net=str(locked.net),
                paid_at=now.isoformat(),
            ),
            aggregate_type="loyalty_settlement",
            aggregate_id=str(locked.public_id),
        )
    return locked


def settlements_generate_month() -> dict[str, int]:
    """The job: last month's draft for every active partner (programme time zone).

    On the 1st of the month drafts are (re)generated; on other days only missing ones are created, so
    a scheduler that was down on the 1st catches up, and an issued statement is never touched."""
    generated = skipped = 0
    partners = Partner.objects.select_related("programme").filter(status=Partner.Status.ACTIVE).order_by("id")
    for partner in partners:
        today = clock.today(partner.programme.timezone)
        year, month = (today.year - 1, 12) if today.month == 1 else (today.year, today.month - 1)
        start, _end = selectors.month_bounds(partner.programme, year, month)
        existing = PartnerSettlement.objects.filter(partner=partner, period_start=start.date()).first()
        refresh = today.day == 1 and existing is not None and existing.state == PartnerSettlement.State.DRAFT
        if existing is not None and not refresh:
            skipped += 1
            continue
        settlement_generate(actor=None, partner=partner, year=year, month=month)
        generated += 1
    return {"generated": generated, "skipped": skipped}

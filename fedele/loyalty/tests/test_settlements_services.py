"""Monthly partner settlements: the three-partner acceptance case balancing to the cent, month
boundaries in the programme's time zone (DST, leap day), draft/issued/paid, the monthly job, CSV."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from fedele.loyalty.models import Partner, PartnerSettlement, PointsTransaction
from fedele.loyalty.selectors.partners import partner_statement, settlement_csv
from fedele.loyalty.services.partners import (
    partner_burn,
    partner_earn,
    partner_hold,
    partner_hold_confirm,
    partner_reverse,
    partner_set_status,
)
from fedele.loyalty.services.settlements import (
    settlement_generate,
    settlement_issue,
    settlement_mark_paid,
    settlements_generate_month,
)
from fedele.loyalty.tests.partners_fixtures import (
    at,
    coalition,
    manager,
    member_with,
    partner_actor,
    partner_with_user,
    receivable_payable_from_entries,
    signed_partner_amounts,
    spend_rule,
)
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db
D = Decimal


def _earn(user: Any, partner: Partner, member: Any, when: Any, **kwargs: Any) -> Any:
    with time_machine.travel(when, tick=False):
        return partner_earn(
            actor=partner_actor(user), partner=partner, card_number=member.card_number, **kwargs
        )


def _burn(user: Any, partner: Partner, member: Any, when: Any, points: int, external_id: str) -> Any:
    with time_machine.travel(when, tick=False):
        return partner_burn(
            actor=partner_actor(user),
            partner=partner,
            card_number=member.card_number,
            points=points,
            external_id=external_id,
        )


@pytest.fixture
def coalition_month() -> dict[str, Any]:
    """March 2026 (Europe/Rome; DST starts on 29 March) at three partners with different prices."""
    programme = coalition()
    spend_rule(programme)
    fuel, fuel_user = partner_with_user(
        programme, code="fuel", earn_price_per_point=D("0.012345"), burn_price_per_point=D("0.009500")
    )
    air, air_user = partner_with_user(
        programme, code="air", earn_price_per_point=D("0.008000"), burn_price_per_point=D("0.012345")
    )
    shop, shop_user = partner_with_user(
        programme, code="shop", earn_price_per_point=D("0.009500"), burn_price_per_point=D("0.008000")
    )
    with time_machine.travel(at(2026, 2, 1), tick=False):
        anna = member_with(programme, 10_000)
        bruno = member_with(programme, 5_000)
    # 28 Feb 23:30 UTC is 1 March 00:30 in Rome: March. 81 × 0.012345 = 0.999945 → 1.00
    first = _earn(
        fuel_user,
        fuel,
        anna,
        at(2026, 3, 1, 8),
        points=81,
        external_id="F-1",
        occurred_at=at(2026, 2, 28, 23, 30),
    )
    # 28 Feb 22:30 UTC is 23:30 in Rome: February (not in March's statement).
    _earn(
        air_user,
        air,
        anna,
        at(2026, 3, 1, 8),
        points=7,
        external_id="A-0",
        occurred_at=at(2026, 2, 28, 22, 30),
    )
    # €123.45 through the rules (1 point per euro, rounded down) → 123 points × 0.012345 = 1.518435 → 1.52
    _earn(fuel_user, fuel, bruno, at(2026, 3, 5), amount_eur=D("123.45"), external_id="F-2")
    _earn(air_user, air, anna, at(2026, 3, 5), points=333, external_id="A-1")  # 2.664 → 2.66
    _earn(shop_user, shop, bruno, at(2026, 3, 6), points=77, external_id="S-1")  # 0.7315 → 0.73
    _burn(fuel_user, fuel, anna, at(2026, 3, 10), 250, "F-B1")  # 2.375 → 2.38
    _burn(air_user, air, bruno, at(2026, 3, 10), 149, "A-B1")  # 1.839405 → 1.84
    _burn(shop_user, shop, anna, at(2026, 3, 12), 1001, "S-B1")  # 8.008 → 8.01
    with time_machine.travel(at(2026, 3, 15), tick=False):
        hold = partner_hold(
            actor=partner_actor(shop_user),
            partner=shop,
            card_number=bruno.card_number,
            points=99,
            external_id="S-H1",
        )
        partner_hold_confirm(actor=partner_actor(shop_user), partner=shop, reservation=hold)  # 0.792 → 0.79
    with time_machine.travel(at(2026, 3, 20), tick=False):
        assert first.transaction is not None
        partner_reverse(
            actor=partner_actor(fuel_user),
            partner=fuel,
            transaction_to_reverse=first.transaction,
            reason="void",
        )
    # 31 March 21:30 UTC is 23:30 CEST: still March. 45 × 0.008 = 0.36
    _earn(air_user, air, bruno, at(2026, 3, 31, 21, 30), points=45, external_id="A-2")
    # 31 March 22:30 UTC is 1 April 00:30 CEST: April. 19 × 0.012345 = 0.234555 → 0.23
    _earn(fuel_user, fuel, anna, at(2026, 3, 31, 22, 30), points=19, external_id="F-3")
    return {"programme": programme, "fuel": fuel, "air": air, "shop": shop}


def test_three_partners_balance_to_the_cent(coalition_month: dict[str, Any]) -> None:
    programme = coalition_month["programme"]
    partners: list[Partner] = [coalition_month[name] for name in ("fuel", "air", "shop")]
    with time_machine.travel(at(2026, 4, 2), tick=False):
        statements = {
            p.code: settlement_generate(actor=manager(), partner=p, year=2026, month=3) for p in partners
        }

    figures = {
        code: (
            s.points_issued,
            s.points_accepted,
            s.amount_due_from_partner,
            s.amount_due_to_partner,
            s.net,
            s.transaction_count,
        )
        for code, s in statements.items()
    }
    assert figures == {
        "fuel": (123, 250, D("1.52"), D("2.38"), D("-0.86"), 4),
        "air": (378, 149, D("3.02"), D("1.84"), D("1.18"), 3),
        "shop": (77, 1100, D("0.73"), D("8.80"), D("-8.07"), 3),
    }
    assert statements["fuel"].period_start == date(2026, 3, 1)
    assert statements["fuel"].period_end == date(2026, 3, 31)
    # Each statement is the exact sum of its partner's transactions' partner_amount...
    for partner in partners:
        statement = statements[partner.code]
        assert (statement.amount_due_from_partner, statement.amount_due_to_partner) == signed_partner_amounts(
            partner, 2026, 3
        )
        # ...and its lines add up to its totals.
        issuing = [
            line for line in statement.lines if line["kind"] in ("earn", "earn_reversal", "earn_refund")
        ]
        accepting = [line for line in statement.lines if line["kind"] in ("burn", "burn_reversal")]
        assert sum(D(line["amount"]) for line in issuing) == statement.amount_due_from_partner
        assert sum(D(line["amount"]) for line in accepting) == statement.amount_due_to_partner
        assert sum(line["points"] for line in issuing) == statement.points_issued
        assert sum(line["points"] for line in accepting) == statement.points_accepted
        assert sum(line["count"] for line in statement.lines) == statement.transaction_count
    # Σ of the nets = what the operator receives − pays, computed from the ledger entries alone.
    independent = receivable_payable_from_entries(programme, 2026, 3)
    receivable = sum(values[0] for values in independent.values())
    payable = sum(values[1] for values in independent.values())
    assert sum(s.net for s in statements.values()) == receivable - payable == D("-7.75")
    assert {p.code: independent[p.pk] for p in partners} == {
        "fuel": (D("1.52"), D("2.38")),
        "air": (D("3.02"), D("1.84")),
        "shop": (D("0.73"), D("8.80")),
    }
    assert statements["fuel"].lines == [
        {"date": "2026-03-01", "kind": "earn", "count": 1, "points": 81, "amount": "1.00"},
        {"date": "2026-03-05", "kind": "earn", "count": 1, "points": 123, "amount": "1.52"},
        {"date": "2026-03-10", "kind": "burn", "count": 1, "points": 250, "amount": "2.38"},
        {"date": "2026-03-20", "kind": "earn_reversal", "count": 1, "points": -81, "amount": "-1.00"},
    ]


def test_the_boundary_transactions_land_in_the_neighbouring_months(coalition_month: dict[str, Any]) -> None:
    fuel, air = coalition_month["fuel"], coalition_month["air"]
    with time_machine.travel(at(2026, 4, 2), tick=False):
        april = settlement_generate(actor=manager(), partner=fuel, year=2026, month=4)
        february = settlement_generate(actor=manager(), partner=air, year=2026, month=2)
    assert (april.points_issued, april.amount_due_from_partner, april.transaction_count) == (19, D("0.23"), 1)
    assert april.lines == [{"date": "2026-04-01", "kind": "earn", "count": 1, "points": 19, "amount": "0.23"}]
    assert (february.points_issued, february.amount_due_from_partner, february.period_end) == (
        7,
        D("0.06"),
        date(2026, 2, 28),
    )
    assert february.lines[0]["date"] == "2026-02-28"


def test_leap_day_belongs_to_february_until_midnight_in_rome() -> None:
    programme = coalition()
    partner, user = partner_with_user(programme, code="leap", earn_price_per_point=D("0.010000"))
    with time_machine.travel(at(2028, 2, 1), tick=False):
        member = member_with(programme)
    _earn(user, partner, member, at(2028, 2, 29, 22, 59), points=29, external_id="L-1")  # 23:59 CET, 29 Feb
    _earn(user, partner, member, at(2028, 2, 29, 23, 0), points=1, external_id="L-2")  # 00:00 CET, 1 Mar
    with time_machine.travel(at(2028, 3, 2), tick=False):
        february = settlement_generate(actor=manager(), partner=partner, year=2028, month=2)
    assert february.period_end == date(2028, 2, 29)
    assert february.lines == [
        {"date": "2028-02-29", "kind": "earn", "count": 1, "points": 29, "amount": "0.29"}
    ]


def test_generate_again_refreshes_the_same_draft_and_issue_freezes_it(
    coalition_month: dict[str, Any],
) -> None:
    air = coalition_month["air"]
    with time_machine.travel(at(2026, 4, 1, 8), tick=False):
        running = settlement_generate(actor=manager(), partner=air, year=2026, month=3)
    assert (running.state, running.points_issued, running.net) == ("draft", 378, D("1.18"))
    # A purchase of 30 March reported on 2 April: the month is still a draft, so it is accepted.
    member = PointsTransaction.objects.filter(partner=air, kind="earn").first().member  # type: ignore[union-attr]
    late = _earn(
        air_user_of(air),
        air,
        member,
        at(2026, 4, 2),
        points=5,
        external_id="A-3",
        occurred_at=at(2026, 3, 30),
    )
    assert late.partner_amount == D("0.04")
    with time_machine.travel(at(2026, 4, 2), tick=False):
        again = settlement_generate(actor=manager(), partner=air, year=2026, month=3)
        assert again.pk == running.pk and (again.points_issued, again.net) == (383, D("1.22"))
        assert PartnerSettlement.objects.filter(partner=air).count() == 1
        issued = settlement_issue(actor=manager(), settlement=again)
    assert (issued.state, issued.issued_at, issued.net) == ("issued", at(2026, 4, 2), D("1.22"))
    event = OutboxEvent.objects.get(event_type="loyalty.partner_settlement_issued")
    assert event.payload["net"] == "1.22" and event.payload["partner"] == "air"
    assert (
        AuditLog.objects.filter(action="loyalty.settlement_issued", object_id=str(issued.public_id)).count()
        == 1
    )
    before = PartnerSettlement.objects.values().get(pk=issued.pk)
    with time_machine.travel(at(2026, 4, 3), tick=False):
        with pytest.raises(Conflict) as regenerate:
            settlement_generate(actor=manager(), partner=air, year=2026, month=3)
        with pytest.raises(Conflict) as reissue:
            settlement_issue(actor=manager(), settlement=issued)
    assert (regenerate.value.code, reissue.value.code) == ("settlement_issued", "settlement_issued")
    assert PartnerSettlement.objects.values().get(pk=issued.pk) == before


def test_a_purchase_cannot_be_backdated_into_an_issued_month(coalition_month: dict[str, Any]) -> None:
    air = coalition_month["air"]
    air_user = air_user_of(air)
    with time_machine.travel(at(2026, 4, 2), tick=False):
        settlement_issue(
            actor=manager(), settlement=settlement_generate(actor=manager(), partner=air, year=2026, month=3)
        )
    member = PointsTransaction.objects.filter(partner=air).first().member  # type: ignore[union-attr]
    count = PointsTransaction.objects.count()
    with pytest.raises(Conflict) as closed:
        _earn(
            air_user, air, member, at(2026, 4, 3), points=5, external_id="late", occurred_at=at(2026, 3, 30)
        )
    assert closed.value.code == "period_closed"
    assert PointsTransaction.objects.count() == count
    # The current month stays open.
    result = _earn(air_user, air, member, at(2026, 4, 3), points=5, external_id="on-time")
    assert result.points == 5 and result.partner_amount == D("0.04")


def air_user_of(partner: Partner) -> Any:
    from fedele.accounts.models import User

    return User.objects.get(organisation_id=partner.organisation_id)


def test_issue_waits_for_the_end_of_the_month_and_paid_follows_issued(
    coalition_month: dict[str, Any],
) -> None:
    shop = coalition_month["shop"]
    with time_machine.travel(at(2026, 3, 20), tick=False):
        draft = settlement_generate(actor=manager(), partner=shop, year=2026, month=3)
        with pytest.raises(Conflict) as early:
            settlement_issue(actor=manager(), settlement=draft)
        with pytest.raises(Conflict) as unpaid:
            settlement_mark_paid(actor=manager(), settlement=draft)
        with pytest.raises(Conflict) as future:
            settlement_generate(actor=manager(), partner=shop, year=2026, month=4)
    assert (early.value.code, unpaid.value.code, future.value.code) == (
        "period_not_over",
        "settlement_not_issued",
        "period_in_future",
    )
    assert PartnerSettlement.objects.get(pk=draft.pk).state == "draft"
    with time_machine.travel(at(2026, 4, 1, 8), tick=False):
        issued = settlement_issue(actor=manager(), settlement=draft)
        paid = settlement_mark_paid(actor=manager(), settlement=issued)
        with pytest.raises(Conflict) as twice:
            settlement_mark_paid(actor=manager(), settlement=paid)
    assert (issued.net, paid.state, twice.value.code) == (D("-8.07"), "paid", "settlement_paid")
    assert OutboxEvent.objects.filter(event_type="loyalty.partner_settlement_paid").count() == 1


def test_only_partner_managers_generate_and_months_are_checked(coalition_month: dict[str, Any]) -> None:
    from fedele.accounts.facade import actor_for
    from fedele.accounts.tests.factories import user_with_roles

    fuel = coalition_month["fuel"]
    agent = actor_for(user_with_roles("agent"))
    with time_machine.travel(at(2026, 4, 2), tick=False):
        with pytest.raises(PermissionDenied):
            settlement_generate(actor=agent, partner=fuel, year=2026, month=3)
        with pytest.raises(PermissionDenied):
            settlement_generate(actor=partner_actor(air_user_of(fuel)), partner=fuel, year=2026, month=3)
        with pytest.raises(ValidationFailed) as bad_month:
            settlement_generate(actor=manager(), partner=fuel, year=2026, month=13)
    assert bad_month.value.code == "invalid_period"
    assert not PartnerSettlement.objects.exists()


def test_the_monthly_job_generates_last_month_on_the_first_and_catches_up_later(
    coalition_month: dict[str, Any],
) -> None:
    fuel, air, shop = coalition_month["fuel"], coalition_month["air"], coalition_month["shop"]
    with time_machine.travel(at(2026, 3, 31, 12), tick=False):
        partner_set_status(actor=None, partner=shop, status="suspended")
    # 31 March 22:30 UTC is already 1 April in Rome: the job makes March's drafts.
    with time_machine.travel(at(2026, 3, 31, 22, 30), tick=False):
        assert settlements_generate_month() == {"generated": 2, "skipped": 0}
        assert settlements_generate_month() == {"generated": 2, "skipped": 0}  # 1st: refreshed, not doubled
    assert sorted(PartnerSettlement.objects.values_list("partner__code", "period_start")) == [
        ("air", date(2026, 3, 1)),
        ("fuel", date(2026, 3, 1)),
    ]
    air_march = PartnerSettlement.objects.get(partner=air)
    assert (air_march.points_issued, air_march.net) == (378, D("1.18"))
    with time_machine.travel(at(2026, 4, 2), tick=False):
        settlement_issue(actor=None, settlement=PartnerSettlement.objects.get(partner=fuel))
        assert settlements_generate_month() == {"generated": 0, "skipped": 2}
    assert PartnerSettlement.objects.get(partner=fuel).state == "issued"


def test_the_statement_of_an_empty_month_is_zero() -> None:
    programme = coalition()
    partner, _user = partner_with_user(programme, code="quiet")
    with time_machine.travel(at(2026, 5, 3), tick=False):
        settlement = settlement_generate(actor=None, partner=partner, year=2026, month=4)
        statement = partner_statement(partner=partner, year=2026, month=4)
    assert (settlement.points_issued, settlement.points_accepted, settlement.net, settlement.lines) == (
        0,
        0,
        D("0.00"),
        [],
    )
    assert statement.transaction_count == 0


def test_csv_lists_the_lines_then_the_totals(coalition_month: dict[str, Any]) -> None:
    fuel = coalition_month["fuel"]
    with time_machine.travel(at(2026, 4, 2), tick=False):
        settlement = settlement_generate(actor=None, partner=fuel, year=2026, month=3)
    assert settlement_csv(settlement).splitlines() == [
        "date;kind;transactions;points;amount_eur",
        "2026-03-01;earn;1;81;1,00",
        "2026-03-05;earn;1;123;1,52",
        "2026-03-10;burn;1;250;2,38",
        "2026-03-20;earn_reversal;1;-81;-1,00",
        "",
        "partner;fuel",
        "period;2026-03-01;2026-03-31",
        "state;draft",
        "points_issued;123",
        "points_accepted;250",
        "amount_due_from_partner;1,52",
        "amount_due_to_partner;2,38",
        "net;-0,86",
    ]

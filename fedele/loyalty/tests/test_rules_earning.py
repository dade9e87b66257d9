"""event_record: points from rules with exact values (rounding, tiers, bonus campaigns, holdout, caps
across Rome's midnight and the DST day), idempotency, zero-point events and the hot path's queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import translation

from fedele.loyalty.models import CampaignAssignment, LoyaltyEvent, PointsLot, PointsTransaction, RuleUsage
from fedele.loyalty.services.campaigns import campaign_create, campaign_group, campaign_set_status
from fedele.loyalty.services.rules import event_record, event_record_with_status
from fedele.loyalty.tests.factories import (
    MemberFactory,
    PartnerFactory,
    ProgrammeFactory,
    TierFactory,
    standard_tiers,
)
from fedele.loyalty.tests.rules_support import balance, make_rule, points_of, row_counts, spend
from fedele.shared.errors import PermissionDenied, ValidationFailed

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> object:
    # Messages are asserted in English, whatever language an earlier test left active.
    with time_machine.travel(NOW, tick=False) as traveller, translation.override("en"):
        yield traveller


@pytest.mark.parametrize(
    ("rounding", "amount", "expected"),
    [
        ("down", "123.45", 123),
        ("half_up", "123.45", 123),
        ("up", "123.45", 124),
        ("half_up", "123.50", 124),
        ("down", "123.99", 123),
        ("up", "123.00", 123),
        ("down", "0.99", 0),
        ("up", "0.01", 1),
    ],
)
def test_spend_rounding_per_programme(rounding: str, amount: str, expected: int) -> None:
    programme = ProgrammeFactory(rounding=rounding)
    make_rule(programme, code="base")
    member = MemberFactory(programme=programme)
    event = spend(member, amount, "r-1")
    assert points_of(event) == expected
    assert balance(member) == (expected, 0)
    assert PointsTransaction.objects.filter(member=member).count() == (1 if expected else 0)


@pytest.mark.parametrize(("rounding", "expected"), [("down", 184), ("half_up", 185), ("up", 186)])
def test_tier_multiplier_applies_after_the_rule_rounding(rounding: str, expected: int) -> None:
    programme = ProgrammeFactory(rounding=rounding)
    gold = standard_tiers(programme)[2]
    assert gold.earn_multiplier == Decimal("1.50")
    make_rule(programme, code="base")
    member = MemberFactory(programme=programme, tier=gold)
    event = spend(member, "123.45")
    # down: 123 × 1.5 = 184.5 → 184; half up: 123 × 1.5 → 185; up: 124 × 1.5 = 186.
    assert points_of(event) == expected
    line = event.result["lines"][0]
    assert (line["base_points"], line["tier_multiplier"], line["points"]) == (
        124 if rounding == "up" else 123,
        "1.50",
        expected,
    )


def test_fixed_points_rates_and_several_rules_add_up_per_line() -> None:
    programme = ProgrammeFactory(rounding="down")
    make_rule(programme, code="base", points_per_euro="1.5")
    make_rule(programme, code="visit", points_per_euro="0", fixed_points=10)
    make_rule(
        programme,
        code="web-only",
        points_per_euro="0.25",
        conditions=[{"field": "channel", "op": "eq", "value": "web"}],
    )
    member = MemberFactory(programme=programme)
    in_store = spend(member, "19.99", channel="store")
    # 1.5 × 19.99 = 29.985 → 29 ; + 10 fixed ; web-only does not hold.
    assert points_of(in_store) == 39
    assert [line["points"] for line in in_store.result["lines"]] == [29, 10, 0]
    online = spend(member, "19.99", channel="WEB")
    # 29 + 10 + 0.25 × 19.99 = 4.9975 → 4 (each line rounded on its own).
    assert points_of(online) == 43
    assert balance(member) == (82, 0)


def test_qualifying_and_pending_follow_the_rules() -> None:
    programme = ProgrammeFactory(pending_days=14)
    make_rule(programme, code="base", pending=True)
    make_rule(programme, code="promo", points_per_euro="0", fixed_points=50, qualifying=False)
    member = MemberFactory(programme=programme)
    event = spend(member, "80.00", reference="ORDER-7")
    txn = PointsTransaction.objects.get(pk=event.transaction_id)
    assert (txn.points, txn.qualifying_points, txn.qualifying_count, txn.amount_eur) == (
        130,
        80,
        1,
        Decimal("80.00"),
    )
    assert txn.reference == "ORDER-7" and txn.idempotency_key == f"event:pos:{event.external_id}"
    assert txn.details["event_id"] == str(event.public_id)
    assert [line["rule"] for line in txn.details["lines"]] == ["base", "promo"]
    lot = PointsLot.objects.get(earn_transaction=txn)
    assert lot.state == "pending" and lot.matures_at == NOW + timedelta(days=14)
    assert balance(member) == (0, 130)
    assert event.result["pending_days"] == 14


def test_bonus_rule_multiplies_the_other_rules_and_two_bonuses_add_up() -> None:
    programme = ProgrammeFactory(rounding="down")
    make_rule(programme, code="base")
    make_rule(programme, code="double", points_per_euro="0", multiplier="2.00")
    make_rule(programme, code="half-more", points_per_euro="0", multiplier="1.50", position=9)
    member = MemberFactory(
        programme=programme, tier=TierFactory(programme=programme, earn_multiplier=Decimal("1.25"))
    )
    event = spend(member, "101.00")
    # base 101 × 1.25 = 126.25 → 126; ×2 adds 126; ×1.5 adds 63.
    assert [(line["rule"], line["points"]) for line in event.result["lines"]] == [
        ("base", 126),
        ("double", 126),
        ("half-more", 63),
    ]
    assert points_of(event) == 315


def _campaign(programme, holdout: int = 0, **kwargs):
    campaign = campaign_create(
        actor=None,
        programme=programme,
        data={
            "code": kwargs.pop("code", "spring"),
            "name_en": "Spring double points",
            "starts_at": kwargs.pop("starts_at", datetime(2026, 3, 1, 0, 0)),  # Rome time (naive)
            "ends_at": kwargs.pop("ends_at", datetime(2026, 3, 15, 0, 0)),
            "holdout_percent": holdout,
            **kwargs,
        },
    )
    return campaign_set_status(actor=None, campaign=campaign, status="active")


def test_bonus_campaign_applies_inside_its_window_to_the_second() -> None:
    programme = ProgrammeFactory()
    make_rule(programme, code="base")
    campaign = _campaign(programme)
    assert campaign.starts_at == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    assert campaign.ends_at == datetime(2026, 3, 14, 23, 0, tzinfo=UTC)
    make_rule(programme, code="double", points_per_euro="0", multiplier="2", campaign="spring")
    member = MemberFactory(programme=programme)
    seconds = timedelta(seconds=1)
    cases = [
        (campaign.starts_at - seconds, 100),
        (campaign.starts_at, 200),
        (campaign.ends_at - seconds, 200),
        (campaign.ends_at, 100),
    ]
    results = []
    for moment, _expected in cases:
        with time_machine.travel(moment, tick=False):
            results.append(points_of(spend(member, "100.00")))
    assert results == [expected for _moment, expected in cases]
    earned = PointsTransaction.objects.filter(member=member).order_by("id")
    assert [txn.campaign_id for txn in earned] == [None, campaign.pk, campaign.pk, None]
    assert balance(member) == (600, 0)


def test_holdout_members_get_no_bonus_and_are_recorded_in_their_group() -> None:
    programme = ProgrammeFactory()
    make_rule(programme, code="base")
    campaign = _campaign(programme, holdout=50)
    make_rule(programme, code="double", points_per_euro="0", multiplier="2", campaign="spring")
    members = [MemberFactory(programme=programme) for _ in range(12)]
    groups = {member.pk: campaign_group(campaign, member) for member in members}
    assert set(groups.values()) == {"holdout", "treatment"}  # 12 members at 50 %: both groups drawn
    for member in members:
        event = spend(member, "40.00")
        expected = 40 if groups[member.pk] == "holdout" else 80
        assert points_of(event) == expected
        line = event.result["lines"][1]
        assert line["campaign_group"] == groups[member.pk]
        assert line["skipped"] == ("holdout" if groups[member.pk] == "holdout" else "")
    recorded = dict(CampaignAssignment.objects.filter(campaign=campaign).values_list("member_id", "group"))
    assert recorded == groups
    # A second event does not add assignments, and the group never changes.
    spend(members[0], "10.00")
    assert CampaignAssignment.objects.filter(campaign=campaign).count() == 12


def test_campaign_budget_is_shared_by_its_rules() -> None:
    programme = ProgrammeFactory()
    make_rule(programme, code="base")
    _campaign(programme, budget_points=150)
    make_rule(programme, code="double", points_per_euro="0", multiplier="2", campaign="spring")
    make_rule(programme, code="bonus-fixed", points_per_euro="0", fixed_points=30, campaign="spring")
    first, second = MemberFactory(programme=programme), MemberFactory(programme=programme)
    one = spend(first, "100.00")
    # base 100 + fixed 30 (campaign) + double of (100 + 30) = 130 → budget left 120 after the 30.
    assert [(line["rule"], line["points"], line["capped_by"]) for line in one.result["lines"]] == [
        ("base", 100, ""),
        ("double", 120, "campaign_budget"),
        ("bonus-fixed", 30, ""),
    ]
    two = spend(second, "100.00")
    assert [(line["points"], line["capped_by"]) for line in two.result["lines"]] == [
        (100, ""),
        (0, "campaign_budget"),
        (0, "campaign_budget"),
    ]
    campaign_total = sum(
        RuleUsage.objects.filter(rule__campaign__code="spring", member=None, day=None).values_list(
            "points", flat=True
        )
    )
    assert campaign_total == 150


def test_cap_per_member_per_day_trims_and_the_next_rome_day_is_fresh() -> None:
    programme = ProgrammeFactory(timezone="Europe/Rome")
    make_rule(programme, code="base", cap_per_member_per_day=150)
    member = MemberFactory(programme=programme)
    other = MemberFactory(programme=programme)
    # 29 March 2026 is the DST day in Rome: it starts at 23:00 UTC on the 28th and lasts 23 hours.
    day_start = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    day_end = datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    with time_machine.travel(day_start - timedelta(seconds=1), tick=False):
        assert points_of(spend(member, "120.00")) == 120  # 28 March: its own day
    with time_machine.travel(day_start, tick=False):
        assert points_of(spend(member, "100.00")) == 100
        assert points_of(spend(other, "100.00")) == 100  # caps are per member
    with time_machine.travel(day_end - timedelta(seconds=1), tick=False):
        second = spend(member, "100.00")
        third = spend(member, "100.00")
    assert (points_of(second), second.result["lines"][0]["capped_by"]) == (50, "per_member_per_day")
    assert points_of(third) == 0 and third.transaction_id is None
    assert third.result["reasons"] == ["base:per_member_per_day"]
    with time_machine.travel(day_end, tick=False):
        assert points_of(spend(member, "100.00")) == 100  # 30 March, fresh
    usage = dict(RuleUsage.objects.filter(member=member).values_list("day", "points").order_by("day"))
    assert {day.isoformat(): points for day, points in usage.items()} == {
        "2026-03-28": 120,
        "2026-03-29": 150,
        "2026-03-30": 100,
    }
    assert balance(member) == (370, 0)


def test_cap_per_member_in_total_and_across_everyone() -> None:
    programme = ProgrammeFactory()
    make_rule(
        programme,
        code="welcome",
        event_type="spend",
        points_per_euro="0",
        fixed_points=70,
        cap_per_member_total=100,
    )
    make_rule(programme, code="pool", points_per_euro="1", cap_total=150)
    first, second = MemberFactory(programme=programme), MemberFactory(programme=programme)
    assert points_of(spend(first, "100.00")) == 170
    assert points_of(spend(first, "10.00")) == 30 + 10  # welcome trimmed to 30, pool 10 (110 of 150)
    event = spend(second, "100.00")
    assert [(line["points"], line["capped_by"]) for line in event.result["lines"]] == [
        (70, ""),
        (40, "total"),
    ]
    assert RuleUsage.objects.get(rule__code="pool", member=None, day=None).points == 150
    assert RuleUsage.objects.get(rule__code="welcome", member=first, day=None).points == 100


def test_same_external_id_twice_returns_the_first_event_and_writes_nothing() -> None:
    programme = ProgrammeFactory()
    make_rule(programme, code="base", cap_per_member_per_day=1000)
    member = MemberFactory(programme=programme)
    first, created = event_record_with_status(
        actor=None,
        programme=programme,
        member=member,
        event_type="spend",
        source="pos",
        external_id="R-1",
        amount_eur=Decimal("50"),
    )
    before = row_counts()
    again, created_again = event_record_with_status(
        actor=None,
        programme=programme,
        member=member,
        event_type="spend",
        source="pos",
        external_id="R-1",
        amount_eur=Decimal("999"),
    )
    assert (created, created_again, again.pk) == (True, False, first.pk)
    assert row_counts() == before
    assert balance(member) == (50, 0)
    assert RuleUsage.objects.get(member=member).points == 50
    # The same external id from another source is another event.
    other = spend(member, "5.00", "R-1", source="web")
    assert other.pk != first.pk and points_of(other) == 5


def test_event_without_points_is_recorded_with_its_reasons() -> None:
    programme = ProgrammeFactory()
    make_rule(programme, code="big", conditions=[{"field": "amount", "op": "gte", "value": "100"}])
    member = MemberFactory(programme=programme)
    before = row_counts()
    event = spend(member, "99.99")
    assert event.transaction_id is None
    assert event.result["points"] == 0
    assert event.result["reasons"] == ["big:condition"]
    assert event.result["lines"][0]["detail"] == "amount gte 100"
    after = row_counts()
    assert (after["events"] - before["events"], after["transactions"] - before["transactions"]) == (1, 0)
    none = event_record(
        actor=None, programme=programme, member=member, event_type="review", source="app", external_id="v-1"
    )
    assert none.result["reasons"] == ["no_rules"]


def test_partner_events_carry_the_partner_amount() -> None:
    partner = PartnerFactory(earn_price_per_point=Decimal("0.012345"))
    programme = partner.programme
    make_rule(
        programme, code="partner-spend", conditions=[{"field": "partner", "op": "eq", "value": partner.code}]
    )
    member = MemberFactory(programme=programme)
    event = spend(member, "81.00", partner=partner, source=f"partner:{partner.pk}")
    txn = PointsTransaction.objects.get(pk=event.transaction_id)
    # 81 × 0.012345 = 0.999945 → 1.00 (half up to the cent).
    assert (txn.points, txn.partner_id, txn.partner_amount) == (81, partner.pk, Decimal("1.00"))
    assert event.result["partner"] == partner.code


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amount_eur": Decimal("-1")}, "amount_eur"),
        ({"amount_eur": None}, "amount_eur"),
        ({"amount_eur": Decimal("1000000000000")}, "amount_eur"),
        ({"event_type": "bogus"}, "event_type"),
        ({"external_id": ""}, "external_id"),
        ({"external_id": "x" * 121}, "external_id"),
        ({"source": "s" * 25}, "source"),
        ({"custom_event": "nope"}, "custom_event"),
        ({"event_type": "custom", "custom_event": ""}, "custom_event"),
        ({"attributes": {"bad name!": 1}}, "attributes"),
        ({"attributes": {"nested": {"a": 1}}}, "attributes"),
        ({"product_categories": ["ok", ""]}, "product_categories"),
        ({"occurred_at": datetime(2026, 3, 10, 10, 0, tzinfo=UTC)}, "occurred_at"),
        ({"occurred_at": datetime(2026, 3, 10, 9, 0)}, "occurred_at"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(kwargs: dict, field: str) -> None:
    programme = ProgrammeFactory()
    make_rule(programme, code="base")
    member = MemberFactory(programme=programme)
    values = {
        "actor": None,
        "programme": programme,
        "member": member,
        "event_type": "spend",
        "source": "pos",
        "external_id": "R-1",
        "amount_eur": Decimal("10"),
    }
    values.update(kwargs)
    before = row_counts()
    with pytest.raises(ValidationFailed) as caught:
        event_record(**values)
    assert field in caught.value.fields
    assert row_counts() == before


def test_member_of_another_programme_suspended_member_and_huge_totals_are_refused() -> None:
    programme = ProgrammeFactory(max_points_per_transaction=1000)
    make_rule(programme, code="base")
    stranger = MemberFactory()
    suspended = MemberFactory(programme=programme, status="suspended")
    member = MemberFactory(programme=programme)
    before = row_counts()
    with pytest.raises(ValidationFailed) as caught:
        event_record(
            actor=None,
            programme=programme,
            member=stranger,
            event_type="spend",
            source="pos",
            external_id="1",
            amount_eur=Decimal("1"),
        )
    assert caught.value.code == "member_not_in_programme"
    with pytest.raises(ValidationFailed) as caught:
        spend(suspended, "10")
    assert caught.value.code == "member_not_active"
    with pytest.raises(ValidationFailed) as caught:
        spend(member, "1001.00")
    assert caught.value.code == "points_too_large"
    assert row_counts() == before
    assert RuleUsage.objects.count() == 0


def test_only_operators_partners_for_themselves_or_the_system_record_events() -> None:
    from fedele.accounts.facade import actor_for
    from fedele.accounts.tests.factories import user_with_roles

    programme = ProgrammeFactory()
    make_rule(programme, code="base")
    member = MemberFactory(programme=programme)
    analyst = actor_for(user_with_roles("analyst"))
    with pytest.raises(PermissionDenied):
        spend(member, "10", actor=analyst)
    agent = actor_for(user_with_roles("agent"))
    assert points_of(spend(member, "10", actor=agent)) == 10
    assert LoyaltyEvent.objects.count() == 1


def test_first_purchase_condition_reads_the_members_earlier_purchases() -> None:
    programme = ProgrammeFactory()
    make_rule(programme, code="base")
    make_rule(
        programme,
        code="first",
        points_per_euro="0",
        fixed_points=500,
        conditions=[{"field": "first_purchase", "op": "is_true"}],
    )
    member = MemberFactory(programme=programme)
    # A sign-up earn without an amount does not count as a purchase.
    make_rule(programme, code="welcome", event_type="sign_up", points_per_euro="0", fixed_points=20)
    event_record(
        actor=None,
        programme=programme,
        member=member,
        event_type="sign_up",
        source="loyalty",
        external_id="s",
    )
    assert points_of(spend(member, "10")) == 510
    assert points_of(spend(member, "10")) == 10


def test_event_record_hot_path_queries(django_assert_max_num_queries) -> None:
    programme = ProgrammeFactory()
    make_rule(programme, code="base", cap_per_member_per_day=10_000)
    member = MemberFactory(programme=programme)
    spend(member, "1.00")  # the day's usage row exists from now on
    member = type(member).objects.select_related("tier", "programme").get(pk=member.pk)
    # The ledger's posting (member lock, transaction, lot, entries, audit, outbox, hooks) is most of
    # the budget; this area's own part is the five queries counted below.
    with django_assert_max_num_queries(30) as captured:
        event = spend(member, "12.34", "hot-1")
    assert points_of(event) == 12
    tables = ("loyalty_loyaltyevent", "loyalty_earningrule", "loyalty_ruleusage", "loyalty_campaign")
    ours = [
        q["sql"]
        for q in captured.captured_queries
        if any(f'"{t}"' in q["sql"].split(" WHERE ")[0] for t in tables)
    ]
    assert len(ours) == 5  # replay check, rules, lock the usage row, add to it, insert the event
    with django_assert_max_num_queries(1):
        spend(member, "12.34", "hot-1")  # a replay: one query

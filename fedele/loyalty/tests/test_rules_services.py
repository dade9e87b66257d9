"""Rules as data: validation (per-field errors, nothing written), create/update (version), status
transitions, conditions on every field, and quote() — the simulator — which never writes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.utils import translation

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.loyalty.models import EarningRule
from fedele.loyalty.services.rules import (
    EarnEvent,
    quote,
    rule_create,
    rule_set_status,
    rule_update,
    rule_validate,
)
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory, standard_tiers
from fedele.loyalty.tests.rules_support import make_rule, row_counts, spend
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> object:
    # Messages are asserted in English, whatever language an earlier test left active.
    with time_machine.travel(NOW, tick=False) as traveller, translation.override("en"):
        yield traveller


def _data(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {"code": "base", "name_en": "Base", "name_it": "Base", "event_type": "spend"}
    values.update(overrides)
    return values


def _fields(data: dict[str, object], **kwargs: object) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as caught:
        rule_validate(data, **kwargs)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_rule"
    return caught.value.fields


def test_validate_cleans_and_defaults() -> None:
    programme = ProgrammeFactory(points_per_euro=Decimal("2.5000"))
    clean = rule_validate(
        _data(conditions=[{"field": "amount", "op": "gte", "value": 50}]), programme=programme
    )
    assert clean["points_per_euro"] == Decimal("2.5000")  # spend rules start from the programme's rate
    assert (clean["pending"], clean["qualifying"], clean["multiplier"], clean["fixed_points"]) == (
        True,
        True,
        1,
        0,
    )
    assert clean["conditions"] == [{"field": "amount", "op": "gte", "value": "50"}]
    signup = rule_validate(_data(event_type="sign_up", fixed_points="100"), programme=programme)
    assert (signup["points_per_euro"], signup["fixed_points"], signup["pending"]) == (0, 100, False)


def test_validate_reports_every_bad_field() -> None:
    programme = ProgrammeFactory()
    fields = _fields(
        {
            "code": "Bad Code",
            "event_type": "lottery",
            "points_per_euro": "-1",
            "fixed_points": -5,
            "multiplier": "0.5",
            "valid_from": datetime(2026, 6, 1, tzinfo=UTC),
            "valid_until": datetime(2026, 6, 1, tzinfo=UTC),
            "cap_per_member_per_day": -1,
            "cap_total": "lots",
            "campaign": "ghost",
            "qualifying": "maybe",
            "colour": "red",
        },
        programme=programme,
    )
    assert sorted(fields) == sorted(
        [
            "code",
            "name_en",
            "event_type",
            "points_per_euro",
            "fixed_points",
            "multiplier",
            "valid_until",
            "cap_per_member_per_day",
            "cap_total",
            "campaign",
            "qualifying",
            "colour",
        ]
    )
    assert fields["colour"] == ["Unknown field."]
    assert fields["valid_until"] == ["The end of validity must come after its start."]


@pytest.mark.parametrize(
    ("condition", "key", "message"),
    [
        ({"field": "colour", "op": "eq", "value": "red"}, "conditions.0.field", "Unknown field 'colour'."),
        (
            {"field": "amount", "op": "contains", "value": "1"},
            "conditions.0.op",
            "Operator 'contains' does not apply to amount.",
        ),
        ({"field": "amount", "op": "gte", "value": "lots"}, "conditions.0.value", "Enter a number."),
        ({"field": "segment", "op": "eq", "value": "vip"}, "conditions.0.value", "Unknown segment 'vip'."),
        (
            {"field": "tier", "op": "in", "value": ["gold", "platinum"]},
            "conditions.0.value",
            "Unknown tier 'platinum'.",
        ),
        (
            {"field": "channel", "op": "in", "value": []},
            "conditions.0.value",
            "Enter a list of 1 to 100 values.",
        ),
        (
            {"field": "first_purchase", "op": "is_true", "value": "yes please"},
            "conditions.0.value",
            "This operator takes no value.",
        ),
        (
            {"field": "attributes.bad name", "op": "eq", "value": 1},
            "conditions.0.field",
            "Unknown field 'attributes.bad name'.",
        ),
        ({"field": "channel", "op": "eq"}, "conditions.0.value", "Enter a value."),
        (
            {"field": "channel", "op": "eq", "value": "web", "extra": 1},
            "conditions.0",
            "Unknown keys: extra.",
        ),
        ("channel = web", "conditions.0", "Each condition is an object with field, op and value."),
    ],
)
def test_conditions_are_checked(condition: object, key: str, message: str) -> None:
    programme = ProgrammeFactory()
    standard_tiers(programme)
    fields = _fields(_data(conditions=[condition]), programme=programme)
    assert fields == {key: [message]}


def test_bonus_rule_awards_nothing_of_its_own_and_activation_needs_an_award() -> None:
    programme = ProgrammeFactory()
    fields = _fields(_data(multiplier="2", points_per_euro="1"), programme=programme)
    assert list(fields) == ["multiplier"]
    fields = _fields(_data(points_per_euro="0", status="active"), programme=programme)
    assert fields == {
        "points_per_euro": [
            "An active rule must award points: set points per euro, fixed points or a multiplier."
        ]
    }
    fields = _fields(
        _data(status="active", valid_until=datetime(2026, 5, 4, 8, 0, tzinfo=UTC)), programme=programme
    )
    assert fields == {"valid_until": ["The rule's validity has already ended."]}


def test_create_update_bump_version_and_audit() -> None:
    programme = ProgrammeFactory(timezone="Europe/Rome")
    manager = actor_for(user_with_roles("loyalty_manager"))
    rule = rule_create(
        actor=manager,
        programme=programme,
        data=_data(points_per_euro="1", valid_from=datetime(2026, 6, 1, 0, 0)),  # naive: Rome time
    )
    assert (rule.status, rule.version) == ("draft", 1)
    assert rule.valid_from == datetime(2026, 5, 31, 22, 0, tzinfo=UTC)
    assert AuditLog.objects.filter(action="loyalty.rule_created", object_id=str(rule.public_id)).count() == 1
    rule_update(actor=manager, rule=rule, changes={"points_per_euro": "2.5", "cap_total": 1000})
    rule.refresh_from_db()
    assert (rule.points_per_euro, rule.cap_total, rule.version) == (Decimal("2.5"), 1000, 2)
    log = AuditLog.objects.get(action="loyalty.rule_updated")
    assert log.before == {"cap_total": None, "points_per_euro": "1.0000", "version": 1}
    assert log.after == {"cap_total": 1000, "points_per_euro": "2.5", "version": 2}
    # Nothing changed: no new version, no audit row.
    rule_update(actor=manager, rule=rule, changes={"points_per_euro": "2.50"})
    rule.refresh_from_db()
    assert rule.version == 2 and AuditLog.objects.filter(action="loyalty.rule_updated").count() == 1


def test_bad_update_and_duplicate_code_change_nothing() -> None:
    programme = ProgrammeFactory()
    first = make_rule(programme, code="first")
    make_rule(programme, code="second")
    with pytest.raises(ValidationFailed) as caught:
        rule_update(actor=None, rule=first, changes={"code": "second", "points_per_euro": "x"})
    assert sorted(caught.value.fields) == ["code", "points_per_euro"]
    first.refresh_from_db()
    assert (first.code, first.points_per_euro, first.version) == ("first", Decimal("1"), 1)
    with pytest.raises(ValidationFailed):
        rule_create(actor=None, programme=programme, data=_data(code="first"))
    assert EarningRule.objects.count() == 2
    # The same code in another programme is fine.
    make_rule(ProgrammeFactory(), code="first")


def test_status_transitions() -> None:
    programme = ProgrammeFactory()
    rule = rule_create(actor=None, programme=programme, data=_data(points_per_euro="0"))
    with pytest.raises(ValidationFailed):
        rule_set_status(actor=None, rule=rule, status="active")  # awards nothing yet
    rule.refresh_from_db()
    assert rule.status == "draft"
    with pytest.raises(Conflict):
        rule_set_status(actor=None, rule=rule, status="paused")
    rule_update(actor=None, rule=rule, changes={"fixed_points": 5})
    assert rule_set_status(actor=None, rule=rule, status="active").status == "active"
    with pytest.raises(ValidationFailed):
        rule_update(actor=None, rule=rule, changes={"fixed_points": 0})  # an active rule stays valid
    assert rule_set_status(actor=None, rule=rule, status="paused").status == "paused"
    assert rule_set_status(actor=None, rule=rule, status="archived").status == "archived"
    with pytest.raises(Conflict):
        rule_set_status(actor=None, rule=rule, status="active")
    with pytest.raises(Conflict):
        rule_update(actor=None, rule=rule, changes={"fixed_points": 9})
    assert [
        row.after for row in AuditLog.objects.filter(action="loyalty.rule_status_changed").order_by("id")
    ] == [
        {"status": "active"},
        {"status": "paused"},
        {"status": "archived"},
    ]


def test_only_managers_configure_rules() -> None:
    programme = ProgrammeFactory()
    agent = actor_for(user_with_roles("agent"))
    with pytest.raises(PermissionDenied):
        rule_create(actor=agent, programme=programme, data=_data())
    assert EarningRule.objects.count() == 0


def _quote(programme, member, **event: object):
    values: dict[str, object] = {"event_type": "spend", "amount_eur": Decimal("100.00")}
    values.update(event)
    return quote(programme=programme, member=member, event=EarnEvent(**values))  # type: ignore[arg-type]


def test_conditions_on_every_field() -> None:
    programme = ProgrammeFactory()
    tiers = standard_tiers(programme)
    customer = CustomerFactory(segment="small_business")
    member = MemberFactory(programme=programme, customer=customer, tier=tiers[1])
    cases = {
        "segment": [{"field": "segment", "op": "in", "value": ["small_business", "enterprise"]}],
        "not-consumer": [{"field": "segment", "op": "ne", "value": "consumer"}],
        "category": [{"field": "product_category", "op": "contains", "value": "Shoes"}],
        "no-food": [{"field": "product_category", "op": "not_in", "value": ["food"]}],
        "silver-up": [{"field": "tier", "op": "in", "value": ["silver", "gold"]}],
        "store": [{"field": "channel", "op": "eq", "value": "store"}],
        "big": [
            {"field": "amount", "op": "gt", "value": "99.99"},
            {"field": "amount", "op": "lte", "value": 100},
        ],
        "first": [{"field": "first_purchase", "op": "is_true"}],
        "colour": [{"field": "attributes.colour", "op": "in", "value": ["red", "blue"]}],
        "size": [{"field": "attributes.size", "op": "gte", "value": 42}],
        "promo": [{"field": "attributes.promo", "op": "is_true"}],
        "sku": [{"field": "attributes.sku", "op": "contains", "value": "X-"}],
        "missing": [{"field": "attributes.absent", "op": "eq", "value": "x"}],
        "absent-ne": [{"field": "attributes.absent", "op": "ne", "value": "x"}],
        "web": [{"field": "channel", "op": "eq", "value": "web"}],
    }
    for position, (code, conditions) in enumerate(cases.items()):
        make_rule(
            programme,
            code=code,
            points_per_euro="0",
            fixed_points=1,
            conditions=conditions,
            position=position,
        )
    result = _quote(
        programme,
        member,
        channel="Store",
        product_categories=("shoes", "socks"),
        attributes={"colour": "Red", "size": "43", "promo": "yes", "sku": "AX-9"},
    )
    matched = {line.rule for line in result.lines if line.matched}
    assert matched == set(cases) - {"missing", "web"}
    assert result.points == len(cases) - 2
    failed = {line.rule: line.detail for line in result.lines if not line.matched}
    assert failed == {"missing": "attributes.absent eq x", "web": "channel eq web"}


def test_quote_writes_nothing_and_shows_cap_trimming() -> None:
    programme = ProgrammeFactory()
    make_rule(programme, code="base", cap_per_member_per_day=120)
    member = MemberFactory(programme=programme)
    spend(member, "100.00")
    before = row_counts()
    result = _quote(programme, member, amount_eur=Decimal("50.00"))
    assert (result.points, result.lines[0].uncapped_points, result.lines[0].capped_by) == (
        20,
        50,
        "per_member_per_day",
    )
    # Without a member: no member caps, no first-purchase history, no tier.
    anonymous = _quote(programme, None, amount_eur=Decimal("50.00"))
    assert (anonymous.points, anonymous.tier_multiplier) == (50, Decimal(1))
    assert row_counts() == before


def test_quote_with_drafts_and_with_given_rules() -> None:
    programme = ProgrammeFactory()
    make_rule(programme, code="active")
    draft = make_rule(programme, code="draft", status="draft", points_per_euro="0", fixed_points=7)
    member = MemberFactory(programme=programme)
    assert _quote(programme, member).points == 100
    with_drafts = quote(
        programme=programme, member=member, event=EarnEvent("spend", Decimal("100")), include_drafts=True
    )
    assert [(line.rule, line.points) for line in with_drafts.lines] == [("active", 100), ("draft", 7)]
    # An unsaved rule (the editor's preview) evaluated alone.
    unsaved = EarningRule(
        programme=programme, code="preview", event_type="spend", status="active", points_per_euro=Decimal("3")
    )
    alone = quote(
        programme=programme, member=member, event=EarnEvent("spend", Decimal("10")), rules=[unsaved]
    )
    assert (alone.points, alone.lines[0].rule) == (30, "preview")
    only_draft = quote(
        programme=programme, member=member, event=EarnEvent("spend", Decimal("10")), rules=[draft]
    )
    assert (only_draft.points, only_draft.lines[0].skipped) == (0, "status")


def test_validity_window_and_custom_events() -> None:
    programme = ProgrammeFactory()
    with time_machine.travel(datetime(2026, 5, 1, tzinfo=UTC), tick=False):
        make_rule(
            programme,
            code="may",
            valid_from=datetime(2026, 5, 1, tzinfo=UTC),
            valid_until=datetime(2026, 5, 4, 8, 30, tzinfo=UTC),
        )
    make_rule(
        programme,
        code="app",
        event_type="custom",
        custom_event="app_login",
        points_per_euro="0",
        fixed_points=5,
    )
    make_rule(programme, code="any-custom", event_type="custom", points_per_euro="0", fixed_points=1)
    member = MemberFactory(programme=programme)
    result = _quote(programme, member)
    assert (result.points, result.lines[0].skipped) == (0, "expired")  # valid_until is exclusive
    earlier = _quote(programme, member, occurred_at=datetime(2026, 5, 4, 8, 29, 59, tzinfo=UTC))
    assert earlier.points == 100
    login = _quote(programme, member, event_type="custom", custom_event="app_login", amount_eur=None)
    assert [(line.rule, line.points) for line in login.lines] == [("app", 5), ("any-custom", 1)]
    other = _quote(programme, member, event_type="custom", custom_event="newsletter", amount_eur=None)
    assert [(line.rule, line.points) for line in other.lines] == [("any-custom", 1)]

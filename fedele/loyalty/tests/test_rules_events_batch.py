"""events_record_many gives every event exactly what event_record_with_status gives it one by one.

Two programmes are set up alike (rules with caps per member per day and in total, a bonus campaign with
a holdout group and a budget, a first-purchase bonus, tiers with a multiplier, pending points). The same
stream of events goes one by one into the first and as one call into the second; points per event,
reasons, balances, lots, cap usage, campaign groups, audit rows and outbox events must be the same.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.utils import translation

from fedele.loyalty.models import (
    Campaign,
    CampaignAssignment,
    LoyaltyEvent,
    Member,
    PointsLot,
    PointsTransaction,
    Programme,
    RuleUsage,
)
from fedele.loyalty.services.campaigns import campaign_create, campaign_group, campaign_set_status
from fedele.loyalty.services.ledger_jobs import ledger_check
from fedele.loyalty.services.rules import event_record_with_status
from fedele.loyalty.services.rules_events_batch import EventRequest, events_record_many
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory, standard_tiers
from fedele.loyalty.tests.rules_support import make_rule, row_counts
from fedele.shared.errors import ApplicationError
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> object:
    with time_machine.travel(NOW, tick=False) as traveller, translation.override("en"):
        yield traveller


def _programme(code: str) -> tuple[Programme, list[Member]]:
    programme = ProgrammeFactory(code=code, pending_days=14)
    standard_tiers(programme)
    make_rule(programme, code="base", cap_per_member_per_day=150)
    make_rule(programme, code="fixed", points_per_euro="0", fixed_points=5, cap_total=40, pending=True)
    make_rule(
        programme,
        code="first",
        points_per_euro="0",
        fixed_points=500,
        conditions=[{"field": "first_purchase", "op": "is_true"}],
    )
    campaign = campaign_create(
        actor=None,
        programme=programme,
        data={
            "code": "spring",
            "name_en": "Spring",
            "starts_at": datetime(2026, 3, 1, 0, 0),
            "ends_at": datetime(2026, 3, 15, 0, 0),
            "holdout_percent": 30,
            "budget_points": 900,
        },
    )
    campaign_set_status(actor=None, campaign=campaign, status="active")
    make_rule(programme, code="double", points_per_euro="0", multiplier="2", campaign="spring")
    make_rule(programme, code="welcome", event_type="sign_up", points_per_euro="0", fixed_points=20)
    # Three members in the holdout group and three in treatment (the group is drawn from a hash).
    pool = [MemberFactory(programme=programme) for _ in range(40)]
    holdout = [m for m in pool if campaign_group(campaign, m) == "holdout"][:3]
    treatment = [m for m in pool if campaign_group(campaign, m) == "treatment"][:3]
    members = [treatment[0], holdout[0], treatment[1], holdout[1], treatment[2], holdout[2]]
    return programme, members


def _twins(programme: Programme, like: Programme, members: list[Member]) -> list[Member]:
    """Members of ``programme`` in the same campaign groups as ``members`` of ``like`` (the holdout
    group is drawn from a hash of the member, so the two halves need members drawn alike)."""
    mine, theirs = programme_campaign(programme), programme_campaign(like)
    pool = [MemberFactory(programme=programme) for _ in range(40)]
    twins = []
    for member in members:
        twin = next(m for m in pool if campaign_group(mine, m) == campaign_group(theirs, member))
        pool.remove(twin)
        twins.append(twin)
    return twins


def programme_campaign(programme: Programme) -> Campaign:
    return Campaign.objects.get(programme=programme, code="spring")


# (member index, event type, external id, amount): the same member several times, a replayed id,
# a sign-up, a zero amount and caps that run out part-way.
STREAM: list[tuple[int, str, str, str | None]] = [
    (0, "spend", "a", "120.00"),
    (1, "spend", "b", "99.99"),
    (0, "spend", "c", "80.00"),
    (2, "sign_up", "d", None),
    (2, "spend", "e", "10.00"),
    (3, "spend", "f", "0.00"),
    (1, "spend", "b", "99.99"),  # the same external id again: a replay
    (4, "spend", "g", "250.00"),
    (5, "spend", "h", "33.33"),
    (4, "spend", "i", "40.00"),
    (0, "spend", "j", "-5.00"),  # refused: negative amount
    (5, "spend", "k", None),  # refused: a purchase needs its amount
]


def _requests(members: list[Member]) -> list[EventRequest]:
    return [
        EventRequest(
            member=members[index],
            event_type=kind,
            external_id=external_id,
            source="api",
            amount_eur=Decimal(amount) if amount is not None else None,
        )
        for index, kind, external_id, amount in STREAM
    ]


def _outcome(event: LoyaltyEvent | None, created: bool, error: ApplicationError | None) -> Any:
    if error is not None:
        return ("error", error.code, error.fields)
    assert event is not None
    lines = [{k: v for k, v in line.items() if k != "rule_id"} for line in event.result["lines"]]
    return ("event", created, event.external_id, {**event.result, "lines": lines})


def _state(programme: Programme, members: list[Member]) -> dict[str, Any]:
    for member in members:
        member.refresh_from_db()
    return {
        "balances": [
            (m.available, m.pending, m.lifetime_earned, m.tier.code if m.tier else "") for m in members
        ],
        "lots": sorted(
            (members.index(lot.member), lot.points, lot.remaining, lot.state, str(lot.expires_on))
            for lot in PointsLot.objects.filter(programme=programme).select_related("member")
        ),
        "usage": sorted(
            (row.rule.code, members.index(row.member) if row.member else -1, str(row.day), row.points)
            for row in RuleUsage.objects.filter(rule__programme=programme).select_related("rule", "member")
        ),
        "groups": sorted(
            (members.index(row.member), row.group)
            for row in CampaignAssignment.objects.filter(campaign__programme=programme).select_related(
                "member"
            )
        ),
        "transactions": PointsTransaction.objects.filter(programme=programme).count(),
        "events": LoyaltyEvent.objects.filter(programme=programme).count(),
    }


def test_a_batch_of_events_gets_exactly_what_one_by_one_gives() -> None:
    single_programme, single_members = _programme("one")
    batch_programme, _ = _programme("many")
    batch_members = _twins(batch_programme, single_programme, single_members)
    groups = {campaign_group(programme_campaign(single_programme), m) for m in single_members}
    single = []
    for request in _requests(single_members):
        try:
            event, created = event_record_with_status(
                actor=None,
                programme=single_programme,
                member=request.member,
                event_type=request.event_type,
                source=request.source,
                external_id=request.external_id,
                amount_eur=request.amount_eur,
            )
            single.append(_outcome(event, created, None))
        except ApplicationError as error:
            single.append(_outcome(None, False, error))
    batch = [
        _outcome(o.event, o.created, o.error)
        for o in events_record_many(actor=None, programme=batch_programme, requests=_requests(batch_members))
    ]
    assert batch == single
    assert [row[0] for row in batch].count("error") == 2
    assert groups == {"holdout", "treatment"}
    assert _state(batch_programme, batch_members) == _state(single_programme, single_members)
    assert _trail(batch_programme, batch_members) == _trail(single_programme, single_members)
    # The capped rules ran out part-way with exact figures: the fixed bonus's 40 across everyone.
    fixed = RuleUsage.objects.get(rule__programme=batch_programme, rule__code="fixed", member=None)
    assert fixed.points == 40
    assert ledger_check(programme=batch_programme) == []


def _trail(programme: Programme, members: list[Member]) -> dict[str, Any]:
    """The audit rows of the earns and the outbox events about the members, by kind."""
    transactions = [
        str(pk)
        for pk in PointsTransaction.objects.filter(programme=programme).values_list("public_id", flat=True)
    ]
    outbox = OutboxEvent.objects.filter(aggregate_id__in=[str(m.public_id) for m in members])
    return {
        "audit": sorted(AuditLog.objects.filter(object_id__in=transactions).values_list("action", flat=True)),
        "outbox": sorted(outbox.values_list("event_type", flat=True)),
    }


def test_bad_events_get_their_error_and_the_rest_are_recorded() -> None:
    programme, members = _programme("mixed")
    before = row_counts()
    outcomes = events_record_many(
        actor=None,
        programme=programme,
        requests=[
            EventRequest(member=members[0], event_type="spend", external_id="x", amount_eur=Decimal("10")),
            EventRequest(member=members[1], event_type="teleport", external_id="y"),
            EventRequest(member=members[2], event_type="spend", external_id="", amount_eur=Decimal("1")),
        ],
    )
    assert [o.error.code if o.error else None for o in outcomes] == [
        None,
        "invalid_event_type",
        "external_id_required",
    ]
    assert outcomes[0].created is True and outcomes[0].event is not None
    after = row_counts()
    assert after["events"] - before["events"] == 1
    assert after["transactions"] - before["transactions"] == 1


def test_a_round_that_fails_as_a_whole_is_recorded_one_by_one() -> None:
    programme, members = _programme("fallback")
    members[1].status = "suspended"
    Member.objects.filter(pk=members[1].pk).update(status="suspended")
    stale = Member.objects.get(pk=members[1].pk)
    stale.status = "active"  # the caller's copy still says active: the ledger's locked row refuses
    outcomes = events_record_many(
        actor=None,
        programme=programme,
        requests=[
            EventRequest(member=members[0], event_type="spend", external_id="p", amount_eur=Decimal("10")),
            EventRequest(member=stale, event_type="spend", external_id="q", amount_eur=Decimal("10")),
        ],
    )
    assert outcomes[0].created is True and outcomes[0].event is not None
    assert outcomes[0].event.result["points"] == 10 + 5 + 500 + 515  # base, fixed, first purchase, double
    assert outcomes[1].error is not None and outcomes[1].error.code == "member_not_active"
    assert LoyaltyEvent.objects.filter(programme=programme).count() == 1
    assert ledger_check(programme=programme) == []


def test_members_find_by_card_and_public_id_with_tiers() -> None:
    from fedele.loyalty.selectors.rules import members_find

    programme, members = _programme("find")
    _other, strangers = _programme("other")
    found = members_find(
        programme,
        [members[0].card_number, f" {members[1].public_id} ", strangers[0].card_number, "", "nope"],
    )
    assert sorted(found) == sorted([members[0].card_number, str(members[1].public_id)])
    assert found[members[0].card_number].pk == members[0].pk
    assert found[str(members[1].public_id)].pk == members[1].pk
    member = members[0]
    member.tier = programme.tiers.order_by("rank").first()
    member.save()
    again = members_find(programme, [member.card_number])[member.card_number]
    assert again.tier is not None and again.tier.code == member.tier.code == "bronze"
    assert members_find(programme, []) == {}

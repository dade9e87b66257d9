"""Many inbound events at once: ``events_record_many``, the group commit behind the earn endpoint.

Each event gets exactly the outcome ``event_record_with_status`` would give it (the same checks, rules,
caps, campaign groups, ledger rows, audit rows and outbox events), but a round of events shares one
database transaction and a handful of multi-row statements:

- the replay check is one query for the whole round;
- the rules are read once per event type;
- the cap and budget rows of every event are locked together (in one order, as the single path does)
  and each event's caps are applied in arrival order against what the events before it took;
- the points are posted through ``points_earn_many`` (one COPY per ledger table);
- the events are written with one COPY.

A round is the longest run of events, in arrival order, with at most one event per member and per
(source, external id): a member's second event must see the first one's points (tier, first purchase,
daily caps), so it starts the next round, each round in its own transaction. Outcomes are per event:
one bad event gets its error and the others are recorded. When a round's transaction fails as a whole
(a concurrent request recorded the same event, a member became inactive, a deadlock), every event of
the round is recorded again one by one through ``event_record_with_status``, which handles each case
exactly.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection, transaction

from fedele.accounts.contracts import Actor
from fedele.loyalty.models import (
    Campaign,
    CampaignAssignment,
    EarningRule,
    LoyaltyEvent,
    Member,
    PointsTransaction,
    Programme,
    RuleUsage,
)
from fedele.loyalty.selectors import config_cache
from fedele.loyalty.selectors import rules as selectors
from fedele.loyalty.services.ledger_batch import EarnItem, points_earn_many
from fedele.loyalty.services.ledger_core import check_member_active, check_programme_active
from fedele.loyalty.services.rules_engine import EarnEvent, Evaluation, Quote, evaluate, finalise, keys_of
from fedele.loyalty.services.rules_events import (
    CleanEvent,
    _main_campaign,
    _result,
    clean_event,
    event_record_with_status,
    idempotency_key,
)
from fedele.shared import clock
from fedele.shared.bulk import BulkTable, text_array
from fedele.shared.errors import ApplicationError

_EVENTS = BulkTable(LoyaltyEvent)
MAX_EVENTS = 1_000


@dataclass(frozen=True, slots=True)
class EventRequest:
    """One inbound event, as ``event_record`` takes it (the partner-less API form)."""

    member: Member
    event_type: str
    external_id: str
    source: str = "api"
    amount_eur: Decimal | None = None
    custom_event: str = ""
    attributes: Mapping[str, Any] | None = None
    channel: str = ""
    product_categories: Iterable[str] = ()
    reference: str = ""
    occurred_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EventOutcome:
    """The recorded event and whether it is new (False: a replay), or the error that refused it."""

    event: LoyaltyEvent | None = None
    created: bool = False
    error: ApplicationError | None = None


@dataclass(slots=True)
class _Pending:
    index: int
    request: EventRequest
    clean: CleanEvent
    evaluation: Evaluation | None = None
    quote: Quote | None = None


def events_record_many(
    *, actor: Actor | None, programme: Programme, requests: Sequence[EventRequest]
) -> list[EventOutcome]:
    """Record every event of ``requests`` (one programme); one outcome per request, in order."""
    if len(requests) > MAX_EVENTS:
        raise ValueError(f"At most {MAX_EVENTS} events at once.")
    outcomes: list[EventOutcome | None] = [None] * len(requests)
    waiting: list[_Pending] = []
    for index, request in enumerate(requests):
        try:
            clean = clean_event(actor=actor, programme=programme, **_fields(request))
        except ApplicationError as error:
            outcomes[index] = EventOutcome(error=error)
            continue
        waiting.append(_Pending(index, request, clean))
    while waiting:
        round_, waiting = _next_round(waiting)
        for pending, outcome in zip(round_, _record_round(actor, programme, round_), strict=True):
            outcomes[pending.index] = outcome
    return [outcome if outcome is not None else EventOutcome() for outcome in outcomes]


def _fields(request: EventRequest) -> dict[str, Any]:
    """The request as the one-by-one services take it."""
    return {item.name: getattr(request, item.name) for item in fields(request)}


def _next_round(waiting: list[_Pending]) -> tuple[list[_Pending], list[_Pending]]:
    """The longest run of events, in arrival order, with no member and no (source, external id)
    twice; the rest wait. Keeping the order keeps the caps across members taken in arrival order."""
    members: set[int] = set()
    keys: set[tuple[str, str]] = set()
    for position, pending in enumerate(waiting):
        key = (pending.clean.source, pending.clean.external_id)
        if pending.request.member.pk in members or key in keys:
            return waiting[:position], waiting[position:]
        members.add(pending.request.member.pk)
        keys.add(key)
    return waiting, []


def _record_round(actor: Actor | None, programme: Programme, round_: list[_Pending]) -> list[EventOutcome]:
    outcomes: dict[int, EventOutcome] = {}
    earlier = _existing_many(programme, [(p.clean.source, p.clean.external_id) for p in round_])
    fresh: list[_Pending] = []
    for pending in round_:
        found = earlier.get((pending.clean.source, pending.clean.external_id))
        if found is not None:
            outcomes[pending.index] = EventOutcome(event=found, created=False)
            continue
        try:
            check_programme_active(programme)
            check_member_active(pending.request.member)
        except ApplicationError as error:
            outcomes[pending.index] = EventOutcome(error=error)
            continue
        fresh.append(pending)
    if fresh:
        try:
            outcomes.update(_post_round(actor, programme, fresh))
        except (ApplicationError, DatabaseError):
            # The round as a whole failed (a racing request, a changed member, a deadlock): nothing of
            # it was written. Each event again on its own, where every such case has its exact answer.
            for pending in fresh:
                outcomes[pending.index] = _record_one(actor, programme, pending.request)
    return [outcomes[pending.index] for pending in round_]


def _record_one(actor: Actor | None, programme: Programme, request: EventRequest) -> EventOutcome:
    try:
        event, created = event_record_with_status(actor=actor, programme=programme, **_fields(request))
    except ApplicationError as error:
        return EventOutcome(error=error)
    return EventOutcome(event=event, created=created)


def _existing_many(programme: Programme, keys: list[tuple[str, str]]) -> dict[tuple[str, str], LoyaltyEvent]:
    """The events already recorded under these keys: one small statement, then the rows only when a
    key was seen before (replays are rare on the hot path).

    The statement gives every key's source and external id, so each key is one probe of the unique
    (programme, source, external id) index: without the source the index can only be read from the
    programme's first entry on (every event of the programme: 10 ms at 22,000 events, growing)."""
    if not keys:
        return {}
    wanted = sorted(set(keys))
    table = LoyaltyEvent._meta.db_table
    if connection.vendor == "postgresql":
        sql = (
            "SELECT k.source, k.external_id FROM unnest(%s::text[], %s::text[]) AS k(source, external_id) "  # noqa: S608
            f"WHERE EXISTS (SELECT 1 FROM {table} e WHERE e.programme_id = %s "
            "AND e.source = k.source AND e.external_id = k.external_id)"
        )
        params: list[Any] = [
            text_array([source for source, _ in wanted]),
            text_array([external_id for _, external_id in wanted]),
            programme.pk,
        ]
    else:
        pairs = " OR ".join(["(source = %s AND external_id = %s)"] * len(wanted))
        sql = f"SELECT source, external_id FROM {table} WHERE programme_id = %s AND ({pairs})"  # noqa: S608
        params = [programme.pk, *(value for key in wanted for value in key)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        seen = {(str(source), str(external_id)) for source, external_id in cursor.fetchall()} & set(wanted)
    if not seen:
        return {}
    rows = LoyaltyEvent.objects.select_related("transaction").filter(
        programme=programme,
        source__in={source for source, _ in seen},
        external_id__in={external_id for _, external_id in seen},
    )
    return {(row.source, row.external_id): row for row in rows if (row.source, row.external_id) in seen}


def _evaluate(programme: Programme, fresh: list[_Pending]) -> None:
    rules: dict[tuple[str, str], list[EarningRule]] = {}
    for pending in fresh:
        clean, member = pending.clean, pending.request.member
        if not Member.programme.is_cached(member):
            member.programme = programme
        wanted = (clean.event_type, clean.custom_event)
        if wanted not in rules:
            rules[wanted] = config_cache.rules_for_event(
                programme, clean.event_type, custom_event=clean.custom_event
            )
        pending.evaluation = evaluate(
            programme=programme,
            member=member,
            event=EarnEvent(
                event_type=clean.event_type,
                amount_eur=clean.amount,
                custom_event=clean.custom_event,
                channel=clean.channel,
                product_categories=clean.categories,
                partner_code="",
                attributes=clean.attributes,
                occurred_at=clean.moment,
            ),
            rules=rules[wanted],
        )


def _post_round(actor: Actor | None, programme: Programme, fresh: list[_Pending]) -> dict[int, EventOutcome]:
    _evaluate(programme, fresh)
    evaluations = [pending.evaluation for pending in fresh if pending.evaluation is not None]
    now = clock.now()
    with transaction.atomic():
        budget_ids = sorted({pk for evaluation in evaluations for pk in evaluation.budget_campaigns()})
        if budget_ids:
            # The campaign rows are the budgets' locks (as in the single path).
            list(
                Campaign.objects.select_for_update()
                .filter(pk__in=budget_ids)
                .order_by("pk")
                .values_list("pk")
            )
        rows = selectors.usage_locked(key for evaluation in evaluations for key in evaluation.usage_keys())
        budget = selectors.campaign_budget_used(budget_ids)
        changed: dict[int, RuleUsage] = {}
        assignments: list[CampaignAssignment] = []
        for pending in fresh:
            evaluation = pending.evaluation
            assert evaluation is not None
            member = pending.request.member
            # Each event's caps against what the events before it in the round took.
            quote = finalise(evaluation, {key: row.points for key, row in rows.items()}, budget)
            pending.quote = quote
            for candidate, line in zip(evaluation.candidates, quote.lines, strict=True):
                if line.points <= 0:
                    continue
                for key in keys_of(candidate.rule, member, evaluation.day):
                    row = rows[key]
                    row.points += line.points
                    changed[row.pk] = row
                campaign = candidate.rule.campaign if candidate.rule.campaign_id is not None else None
                if campaign is not None and campaign.pk in budget:
                    budget[campaign.pk] += line.points
            assignments.extend(
                CampaignAssignment(campaign=campaign, member=member, group=group, assigned_at=now)
                for campaign, group in evaluation.assignments.values()
            )
        if changed:
            RuleUsage.objects.bulk_update(list(changed.values()), ["points"])
        if assignments:
            CampaignAssignment.objects.bulk_create(assignments, ignore_conflicts=True)
        public_ids = {pending.index: uuid.uuid4() for pending in fresh}
        posted = _post_points(actor, fresh, public_ids)
        return _write_events(programme, fresh, public_ids, posted, now)


def _post_points(
    actor: Actor | None, fresh: list[_Pending], public_ids: dict[int, uuid.UUID]
) -> dict[int, PointsTransaction]:
    """The earns of the round, one ``points_earn_many`` per source; by the event's index."""
    by_source: dict[str, list[_Pending]] = defaultdict(list)
    for pending in fresh:
        assert pending.quote is not None
        if pending.quote.points > 0:
            by_source[pending.clean.source].append(pending)
    posted: dict[int, PointsTransaction] = {}
    for source, group in by_source.items():
        items = []
        for pending in group:
            quote, evaluation, clean = pending.quote, pending.evaluation, pending.clean
            assert quote is not None and evaluation is not None
            campaign = _main_campaign(evaluation, quote)
            items.append(
                EarnItem(
                    member=pending.request.member,
                    points=quote.points,
                    idempotency_key=idempotency_key(clean.source, clean.external_id),
                    reference=clean.reference,
                    amount_eur=clean.amount if evaluation.purchase else None,
                    qualifying_points=quote.qualifying_points,
                    qualifying_count=1 if evaluation.purchase and quote.qualifying_points > 0 else 0,
                    occurred_at=evaluation.moment,
                    pending_days=quote.pending_days,
                    campaign_id=campaign.pk if campaign is not None else None,
                    details={"event_id": str(public_ids[pending.index]), **quote.as_json()},
                )
            )
        for pending, txn in zip(
            # No savepoint: a failure rolls back the round's whole transaction (``_record_round``).
            group,
            points_earn_many(actor=actor, items=items, source=source, savepoint=False),
            strict=True,
        ):
            posted[pending.index] = txn
    return posted


def _write_events(
    programme: Programme,
    fresh: list[_Pending],
    public_ids: dict[int, uuid.UUID],
    posted: dict[int, PointsTransaction],
    now: datetime,
) -> dict[int, EventOutcome]:
    rows: list[dict[str, Any]] = []
    events: list[LoyaltyEvent] = []
    for pending in fresh:
        clean, quote = pending.clean, pending.quote
        assert quote is not None
        txn = posted.get(pending.index)
        result = _result(
            quote, channel=clean.channel, categories=clean.categories, partner=None, reference=clean.reference
        )
        values: dict[str, Any] = {
            "public_id": public_ids[pending.index],
            "programme_id": programme.pk,
            "member_id": pending.request.member.pk,
            "event_type": clean.event_type,
            "custom_event": clean.custom_event,
            "source": clean.source,
            "external_id": clean.external_id,
            "amount_eur": clean.amount,
            "attributes": json.dumps(clean.attributes, cls=DjangoJSONEncoder),
            "occurred_at": clean.moment,
            "transaction_id": txn.pk if txn is not None else None,
            "result": json.dumps(result, cls=DjangoJSONEncoder),
            "created_at": now,
        }
        rows.append(values)
        event = LoyaltyEvent(
            **{**values, "attributes": clean.attributes, "result": json.loads(values["result"])}
        )
        event.programme = programme
        event.member = pending.request.member
        event.transaction = txn
        events.append(event)
    for event, pk in zip(events, _EVENTS.insert(rows, returning_ids=True), strict=True):
        event.pk = event.id = pk
    return {
        pending.index: EventOutcome(event=event, created=True)
        for pending, event in zip(fresh, events, strict=True)
    }

"""Inbound loyalty events: ``event_record`` (the earn endpoint's hot path) and the birthday job.

``event_record`` is idempotent on (programme, source, external_id): the same event again returns the
first ``LoyaltyEvent`` and writes nothing. A new event is one database transaction: the cap usage
rows it may add to are locked (and created when missing) so the caps are re-checked against what
concurrent requests awarded, the campaign assignments are recorded, the points are posted through the
ledger's ``points_earn`` (idempotency key ``event:<source>:<external_id>``) and the ``LoyaltyEvent``
is written with the quote. An event that earns nothing is still recorded (``result["points"]`` 0 and
the reasons), without a transaction.

Queries of a new event that earns, beyond the ledger's own: one for the replay check, one for the
rules (campaigns joined), one to lock the cap rows (only for capped rules), one to add to them, one
for the campaign assignments (only for campaign rules) and the event's INSERT.
"""

from __future__ import annotations

import calendar
import hashlib
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.loyalty.models import (
    Campaign,
    CampaignAssignment,
    EventType,
    LoyaltyEvent,
    Member,
    MemberStatus,
    Partner,
    Programme,
    ProgrammeStatus,
    RuleUsage,
)
from fedele.loyalty.selectors import rules as selectors
from fedele.loyalty.services.ledger import points_earn
from fedele.loyalty.services.ledger_core import (
    authorise_for_member,
    check_amount,
    check_member_active,
    check_partner,
    check_programme_active,
    check_text,
    partner_price,
)
from fedele.loyalty.services.rules_engine import (
    ATTRIBUTE_NAME,
    PURCHASE_EVENTS,
    EarnEvent,
    Evaluation,
    Quote,
    evaluate,
    finalise,
    keys_of,
)
from fedele.shared import clock
from fedele.shared.audit import jsonable
from fedele.shared.errors import ApplicationError, ValidationFailed

logger = logging.getLogger(__name__)

SOURCE_MAX = 24
EXTERNAL_ID_MAX = 120
REFERENCE_MAX = 80
CHANNEL_MAX = 40
CATEGORY_MAX = 60
CATEGORIES_MAX = 50
ATTRIBUTES_MAX = 50
ATTRIBUTE_VALUES_MAX = 100
ATTRIBUTE_TEXT_MAX = 200
CUSTOM_EVENT_MAX = 60
KEY_MAX = 100  # the ledger's idempotency key limit
FUTURE_TOLERANCE = timedelta(minutes=5)
OLDEST_EVENT = timedelta(days=365)


def _invalid(field: str, message: str, code: str | None = None) -> ValidationFailed:
    return ValidationFailed(message, code=code or f"invalid_{field}", fields={field: message})


def idempotency_key(source: str, external_id: str) -> str:
    """``event:<source>:<external_id>``; hashed when longer than the ledger accepts."""
    key = f"event:{source}:{external_id}"
    if len(key) <= KEY_MAX:
        return key
    return f"event:{source}:sha256:{hashlib.sha256(external_id.encode()).hexdigest()}"[:KEY_MAX]


def _clean_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    if attributes is None:
        return {}
    if not isinstance(attributes, Mapping) or len(attributes) > ATTRIBUTES_MAX:
        raise _invalid("attributes", _("Attributes are an object of at most 50 names."))
    clean: dict[str, Any] = {}
    for name, value in attributes.items():
        if not isinstance(name, str) or not ATTRIBUTE_NAME.match(name):
            raise _invalid(
                "attributes", _("Attribute names use 1-60 letters, digits, hyphens or underscores.")
            )
        items = value if isinstance(value, list) else [value]
        if len(items) > ATTRIBUTE_VALUES_MAX:
            raise _invalid("attributes", _("An attribute list may have at most 100 values."))
        for item in items:
            if item is not None and not isinstance(item, (str, int, float, bool, Decimal)):
                raise _invalid(
                    "attributes", _("Attribute values are text, numbers, true/false or lists of them.")
                )
            if isinstance(item, str) and len(item) > ATTRIBUTE_TEXT_MAX:
                raise _invalid("attributes", _("Attribute texts may have at most 200 characters."))
        clean[name] = value
    return dict(jsonable(clean))


def _clean_categories(categories: Iterable[str]) -> tuple[str, ...]:
    if isinstance(categories, str):
        categories = [categories]
    items = tuple(str(item).strip() for item in categories)
    if len(items) > CATEGORIES_MAX or any(not item or len(item) > CATEGORY_MAX for item in items):
        raise _invalid("product_categories", _("At most 50 product categories of 1-60 characters each."))
    return items


def _clean_moment(occurred_at: datetime | None, *, system: bool) -> datetime:
    now = clock.now()
    if occurred_at is None:
        return now
    if not isinstance(occurred_at, datetime) or timezone.is_naive(occurred_at):
        raise _invalid("occurred_at", _("Give the time the event occurred with its time zone."))
    if occurred_at > now + FUTURE_TOLERANCE:
        raise _invalid("occurred_at", _("The event cannot have occurred in the future."))
    if not system and occurred_at < now - OLDEST_EVENT:
        raise _invalid("occurred_at", _("Events older than one year are not accepted."))
    return occurred_at


@dataclass(frozen=True, slots=True)
class CleanEvent:
    """An inbound event's fields after the checks of ``clean_event``."""

    event_type: str
    source: str
    external_id: str
    reference: str
    channel: str
    custom_event: str
    amount: Decimal | None
    attributes: dict[str, Any]
    categories: tuple[str, ...]
    moment: datetime


def clean_event(
    *,
    actor: Actor | None,
    programme: Programme,
    member: Member,
    event_type: str,
    source: str,
    external_id: str,
    amount_eur: Decimal | None = None,
    custom_event: str = "",
    attributes: Mapping[str, Any] | None = None,
    channel: str = "",
    product_categories: Iterable[str] = (),
    partner: Partner | None = None,
    reference: str = "",
    occurred_at: datetime | None = None,
) -> CleanEvent:
    """Authorise and check an inbound event before any query; raises the first problem found."""
    authorise_for_member(actor, member, partner=partner, allow_portal=False)
    if event_type not in EventType.values:
        raise _invalid(
            "event_type", _("Choose one of: %(choices)s.") % {"choices": ", ".join(EventType.values)}
        )
    source = check_text(source, name="source", max_length=SOURCE_MAX, required=True)
    external_id = check_text(external_id, name="external_id", max_length=EXTERNAL_ID_MAX, required=True)
    reference = check_text(reference, name="reference", max_length=REFERENCE_MAX)
    channel = check_text(channel, name="channel", max_length=CHANNEL_MAX)
    custom_event = (custom_event or "").strip().lower()
    if event_type == EventType.CUSTOM:
        if not custom_event or len(custom_event) > CUSTOM_EVENT_MAX:
            raise _invalid("custom_event", _("Name the custom event (1-60 characters)."))
    elif custom_event:
        raise _invalid("custom_event", _("Only custom events carry a custom event name."))
    amount = check_amount(amount_eur, name="amount_eur")
    if event_type in PURCHASE_EVENTS and amount is None:
        raise _invalid("amount_eur", _("A purchase event needs its amount in EUR."), "amount_required")
    clean_attributes = _clean_attributes(attributes)
    categories = _clean_categories(product_categories)
    moment = _clean_moment(occurred_at, system=actor is None)
    if member.programme_id != programme.pk:
        raise _invalid("member", _("The member belongs to another programme."), "member_not_in_programme")
    check_partner(partner, programme, burn=False)
    return CleanEvent(
        event_type=event_type,
        source=source,
        external_id=external_id,
        reference=reference,
        channel=channel,
        custom_event=custom_event,
        amount=amount,
        attributes=clean_attributes,
        categories=categories,
        moment=moment,
    )


def event_record(
    *,
    actor: Actor | None,
    programme: Programme,
    member: Member,
    event_type: str,
    source: str,
    external_id: str,
    amount_eur: Decimal | None = None,
    custom_event: str = "",
    attributes: Mapping[str, Any] | None = None,
    channel: str = "",
    product_categories: Iterable[str] = (),
    partner: Partner | None = None,
    reference: str = "",
    occurred_at: datetime | None = None,
) -> LoyaltyEvent:
    """Record an inbound event and award what the active rules say (see the module docstring)."""
    event, _created = event_record_with_status(
        actor=actor,
        programme=programme,
        member=member,
        event_type=event_type,
        source=source,
        external_id=external_id,
        amount_eur=amount_eur,
        custom_event=custom_event,
        attributes=attributes,
        channel=channel,
        product_categories=product_categories,
        partner=partner,
        reference=reference,
        occurred_at=occurred_at,
    )
    return event


def event_record_with_status(
    *,
    actor: Actor | None,
    programme: Programme,
    member: Member,
    event_type: str,
    source: str,
    external_id: str,
    amount_eur: Decimal | None = None,
    custom_event: str = "",
    attributes: Mapping[str, Any] | None = None,
    channel: str = "",
    product_categories: Iterable[str] = (),
    partner: Partner | None = None,
    reference: str = "",
    occurred_at: datetime | None = None,
) -> tuple[LoyaltyEvent, bool]:
    """``event_record`` that also says whether the event is new (False: a replay of the first)."""
    # 1. Input, checked before any query.
    clean = clean_event(
        actor=actor,
        programme=programme,
        member=member,
        event_type=event_type,
        source=source,
        external_id=external_id,
        amount_eur=amount_eur,
        custom_event=custom_event,
        attributes=attributes,
        channel=channel,
        product_categories=product_categories,
        partner=partner,
        reference=reference,
        occurred_at=occurred_at,
    )
    source, external_id, reference, channel = clean.source, clean.external_id, clean.reference, clean.channel
    custom_event, amount, moment = clean.custom_event, clean.amount, clean.moment
    clean_attributes, categories = clean.attributes, clean.categories

    # 2. The same event again: the first answer, nothing written.
    existing = _existing(programme, source, external_id)
    if existing is not None:
        return existing, False
    check_programme_active(programme)
    check_member_active(member)
    if not Member.programme.is_cached(member):
        member.programme = programme

    # 3. Evaluate (reads only), then post.
    earn_event = EarnEvent(
        event_type=event_type,
        amount_eur=amount,
        custom_event=custom_event,
        channel=channel,
        product_categories=categories,
        partner_code=partner.code if partner is not None else "",
        attributes=clean_attributes,
        occurred_at=moment,
    )
    rules = selectors.rules_for_event(programme, event_type, custom_event=custom_event)
    evaluation = evaluate(programme=programme, member=member, event=earn_event, rules=rules)
    public_id = uuid.uuid4()
    try:
        with transaction.atomic():
            result = _post(
                actor=actor,
                evaluation=evaluation,
                public_id=public_id,
                source=source,
                external_id=external_id,
                amount=amount,
                reference=reference,
                partner=partner,
            )
            quote, txn = result
            event = LoyaltyEvent.objects.create(
                public_id=public_id,
                programme=programme,
                member=member,
                event_type=event_type,
                custom_event=custom_event,
                source=source,
                external_id=external_id,
                amount_eur=amount,
                attributes=clean_attributes,
                occurred_at=moment,
                transaction=txn,
                result=_result(
                    quote, channel=channel, categories=categories, partner=partner, reference=reference
                ),
                created_at=clock.now(),
            )
    except IntegrityError:
        # A concurrent request recorded the same event first: ours rolled back entirely.
        existing = _existing(programme, source, external_id)
        if existing is None:
            raise
        return existing, False
    return event, True


def _existing(programme: Programme, source: str, external_id: str) -> LoyaltyEvent | None:
    return (
        LoyaltyEvent.objects.select_related("transaction")
        .filter(programme=programme, source=source, external_id=external_id)
        .first()
    )


def _post(
    *,
    actor: Actor | None,
    evaluation: Evaluation,
    public_id: uuid.UUID,
    source: str,
    external_id: str,
    amount: Decimal | None,
    reference: str,
    partner: Partner | None,
) -> tuple[Quote, Any]:
    """Inside the transaction: lock the caps, finalise the quote, count the usage, record the
    campaign groups and post the points. Returns the quote and the transaction (None: no points)."""
    member = evaluation.member
    assert member is not None
    budget_ids = evaluation.budget_campaigns()
    if budget_ids:
        # The campaign row is the budget's lock: its rules' usage rows may not exist yet.
        list(Campaign.objects.select_for_update().filter(pk__in=budget_ids).order_by("pk").values_list("pk"))
    rows = selectors.usage_locked(evaluation.usage_keys())
    budget = selectors.campaign_budget_used(budget_ids)
    quote = finalise(evaluation, {key: row.points for key, row in rows.items()}, budget)

    changed: dict[int, RuleUsage] = {}
    for candidate, line in zip(evaluation.candidates, quote.lines, strict=True):
        if line.points <= 0:
            continue
        for key in keys_of(candidate.rule, member, evaluation.day):
            row = rows[key]
            row.points += line.points
            changed[row.pk] = row
    if changed:
        RuleUsage.objects.bulk_update(list(changed.values()), ["points"])
    if evaluation.assignments:
        now = clock.now()
        CampaignAssignment.objects.bulk_create(
            [
                CampaignAssignment(campaign=campaign, member=member, group=group, assigned_at=now)
                for campaign, group in evaluation.assignments.values()
            ],
            ignore_conflicts=True,
        )
    if quote.points <= 0:
        return quote, None
    campaign = _main_campaign(evaluation, quote)
    txn = points_earn(
        actor=actor,
        member=member,
        points=quote.points,
        source=source,
        idempotency_key=idempotency_key(source, external_id),
        reference=reference,
        amount_eur=amount if evaluation.purchase else None,
        qualifying_points=quote.qualifying_points,
        qualifying_count=1 if evaluation.purchase and quote.qualifying_points > 0 else 0,
        pending_days=quote.pending_days,
        partner=partner,
        partner_amount=partner_price(quote.points, partner.earn_price_per_point) if partner else None,
        campaign=campaign,
        details={"event_id": str(public_id), **quote.as_json()},
        occurred_at=evaluation.moment,
    )
    return quote, txn


def _main_campaign(evaluation: Evaluation, quote: Quote) -> Campaign | None:
    """The campaign whose rules earned the most points on this event (for the evaluation's uplift)."""
    earned: dict[int, int] = {}
    campaigns: dict[int, Campaign] = {}
    for candidate, line in zip(evaluation.candidates, quote.lines, strict=True):
        rule = candidate.rule
        if line.points > 0 and rule.campaign_id is not None and rule.campaign is not None:
            earned[rule.campaign_id] = earned.get(rule.campaign_id, 0) + line.points
            campaigns[rule.campaign_id] = rule.campaign
    if not earned:
        return None
    return campaigns[max(earned, key=lambda pk: (earned[pk], -pk))]


def _result(
    quote: Quote, *, channel: str, categories: tuple[str, ...], partner: Partner | None, reference: str
) -> dict[str, Any]:
    return {
        **quote.as_json(),
        "reasons": quote.reasons,
        "channel": channel,
        "product_categories": list(categories),
        "partner": partner.code if partner is not None else "",
        "reference": reference,
    }


# -- birthdays -----------------------------------------------------------------------------------


def birthday_filter(day: date) -> Q:
    """Members whose birthday is ``day``; on 28 February of a non-leap year also those born on 29th."""
    match = Q(birthday__month=day.month, birthday__day=day.day)
    if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
        match |= Q(birthday__month=2, birthday__day=29)
    return match


def birthdays_award(*, today: date | None = None) -> int:
    """Record a birthday event for every active member whose birthday is today (each programme's own
    time zone), once per member and year (external id ``birthday:<year>:<member public id>``), in
    programmes with an active birthday rule. Returns the number of new events."""
    recorded = 0
    for programme in Programme.objects.filter(status=ProgrammeStatus.ACTIVE).order_by("pk"):
        if not selectors.has_active_rule(programme, EventType.BIRTHDAY):
            continue
        day = today or clock.today(programme.timezone)
        members = (
            Member.objects.filter(programme=programme, status=MemberStatus.ACTIVE)
            .filter(birthday_filter(day))
            .select_related("tier")
            .order_by("pk")
        )
        for member in members.iterator(chunk_size=500):
            member.programme = programme
            try:
                _event, created = event_record_with_status(
                    actor=None,
                    programme=programme,
                    member=member,
                    event_type=EventType.BIRTHDAY,
                    source="loyalty",
                    external_id=f"birthday:{day.year}:{member.public_id}",
                )
            except ApplicationError:
                logger.exception("Birthday points for member %s failed", member.public_id)
                continue
            recorded += int(created)
    return recorded

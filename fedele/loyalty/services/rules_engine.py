"""Earning-rule evaluation: what an event earns, line by line, without writing anything.

How a quote is computed (``docs/loyalty-rules.md`` has worked examples):

1. Every rule of the event's type is checked in ``position`` order: status, validity window
   (``valid_from`` ≤ moment < ``valid_until``), its campaign (active, ``starts_at`` ≤ moment <
   ``ends_at``), its conditions (all must hold) and, for campaign rules, the member's group (holdout
   members get no campaign points). The first reason a rule does not apply is kept on its line.
2. A *base* rule (``multiplier`` = 1) earns ``points_per_euro`` × amount, rounded to a whole number
   with the programme's rounding (down / half up / up) on its own line, plus ``fixed_points``.
3. The member's tier multiplier applies to each base line (rounded again the same way).
4. Caps trim each base line: per member per day (programme time zone), per member in total, across
   everyone (``cap_total``), then the campaign's budget.
5. A *bonus* rule (``multiplier`` ≠ 1) earns ``(multiplier − 1)`` × the sum of the base lines as
   trimmed in step 4 (rounded), then its own caps and its campaign's budget trim it. Two bonus rules
   add up (×2 and ×1.5 → base + 1.0 × base + 0.5 × base), they do not compound.

Qualifying points are the points of lines whose rule counts towards tiers; the points are pending for
the programme's return window when any line with points comes from a rule marked ``pending``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal, InvalidOperation
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from django.utils.translation import gettext_lazy as _

from fedele.customers.contracts import Segment
from fedele.customers.facade import customer_summaries
from fedele.loyalty.models import (
    Campaign,
    EarningRule,
    EventType,
    Member,
    PointsTransaction,
    Programme,
    Rounding,
    RuleStatus,
    TransactionKind,
)
from fedele.loyalty.selectors import rules as selectors
from fedele.loyalty.selectors.rules import UsageKey
from fedele.loyalty.selectors.tiers import tier_multiplier
from fedele.loyalty.services.campaigns import campaign_group
from fedele.shared import clock

ONE = Decimal(1)
ZERO = Decimal(0)
ROUNDING_MODES: dict[str, str] = {
    Rounding.DOWN: ROUND_DOWN,
    Rounding.HALF_UP: ROUND_HALF_UP,
    Rounding.UP: ROUND_UP,
}
PURCHASE_EVENTS = frozenset({EventType.SPEND, EventType.INVOICE_PAID})

# -- conditions ----------------------------------------------------------------------------------

TEXT_FIELDS = ("segment", "channel", "tier", "partner", "custom_event")
CONDITION_FIELDS = (
    "segment",
    "product_category",
    "channel",
    "tier",
    "amount",
    "first_purchase",
    "partner",
    "custom_event",
    "attributes.",
)
OPERATORS = ("eq", "ne", "in", "not_in", "gte", "lte", "gt", "lt", "contains", "is_true", "is_false")
LIST_OPERATORS = frozenset({"in", "not_in"})
COMPARE_OPERATORS = frozenset({"gte", "lte", "gt", "lt"})
FLAG_OPERATORS = frozenset({"is_true", "is_false"})
FIELD_OPERATORS: dict[str, frozenset[str]] = {
    **{name: frozenset({"eq", "ne", "in", "not_in", "contains"}) for name in TEXT_FIELDS},
    "product_category": frozenset({"eq", "ne", "in", "not_in", "contains"}),
    "amount": frozenset({"eq", "ne", "in", "not_in", "gte", "lte", "gt", "lt"}),
    "first_purchase": FLAG_OPERATORS,
    "attributes.": frozenset(OPERATORS),
}
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,60}$")
MAX_CONDITIONS = 30
MAX_LIST_VALUES = 100
MAX_TEXT_VALUE = 200
TRUTHY_TEXT = frozenset({"true", "yes", "1", "on"})

SKIP_REASONS: dict[str, Any] = {
    "status": _("the rule is not active"),
    "event_type": _("another event type"),
    "custom_event": _("another custom event"),
    "not_yet_valid": _("not valid yet"),
    "expired": _("no longer valid"),
    "campaign_inactive": _("its campaign is not active"),
    "campaign_not_started": _("its campaign has not started"),
    "campaign_ended": _("its campaign has ended"),
    "condition": _("a condition does not hold"),
    "holdout": _("the member is in the campaign's holdout group"),
    "zero_points": _("nothing to earn on this event"),
    "per_member_per_day": _("daily cap per member reached"),
    "per_member_total": _("cap per member reached"),
    "total": _("overall cap reached"),
    "campaign_budget": _("campaign budget used up"),
    "no_rules": _("no rule for this event"),
}


def round_points(value: Decimal, rounding: str) -> int:
    return int(value.quantize(ONE, rounding=ROUNDING_MODES.get(rounding, ROUND_DOWN)))


def field_key(name: str) -> str:
    """The FIELD_OPERATORS key of a condition field (``attributes.colour`` → ``attributes.``)."""
    return "attributes." if name.startswith("attributes.") else name


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, (float, str)):
        try:
            number = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            return None
        return number if number.is_finite() else None
    return None


def _canonical(value: Any) -> str | None:
    """How two values compare for eq/in: booleans as true/false, numbers by value, text ignoring case."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    number = _decimal(value)
    if number is not None:
        return format(number.normalize(), "f")
    return str(value).strip().casefold()


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float, Decimal)):
        return value != 0
    if isinstance(value, str):
        return value.strip().casefold() in TRUTHY_TEXT
    return False


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, Decimal))


def _listed(value: Any) -> list[Any] | None:
    """A list value as written in the API (a JSON list) or a form (comma-separated text)."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return None


def clean_condition(
    index: int, raw: Any, *, tiers: set[str] | None, errors: dict[str, list[str]]
) -> dict[str, Any] | None:
    """One condition checked; its errors go under ``conditions.<index>.<part>``."""
    prefix = f"conditions.{index}"
    if not isinstance(raw, Mapping):
        errors[prefix] = [str(_("Each condition is an object with field, op and value."))]
        return None
    extra = sorted(set(raw) - {"field", "op", "value"})
    if extra:
        errors[prefix] = [str(_("Unknown keys: %(keys)s.")) % {"keys": ", ".join(map(str, extra))}]
        return None
    name = str(raw.get("field") or "").strip()
    operator = str(raw.get("op") or "").strip()
    key = field_key(name)
    if key not in FIELD_OPERATORS or (key == "attributes." and not ATTRIBUTE_NAME.match(name[11:])):
        errors[f"{prefix}.field"] = [str(_("Unknown field '%(field)s'.")) % {"field": name}]
        return None
    if operator not in FIELD_OPERATORS[key]:
        errors[f"{prefix}.op"] = [
            str(_("Operator '%(op)s' does not apply to %(field)s.")) % {"op": operator, "field": name}
        ]
        return None
    value = raw.get("value")
    problem, cleaned = _clean_value(name, key, operator, value, tiers)
    if problem:
        errors[f"{prefix}.value"] = [problem]
        return None
    return {"field": name, "op": operator, "value": cleaned}


def _clean_value(name: str, key: str, operator: str, value: Any, tiers: set[str] | None) -> tuple[str, Any]:
    if operator in FLAG_OPERATORS:
        if value not in (None, "", True):
            return str(_("This operator takes no value.")), None
        return "", None
    numeric = key == "amount" or operator in COMPARE_OPERATORS
    if operator in LIST_OPERATORS:
        items = _listed(value)
        if not items or len(items) > MAX_LIST_VALUES or not all(_scalar(item) for item in items):
            return str(_("Enter a list of 1 to 100 values.")), None
    else:
        if not _scalar(value) or (isinstance(value, str) and not value.strip()):
            return str(_("Enter a value.")), None
        items = [value]
    cleaned: list[Any] = []
    for item in items:
        if numeric:
            number = _decimal(item)
            if number is None:
                return str(_("Enter a number.")), None
            cleaned.append(str(number))
            continue
        if isinstance(item, str):
            item = item.strip()
            if len(item) > MAX_TEXT_VALUE:
                return str(_("Values may have at most 200 characters.")), None
        if key in TEXT_FIELDS or key == "product_category":
            item = str(item)
        if key == "segment" and item not in {segment.value for segment in Segment}:
            return str(_("Unknown segment '%(value)s'.")) % {"value": item}, None
        if key == "tier" and tiers is not None and item not in tiers:
            return str(_("Unknown tier '%(value)s'.")) % {"value": item}, None
        cleaned.append(item)
    if operator in LIST_OPERATORS:
        return "", cleaned
    return "", cleaned[0]


# -- the event a rule is evaluated on ------------------------------------------------------------


@dataclass(frozen=True)
class EarnEvent:
    """What a rule is evaluated on. ``first_purchase`` None = computed (no earlier earn with an amount)."""

    event_type: str
    amount_eur: Decimal | None = None
    custom_event: str = ""
    channel: str = ""
    product_categories: tuple[str, ...] = ()
    partner_code: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
    first_purchase: bool | None = None


@dataclass(frozen=True, slots=True)
class QuoteLine:
    """One rule's part of a quote. ``skipped`` says why a rule did not apply (``detail``: the failing
    condition); ``capped_by`` which cap trimmed ``uncapped_points`` down to ``points``."""

    rule: str
    rule_id: str
    kind: str  # "base" | "bonus"
    matched: bool
    skipped: str = ""
    detail: str = ""
    base_points: int = 0
    multiplier: Decimal = ONE
    tier_multiplier: Decimal = ONE
    uncapped_points: int = 0
    points: int = 0
    capped_by: str = ""
    qualifying: bool = True
    pending: bool = False
    campaign: str = ""
    campaign_group: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "rule_id": self.rule_id,
            "kind": self.kind,
            "matched": self.matched,
            "skipped": self.skipped,
            "detail": self.detail,
            "base_points": self.base_points,
            "multiplier": str(self.multiplier),
            "tier_multiplier": str(self.tier_multiplier),
            "uncapped_points": self.uncapped_points,
            "points": self.points,
            "capped_by": self.capped_by,
            "qualifying": self.qualifying,
            "pending": self.pending,
            "campaign": self.campaign,
            "campaign_group": self.campaign_group,
        }

    @property
    def reason(self) -> str:
        """Why this line earns nothing ("" when it earns points)."""
        if self.points > 0:
            return ""
        return self.skipped or self.capped_by or "zero_points"


@dataclass(frozen=True, slots=True)
class Quote:
    points: int
    qualifying_points: int
    pending_days: int
    lines: tuple[QuoteLine, ...]
    tier_multiplier: Decimal = ONE
    day: date | None = None

    @property
    def reasons(self) -> list[str]:
        """For a quote of zero points: ``"<rule code>:<reason>"`` per rule (or ``no_rules``)."""
        if self.points > 0:
            return []
        if not self.lines:
            return ["no_rules"]
        return [f"{line.rule}:{line.reason}" for line in self.lines]

    def as_json(self) -> dict[str, Any]:
        return {
            "points": self.points,
            "qualifying_points": self.qualifying_points,
            "pending_days": self.pending_days,
            "tier_multiplier": str(self.tier_multiplier),
            "day": self.day.isoformat() if self.day else None,
            "lines": [line.as_json() for line in self.lines],
        }


# -- facts about the event and the member, computed when a condition asks for them -----------------


class Facts:
    def __init__(self, programme: Programme, member: Member | None, event: EarnEvent) -> None:
        self.programme = programme
        self.member = member
        self.event = event

    @cached_property
    def segment(self) -> str:
        if self.member is None:
            return ""
        summary = customer_summaries([self.member.customer_id]).get(self.member.customer_id)
        return summary.segment if summary else ""

    @cached_property
    def tier(self) -> str:
        if self.member is None or self.member.tier_id is None or self.member.tier is None:
            return ""
        return self.member.tier.code

    @cached_property
    def first_purchase(self) -> bool:
        if self.event.first_purchase is not None:
            return self.event.first_purchase
        if self.member is None or self.member.pk is None:
            return True
        return not PointsTransaction.objects.filter(
            member_id=self.member.pk, kind=TransactionKind.EARN, amount_eur__isnull=False
        ).exists()

    def value(self, name: str) -> Any:
        if name.startswith("attributes."):
            return self.event.attributes.get(name[11:])
        if name == "product_category":
            return list(self.event.product_categories)
        if name == "amount":
            return self.event.amount_eur
        simple: dict[str, Any] = {
            "channel": self.event.channel,
            "partner": self.event.partner_code,
            "custom_event": self.event.custom_event,
        }
        if name in simple:
            return simple[name]
        return getattr(self, name)


def condition_holds(condition: Mapping[str, Any], facts: Facts) -> bool:
    operator = condition["op"]
    expected = condition.get("value")
    actual = facts.value(condition["field"])
    if operator in FLAG_OPERATORS:
        truth = any(_truthy(item) for item in actual) if isinstance(actual, list) else _truthy(actual)
        return truth if operator == "is_true" else not truth
    values = actual if isinstance(actual, list) else ([] if actual in (None, "") else [actual])
    if operator in COMPARE_OPERATORS:
        limit = _decimal(expected)
        numbers = [number for number in map(_decimal, values) if number is not None]
        if limit is None or not numbers:
            return False
        compare = {
            "gte": lambda a: a >= limit,
            "lte": lambda a: a <= limit,
            "gt": lambda a: a > limit,
            "lt": lambda a: a < limit,
        }[operator]
        return any(compare(number) for number in numbers)
    present = {_canonical(item) for item in values}
    if operator == "contains" and not isinstance(actual, list):
        needle = _canonical(expected) or ""
        return any(needle in (text or "") for text in present)
    wanted = {_canonical(item) for item in (expected if isinstance(expected, list) else [expected])}
    hit = bool(present & wanted)
    return hit if operator in ("eq", "in", "contains") else not hit


def describe_condition(condition: Mapping[str, Any]) -> str:
    value = condition.get("value")
    shown = ", ".join(map(str, value)) if isinstance(value, list) else ("" if value is None else str(value))
    return f"{condition['field']} {condition['op']} {shown}".strip()


# -- evaluation ------------------------------------------------------------------------------------


@dataclass
class Candidate:
    """A rule's evaluation before caps: whether it applies and its points after the tier multiplier."""

    rule: EarningRule
    kind: str
    matched: bool
    skipped: str = ""
    detail: str = ""
    base_points: int = 0
    tiered_points: int = 0
    group: str = ""

    @property
    def bonus(self) -> bool:
        return self.kind == "bonus"


@dataclass
class Evaluation:
    programme: Programme
    member: Member | None
    event: EarnEvent
    moment: datetime
    day: date
    tier_multiplier: Decimal
    candidates: list[Candidate]
    assignments: dict[int, tuple[Campaign, str]]
    """Campaigns whose rules applied to the event (holdout included), with the member's group."""

    def usage_keys(self) -> list[UsageKey]:
        """The cap usage rows this event may add to (nothing when no line can earn)."""
        if not any(c.matched and not c.bonus and c.tiered_points > 0 for c in self.candidates):
            return []
        keys: list[UsageKey] = []
        for candidate in self.candidates:
            if candidate.matched and (candidate.bonus or candidate.tiered_points > 0):
                keys.extend(keys_of(candidate.rule, self.member, self.day))
        return keys

    @property
    def purchase(self) -> bool:
        return self.event.event_type in PURCHASE_EVENTS

    def budget_campaigns(self) -> list[int]:
        return sorted(
            {
                c.rule.campaign_id
                for c in self.candidates
                if c.matched
                and c.rule.campaign_id is not None
                and c.rule.campaign is not None
                and c.rule.campaign.budget_points is not None
            }
        )


def keys_of(rule: EarningRule, member: Member | None, day: date) -> list[UsageKey]:
    if rule.pk is None:
        return []
    keys: list[UsageKey] = []
    if member is not None and rule.cap_per_member_per_day is not None:
        keys.append((rule.pk, member.pk, day))
    if member is not None and rule.cap_per_member_total is not None:
        keys.append((rule.pk, member.pk, None))
    campaign = rule.campaign if rule.campaign_id is not None else None
    if rule.cap_total is not None or (campaign is not None and campaign.budget_points is not None):
        keys.append((rule.pk, None, None))
    return keys


def _skip_reason(
    rule: EarningRule, event: EarnEvent, moment: datetime, *, include_drafts: bool
) -> tuple[str, str]:
    allowed = {RuleStatus.ACTIVE, RuleStatus.DRAFT} if include_drafts else {RuleStatus.ACTIVE}
    if rule.status not in allowed:
        return "status", rule.status
    if rule.event_type != event.event_type:
        return "event_type", rule.event_type
    if rule.event_type == EventType.CUSTOM and rule.custom_event and rule.custom_event != event.custom_event:
        return "custom_event", rule.custom_event
    if rule.valid_from is not None and moment < rule.valid_from:
        return "not_yet_valid", rule.valid_from.isoformat()
    if rule.valid_until is not None and moment >= rule.valid_until:
        return "expired", rule.valid_until.isoformat()
    campaign = rule.campaign if rule.campaign_id is not None else None
    if campaign is not None:
        if campaign.status not in allowed:
            return "campaign_inactive", campaign.code
        if moment < campaign.starts_at:
            return "campaign_not_started", campaign.starts_at.isoformat()
        if moment >= campaign.ends_at:
            return "campaign_ended", campaign.ends_at.isoformat()
    return "", ""


def evaluate(
    *,
    programme: Programme,
    member: Member | None,
    event: EarnEvent,
    rules: Sequence[EarningRule],
    include_drafts: bool = False,
) -> Evaluation:
    """Which rules apply and what each earns before caps. Pure: reads, never writes."""
    moment = event.occurred_at or clock.now()
    day = moment.astimezone(ZoneInfo(programme.timezone)).date()
    multiplier = tier_multiplier(member) if member is not None else ONE
    facts = Facts(programme, member, event)
    amount = event.amount_eur if event.amount_eur is not None else ZERO
    candidates: list[Candidate] = []
    assignments: dict[int, tuple[Campaign, str]] = {}
    for rule in rules:
        kind = "base" if Decimal(rule.multiplier) == ONE else "bonus"
        skipped, detail = _skip_reason(rule, event, moment, include_drafts=include_drafts)
        if not skipped:
            for condition in rule.conditions or []:
                if not condition_holds(condition, facts):
                    skipped, detail = "condition", describe_condition(condition)
                    break
        group = ""
        campaign = rule.campaign if rule.campaign_id is not None else None
        if not skipped and campaign is not None and member is not None:
            group = campaign_group(campaign, member)
            if campaign.pk is not None:
                assignments.setdefault(campaign.pk, (campaign, group))
            if group == "holdout":
                skipped = "holdout"
        if skipped:
            candidates.append(Candidate(rule, kind, False, skipped, detail, group=group))
            continue
        base = 0
        if kind == "base":
            base = round_points(Decimal(rule.points_per_euro) * amount, programme.rounding) + int(
                rule.fixed_points
            )
        tiered = base if multiplier == ONE else round_points(Decimal(base) * multiplier, programme.rounding)
        candidates.append(Candidate(rule, kind, True, base_points=base, tiered_points=tiered, group=group))
    return Evaluation(programme, member, event, moment, day, multiplier, candidates, assignments)


def finalise(evaluation: Evaluation, usage: Mapping[UsageKey, int], budget_used: Mapping[int, int]) -> Quote:
    """Apply the caps (from the usage already awarded) and the bonus rules: the final quote."""
    member, day, programme = evaluation.member, evaluation.day, evaluation.programme
    spent: dict[UsageKey, int] = dict(usage)
    budget_left: dict[int, int] = {}
    for candidate in evaluation.candidates:
        campaign = candidate.rule.campaign if candidate.rule.campaign_id is not None else None
        if campaign is not None and campaign.budget_points is not None and campaign.pk is not None:
            budget_left[campaign.pk] = max(0, campaign.budget_points - budget_used.get(campaign.pk, 0))

    def trim(rule: EarningRule, points: int) -> tuple[int, str]:
        capped_by = ""
        caps: list[tuple[int | None, UsageKey | None, str]] = []
        if member is not None and rule.pk is not None:
            caps.append((rule.cap_per_member_per_day, (rule.pk, member.pk, day), "per_member_per_day"))
            caps.append((rule.cap_per_member_total, (rule.pk, member.pk, None), "per_member_total"))
        if rule.pk is not None:
            caps.append((rule.cap_total, (rule.pk, None, None), "total"))
        for cap, key, name in caps:
            if cap is None or key is None:
                continue
            left = max(0, cap - spent.get(key, 0))
            if points > left:
                points, capped_by = left, name
        campaign = rule.campaign if rule.campaign_id is not None else None
        if campaign is not None and campaign.pk in budget_left:
            left = budget_left[campaign.pk]
            if points > left:
                points, capped_by = left, "campaign_budget"
            budget_left[campaign.pk] = left - points
        for key in keys_of(rule, member, day):
            spent[key] = spent.get(key, 0) + points
        return points, capped_by

    finished: dict[int, QuoteLine] = {}
    base_total = 0
    for order, candidate in enumerate(evaluation.candidates):
        if candidate.bonus:
            continue
        points, capped_by = (0, "")
        if candidate.matched:
            points, capped_by = trim(candidate.rule, candidate.tiered_points)
            base_total += points
        finished[order] = _line(
            candidate, evaluation.tier_multiplier, candidate.tiered_points, points, capped_by
        )
    for order, candidate in enumerate(evaluation.candidates):
        if not candidate.bonus:
            continue
        uncapped, points, capped_by = 0, 0, ""
        if candidate.matched:
            extra = Decimal(base_total) * (Decimal(candidate.rule.multiplier) - ONE)
            uncapped = max(0, round_points(extra, programme.rounding))
            points, capped_by = trim(candidate.rule, uncapped)
        candidate.base_points = base_total if candidate.matched else 0
        finished[order] = _line(candidate, ONE, uncapped, points, capped_by)
    lines = tuple(finished[order] for order in range(len(evaluation.candidates)))
    total = sum(line.points for line in lines)
    qualifying = sum(line.points for line in lines if line.qualifying)
    pending = programme.pending_days if any(line.pending and line.points > 0 for line in lines) else 0
    return Quote(
        points=total,
        qualifying_points=qualifying,
        pending_days=pending,
        lines=lines,
        tier_multiplier=evaluation.tier_multiplier,
        day=day,
    )


def _line(candidate: Candidate, tier: Decimal, uncapped: int, points: int, capped_by: str) -> QuoteLine:
    rule = candidate.rule
    campaign = rule.campaign if rule.campaign_id is not None else None
    return QuoteLine(
        rule=rule.code,
        rule_id=str(rule.public_id),
        kind=candidate.kind,
        matched=candidate.matched,
        skipped=candidate.skipped,
        detail=candidate.detail,
        base_points=candidate.base_points,
        multiplier=Decimal(rule.multiplier),
        tier_multiplier=tier,
        uncapped_points=uncapped,
        points=points,
        capped_by=capped_by if points < uncapped else "",
        qualifying=rule.qualifying,
        pending=rule.pending,
        campaign=campaign.code if campaign is not None else "",
        campaign_group=candidate.group,
    )


def quote(
    *,
    programme: Programme,
    member: Member | None,
    event: EarnEvent,
    rules: Sequence[EarningRule] | None = None,
    include_drafts: bool = False,
) -> Quote:
    """What ``member`` would earn for ``event`` now: pure evaluation, caps read (not locked) from
    the usage so far. ``rules`` evaluates exactly these (e.g. an unsaved rule in the editor's preview)
    instead of the programme's active ones; ``include_drafts`` adds draft rules and campaigns."""
    if rules is None:
        rules = selectors.rules_for_event(
            programme, event.event_type, custom_event=event.custom_event, include_drafts=include_drafts
        )
    evaluation = evaluate(
        programme=programme, member=member, event=event, rules=rules, include_drafts=include_drafts
    )
    usage = selectors.usage_points(evaluation.usage_keys())
    budget = selectors.campaign_budget_used(evaluation.budget_campaigns())
    return finalise(evaluation, usage, budget)

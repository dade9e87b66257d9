"""Earning rules: validate, create, change, activate; and (re-exported from the sibling files) the
evaluation (``quote``), the earn entry point ``event_record`` and the birthday job.

A rule is data (``EarningRule``): the event type it reacts to, conditions, what it awards
(``points_per_euro`` × amount + ``fixed_points``, or a bonus ``multiplier`` on the other rules),
validity window, campaign and caps. See ``rules_engine`` for exactly how a quote is computed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.loyalty.models import Campaign, EarningRule, EventType, Programme, RuleStatus, Tier
from fedele.loyalty.selectors.rules import as_uuid
from fedele.loyalty.services.campaigns import code_taken, parse_moment, require_manager
from fedele.loyalty.services.rules_engine import (
    MAX_CONDITIONS,
    EarnEvent,
    Quote,
    QuoteLine,
    clean_condition,
    quote,
)
from fedele.loyalty.services.rules_events import (
    birthdays_award,
    event_record,
    event_record_with_status,
)
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, ValidationFailed

__all__ = [
    "RULE_FIELDS",
    "EarnEvent",
    "Quote",
    "QuoteLine",
    "birthdays_award",
    "event_record",
    "event_record_with_status",
    "quote",
    "rule_create",
    "rule_set_status",
    "rule_update",
    "rule_validate",
]

CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
CUSTOM_EVENT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
RULE_FIELDS = (
    "code",
    "name_it",
    "name_en",
    "event_type",
    "custom_event",
    "position",
    "conditions",
    "points_per_euro",
    "fixed_points",
    "multiplier",
    "qualifying",
    "pending",
    "campaign",
    "valid_from",
    "valid_until",
    "cap_per_member_per_day",
    "cap_per_member_total",
    "cap_total",
)
CAP_FIELDS = ("cap_per_member_per_day", "cap_per_member_total", "cap_total")
MAX_POINTS = 10**12
MAX_POSITION = 32767
PURCHASE_TYPES = frozenset({EventType.SPEND, EventType.INVOICE_PAID})
# draft → active / archived; active ↔ paused; anything but archived → archived (final).
RULE_TRANSITIONS: dict[str, frozenset[str]] = {
    RuleStatus.DRAFT: frozenset({RuleStatus.ACTIVE, RuleStatus.ARCHIVED}),
    RuleStatus.ACTIVE: frozenset({RuleStatus.PAUSED, RuleStatus.ARCHIVED}),
    RuleStatus.PAUSED: frozenset({RuleStatus.ACTIVE, RuleStatus.ARCHIVED}),
    RuleStatus.ARCHIVED: frozenset(),
}


# -- validation ------------------------------------------------------------------------------------


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "on", "1", "yes"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "off", "0", "no", ""}:
        return False
    return None


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,16}", value.strip()):
        return int(value.strip())
    return None


def _decimal(value: Any, *, places: int) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite():
        return None
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        return None
    return number


def _campaign_for(value: Any, programme: Programme | None) -> Campaign | str | None:
    """The campaign named by an instance, its code or public id; an error text when unknown."""
    if value in (None, ""):
        return None
    if isinstance(value, Campaign):
        if programme is not None and value.programme_id != programme.pk:
            return _("The campaign belongs to another programme.")
        return value
    if programme is None:
        return _("Unknown campaign.")
    text = str(value).strip()
    identifier = as_uuid(text)
    match = Q(code=text) | Q(public_id=identifier) if identifier else Q(code=text)
    found = Campaign.objects.filter(programme=programme).filter(match).first()
    return found if found is not None else _("Unknown campaign '%(code)s'.") % {"code": text}


def rule_validate(
    data: Mapping[str, Any],
    *,
    programme: Programme | None = None,
    rule: EarningRule | None = None,
    for_activation: bool = False,
) -> dict[str, Any]:
    """Check every field of a rule at once and return the cleaned model values; ValidationFailed
    with a message per bad field otherwise (conditions under ``conditions.<n>.field|op|value``).

    With ``programme``: the code must be unique in it, tiers and campaigns are looked up in it and
    naive dates are read in its time zone. ``for_activation`` (or ``status`` "active") adds what an
    active rule needs: it awards something, it has not expired, its campaign is not archived.
    """
    errors: dict[str, list[str]] = {}
    for key in sorted(set(data) - {*RULE_FIELDS, "status"}):
        errors[key] = [_("Unknown field.")]
    clean: dict[str, Any] = {}

    code = str(data.get("code") or "").strip().lower()
    if not CODE_PATTERN.match(code):
        errors["code"] = [_("Use 1-40 lower-case letters, digits, hyphens or underscores.")]
    elif programme is not None and code_taken(
        EarningRule.objects.filter(programme=programme, code=code), rule
    ):
        errors["code"] = [_("Another rule of this programme has this code.")]
    clean["code"] = code

    name_it = str(data.get("name_it") or "").strip()
    name_en = str(data.get("name_en") or "").strip()
    if not (name_it or name_en):
        errors["name_en"] = [_("Give the rule a name.")]
    for key, value in (("name_it", name_it or name_en), ("name_en", name_en or name_it)):
        if len(value) > 120:
            errors[key] = [_("At most 120 characters.")]
        clean[key] = value

    event_type = str(data.get("event_type") or "").strip()
    if event_type not in EventType.values:
        errors["event_type"] = [_("Choose one of: %(choices)s.") % {"choices": ", ".join(EventType.values)}]
    clean["event_type"] = event_type
    custom_event = str(data.get("custom_event") or "").strip().lower()
    if custom_event and event_type != EventType.CUSTOM:
        errors["custom_event"] = [_("Only custom-event rules name a custom event.")]
    elif custom_event and not CUSTOM_EVENT_PATTERN.match(custom_event):
        errors["custom_event"] = [_("Use 1-60 lower-case letters, digits, hyphens or underscores.")]
    clean["custom_event"] = custom_event

    position = _whole(data.get("position", 0) if data.get("position") not in (None, "") else 0)
    if position is None or not 0 <= position <= MAX_POSITION:
        errors["position"] = [_("Enter a whole number from 0 to 32767.")]
    clean["position"] = position

    conditions = data.get("conditions") or []
    clean["conditions"] = []
    if not isinstance(conditions, (list, tuple)):
        errors["conditions"] = [_("Conditions are a list.")]
    elif len(conditions) > MAX_CONDITIONS:
        errors["conditions"] = [_("At most 30 conditions.")]
    else:
        tiers = (
            set(Tier.objects.filter(programme=programme).values_list("code", flat=True))
            if programme is not None
            and any(isinstance(c, Mapping) and c.get("field") == "tier" for c in conditions)
            else None
        )
        for index, raw in enumerate(conditions):
            cleaned = clean_condition(index, raw, tiers=tiers, errors=errors)
            if cleaned is not None:
                clean["conditions"].append(cleaned)

    default_rate = "0"
    if programme is not None and event_type in PURCHASE_TYPES:
        default_rate = str(programme.points_per_euro)
    raw_rate = data.get("points_per_euro")
    rate = _decimal(default_rate if raw_rate in (None, "") else raw_rate, places=4)
    if rate is None or rate < 0 or rate >= Decimal("1000000"):
        errors["points_per_euro"] = [_("Enter a number from 0 to 999999.9999 (at most 4 decimals).")]
    clean["points_per_euro"] = rate

    fixed = _whole(data.get("fixed_points") if data.get("fixed_points") not in (None, "") else 0)
    if fixed is None or not 0 <= fixed <= MAX_POINTS:
        errors["fixed_points"] = [_("Enter a whole number of points, zero or more.")]
    clean["fixed_points"] = fixed

    raw_multiplier = data.get("multiplier")
    multiplier = _decimal("1" if raw_multiplier in (None, "") else raw_multiplier, places=2)
    if multiplier is None or multiplier < 1 or multiplier > 100:
        errors["multiplier"] = [_("Enter a multiplier from 1 to 100 (at most 2 decimals).")]
    clean["multiplier"] = multiplier
    if "multiplier" not in errors and multiplier != 1 and ((rate or 0) > 0 or (fixed or 0) > 0):
        errors["multiplier"] = [
            _(
                "A bonus rule (multiplier other than 1) earns no points of its own: "
                "leave points per euro and fixed points at 0."
            )
        ]

    for key, default in (("qualifying", True), ("pending", event_type == EventType.SPEND)):
        flag = default if data.get(key) is None else _boolean(data.get(key))
        if flag is None:
            errors[key] = [_("Enter true or false.")]
        clean[key] = flag

    campaign = _campaign_for(data.get("campaign"), programme)
    if isinstance(campaign, str):
        errors["campaign"] = [campaign]
        campaign = None
    clean["campaign"] = campaign

    zone = programme.timezone if programme is not None else "UTC"
    for key in ("valid_from", "valid_until"):
        try:
            clean[key] = parse_moment(data.get(key), timezone_name=zone)
        except ValueError:
            errors[key] = [_("Enter a date and time.")]
            clean[key] = None
    if clean["valid_from"] and clean["valid_until"] and clean["valid_until"] <= clean["valid_from"]:
        errors["valid_until"] = [_("The end of validity must come after its start.")]

    for key in CAP_FIELDS:
        raw = data.get(key)
        if raw in (None, ""):
            clean[key] = None
            continue
        cap = _whole(raw)
        if cap is None or not 1 <= cap <= MAX_POINTS:
            errors[key] = [_("Enter a whole number of points of at least 1, or leave it empty for no cap.")]
        clean[key] = cap

    status = data.get("status")
    if status not in (None, RuleStatus.DRAFT, RuleStatus.ACTIVE):
        errors["status"] = [_("A new rule is a draft or active.")]
    if (for_activation or status == RuleStatus.ACTIVE) and not errors:
        _activation_errors(clean, errors)
    if errors:
        raise ValidationFailed(_("The earning rule is not valid."), code="invalid_rule", fields=errors)
    return clean


def _activation_errors(clean: Mapping[str, Any], errors: dict[str, list[str]]) -> None:
    if clean["multiplier"] == 1 and clean["points_per_euro"] == 0 and clean["fixed_points"] == 0:
        errors["points_per_euro"] = [
            _("An active rule must award points: set points per euro, fixed points or a multiplier.")
        ]
    if clean["valid_until"] is not None and clean["valid_until"] <= clock.now():
        errors["valid_until"] = [_("The rule's validity has already ended.")]
    campaign = clean["campaign"]
    if campaign is not None and campaign.status == RuleStatus.ARCHIVED:
        errors["campaign"] = [_("The campaign is archived.")]


# -- writes ----------------------------------------------------------------------------------------


def _snapshot(rule: EarningRule) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(rule, name) for name in RULE_FIELDS if name != "campaign"}
    values["campaign"] = rule.campaign.code if rule.campaign_id and rule.campaign else None
    values["status"] = rule.status
    values["version"] = rule.version
    return values


def rule_data(rule: EarningRule) -> dict[str, Any]:
    """A rule's editable values in the shape ``rule_validate`` takes (campaign by code)."""
    values: dict[str, Any] = {name: getattr(rule, name) for name in RULE_FIELDS if name != "campaign"}
    values["campaign"] = rule.campaign if rule.campaign_id else None
    return values


def _locked(rule: EarningRule) -> EarningRule:
    """The rule's row locked (only its own: PostgreSQL cannot lock the nullable side of the join)."""
    return (
        EarningRule.objects.select_for_update(of=("self",))
        .select_related("campaign", "programme")
        .get(pk=rule.pk)
    )


def rule_create(*, actor: Actor | None, programme: Programme, data: Mapping[str, Any]) -> EarningRule:
    """A new rule, in draft unless ``data["status"]`` is "active" (then checked as for activation).
    Spend and invoice rules default to the programme's points per euro; spend rules to pending."""
    require_manager(actor)
    clean = rule_validate(data, programme=programme)
    status = data.get("status") or RuleStatus.DRAFT
    with transaction.atomic():
        rule = EarningRule.objects.create(programme=programme, status=status, **clean)
        audit.record(
            action="loyalty.rule_created",
            object_type="loyalty.earning_rule",
            object_id=str(rule.public_id),
            after={"programme": programme.code, **_snapshot(rule)},
            actor_id=actor.user_id if actor else None,
        )
    return rule


def rule_update(*, actor: Actor | None, rule: EarningRule, changes: Mapping[str, Any]) -> EarningRule:
    """Change a rule's fields (not its status): validated as a whole, version + 1 when anything
    changed. Archived rules are frozen; an active rule must stay valid for activation."""
    require_manager(actor)
    if "status" in changes:
        raise ValidationFailed(
            _("Change the status with its own action."),
            code="invalid_rule",
            fields={"status": _("Use the status action.")},
        )
    if rule.status == RuleStatus.ARCHIVED:
        raise Conflict(_("An archived rule cannot be changed."), code="rule_archived")
    merged = rule_data(rule)
    merged.update(changes)
    clean = rule_validate(
        merged, programme=rule.programme, rule=rule, for_activation=rule.status == RuleStatus.ACTIVE
    )
    with transaction.atomic():
        locked = _locked(rule)
        before = _snapshot(locked)
        changed = [name for name, value in clean.items() if getattr(locked, name) != value]
        if changed:
            for name in changed:
                setattr(locked, name, clean[name])
            locked.version += 1
            locked.save(update_fields=[*changed, "version", "updated_at"])
            audit.record(
                action="loyalty.rule_updated",
                object_type="loyalty.earning_rule",
                object_id=str(locked.public_id),
                before=before,
                after=_snapshot(locked),
                actor_id=actor.user_id if actor else None,
            )
    for name in (*clean, "version", "updated_at", "status"):
        setattr(rule, name, getattr(locked, name))
    return rule


def rule_set_status(*, actor: Actor | None, rule: EarningRule, status: str) -> EarningRule:
    """draft → active (only a rule valid for activation) / archived; active ↔ paused; → archived."""
    require_manager(actor)
    if status not in RuleStatus.values:
        raise ValidationFailed(
            _("Unknown status."), code="invalid_status", fields={"status": _("Unknown status.")}
        )
    with transaction.atomic():
        locked = _locked(rule)
        if status == locked.status:
            return rule
        if status not in RULE_TRANSITIONS[locked.status]:
            raise Conflict(
                _("A %(from)s rule cannot become %(to)s.") % {"from": locked.status, "to": status},
                code="invalid_transition",
            )
        if status == RuleStatus.ACTIVE:
            rule_validate(rule_data(locked), programme=locked.programme, rule=locked, for_activation=True)
        before = locked.status
        locked.status = status
        locked.save(update_fields=["status", "updated_at"])
        audit.record(
            action="loyalty.rule_status_changed",
            object_type="loyalty.earning_rule",
            object_id=str(locked.public_id),
            before={"status": before},
            after={"status": status},
            actor_id=actor.user_id if actor else None,
        )
    rule.status = status
    rule.updated_at = locked.updated_at
    return rule

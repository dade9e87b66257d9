"""Bonus campaigns: time-boxed, with a random (but reproducible) holdout group that gets no bonus, so
the evaluation can measure the campaign's uplift against it.

A campaign's bonus itself is one or more earning rules linked to it (usually a bonus rule with
``multiplier`` 2.00: "double points"); the campaign gives them their window and their holdout group.
A member falls in the holdout group when ``bucket(campaign, member) < holdout_percent``, where the
bucket (0-99) is the first 8 bytes of SHA-256 of ``"<campaign public id>:<member public id>"``
modulo 100: the same member is always in the same group of the same campaign, on every node.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.loyalty.models import Campaign, CampaignAssignment, Member, Programme, RuleStatus
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed

MANAGE = "loyalty.manage_loyalty"
CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
HOLDOUT_MAX = 90
BUDGET_MAX = 10**15
CAMPAIGN_FIELDS = ("code", "name_it", "name_en", "starts_at", "ends_at", "holdout_percent", "budget_points")
# draft → active / archived; active ↔ paused; anything but archived → archived.
CAMPAIGN_TRANSITIONS: dict[str, frozenset[str]] = {
    RuleStatus.DRAFT: frozenset({RuleStatus.ACTIVE, RuleStatus.ARCHIVED}),
    RuleStatus.ACTIVE: frozenset({RuleStatus.PAUSED, RuleStatus.ARCHIVED}),
    RuleStatus.PAUSED: frozenset({RuleStatus.ACTIVE, RuleStatus.ARCHIVED}),
    RuleStatus.ARCHIVED: frozenset(),
}


def holdout_bucket(campaign: Campaign, member: Member) -> int:
    digest = hashlib.sha256(f"{campaign.public_id}:{member.public_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def campaign_group(campaign: Campaign, member: Member) -> str:
    """``treatment`` or ``holdout``: deterministic, so a quote and the recorded assignment agree."""
    if holdout_bucket(campaign, member) < campaign.holdout_percent:
        return CampaignAssignment.Group.HOLDOUT
    return CampaignAssignment.Group.TREATMENT


def require_manager(actor: Actor | None) -> None:
    if actor is not None and not (actor.is_internal and actor.can(MANAGE)):
        raise PermissionDenied(_("You may not configure loyalty programmes."), code="permission_denied")


def parse_moment(value: Any, *, timezone_name: str) -> datetime | None:
    """A datetime from a datetime or ISO text; naive values are read in the programme's time zone."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else parse_datetime(str(value).strip())
    if moment is None:
        raise ValueError("not a date and time")
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=ZoneInfo(timezone_name))
    return moment


def code_taken(rows: Any, current: Any) -> bool:
    if current is not None and current.pk is not None:
        rows = rows.exclude(pk=current.pk)
    return bool(rows.exists())


def campaign_validate(
    data: Mapping[str, Any], *, programme: Programme, campaign: Campaign | None = None
) -> dict[str, Any]:
    """Every field of a campaign checked at once; the cleaned values, or ValidationFailed naming each
    bad field."""
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(data) - set(CAMPAIGN_FIELDS))
    for key in unknown:
        errors[key] = [_("Unknown field.")]
    clean: dict[str, Any] = {}

    code = str(data.get("code") or "").strip().lower()
    if not CODE_PATTERN.match(code):
        errors["code"] = [_("Use 1-40 lower-case letters, digits, hyphens or underscores.")]
    elif code_taken(Campaign.objects.filter(programme=programme, code=code), campaign):
        errors["code"] = [_("Another campaign of this programme has this code.")]
    clean["code"] = code

    name_it = str(data.get("name_it") or "").strip()
    name_en = str(data.get("name_en") or "").strip()
    if not (name_it or name_en):
        errors["name_en"] = [_("Give the campaign a name.")]
    for key, value in (("name_it", name_it or name_en), ("name_en", name_en or name_it)):
        if len(value) > 120:
            errors[key] = [_("At most 120 characters.")]
        clean[key] = value

    for key in ("starts_at", "ends_at"):
        try:
            clean[key] = parse_moment(data.get(key), timezone_name=programme.timezone)
        except ValueError:
            errors[key] = [_("Enter a date and time.")]
            continue
        if clean[key] is None:
            errors[key] = [_("Required.")]
    starts, ends = clean.get("starts_at"), clean.get("ends_at")
    if starts is not None and ends is not None and ends <= starts:
        errors["ends_at"] = [_("The campaign must end after it starts.")]

    holdout = data.get("holdout_percent", 10)
    if isinstance(holdout, str) and holdout.strip().isdigit():
        holdout = int(holdout.strip())
    if isinstance(holdout, bool) or not isinstance(holdout, int) or not 0 <= holdout <= HOLDOUT_MAX:
        errors["holdout_percent"] = [_("Enter a whole percentage from 0 to 90.")]
    clean["holdout_percent"] = holdout

    budget = data.get("budget_points")
    if budget in (None, ""):
        budget = None
    else:
        if isinstance(budget, str) and budget.strip().isdigit():
            budget = int(budget.strip())
        if isinstance(budget, bool) or not isinstance(budget, int) or not 1 <= budget <= BUDGET_MAX:
            errors["budget_points"] = [_("Enter a whole number of points of at least 1, or leave it empty.")]
    clean["budget_points"] = budget

    if errors:
        raise ValidationFailed(_("The campaign is not valid."), code="invalid_campaign", fields=errors)
    return clean


def _snapshot(campaign: Campaign) -> dict[str, Any]:
    return {name: getattr(campaign, name) for name in (*CAMPAIGN_FIELDS, "status")}


def campaign_create(*, actor: Actor | None, programme: Programme, data: Mapping[str, Any]) -> Campaign:
    """A new campaign in draft (activate it with ``campaign_set_status``)."""
    require_manager(actor)
    clean = campaign_validate(data, programme=programme)
    with transaction.atomic():
        campaign = Campaign.objects.create(programme=programme, status=RuleStatus.DRAFT, **clean)
        audit.record(
            action="loyalty.campaign_created",
            object_type="loyalty.campaign",
            object_id=str(campaign.public_id),
            after={"programme": programme.code, **_snapshot(campaign)},
            actor_id=actor.user_id if actor else None,
        )
    return campaign


def campaign_update(*, actor: Actor | None, campaign: Campaign, changes: Mapping[str, Any]) -> Campaign:
    """Change a campaign. Archived campaigns are frozen; the holdout share cannot change once the
    campaign has been active (members already drawn into a group would change sides)."""
    require_manager(actor)
    if campaign.status == RuleStatus.ARCHIVED:
        raise Conflict(_("An archived campaign cannot be changed."), code="campaign_archived")
    merged = {name: getattr(campaign, name) for name in CAMPAIGN_FIELDS}
    merged.update(changes)
    clean = campaign_validate(merged, programme=campaign.programme, campaign=campaign)
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        started = (
            locked.status != RuleStatus.DRAFT or CampaignAssignment.objects.filter(campaign=locked).exists()
        )
        if started and clean["holdout_percent"] != locked.holdout_percent:
            raise ValidationFailed(
                _("The holdout share cannot change once the campaign has run."),
                code="holdout_locked",
                fields={"holdout_percent": _("Locked: the campaign has already run.")},
            )
        before = _snapshot(locked)
        for name, value in clean.items():
            setattr(locked, name, value)
        locked.save(update_fields=list(clean))
        audit.record(
            action="loyalty.campaign_updated",
            object_type="loyalty.campaign",
            object_id=str(locked.public_id),
            before=before,
            after=_snapshot(locked),
            actor_id=actor.user_id if actor else None,
        )
    for name in (*clean, "status"):
        setattr(campaign, name, getattr(locked, name))
    return campaign


def campaign_set_status(*, actor: Actor | None, campaign: Campaign, status: str) -> Campaign:
    require_manager(actor)
    if status not in RuleStatus.values:
        raise ValidationFailed(
            _("Unknown status."), code="invalid_status", fields={"status": _("Unknown status.")}
        )
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if status == locked.status:
            return campaign
        if status not in CAMPAIGN_TRANSITIONS[locked.status]:
            raise Conflict(
                _("A %(from)s campaign cannot become %(to)s.") % {"from": locked.status, "to": status},
                code="invalid_transition",
            )
        if status == RuleStatus.ACTIVE and locked.ends_at <= clock.now():
            raise ValidationFailed(
                _("The campaign has already ended: move its end first."),
                code="campaign_ended",
                fields={"ends_at": _("In the past.")},
            )
        before = locked.status
        locked.status = status
        locked.save(update_fields=["status"])
        audit.record(
            action="loyalty.campaign_status_changed",
            object_type="loyalty.campaign",
            object_id=str(locked.public_id),
            before={"status": before},
            after={"status": status},
            actor_id=actor.user_id if actor else None,
        )
    campaign.status = status
    return campaign

"""Programme and tier configuration. Every write needs ``loyalty.manage_loyalty`` (or the system, actor
None), validates every field before writing (a refused save changes nothing), runs in one transaction
that locks what it changes, and is audited.

Tiers: ranks are contiguous from 0 (rank 0 is the base tier, threshold 0, every member starts there),
thresholds strictly increase with the rank. A tier's code and rank never change once created (rules and
rewards name tiers by code); deleting a tier moves the ranks above it down by one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.loyalty.models import (
    ExpiryPolicy,
    Member,
    NegativeBalancePolicy,
    Programme,
    ProgrammeStatus,
    Reservation,
    Rounding,
    Tier,
    TierChange,
    TierMetric,
    TierWindow,
)
from fedele.shared import audit
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed

MANAGE = "loyalty.manage_loyalty"
CODE_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
COLOR_PATTERN = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_BENEFITS = 20
STATUS_TRANSITIONS = {
    ProgrammeStatus.DRAFT: {ProgrammeStatus.ACTIVE},
    ProgrammeStatus.ACTIVE: {ProgrammeStatus.CLOSED},
    ProgrammeStatus.CLOSED: set(),
}

Checker = Callable[[Any], Any]


class _FieldError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def require_manager(actor: Actor | None) -> None:
    if actor is not None and not (actor.is_internal and actor.can(MANAGE)):
        raise PermissionDenied(_("You may not configure loyalty programmes."), code="permission_denied")


# -- field checks ----------------------------------------------------------------------------------


def _text(max_length: int, *, required: bool = True) -> Checker:
    def check(value: Any) -> str:
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise _FieldError(_("Enter text."))
        value = value.strip()
        if required and not value:
            raise _FieldError(_("This field is required."))
        if len(value) > max_length:
            raise _FieldError(_("At most %(count)d characters.") % {"count": max_length})
        return value

    return check


def _code(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _FieldError(_("This field is required."))
    value = value.strip()
    if not CODE_PATTERN.match(value):
        raise _FieldError(
            _("Use 1 to 40 lowercase letters, digits and hyphens, not starting or ending with a hyphen.")
        )
    return value


def _choice(choices: type[Any]) -> Checker:
    allowed = [str(value) for value in choices.values]

    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise _FieldError(_("Choose one of: %(values)s.") % {"values": ", ".join(allowed)})
        return value

    return check


def _integer(minimum: int, maximum: int) -> Checker:
    def check(value: Any) -> int:
        if isinstance(value, bool):
            raise _FieldError(_("Enter a whole number."))
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError as error:
                raise _FieldError(_("Enter a whole number.")) from error
        if isinstance(value, Decimal) and value == value.to_integral_value():
            value = int(value)
        if not isinstance(value, int):
            raise _FieldError(_("Enter a whole number."))
        if value < minimum or value > maximum:
            raise _FieldError(
                _("Enter a number from %(minimum)s to %(maximum)s.")
                % {"minimum": minimum, "maximum": maximum}
            )
        return value

    return check


def _decimal(minimum: Decimal, maximum: Decimal, places: int, *, above_minimum: bool = False) -> Checker:
    def check(value: Any) -> Decimal:
        if isinstance(value, bool) or value is None:
            raise _FieldError(_("Enter a number."))
        # A float goes through its shortest text form (0.1 → "0.1"), never its binary expansion.
        try:
            number = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
        except (InvalidOperation, ValueError) as error:
            raise _FieldError(_("Enter a number.")) from error
        if not number.is_finite():
            raise _FieldError(_("Enter a number."))
        if number < minimum or (above_minimum and number == minimum):
            if above_minimum:
                raise _FieldError(_("Enter a number greater than %(minimum)s.") % {"minimum": minimum})
            raise _FieldError(_("Enter a number of at least %(minimum)s.") % {"minimum": minimum})
        if number > maximum:
            raise _FieldError(_("Enter a number of at most %(maximum)s.") % {"maximum": maximum})
        exponent = number.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places:
            raise _FieldError(_("Use at most %(places)d decimal places.") % {"places": places})
        # Stored with the column's places, so what a save returns equals what a later read returns.
        return number.quantize(Decimal(1).scaleb(-places))

    return check


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "on", "yes"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "off", "no", ""}:
        return False
    raise _FieldError(_("Enter true or false."))


def _timezone(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _FieldError(_("This field is required."))
    value = value.strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise _FieldError(_("Unknown time zone (use a name like Europe/Rome).")) from error
    return value


PROGRAMME_FIELDS: dict[str, Checker] = {
    "code": _code,
    "name_it": _text(120),
    "name_en": _text(120),
    "currency_name_it": _text(40),
    "currency_name_en": _text(40),
    "timezone": _timezone,
    "point_value": _decimal(Decimal("0"), Decimal("999999.999999"), 6),
    "rounding": _choice(Rounding),
    "points_per_euro": _decimal(Decimal("0"), Decimal("999999.9999"), 4),
    "expiry_policy": _choice(ExpiryPolicy),
    "expiry_months": _integer(1, 240),
    "expiry_years": _integer(0, 20),
    "expiry_notice_days": _integer(0, 365),
    "pending_days": _integer(0, 365),
    "negative_balance_policy": _choice(NegativeBalancePolicy),
    "max_points_per_transaction": _integer(1, 1_000_000_000_000),
    "tier_metric": _choice(TierMetric),
    "tier_window": _choice(TierWindow),
    "transfer_max_points": _integer(0, 1_000_000_000_000),
    "transfer_max_points_per_month": _integer(0, 1_000_000_000_000),
    "household_max_members": _integer(1, 50),
    "reservation_minutes": _integer(1, 10_080),
    "velocity_max_earns_per_hour": _integer(1, 100_000),
    "velocity_max_points_per_day": _integer(1, 1_000_000_000_000),
    "forfeit_on_cancellation": _boolean,
    "is_coalition": _boolean,
}
PROGRAMME_REQUIRED = ("code", "name_it", "name_en")
TIER_FIELDS: dict[str, Checker] = {
    "code": _code,
    "name_it": _text(80),
    "name_en": _text(80),
    "rank": _integer(0, 50),
    "threshold": _decimal(Decimal("0"), Decimal("999999999999.99"), 2),
    "earn_multiplier": _decimal(Decimal("0"), Decimal("999.99"), 2),
    "support_priority": _integer(0, 3),
    "benefits": lambda value: _benefits(value),
    "color": lambda value: _color(value),
}
TIER_REQUIRED = ("code", "name_it", "name_en")


def _benefits(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [part for part in re.split(r"[\s,]+", value) if part]
    if not isinstance(value, (list, tuple)):
        raise _FieldError(_("Give a list of benefit codes."))
    codes: list[str] = []
    for item in value:
        if not isinstance(item, str) or not CODE_PATTERN.match(item.strip().replace("_", "-")):
            raise _FieldError(_("Benefit codes use lowercase letters, digits, hyphens and underscores."))
        code = item.strip()
        if code not in codes:
            codes.append(code)
    if len(codes) > MAX_BENEFITS:
        raise _FieldError(_("At most %(count)d benefits.") % {"count": MAX_BENEFITS})
    return codes


def _color(value: Any) -> str:
    if not isinstance(value, str) or not COLOR_PATTERN.match(value.strip()):
        raise _FieldError(_("Enter a colour like #c0a060."))
    return value.strip().lower()


def _clean(
    data: Mapping[str, Any], checks: Mapping[str, Checker], *, required: tuple[str, ...] = ()
) -> tuple[dict[str, Any], dict[str, str]]:
    cleaned: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, value in data.items():
        check = checks.get(key)
        if check is None:
            errors[str(key)] = _("Unknown field.")
            continue
        try:
            cleaned[key] = check(value)
        except _FieldError as error:
            errors[key] = error.message
    for key in required:
        if key not in data and key not in errors:
            errors[key] = _("This field is required.")
    return cleaned, errors


def _programme_snapshot(programme: Programme) -> dict[str, Any]:
    snapshot = {name: getattr(programme, name) for name in PROGRAMME_FIELDS}
    snapshot["status"] = programme.status
    return snapshot


def _tier_snapshot(tier: Tier) -> dict[str, Any]:
    return {name: getattr(tier, name) for name in TIER_FIELDS}


# -- programmes ------------------------------------------------------------------------------------


def programme_create(*, actor: Actor | None, data: Mapping[str, Any]) -> Programme:
    """A new programme in draft; ``data`` holds model field names (unknown keys are refused)."""
    require_manager(actor)
    cleaned, errors = _clean(data, PROGRAMME_FIELDS, required=PROGRAMME_REQUIRED)
    code = cleaned.get("code")
    if code and Programme.objects.filter(code=code).exists():
        errors["code"] = _("Another programme has this code.")
    if errors:
        raise ValidationFailed(_("The programme is not valid."), code="validation_error", fields=errors)
    with transaction.atomic():
        programme = Programme(status=ProgrammeStatus.DRAFT, **cleaned)
        programme.save()
        audit.record(
            action="loyalty.programme_created",
            object_type="loyalty.programme",
            object_id=str(programme.public_id),
            after=_programme_snapshot(programme),
            actor_id=actor.user_id if actor else None,
        )
    return programme


def programme_update(*, actor: Actor | None, programme: Programme, changes: Mapping[str, Any]) -> Programme:
    """Change settings. The code may change only while the programme is a draft (it is in URLs, the API
    and events); a closed programme cannot be changed."""
    require_manager(actor)
    cleaned, errors = _clean(changes, PROGRAMME_FIELDS)
    if programme.status == ProgrammeStatus.CLOSED:
        raise Conflict(_("A closed programme cannot be changed."), code="programme_closed")
    if "code" in cleaned and cleaned["code"] != programme.code:
        if programme.status != ProgrammeStatus.DRAFT:
            errors["code"] = _("The code cannot change once the programme is active.")
        elif Programme.objects.filter(code=cleaned["code"]).exclude(pk=programme.pk).exists():
            errors["code"] = _("Another programme has this code.")
    if errors:
        raise ValidationFailed(_("The programme is not valid."), code="validation_error", fields=errors)
    with transaction.atomic():
        locked = Programme.objects.select_for_update().get(pk=programme.pk)
        before = _programme_snapshot(locked)
        for name, value in cleaned.items():
            setattr(locked, name, value)
        locked.save()
        audit.record(
            action="loyalty.programme_updated",
            object_type="loyalty.programme",
            object_id=str(locked.public_id),
            before=before,
            after=_programme_snapshot(locked),
            actor_id=actor.user_id if actor else None,
        )
    _sync(programme, locked, [*cleaned, "updated_at"])
    return locked


def _sync(original: Any, locked: Any, names: list[str]) -> None:
    """The caller's instance shows the saved values too (it is often reused right after)."""
    if original is not locked:
        for name in names:
            setattr(original, name, getattr(locked, name))


def programme_set_status(*, actor: Actor | None, programme: Programme, status: str) -> Programme:
    """draft → active → closed. Activating needs a valid tier ladder (or none); closing needs no held
    reservation (confirm or cancel them first)."""
    require_manager(actor)
    if status not in ProgrammeStatus.values:
        raise ValidationFailed(
            _("Unknown status."),
            code="validation_error",
            fields={
                "status": _("Choose one of: %(values)s.") % {"values": ", ".join(ProgrammeStatus.values)}
            },
        )
    with transaction.atomic():
        locked = Programme.objects.select_for_update().get(pk=programme.pk)
        current = ProgrammeStatus(locked.status)
        target = ProgrammeStatus(status)
        if target not in STATUS_TRANSITIONS[current]:
            raise Conflict(
                _("A programme cannot go from %(current)s to %(target)s.")
                % {"current": current.label, "target": target.label},
                code="invalid_status_transition",
            )
        if target == ProgrammeStatus.CLOSED:
            held = Reservation.objects.filter(programme=locked, state=Reservation.State.HELD).count()
            if held:
                raise Conflict(
                    _("%(count)d reservations are still held: confirm or cancel them first.")
                    % {"count": held},
                    code="reservations_held",
                )
        if target == ProgrammeStatus.ACTIVE:
            problem = _ladder_problem(list(Tier.objects.filter(programme=locked).order_by("rank")))
            if problem:
                raise Conflict(problem, code="invalid_tiers")
        before = locked.status
        locked.status = target
        locked.save(update_fields=["status", "updated_at"])
        audit.record(
            action="loyalty.programme_status_changed",
            object_type="loyalty.programme",
            object_id=str(locked.public_id),
            before={"status": before},
            after={"status": locked.status},
            actor_id=actor.user_id if actor else None,
        )
    _sync(programme, locked, ["status", "updated_at"])
    return locked


# -- tiers -----------------------------------------------------------------------------------------


def _ladder_problem(tiers: list[Tier]) -> str:
    """Why a rank-ordered list of tiers is not a valid ladder ("" when it is)."""
    for index, tier in enumerate(tiers):
        if tier.rank != index:
            return _("Tier ranks must be contiguous from 0.")
        if index == 0 and tier.threshold != 0:
            return _("The base tier (rank 0) must have threshold 0.")
        if index > 0 and tier.threshold <= tiers[index - 1].threshold:
            return _("Thresholds must increase strictly with the rank.")
    return ""


def _check_threshold(tier_rank: int, threshold: Decimal, others: list[Tier], errors: dict[str, str]) -> None:
    if tier_rank == 0 and threshold != 0:
        errors["threshold"] = _("The base tier (rank 0) must have threshold 0.")
        return
    below = [tier for tier in others if tier.rank < tier_rank]
    above = [tier for tier in others if tier.rank > tier_rank]
    if below and threshold <= below[-1].threshold:
        errors["threshold"] = _("The threshold must be higher than %(tier)s's (%(threshold)s).") % {
            "tier": below[-1].name_en,
            "threshold": below[-1].threshold,
        }
    elif above and threshold >= above[0].threshold:
        errors["threshold"] = _("The threshold must be lower than %(tier)s's (%(threshold)s).") % {
            "tier": above[0].name_en,
            "threshold": above[0].threshold,
        }


def tier_create(*, actor: Actor | None, programme: Programme, data: Mapping[str, Any]) -> Tier:
    """Add a tier on top of the ladder (rank = number of tiers so far unless given, and then it must be
    exactly that: ranks stay contiguous from 0)."""
    require_manager(actor)
    if programme.status == ProgrammeStatus.CLOSED:
        raise Conflict(_("A closed programme cannot be changed."), code="programme_closed")
    cleaned, errors = _clean(data, TIER_FIELDS, required=TIER_REQUIRED)
    with transaction.atomic():
        Programme.objects.select_for_update().filter(pk=programme.pk).first()
        existing = list(Tier.objects.filter(programme=programme).order_by("rank"))
        expected_rank = len(existing)
        rank = cleaned.get("rank", expected_rank)
        code = cleaned.get("code")
        if code and any(tier.code == code for tier in existing):
            errors["code"] = _("Another tier of this programme has this code.")
        if "rank" not in errors:
            if any(tier.rank == rank for tier in existing):
                errors["rank"] = _("Another tier of this programme has rank %(rank)d.") % {"rank": rank}
            elif rank != expected_rank:
                errors["rank"] = _("Ranks are contiguous from 0: the next rank is %(rank)d.") % {
                    "rank": expected_rank
                }
        if "threshold" not in errors and "rank" not in errors:
            _check_threshold(rank, cleaned.get("threshold", Decimal("0")), existing, errors)
        if errors:
            code_name = "validation_error"
            if set(errors) == {"code"} and code and any(tier.code == code for tier in existing):
                code_name = "duplicate_code"
            elif set(errors) == {"rank"} and any(tier.rank == rank for tier in existing):
                code_name = "duplicate_rank"
            raise ValidationFailed(_("The tier is not valid."), code=code_name, fields=errors)
        cleaned["rank"] = rank
        tier = Tier(programme=programme, **cleaned)
        tier.save()
        audit.record(
            action="loyalty.tier_created",
            object_type="loyalty.tier",
            object_id=f"{programme.code}:{tier.code}",
            after=_tier_snapshot(tier),
            actor_id=actor.user_id if actor else None,
        )
    return tier


def tier_update(*, actor: Actor | None, tier: Tier, changes: Mapping[str, Any]) -> Tier:
    """Change names, threshold (still strictly between the neighbours'), multiplier, priority, benefits,
    colour. Code and rank are fixed once created."""
    require_manager(actor)
    cleaned, errors = _clean(changes, TIER_FIELDS)
    if "code" in cleaned and cleaned["code"] != tier.code:
        errors["code"] = _("The code of a tier cannot change: create a new tier instead.")
    if "rank" in cleaned and cleaned["rank"] != tier.rank:
        errors["rank"] = _("The rank of a tier cannot change.")
    with transaction.atomic():
        Programme.objects.select_for_update().filter(pk=tier.programme_id).first()
        locked = Tier.objects.select_for_update().get(pk=tier.pk)
        if locked.programme.status == ProgrammeStatus.CLOSED:
            raise Conflict(_("A closed programme cannot be changed."), code="programme_closed")
        if "threshold" in cleaned and "threshold" not in errors:
            others = list(Tier.objects.filter(programme_id=locked.programme_id).exclude(pk=locked.pk))
            _check_threshold(locked.rank, cleaned["threshold"], sorted(others, key=lambda t: t.rank), errors)
        if errors:
            raise ValidationFailed(_("The tier is not valid."), code="validation_error", fields=errors)
        before = _tier_snapshot(locked)
        for name, value in cleaned.items():
            setattr(locked, name, value)
        locked.save()
        audit.record(
            action="loyalty.tier_updated",
            object_type="loyalty.tier",
            object_id=f"{locked.programme.code}:{locked.code}",
            before=before,
            after=_tier_snapshot(locked),
            actor_id=actor.user_id if actor else None,
        )
    _sync(tier, locked, list(cleaned))
    return locked


def tier_delete(*, actor: Actor | None, tier: Tier) -> None:
    """Remove a tier nobody is in and nobody has been in; the ranks above move down by one. The base
    tier can go only when it is the last one."""
    require_manager(actor)
    with transaction.atomic():
        Programme.objects.select_for_update().filter(pk=tier.programme_id).first()
        locked = Tier.objects.select_for_update().select_related("programme").get(pk=tier.pk)
        members = Member.objects.filter(tier=locked).count()
        if members:
            raise Conflict(
                _("%(count)d members are in this tier: move them first.") % {"count": members},
                code="tier_in_use",
            )
        if (
            TierChange.objects.filter(from_tier=locked).exists()
            or TierChange.objects.filter(to_tier=locked).exists()
        ):
            raise Conflict(
                _("Members have been in this tier (see their tier history): it cannot be deleted."),
                code="tier_in_use",
            )
        above = list(
            Tier.objects.select_for_update().filter(programme_id=locked.programme_id, rank__gt=locked.rank)
        )
        if locked.rank == 0 and above:
            raise Conflict(
                _("The base tier can be deleted only when it is the last tier."), code="base_tier_required"
            )
        snapshot = _tier_snapshot(locked)
        object_id = f"{locked.programme.code}:{locked.code}"
        locked.delete()
        for moved in sorted(above, key=lambda t: t.rank):
            moved.rank -= 1
            moved.save(update_fields=["rank"])
        audit.record(
            action="loyalty.tier_deleted",
            object_type="loyalty.tier",
            object_id=object_id,
            before=snapshot,
            actor_id=actor.user_id if actor else None,
        )

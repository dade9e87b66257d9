"""The rewards catalogue and voucher code pools: create and update rewards (every field validated
together, one error listing each bad field), generate unique random codes, import bought codes (all or
nothing, problems reported by line). Re-exported by ``fedele.loyalty.services.rewards``."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone as django_timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.customers.contracts import Segment
from fedele.loyalty.models import Partner, Programme, Redemption, Reward, RewardKind, Tier, VoucherCode
from fedele.shared import audit
from fedele.shared.csvfiles import csv_lines
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed

MANAGE = "loyalty.manage_loyalty"
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000")
MAX_STOCK = 10_000_000
# Codes people read aloud and type: no 0/O or 1/I to confuse.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
MAX_GENERATE = 100_000
# At most one random guess in a million may hit a valid code of the pool.
GUESS_RESISTANCE = 1_000_000
MAX_IMPORT = 100_000
MIN_CODE_LENGTH = 6
MAX_CODE_LENGTH = 32
PREFIX_PATTERN = re.compile(r"[A-Z0-9-]{0,20}")
IMPORTED_CODE_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,64}")
SLUG_PATTERN = re.compile(r"[-a-zA-Z0-9_]{1,40}")
BULK_BATCH = 5_000

TEXT_FIELDS = {
    "name_it": 120,
    "name_en": 120,
    "description_it": 5_000,
    "description_en": 5_000,
    "image_url": 300,
    "charity_name": 120,
}
REWARD_FIELDS = frozenset(
    {
        "code",
        "kind",
        *TEXT_FIELDS,
        "points_cost",
        "cash_price",
        "credit_amount",
        "stock",
        "per_member_limit",
        "eligible_tiers",
        "eligible_segments",
        "partner",
        "valid_from",
        "valid_until",
        "active",
        "position",
    }
)


# ----------------------------------------------------------------------------------------------
# Authorisation


def actor_id(actor: Actor | None) -> int | None:
    return actor.user_id if actor is not None and actor.user_id else None


def deny() -> PermissionDenied:
    return PermissionDenied(_("You do not have permission for this action."))


def _authorise_manage(actor: Actor | None) -> None:
    if actor is not None and not actor.can(MANAGE):
        raise deny()


# ----------------------------------------------------------------------------------------------
# Catalogue: validation


def _invalid(field: str, message: str, code: str = "invalid_reward") -> ValidationFailed:
    return ValidationFailed(_("The reward is not valid."), code=code, fields={field: message})


def whole_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,19}", value.strip()):
        return int(value.strip())
    return None


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, (bool, float)):
        return None
    try:
        amount = Decimal(str(value).strip()) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        return None
    return amount if amount.is_finite() else None


def _aware(value: Any, zone: str) -> tuple[datetime | None, bool]:
    """(moment, valid): a datetime or ISO text (a naive one is read in the programme's time zone);
    empty means none."""
    if value is None or value == "":
        return None, True
    moment = (
        value if isinstance(value, datetime) else parse_datetime(value) if isinstance(value, str) else None
    )
    if moment is None:
        return None, False
    if django_timezone.is_naive(moment):
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment, True


def _clean_reward(
    programme: Programme, values: Mapping[str, Any], *, existing: Reward | None
) -> dict[str, Any]:
    """Every field of the reward checked together; one ValidationFailed listing each bad field."""
    errors: dict[str, list[str]] = {}

    def fail(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    cleaned: dict[str, Any] = {}
    code = str(values.get("code") or "").strip()
    if not SLUG_PATTERN.fullmatch(code):
        fail("code", _("Use 1-40 letters, digits, hyphens or underscores."))
    elif (
        Reward.objects.filter(programme=programme, code=code)
        .exclude(pk__in=[existing.pk] if existing else [])
        .exists()
    ):
        fail("code", _("Another reward of this programme has this code."))
    cleaned["code"] = code

    kind = str(values.get("kind") or "")
    if kind not in RewardKind.values:
        fail("kind", _("Choose a kind of reward."))
    cleaned["kind"] = kind

    for name, limit in TEXT_FIELDS.items():
        text = str(values.get(name) or "").strip()
        if len(text) > limit:
            fail(name, _("At most %(max)s characters.") % {"max": limit})
        cleaned[name] = text
    for name in ("name_it", "name_en"):
        if not cleaned[name]:
            fail(name, _("Required."))
    image = cleaned["image_url"]
    local_path = image.startswith("/") and not image.startswith("//")
    if image and not (image.startswith(("https://", "http://")) or local_path):
        fail("image_url", _("Use an https:// address or a path starting with /."))

    points_cost = whole_number(values.get("points_cost"))
    if points_cost is None or points_cost <= 0:
        fail("points_cost", _("Enter a whole number of points greater than zero."))
    elif points_cost > programme.max_points_per_transaction:
        fail(
            "points_cost",
            _("At most %(max)s points (the programme's maximum per transaction).")
            % {"max": programme.max_points_per_transaction},
        )
    cleaned["points_cost"] = points_cost

    for name in ("cash_price", "credit_amount"):
        raw = values.get(name)
        amount = Decimal("0") if raw is None or raw == "" else _decimal(raw)
        if amount is None:
            fail(name, _("Enter an amount in EUR, e.g. 9.90."))
        elif amount < 0 or amount > MAX_AMOUNT:
            fail(name, _("Enter an amount between 0 and %(max)s EUR.") % {"max": MAX_AMOUNT})
        elif amount != amount.quantize(CENT, rounding=ROUND_HALF_UP):
            fail(name, _("At most two decimals."))
        else:
            cleaned[name] = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    credit = cleaned.get("credit_amount")
    if kind == RewardKind.BILLING_CREDIT and credit is not None and credit <= 0:
        fail("credit_amount", _("A discount on the next invoice needs an amount greater than zero."))
    if kind and kind != RewardKind.BILLING_CREDIT and credit:
        fail("credit_amount", _("Only a discount on the next invoice has a credit amount."))

    for name, minimum, maximum in (("stock", 0, MAX_STOCK), ("per_member_limit", 1, MAX_STOCK)):
        raw = values.get(name)
        if raw is None or raw == "":
            cleaned[name] = None
            continue
        number = whole_number(raw)
        if number is None or not minimum <= number <= maximum:
            fail(
                name,
                _("Enter a whole number from %(min)s to %(max)s, or leave it empty.")
                % {"min": minimum, "max": maximum},
            )
        cleaned[name] = number

    position = whole_number(values.get("position", 0) if values.get("position") not in (None, "") else 0)
    if position is None or not 0 <= position <= 32767:
        fail("position", _("Enter a whole number from 0 to 32767."))
    cleaned["position"] = position
    active = values.get("active")
    cleaned["active"] = (existing.active if existing else True) if active is None else bool(active)

    tiers = _code_list(values.get("eligible_tiers"))
    if tiers is None:
        fail("eligible_tiers", _("Give a list of tier codes."))
    else:
        known = set(Tier.objects.filter(programme=programme).values_list("code", flat=True))
        unknown = [code for code in tiers if code not in known]
        if unknown:
            fail("eligible_tiers", _("Unknown tiers: %(codes)s.") % {"codes": ", ".join(unknown)})
    cleaned["eligible_tiers"] = tiers or []

    segments = _code_list(values.get("eligible_segments"))
    if segments is None:
        fail("eligible_segments", _("Give a list of customer segments."))
    else:
        unknown = [code for code in segments if code not in {s.value for s in Segment}]
        if unknown:
            fail("eligible_segments", _("Unknown segments: %(codes)s.") % {"codes": ", ".join(unknown)})
    cleaned["eligible_segments"] = segments or []

    partner_value = values.get("partner")
    partner: Partner | None = None
    if isinstance(partner_value, Partner):
        partner = partner_value if partner_value.programme_id == programme.pk else None
        if partner is None:
            fail("partner", _("The partner does not belong to this programme."))
    elif partner_value not in (None, ""):
        partner = Partner.objects.filter(programme=programme, code=str(partner_value).strip()).first()
        if partner is None:
            fail("partner", _("Unknown partner of this programme."))
    if kind == RewardKind.PARTNER and partner is None and "partner" not in errors:
        fail("partner", _("A partner reward needs its partner."))
    if kind and kind != RewardKind.PARTNER and partner is not None:
        fail("partner", _("Only a partner reward has a partner."))
    cleaned["partner"] = partner

    if kind == RewardKind.DONATION and not cleaned["charity_name"]:
        fail("charity_name", _("A donation needs the name of the charity."))
    if kind and kind != RewardKind.DONATION and cleaned["charity_name"]:
        fail("charity_name", _("Only a donation has a charity."))

    for name in ("valid_from", "valid_until"):
        moment, valid = _aware(values.get(name), programme.timezone)
        if not valid:
            fail(name, _("Enter a date and time, e.g. 2026-03-01T00:00."))
        cleaned[name] = moment
    if cleaned["valid_from"] and cleaned["valid_until"] and cleaned["valid_until"] <= cleaned["valid_from"]:
        fail("valid_until", _("The end must come after the start."))

    if errors:
        raise ValidationFailed(_("The reward is not valid."), code="invalid_reward", fields=errors)
    return cleaned


def _code_list(value: Any) -> list[str] | None:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = [part for part in re.split(r"[,\s]+", value) if part]
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        return None
    return sorted({item.strip() for item in value if item.strip()})


def _snapshot(reward: Reward) -> dict[str, Any]:
    return {
        "code": reward.code,
        "kind": reward.kind,
        "name_it": reward.name_it,
        "name_en": reward.name_en,
        "points_cost": reward.points_cost,
        "cash_price": reward.cash_price,
        "credit_amount": reward.credit_amount,
        "stock": reward.stock,
        "per_member_limit": reward.per_member_limit,
        "eligible_tiers": reward.eligible_tiers,
        "eligible_segments": reward.eligible_segments,
        "partner": reward.partner.code if reward.partner_id and reward.partner else "",
        "charity_name": reward.charity_name,
        "valid_from": reward.valid_from,
        "valid_until": reward.valid_until,
        "active": reward.active,
        "position": reward.position,
    }


def _unknown_keys(data: Mapping[str, Any]) -> None:
    unknown = sorted(set(data) - REWARD_FIELDS)
    if unknown:
        raise ValidationFailed(
            _("Unknown fields: %(names)s.") % {"names": ", ".join(unknown)},
            code="unknown_fields",
            fields=dict.fromkeys(unknown, _("Unknown field.")),
        )


# ----------------------------------------------------------------------------------------------
# Catalogue: writes


def reward_create(*, actor: Actor | None, programme: Programme, data: Mapping[str, Any]) -> Reward:
    _authorise_manage(actor)
    _unknown_keys(data)
    cleaned = _clean_reward(programme, data, existing=None)
    with transaction.atomic():
        reward = Reward.objects.create(programme=programme, **cleaned)
        audit.record(
            action="loyalty.reward_created",
            object_type="loyalty.reward",
            object_id=str(reward.public_id),
            after=_snapshot(reward),
            actor_id=actor_id(actor),
        )
    return reward


def reward_update(*, actor: Actor | None, reward: Reward, changes: Mapping[str, Any]) -> Reward:
    """Change a catalogue item. Once redeemed, its kind and points cost are fixed (the redemptions
    made at that price stay readable: deactivate it and create a new reward instead)."""
    _authorise_manage(actor)
    _unknown_keys(changes)
    current = Reward.objects.select_related("partner", "programme").get(pk=reward.pk)
    merged: dict[str, Any] = {name: getattr(current, name) for name in REWARD_FIELDS}
    merged.update(changes)
    cleaned = _clean_reward(current.programme, merged, existing=current)
    with transaction.atomic():
        locked = Reward.objects.select_for_update(of=("self",)).select_related("partner").get(pk=reward.pk)
        before = _snapshot(locked)
        fixed = ("kind", "points_cost")
        if any(cleaned[name] != getattr(locked, name) for name in fixed) and (
            Redemption.objects.filter(reward=locked).exclude(state=Redemption.State.CANCELLED).exists()
        ):
            raise Conflict(
                _(
                    "This reward has been redeemed: its kind and points cost cannot change. "
                    "Deactivate it and create a new reward instead."
                ),
                code="reward_already_redeemed",
                fields={
                    name: _("Fixed once redeemed.")
                    for name in fixed
                    if cleaned[name] != getattr(locked, name)
                },
            )
        for name, value in cleaned.items():
            setattr(locked, name, value)
        locked.save()
        audit.record(
            action="loyalty.reward_updated",
            object_type="loyalty.reward",
            object_id=str(locked.public_id),
            before=before,
            after=_snapshot(locked),
            actor_id=actor_id(actor),
        )
    _copy_fields(locked, reward)
    return locked


def _copy_fields(source: Reward, target: Reward) -> None:
    if source is target:
        return
    for field in Reward._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))


def _voucher_reward(reward: Reward) -> None:
    if reward.kind != RewardKind.VOUCHER:
        raise ValidationFailed(
            _("Only a voucher reward has a pool of codes."),
            code="not_a_voucher_reward",
            fields={"reward": _("Not a voucher reward.")},
        )


def voucher_codes_generate(
    *, actor: Actor | None, reward: Reward, count: int, prefix: str = "", length: int = 10
) -> int:
    """Add ``count`` unique random codes (``prefix`` + ``length`` characters from an alphabet without
    0/O/1/I) to a voucher reward's pool. Returns how many were added (always ``count``)."""
    _authorise_manage(actor)
    _voucher_reward(reward)
    errors: dict[str, str] = {}
    number = whole_number(count)
    if number is None or not 1 <= number <= MAX_GENERATE:
        errors["count"] = _("Enter a whole number from 1 to %(max)s.") % {"max": f"{MAX_GENERATE:,}"}
    size = whole_number(length)
    if size is None or not MIN_CODE_LENGTH <= size <= MAX_CODE_LENGTH:
        errors["length"] = _("Enter a length from %(min)s to %(max)s.") % {
            "min": MIN_CODE_LENGTH,
            "max": MAX_CODE_LENGTH,
        }
    start = str(prefix or "").strip().upper()
    if not PREFIX_PATTERN.fullmatch(start):
        errors["prefix"] = _("Use at most 20 letters, digits or hyphens.")
    if not errors and number is not None and size is not None:
        pool = number + VoucherCode.objects.filter(reward=reward).count()
        if len(CODE_ALPHABET) ** size < pool * GUESS_RESISTANCE:
            # Too short for so many codes: a random guess would too often hit a valid code.
            errors["length"] = _("Too short for %(count)s codes: use a longer code.") % {"count": pool}
    if errors:
        raise ValidationFailed(
            _("The codes cannot be generated."), code="invalid_codes_request", fields=errors
        )
    assert number is not None and size is not None
    with transaction.atomic():
        Reward.objects.select_for_update().filter(pk=reward.pk).first()
        taken = set(
            VoucherCode.objects.filter(reward=reward, code__startswith=start).values_list("code", flat=True)
        )
        fresh: set[str] = set()
        while len(fresh) < number:
            candidate = start + "".join(secrets.choice(CODE_ALPHABET) for _position in range(size))
            if candidate not in taken:
                fresh.add(candidate)
        VoucherCode.objects.bulk_create(
            [VoucherCode(reward=reward, code=code) for code in sorted(fresh)], batch_size=BULK_BATCH
        )
        audit.record(
            action="loyalty.voucher_codes_generated",
            object_type="loyalty.reward",
            object_id=str(reward.public_id),
            after={"count": number, "prefix": start, "length": size},
            actor_id=actor_id(actor),
        )
    return number


@dataclass(frozen=True, slots=True)
class ImportResult:
    imported: int
    lines: int
    """Lines read (the header and blank lines included)."""
    skipped_blank: int


def voucher_codes_import(
    *,
    actor: Actor | None,
    reward: Reward,
    csv_text: str | None = None,
    lines: Sequence[str] | None = None,
) -> ImportResult:
    """Import codes bought from a partner: one code per line (CSV: the first column; a first line
    ``code`` is a header). All or nothing: a bad or duplicate code anywhere (in the file or already in
    the pool) imports none and every problem is reported with its line number."""
    _authorise_manage(actor)
    _voucher_reward(reward)
    if (csv_text is None) == (lines is None):
        raise ValidationFailed(
            _("Give the codes as CSV text or as a list of lines."),
            code="invalid_import",
            fields={"csv_text": _("Required.")},
        )
    rows: list[tuple[int, str]]
    if lines is not None:
        rows = [(number, str(line)) for number, line in enumerate(lines, start=1)]
    else:
        rows = [(number, cells[0] if cells else "") for number, cells in csv_lines(str(csv_text))]
    if len(rows) > MAX_IMPORT + 1:
        raise ValidationFailed(
            _("At most %(max)s codes per import.") % {"max": f"{MAX_IMPORT:,}"},
            code="import_too_large",
            fields={"csv_text": _("Too many lines.")},
        )
    errors: dict[str, list[str]] = {}
    first_seen: dict[str, int] = {}
    blank = 0
    for index, (number, raw) in enumerate(rows):
        code = raw.strip()
        if index == 0 and code.lower() == "code":
            continue
        if not code:
            blank += 1
            continue
        if not IMPORTED_CODE_PATTERN.fullmatch(code):
            errors[f"line {number}"] = [
                _("'%(code)s' is not a valid code (1-64 letters, digits, - or _).") % {"code": code[:70]}
            ]
            continue
        if code in first_seen:
            errors[f"line {number}"] = [_("Duplicate of line %(line)s.") % {"line": first_seen[code]}]
            continue
        first_seen[code] = number
    if not first_seen and not errors:
        raise ValidationFailed(
            _("The file has no codes."), code="empty_import", fields={"csv_text": _("No codes.")}
        )
    with transaction.atomic():
        Reward.objects.select_for_update().filter(pk=reward.pk).first()
        wanted = list(first_seen)
        existing: set[str] = set()
        for start in range(0, len(wanted), BULK_BATCH):
            chunk = wanted[start : start + BULK_BATCH]
            existing.update(
                VoucherCode.objects.filter(reward=reward, code__in=chunk).values_list("code", flat=True)
            )
        for code in sorted(existing, key=lambda c: first_seen[c]):
            errors[f"line {first_seen[code]}"] = [_("'%(code)s' is already in the pool.") % {"code": code}]
        if errors:
            ordered = dict(sorted(errors.items(), key=lambda item: int(item[0].split()[1])))
            raise ValidationFailed(
                _("%(count)s lines have problems: nothing was imported.") % {"count": len(ordered)},
                code="invalid_import",
                fields=ordered,
            )
        VoucherCode.objects.bulk_create(
            [VoucherCode(reward=reward, code=code, imported=True) for code in first_seen],
            batch_size=BULK_BATCH,
        )
        audit.record(
            action="loyalty.voucher_codes_imported",
            object_type="loyalty.reward",
            object_id=str(reward.public_id),
            after={"count": len(first_seen)},
            actor_id=actor_id(actor),
        )
    return ImportResult(imported=len(first_seen), lines=len(rows), skipped_blank=blank)

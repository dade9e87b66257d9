"""The rewards catalogue, voucher code pools and redemptions.

A redemption is one database transaction that locks the reward row (stock, code pool, per-member
limit) and, through the ledger's hold, the member row; it checks eligibility under those locks,
takes the stock, holds the points (plus the cash part) in a ledger reservation and reserves a voucher
code. Confirming turns the hold into the REDEEM posting and fulfils the reward (code issued, credit
on the next invoice, item queued for shipping, donation made); cancelling gives everything back.

Lock order, everywhere: redemption → reward → member (the member is locked by the ledger).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import override

from fedele.accounts.contracts import Actor
from fedele.billing.facade import charge_customer
from fedele.loyalty.models import Member, Redemption, Reservation, Reward, RewardKind, VoucherCode
from fedele.loyalty.selectors import rewards as selectors
from fedele.loyalty.services import ledger
from fedele.loyalty.services.ledger_core import acts_for_partner, owns_member
from fedele.loyalty.services.rewards_catalogue import (
    MANAGE,
    REWARD_FIELDS,
    ImportResult,
    actor_id,
    deny,
    reward_create,
    reward_update,
    voucher_codes_generate,
    voucher_codes_import,
    whole_number,
)
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, ValidationFailed

__all__ = [
    "MANAGE",
    "OPERATE",
    "REWARD_FIELDS",
    "ImportResult",
    "redemption_cancel",
    "redemption_confirm",
    "redemption_ship",
    "reservations_expired_cleanup",
    "reward_create",
    "reward_eligibility",
    "reward_redeem",
    "reward_update",
    "voucher_codes_generate",
    "voucher_codes_import",
]

logger = logging.getLogger(__name__)

OPERATE = "loyalty.operate_loyalty"
CENT = Decimal("0.01")
MAX_QUANTITY = 1_000
MAX_KEY_LENGTH = 90
KEY_PREFIX = "reward:"
POSTCODE_IT = re.compile(r"\d{5}")
POSTCODE_OTHER = re.compile(r"[A-Za-z0-9][A-Za-z0-9 \-]{1,10}")
COUNTRY_PATTERN = re.compile(r"[A-Z]{2}")
ADDRESS_FIELDS = {
    "name": 120,
    "street": 200,
    "city": 80,
    "postcode": 12,
    "country": 2,
    "province": 40,
    "phone": 30,
}
REQUIRED_ADDRESS_FIELDS = ("name", "street", "city", "postcode", "country")
CONFIRMED_STATES = (
    Redemption.State.FULFILLED,
    Redemption.State.AWAITING_SHIPMENT,
    Redemption.State.SHIPPED,
)


# ----------------------------------------------------------------------------------------------
# Authorisation


def _authorise_redeem(actor: Actor | None, member: Member, reward: Reward) -> None:
    """Staff who operate loyalty, the member itself in the portal, or the partner of a partner reward."""
    if actor is None or actor.can(OPERATE):
        return
    if owns_member(actor, member):
        return
    if reward.kind == RewardKind.PARTNER and acts_for_partner(actor, reward.partner):
        return
    raise deny()


def _authorise_confirm(actor: Actor | None, redemption: Redemption) -> None:
    """The member may confirm its own redemption only when nothing is left to pay: a points-plus-cash
    redemption is confirmed by whoever took the cash (staff, or the partner at its till)."""
    if actor is None or actor.can(OPERATE):
        return
    reward = redemption.reward
    if reward.kind == RewardKind.PARTNER and acts_for_partner(actor, reward.partner):
        return
    if redemption.cash_amount == 0 and owns_member(actor, redemption.member):
        return
    raise deny()


def _authorise_cancel(actor: Actor | None, redemption: Redemption) -> None:
    """Staff; the member (portal) or the partner only while the redemption is still a reservation."""
    if actor is None or actor.can(OPERATE):
        return
    if redemption.state == Redemption.State.RESERVED:
        if owns_member(actor, redemption.member):
            return
        reward = redemption.reward
        if reward.kind == RewardKind.PARTNER and acts_for_partner(actor, reward.partner):
            return
    raise deny()


# ----------------------------------------------------------------------------------------------
# Eligibility


def reward_eligibility(
    *, member: Member, reward: Reward, at: datetime | None = None, quantity: int = 1
) -> list[str]:
    """The reasons ``member`` cannot redeem ``reward`` now ([] = it can); codes as in
    ``selectors.rewards.REASON_MESSAGES``."""
    return selectors.eligibility_reasons(member=member, reward=reward, at=at, quantity=quantity)


def _refuse(reasons: list[str]) -> ValidationFailed:
    messages = [selectors.reason_message(code) for code in reasons]
    return ValidationFailed(messages[0], code=reasons[0], fields={"reward": messages})


# ----------------------------------------------------------------------------------------------
# Redemption


def _clean_key(idempotency_key: str) -> str:
    key = str(idempotency_key or "").strip()
    if not key:
        raise ValidationFailed(
            _("An idempotency key is required."),
            code="idempotency_key_required",
            fields={"idempotency_key": _("Required.")},
        )
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed(
            _("The idempotency key may have at most %(max)s characters.") % {"max": MAX_KEY_LENGTH},
            code="invalid_idempotency_key",
            fields={"idempotency_key": _("Too long.")},
        )
    return key


def _clean_address(address: Mapping[str, str] | None) -> dict[str, str]:
    if not address:
        raise ValidationFailed(
            _("A physical reward needs a shipping address."),
            code="shipping_address_required",
            fields={"shipping_address": _("Required.")},
        )
    if not isinstance(address, Mapping):
        raise ValidationFailed(
            _("The shipping address is not valid."),
            code="invalid_shipping_address",
            fields={"shipping_address": _("Give name, street, city, postcode and country.")},
        )
    errors: dict[str, str] = {}
    cleaned: dict[str, str] = {}
    for key in sorted(set(address) - set(ADDRESS_FIELDS)):
        errors[f"shipping_address.{key}"] = _("Unknown field.")
    for key, limit in ADDRESS_FIELDS.items():
        value = address.get(key, "")
        text = value.strip() if isinstance(value, str) else ""
        if not isinstance(value, str):
            errors[f"shipping_address.{key}"] = _("Enter text.")
        elif key in REQUIRED_ADDRESS_FIELDS and not text:
            errors[f"shipping_address.{key}"] = _("Required.")
        elif len(text) > limit:
            errors[f"shipping_address.{key}"] = _("At most %(max)s characters.") % {"max": limit}
        if text:
            cleaned[key] = text
    country = cleaned.get("country", "").upper()
    if country:
        cleaned["country"] = country
        if not COUNTRY_PATTERN.fullmatch(country):
            errors["shipping_address.country"] = _("Use the two-letter country code, e.g. IT.")
    postcode = cleaned.get("postcode", "")
    if postcode and "shipping_address.postcode" not in errors:
        if country == "IT" and not POSTCODE_IT.fullmatch(postcode):
            errors["shipping_address.postcode"] = _("An Italian postcode has 5 digits.")
        elif country != "IT" and not POSTCODE_OTHER.fullmatch(postcode):
            errors["shipping_address.postcode"] = _("Not a valid postcode.")
    if errors:
        raise ValidationFailed(
            _("The shipping address is not valid."), code="invalid_shipping_address", fields=errors
        )
    return cleaned


def _existing(programme_id: int, key: str) -> Redemption | None:
    return (
        Redemption.objects.select_related("reward", "member", "reservation", "voucher")
        .filter(reservation__programme_id=programme_id, reservation__idempotency_key=KEY_PREFIX + key)
        .first()
    )


def _replay(existing: Redemption, member: Member, reward: Reward) -> Redemption:
    if existing.member_id != member.pk or existing.reward_id != reward.pk:
        raise Conflict(
            _("This idempotency key was already used for another redemption."),
            code="idempotency_key_reused",
            fields={"idempotency_key": _("Already used.")},
        )
    return existing


def reward_redeem(
    *,
    actor: Actor | None,
    member: Member,
    reward: Reward,
    idempotency_key: str,
    quantity: int = 1,
    shipping_address: Mapping[str, str] | None = None,
    confirm: bool = True,
) -> Redemption:
    """Redeem ``quantity`` × ``reward`` for ``member``: all or nothing, idempotent by key (the same
    key returns the same redemption). ``confirm=False`` leaves it reserved (points held, stock and
    code taken) until ``redemption_confirm`` — e.g. a points-plus-cash checkout once the cash is paid —
    or ``redemption_cancel``/the reservation timeout."""
    _authorise_redeem(actor, member, reward)
    key = _clean_key(idempotency_key)
    found = _existing(member.programme_id, key)
    if found is not None:
        return _replay(found, member, reward)
    units = whole_number(quantity)
    if units is None or not 1 <= units <= MAX_QUANTITY:
        raise ValidationFailed(
            _("The quantity must be a whole number from 1 to %(max)s.") % {"max": MAX_QUANTITY},
            code="invalid_quantity",
            fields={"quantity": _("Invalid quantity.")},
        )
    if reward.kind == RewardKind.VOUCHER and units != 1:
        raise ValidationFailed(
            _("A voucher is redeemed one code at a time."),
            code="invalid_quantity",
            fields={"quantity": _("Must be 1 for a voucher.")},
        )
    if reward.programme_id != member.programme_id:
        raise _refuse(["wrong_programme"])
    points = reward.points_cost * units
    if points > member.programme.max_points_per_transaction:
        raise ValidationFailed(
            _("At most %(max)s points can move in one transaction.")
            % {"max": member.programme.max_points_per_transaction},
            code="points_too_large",
            fields={"quantity": _("Too many.")},
        )
    address = _clean_address(shipping_address) if reward.kind == RewardKind.PHYSICAL else {}
    # A first look without locks: the common refusals cost no lock at all.
    reasons = selectors.eligibility_reasons(member=member, reward=reward, quantity=units)
    if reasons:
        raise _refuse(reasons)
    try:
        with transaction.atomic():
            redemption = _redeem_locked(actor, member, reward, key, units, address, confirm)
    except IntegrityError:
        # A concurrent request with the same key won the race: answer with its redemption.
        found = _existing(member.programme_id, key)
        if found is None:
            raise
        return _replay(found, member, reward)
    fresh = Member.objects.get(pk=member.pk)
    for name in ("available", "pending", "reserved", "debt", "lifetime_redeemed"):
        setattr(member, name, getattr(fresh, name))
    return redemption


def _redeem_locked(
    actor: Actor | None,
    member: Member,
    reward: Reward,
    key: str,
    units: int,
    address: dict[str, str],
    confirm: bool,
) -> Redemption:
    locked = Reward.objects.select_for_update().get(pk=reward.pk)
    found = _existing(member.programme_id, key)
    if found is not None:
        return _replay(found, member, reward)
    current = Member.objects.select_for_update().get(pk=member.pk)
    reasons = selectors.eligibility_reasons(member=current, reward=locked, quantity=units)
    if reasons:
        raise _refuse(reasons)
    now = clock.now()
    if locked.stock is not None:
        locked.stock -= units
        locked.save(update_fields=["stock"])
    reservation = ledger.reservation_hold(
        actor=actor,
        member=current,
        points=locked.points_cost * units,
        idempotency_key=KEY_PREFIX + key,
        source="reward",
        reference=locked.code[:80],
        cash_amount=(locked.cash_price * units).quantize(CENT, rounding=ROUND_HALF_UP),
        reward=locked,
        partner=locked.partner if locked.kind == RewardKind.PARTNER else None,
    )
    if Redemption.objects.filter(reservation=reservation).exists():
        raise Conflict(
            _("This idempotency key was already used for another redemption."),
            code="idempotency_key_reused",
            fields={"idempotency_key": _("Already used.")},
        )
    code: VoucherCode | None = None
    if locked.kind == RewardKind.VOUCHER:
        code = (
            VoucherCode.objects.select_for_update(skip_locked=True)
            .filter(reward=locked, state=VoucherCode.State.AVAILABLE)
            .order_by("id")
            .first()
        )
        if code is None:
            raise _refuse(["no_codes_left"])
        code.state = VoucherCode.State.RESERVED
        code.reservation = reservation
        code.member = current
        code.save(update_fields=["state", "reservation", "member"])
    redemption = Redemption.objects.create(
        reservation=reservation,
        reward=locked,
        member=current,
        state=Redemption.State.RESERVED,
        points=reservation.points,
        cash_amount=reservation.cash_amount,
        voucher=code,
        shipping_address=address,
        created_at=now,
    )
    audit.record(
        action="loyalty.redemption_reserved",
        object_type="loyalty.redemption",
        object_id=str(redemption.public_id),
        after={
            "member": str(current.public_id),
            "reward": locked.code,
            "quantity": units,
            "points": redemption.points,
            "cash_amount": redemption.cash_amount,
            "voucher": code.code if code else "",
            "stock_left": locked.stock,
        },
        actor_id=actor_id(actor),
    )
    if confirm:
        _confirm_locked(actor, redemption, locked)
    return redemption


def _confirm_locked(actor: Actor | None, redemption: Redemption, reward: Reward) -> None:
    """Turn the hold into the REDEEM posting and fulfil the reward; the caller holds the locks."""
    reservation = redemption.reservation
    reservation.refresh_from_db()
    if reservation.state != Reservation.State.HELD or reservation.expires_at <= clock.now():
        raise Conflict(
            _("The reservation has expired: redeem the reward again."),
            code="reservation_expired",
            fields={"redemption": _("Expired.")},
        )
    ledger.reservation_confirm(actor=actor, reservation=reservation, partner_amount=None)
    now = clock.now()
    after: dict[str, Any] = {"kind": reward.kind}
    if reward.kind == RewardKind.VOUCHER:
        assert redemption.voucher_id is not None
        code = VoucherCode.objects.select_for_update().get(pk=redemption.voucher_id)
        code.state = VoucherCode.State.ISSUED
        code.issued_at = now
        code.save(update_fields=["state", "issued_at"])
        redemption.voucher = code
        redemption.state = Redemption.State.FULFILLED
        after["voucher"] = code.code
    elif reward.kind == RewardKind.PHYSICAL:
        redemption.state = Redemption.State.AWAITING_SHIPMENT
    elif reward.kind == RewardKind.BILLING_CREDIT:
        units = selectors.redemption_quantity(redemption, reward)
        credit = (reward.credit_amount * units).quantize(CENT, rounding=ROUND_HALF_UP)
        member = redemption.member
        with override(member.language or "it"):
            description = _("Loyalty reward: %(name)s") % {
                "name": reward.name_it if (member.language or "it") == "it" else reward.name_en
            }
        receipt = charge_customer(
            customer_public_id=str(member.customer.public_id),
            description=description,
            amount=-credit,
            idempotency_key=f"loyalty:{redemption.public_id}",
            source="loyalty",
        )
        redemption.billing_charge_id = receipt.charge_id
        redemption.state = Redemption.State.FULFILLED
        after.update({"credit": credit, "billing_charge_id": receipt.charge_id})
    elif reward.kind == RewardKind.DONATION:
        redemption.state = Redemption.State.FULFILLED
        after["charity"] = reward.charity_name
    else:
        redemption.state = Redemption.State.FULFILLED
        after["partner"] = reward.partner.code if reward.partner else ""
    if redemption.state == Redemption.State.FULFILLED:
        redemption.fulfilled_at = now
    redemption.save(update_fields=["state", "voucher", "billing_charge_id", "fulfilled_at"])
    after["state"] = redemption.state
    audit.record(
        action="loyalty.redemption_confirmed",
        object_type="loyalty.redemption",
        object_id=str(redemption.public_id),
        after=after,
        actor_id=actor_id(actor),
    )


def _lock_redemption(redemption: Redemption) -> Redemption:
    return (
        Redemption.objects.select_for_update(of=("self",))
        .select_related("reward", "reward__partner", "member", "member__customer", "reservation", "voucher")
        .get(pk=redemption.pk)
    )


def _refresh(target: Redemption, source: Redemption) -> Redemption:
    if target is not source:
        for field in Redemption._meta.concrete_fields:
            setattr(target, field.attname, getattr(source, field.attname))
    return source


def redemption_confirm(*, actor: Actor | None, redemption: Redemption) -> Redemption:
    """Confirm a reserved redemption (idempotent: a confirmed one is returned as it is)."""
    _authorise_confirm(actor, redemption)
    with transaction.atomic():
        current = _lock_redemption(redemption)
        if current.state == Redemption.State.CANCELLED:
            raise Conflict(
                _("The redemption was cancelled."),
                code="redemption_cancelled",
                fields={"redemption": _("Cancelled.")},
            )
        if current.state == Redemption.State.RESERVED:
            reward = Reward.objects.select_for_update().get(pk=current.reward_id)
            _confirm_locked(actor, current, reward)
    return _refresh(redemption, _lock_free(current.pk))


def _lock_free(pk: int) -> Redemption:
    return Redemption.objects.select_related(
        "reward", "reward__partner", "member", "member__customer", "reservation", "voucher"
    ).get(pk=pk)


def _clean_reason(reason: str) -> str:
    text = str(reason or "").strip()
    if not text:
        raise ValidationFailed(_("Give a reason."), code="reason_required", fields={"reason": _("Required.")})
    if len(text) > 200:
        raise ValidationFailed(
            _("The reason may have at most 200 characters."),
            code="invalid_reason",
            fields={"reason": _("Too long.")},
        )
    return text


def _give_back(redemption: Redemption, reward: Reward, *, void_code: bool) -> dict[str, Any]:
    """Stock back on the shelf; the code back in the pool (before confirm) or void (after)."""
    changes: dict[str, Any] = {}
    units = selectors.redemption_quantity(redemption, reward)
    if reward.stock is not None:
        reward.stock += units
        reward.save(update_fields=["stock"])
        changes["stock_left"] = reward.stock
    if redemption.voucher_id is not None:
        code = VoucherCode.objects.select_for_update().get(pk=redemption.voucher_id)
        changes["voucher"] = code.code
        if void_code:
            code.state = VoucherCode.State.VOID
            code.save(update_fields=["state"])
        else:
            code.state = VoucherCode.State.AVAILABLE
            code.reservation = None
            code.member = None
            code.save(update_fields=["state", "reservation", "member"])
            # The code goes back to the pool: it may be reserved by another redemption later.
            redemption.voucher = None
    return changes


def redemption_cancel(*, actor: Actor | None, redemption: Redemption, reason: str) -> Redemption:
    """Cancel a redemption and give everything back. Before confirmation: the points hold is
    released, the stock restored and the code freed. After (e.g. an item never shipped): the REDEEM
    posting is reversed, the stock restored and the code voided. A credit already put on the next
    invoice and a shipped item cannot be cancelled here. Idempotent: a cancelled one is returned."""
    _authorise_cancel(actor, redemption)
    text = _clean_reason(reason)
    with transaction.atomic():
        current = _lock_redemption(redemption)
        if current.state == Redemption.State.CANCELLED:
            return _refresh(redemption, current)
        reward = Reward.objects.select_for_update().get(pk=current.reward_id)
        if current.state in CONFIRMED_STATES and reward.kind == RewardKind.BILLING_CREDIT:
            raise Conflict(
                _("The credit is already on the customer's next invoice: it cannot be cancelled here."),
                code="credit_already_applied",
                fields={"redemption": _("Credit already applied.")},
            )
        if current.state == Redemption.State.SHIPPED:
            raise Conflict(
                _("The item has been shipped: it cannot be cancelled."),
                code="already_shipped",
                fields={"redemption": _("Already shipped.")},
            )
        before = {"state": current.state}
        reservation = Reservation.objects.get(pk=current.reservation_id)
        if current.state == Redemption.State.RESERVED:
            if reservation.state == Reservation.State.HELD:
                ledger.reservation_release(
                    actor=actor, reservation=reservation, reason=text, state="cancelled"
                )
            changes = _give_back(current, reward, void_code=False)
        else:
            if reservation.final_transaction_id is None:
                raise Conflict(
                    _("The redemption has no redeem posting to reverse."), code="nothing_to_reverse"
                )
            redeemed = reservation.final_transaction
            assert redeemed is not None
            ledger.transaction_reverse(
                actor=actor,
                transaction=redeemed,
                reason=text,
                idempotency_key=f"reward-cancel:{current.public_id}",
            )
            changes = _give_back(current, reward, void_code=True)
        current.state = Redemption.State.CANCELLED
        current.save(update_fields=["state", "voucher"])
        audit.record(
            action="loyalty.redemption_cancelled",
            object_type="loyalty.redemption",
            object_id=str(current.public_id),
            before=before,
            after={"state": current.state, "reason": text, **changes},
            actor_id=actor_id(actor),
        )
    return _refresh(redemption, _lock_free(current.pk))


def redemption_ship(*, actor: Actor | None, redemption: Redemption, tracking: str) -> Redemption:
    """Mark a physical reward shipped with its tracking number (again with another number corrects it)."""
    if actor is not None and not actor.can(OPERATE):
        raise deny()
    text = str(tracking or "").strip()
    if not text or len(text) > 120:
        raise ValidationFailed(
            _("Enter the tracking number (at most 120 characters)."),
            code="invalid_tracking",
            fields={"tracking": _("Required, at most 120 characters.")},
        )
    with transaction.atomic():
        current = _lock_redemption(redemption)
        if current.state == Redemption.State.SHIPPED and current.tracking == text:
            return _refresh(redemption, current)
        if current.state not in (Redemption.State.AWAITING_SHIPMENT, Redemption.State.SHIPPED):
            raise Conflict(
                _("Only a confirmed physical reward awaiting shipment can be shipped."),
                code="not_awaiting_shipment",
                fields={"redemption": _("Not awaiting shipment.")},
            )
        before = {"state": current.state, "tracking": current.tracking}
        current.state = Redemption.State.SHIPPED
        current.tracking = text
        current.fulfilled_at = current.fulfilled_at or clock.now()
        current.save(update_fields=["state", "tracking", "fulfilled_at"])
        audit.record(
            action="loyalty.redemption_shipped",
            object_type="loyalty.redemption",
            object_id=str(current.public_id),
            before=before,
            after={"state": current.state, "tracking": text},
            actor_id=actor_id(actor),
        )
    return _refresh(redemption, current)


# ----------------------------------------------------------------------------------------------
# Timeouts


def reservations_expired_cleanup(*, limit: int = 1_000) -> int:
    """Cancel the reserved redemptions whose points hold timed out (expired by the ledger, or held
    past its expiry: then released here), restoring stock and codes. Idempotent; returns how many."""
    now = clock.now()
    due = list(
        Redemption.objects.filter(state=Redemption.State.RESERVED)
        .filter(
            Q(reservation__state__in=(Reservation.State.EXPIRED, Reservation.State.CANCELLED))
            | Q(reservation__state=Reservation.State.HELD, reservation__expires_at__lte=now)
        )
        .order_by("id")
        .values_list("pk", flat=True)[:limit]
    )
    done = 0
    for pk in due:
        try:
            if _expire_one(pk, now):
                done += 1
        except Exception:
            logger.exception("Could not cancel the timed-out redemption %s", pk)
    return done


def _expire_one(pk: int, now: datetime) -> bool:
    with transaction.atomic():
        current = Redemption.objects.select_for_update().filter(pk=pk).first()
        if current is None or current.state != Redemption.State.RESERVED:
            return False
        reward = Reward.objects.select_for_update().get(pk=current.reward_id)
        reservation = Reservation.objects.get(pk=current.reservation_id)
        if reservation.state == Reservation.State.HELD:
            if reservation.expires_at > now:
                return False
            ledger.reservation_release(
                actor=None, reservation=reservation, reason="reservation timed out", state="expired"
            )
        elif reservation.state == Reservation.State.CONFIRMED:
            return False
        changes = _give_back(current, reward, void_code=False)
        current.state = Redemption.State.CANCELLED
        current.save(update_fields=["state", "voucher"])
        audit.record(
            action="loyalty.redemption_expired",
            object_type="loyalty.redemption",
            object_id=str(current.public_id),
            before={"state": Redemption.State.RESERVED},
            after={"state": current.state, **changes},
        )
    return True

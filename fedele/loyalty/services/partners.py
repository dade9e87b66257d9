"""Coalition partners: their set-up (organisation, users, scoped API credentials, prices, status) and
the partner-side operations (earn, burn, hold/confirm/cancel, reverse) that post to the ledger.

Money: a partner buys every point it issues at ``earn_price_per_point`` and is reimbursed every point
it accepts at ``burn_price_per_point``; the EUR amount is computed per transaction (points × price,
ROUND_HALF_UP to the cent) and written on the ledger transaction as ``partner_amount``, so a monthly
statement is an exact sum of its transactions. A later price change never touches past amounts.

Who may act: staff with ``loyalty.manage_partners`` set partners up; a partner's own users
(``actor.is_partner`` in the partner's organisation) and staff with ``loyalty.operate_loyalty`` run
the partner-side operations. Idempotency: the partner's ``external_id`` (its receipt or request id)
makes one ledger key per partner and operation, so a retried request never posts twice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from fedele.accounts import facade as accounts
from fedele.accounts.contracts import Actor, OrganisationKind, Role
from fedele.loyalty.events import PartnerCreated, PartnerStatusChanged
from fedele.loyalty.models import (
    EventType,
    LoyaltyEvent,
    Member,
    Partner,
    PartnerSettlement,
    PointsTransaction,
    Programme,
    Reservation,
    TransactionKind,
)
from fedele.loyalty.selectors import partners as selectors
from fedele.shared import audit, clock, events
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

MANAGE_PARTNERS = "loyalty.manage_partners"
OPERATE = "loyalty.operate_loyalty"
SCOPE_EARN = "loyalty:partner:earn"
SCOPE_BURN = "loyalty:partner:burn"
SCOPE_READ = "loyalty:partner:read"
PARTNER_SCOPES = frozenset({SCOPE_EARN, SCOPE_BURN, SCOPE_READ})
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
MAX_PRICE = Decimal("999999.999999")
# The ledger's ``source`` column holds 24 characters: "partner:" + a code of at most 16.
MAX_CODE_LENGTH = 16
MAX_EXTERNAL_ID_LENGTH = 64
REVERSAL_WINDOW = timedelta(days=30)
BACKDATE_LIMIT = timedelta(days=30)
CLOCK_SKEW = timedelta(minutes=5)
_CODE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9._:/#-]+$")
_TEXT_LIMITS = {"name": 120, "category": 40, "vat_number": 20}
_BOOLEAN_FIELDS = ("can_earn", "can_burn")
_PRICE_FIELDS = ("earn_price_per_point", "burn_price_per_point")
EDITABLE_FIELDS = frozenset(
    {"name", "category", "contact_email", "vat_number", *_BOOLEAN_FIELDS, *_PRICE_FIELDS}
)


# ----------------------------------------------------------------------------------------------
# Events (other modules may react to a partner joining or being suspended)


# ----------------------------------------------------------------------------------------------
# Authorisation


def _require_manager(actor: Actor | None) -> None:
    if actor is not None and not (actor.is_internal and actor.can(MANAGE_PARTNERS)):
        raise PermissionDenied(_("You may not manage partners."), code="permission_denied")


def _authorise_partner_side(actor: Actor | None, partner: Partner) -> None:
    """The system, staff who operate loyalty, or the partner's own users (nobody else's)."""
    if actor is None or (actor.is_internal and actor.can(OPERATE)):
        return
    if (
        actor.is_partner
        and actor.organisation_id is not None
        and actor.organisation_id == partner.organisation_id
    ):
        return
    raise PermissionDenied(_("You may not act for this partner."), code="permission_denied")


def _check_partner_can(partner: Partner, *, burn: bool) -> None:
    if partner.status != Partner.Status.ACTIVE:
        raise PermissionDenied(
            _("The partner is suspended: points can't be issued or accepted."), code="partner_suspended"
        )
    if burn and not partner.can_burn:
        raise PermissionDenied(_("This partner doesn't accept points."), code="partner_cannot_burn")
    if not burn and not partner.can_earn:
        raise PermissionDenied(_("This partner doesn't issue points."), code="partner_cannot_earn")


# ----------------------------------------------------------------------------------------------
# Validation of set-up data


def _price(value: Any, name: str) -> Decimal:
    if isinstance(value, float):
        value = str(value)
    try:
        price = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError) as error:
        raise ValidationFailed(
            _("The price per point is not a number."),
            code="invalid_price",
            fields={name: _("Enter a price.")},
        ) from error
    if not price.is_finite() or price < 0 or price > MAX_PRICE:
        raise ValidationFailed(
            _("A price per point must be between 0 and 999,999.999999 EUR."),
            code="invalid_price",
            fields={name: _("Between 0 and 999,999.999999.")},
        )
    if price != price.quantize(Decimal("0.000001")):
        raise ValidationFailed(
            _("A price per point has at most 6 decimal places."),
            code="invalid_price",
            fields={name: _("At most 6 decimal places.")},
        )
    return price.quantize(Decimal("0.000001"))


def _email(value: Any, name: str, *, required: bool = False) -> str:
    text = str(value or "").strip().lower()
    if not text:
        if required:
            raise ValidationFailed(_("An e-mail address is required."), fields={name: _("Required.")})
        return ""
    try:
        validate_email(text)
    except DjangoValidationError as error:
        raise ValidationFailed(
            _("The e-mail address is not valid."), fields={name: _("Enter a valid e-mail address.")}
        ) from error
    return text


def _clean_fields(data: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    allowed = EDITABLE_FIELDS | ({"code", "user"} if creating else set())
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationFailed(
            _("Unknown fields: %(fields)s.") % {"fields": ", ".join(unknown)},
            code="unknown_fields",
            fields=dict.fromkeys(unknown, _("Unknown field.")),
        )
    cleaned: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if creating:
        code = str(data.get("code") or "").strip().lower()
        if not code or len(code) > MAX_CODE_LENGTH or not _CODE.match(code):
            errors["code"] = _("1 to 16 lowercase letters, digits or hyphens.")
        cleaned["code"] = code
        if not str(data.get("name") or "").strip():
            errors["name"] = _("Required.")
    for name, limit in _TEXT_LIMITS.items():
        if name in data:
            text = str(data[name] or "").strip()
            if len(text) > limit:
                errors[name] = _("At most %(max)s characters.") % {"max": limit}
            elif name == "name" and not text:
                errors[name] = _("Required.")
            cleaned[name] = text
    for name in _BOOLEAN_FIELDS:
        if name in data:
            if not isinstance(data[name], bool):
                errors[name] = _("Yes or no.")
            cleaned[name] = bool(data[name])
    if errors:
        raise ValidationFailed(_("Some fields are not valid."), code="validation_error", fields=errors)
    for name in _PRICE_FIELDS:
        if name in data:
            cleaned[name] = _price(data[name], name)
    if "contact_email" in data:
        cleaned["contact_email"] = _email(data["contact_email"], "contact_email")
    return cleaned


@dataclass(frozen=True, slots=True)
class PartnerUserIn:
    email: str
    first_name: str = ""
    last_name: str = ""
    password: str | None = None
    language: str = "it"


def _clean_user(value: Any) -> PartnerUserIn | None:
    if value is None or value == {}:
        return None
    if not isinstance(value, Mapping):
        raise ValidationFailed(_("The first user is not valid."), fields={"user": _("Not valid.")})
    unknown = sorted(set(value) - {"email", "first_name", "last_name", "password", "language"})
    if unknown:
        raise ValidationFailed(
            _("Unknown fields: %(fields)s.") % {"fields": ", ".join(unknown)},
            code="unknown_fields",
            fields={f"user.{name}": _("Unknown field.") for name in unknown},
        )
    language = str(value.get("language") or "it")
    if language not in ("it", "en"):
        raise ValidationFailed(_("Language must be it or en."), fields={"user.language": "it, en"})
    return PartnerUserIn(
        email=_email(value.get("email"), "user.email", required=True),
        first_name=str(value.get("first_name") or "").strip()[:150],
        last_name=str(value.get("last_name") or "").strip()[:150],
        password=str(value["password"]) if value.get("password") else None,
        language=language,
    )


def _snapshot(partner: Partner) -> dict[str, Any]:
    return {
        "code": partner.code,
        "name": partner.name,
        "category": partner.category,
        "earn_price_per_point": partner.earn_price_per_point,
        "burn_price_per_point": partner.burn_price_per_point,
        "can_earn": partner.can_earn,
        "can_burn": partner.can_burn,
        "status": partner.status,
        "contact_email": partner.contact_email,
        "vat_number": partner.vat_number,
    }


# ----------------------------------------------------------------------------------------------
# Set-up


def partner_create(*, actor: Actor | None, programme: Programme, data: Mapping[str, Any]) -> Partner:
    """A partner of a coalition programme, its accounts Organisation (kind partner) and, if ``data``
    has ``user`` ({email, first_name, last_name, password, language}), its first user (partner role)."""
    _require_manager(actor)
    if not programme.is_coalition:
        raise ValidationFailed(
            _("Partners can only join a coalition programme."),
            code="programme_not_coalition",
            fields={"programme": _("Not a coalition programme.")},
        )
    cleaned = _clean_fields(data, creating=True)
    first_user = _clean_user(data.get("user"))
    with transaction.atomic():
        locked_programme = Programme.objects.select_for_update().get(pk=programme.pk)
        if Partner.objects.filter(programme=locked_programme, code=cleaned["code"]).exists():
            raise Conflict(
                _("A partner with this code already exists in the programme."),
                code="duplicate_code",
                fields={"code": _("Already in use.")},
            )
        organisation_id = accounts.create_organisation(name=cleaned["name"], kind=OrganisationKind.PARTNER)
        partner = Partner.objects.create(
            programme=locked_programme, organisation_id=organisation_id, **cleaned
        )
        if first_user is not None:
            accounts.create_organisation_user(
                organisation_id=organisation_id,
                email=first_user.email,
                role=Role.PARTNER,
                password=first_user.password,
                first_name=first_user.first_name,
                last_name=first_user.last_name,
                language=first_user.language,
            )
        audit.record(
            action="loyalty.partner_created",
            object_type="loyalty_partner",
            object_id=str(partner.public_id),
            after={**_snapshot(partner), "user": first_user.email if first_user else None},
            actor_id=actor.user_id if actor else None,
        )
        events.publish(
            PartnerCreated(
                partner_id=str(partner.public_id),
                partner=partner.code,
                programme=locked_programme.code,
                name=partner.name,
            ),
            aggregate_type="loyalty_partner",
            aggregate_id=str(partner.public_id),
        )
    return partner


def partner_update(*, actor: Actor | None, partner: Partner, data: Mapping[str, Any]) -> Partner:
    """Change name, category, contact, VAT number, prices or what the partner may do. The code (part
    of every ledger key and source) never changes. New prices apply to later transactions only."""
    _require_manager(actor)
    cleaned = _clean_fields(data, creating=False)
    if not cleaned:
        return partner
    with transaction.atomic():
        locked = Partner.objects.select_for_update().get(pk=partner.pk)
        before = _snapshot(locked)
        for name, value in cleaned.items():
            setattr(locked, name, value)
        locked.save(update_fields=sorted(cleaned))
        audit.record(
            action="loyalty.partner_updated",
            object_type="loyalty_partner",
            object_id=str(locked.public_id),
            before=before,
            after=_snapshot(locked),
            actor_id=actor.user_id if actor else None,
        )
    _copy(locked, partner)
    return locked


def partner_set_status(*, actor: Actor | None, partner: Partner, status: str, reason: str = "") -> Partner:
    """Suspend or reactivate. A suspended partner can neither issue nor accept points
    (``partner_suspended``); its history, statements and portal stay readable."""
    _require_manager(actor)
    if status not in Partner.Status.values:
        raise ValidationFailed(
            _("The status must be active or suspended."),
            code="invalid_status",
            fields={"status": "active, suspended"},
        )
    reason = (reason or "").strip()
    if len(reason) > 200:
        raise ValidationFailed(
            _("The reason may have at most 200 characters."), fields={"reason": _("Too long.")}
        )
    with transaction.atomic():
        locked = Partner.objects.select_for_update().select_related("programme").get(pk=partner.pk)
        previous = locked.status
        if previous != status:
            locked.status = status
            locked.save(update_fields=["status"])
            audit.record(
                action="loyalty.partner_status_changed",
                object_type="loyalty_partner",
                object_id=str(locked.public_id),
                before={"status": previous},
                after={"status": status, "reason": reason},
                actor_id=actor.user_id if actor else None,
            )
            events.publish(
                PartnerStatusChanged(
                    partner_id=str(locked.public_id),
                    partner=locked.code,
                    programme=locked.programme.code,
                    from_status=previous,
                    to_status=status,
                    reason=reason,
                ),
                aggregate_type="loyalty_partner",
                aggregate_id=str(locked.public_id),
            )
    _copy(locked, partner)
    return locked


def _copy(source: Partner, target: Partner) -> None:
    if source is not target:
        for name in (*EDITABLE_FIELDS, "status"):
            setattr(target, name, getattr(source, name))


def partner_user_add(
    *,
    actor: Actor | None,
    partner: Partner,
    email: str,
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
    language: str = "it",
) -> int:
    """Another user of the partner (partner role, the partner's organisation); returns its user id."""
    _require_manager(actor)
    user = _clean_user(
        {
            "email": email,
            "first_name": first_name,
            "last_name": last_name,
            "password": password,
            "language": language,
        }
    )
    assert user is not None
    with transaction.atomic():
        locked = Partner.objects.select_for_update().get(pk=partner.pk)
        organisation_id = locked.organisation_id
        if organisation_id is None:
            organisation_id = accounts.create_organisation(name=locked.name, kind=OrganisationKind.PARTNER)
            locked.organisation_id = organisation_id
            locked.save(update_fields=["organisation"])
            partner.organisation_id = organisation_id
        user_id = accounts.create_organisation_user(
            organisation_id=organisation_id,
            email=user.email,
            role=Role.PARTNER,
            password=user.password,
            first_name=user.first_name,
            last_name=user.last_name,
            language=user.language,
        )
        audit.record(
            action="loyalty.partner_user_added",
            object_type="loyalty_partner",
            object_id=str(locked.public_id),
            after={"user": user.email},
            actor_id=actor.user_id if actor else None,
        )
    return user_id


def partner_users(partner: Partner) -> list[accounts.UserSummary]:
    return accounts.organisation_users(partner.organisation_id) if partner.organisation_id else []


def partner_credentials_issue(
    *,
    actor: Actor | None,
    partner: Partner,
    scopes: list[str] | tuple[str, ...] | set[str],
    user_id: int | None = None,
    name: str = "",
    expires_in_days: int | None = None,
) -> tuple[str, str]:
    """An API token for one of the partner's users with scopes among ``loyalty:partner:earn``,
    ``loyalty:partner:burn``, ``loyalty:partner:read``. Returns (plain token, token id); the plain token
    is shown once and only its hash is kept. ``user_id`` defaults to the partner's first user."""
    _require_manager(actor)
    chosen = sorted(set(scopes))
    if not chosen or any(scope not in PARTNER_SCOPES for scope in chosen):
        raise ValidationFailed(
            _("Scopes must be among loyalty:partner:earn, loyalty:partner:burn and loyalty:partner:read."),
            code="invalid_scopes",
            fields={"scopes": ", ".join(sorted(PARTNER_SCOPES))},
        )
    users = partner_users(partner)
    if not users:
        raise ValidationFailed(
            _("The partner has no user yet: add one first."),
            code="partner_has_no_user",
            fields={"user_id": _("Add a user to the partner first.")},
        )
    if user_id is None:
        user_id = users[0].user_id
    elif user_id not in {user.user_id for user in users}:
        raise ValidationFailed(
            _("The user doesn't belong to this partner."),
            code="user_not_of_partner",
            fields={"user_id": _("Not a user of this partner.")},
        )
    label = (name or "").strip() or f"{partner.code} API"
    with transaction.atomic():
        plain, token = accounts.scoped_api_token_create(
            user_id=user_id,
            name=label,
            scopes=chosen,
            allowed_scopes=PARTNER_SCOPES,
            expires_in_days=expires_in_days,
        )
        audit.record(
            action="loyalty.partner_credentials_issued",
            object_type="loyalty_partner",
            object_id=str(partner.public_id),
            after={"token": str(token.public_id), "scopes": chosen, "user": token.user_email},
            actor_id=actor.user_id if actor else None,
        )
    return plain, str(token.public_id)


def partner_credentials(partner: Partner) -> list[accounts.ApiTokenSummary]:
    users = partner_users(partner)
    return accounts.scoped_api_tokens([user.user_id for user in users]) if users else []


def partner_credentials_revoke(*, actor: Actor | None, partner: Partner, token_id: str) -> None:
    """Revoke one of the partner's tokens (a token of anyone else: NotFound)."""
    _require_manager(actor)
    users = [user.user_id for user in partner_users(partner)]
    with transaction.atomic():
        token = accounts.revoke_api_token(token_public_id=str(token_id), user_ids=users)
        audit.record(
            action="loyalty.partner_credentials_revoked",
            object_type="loyalty_partner",
            object_id=str(partner.public_id),
            after={"token": str(token.public_id)},
            actor_id=actor.user_id if actor else None,
        )


# ----------------------------------------------------------------------------------------------
# Partner-side operations (the partner's till, website or back office, through the partner API)


@dataclass(frozen=True, slots=True)
class PartnerEarnResult:
    """What an earn at a partner did: the ledger transaction (None when the rules gave no points)."""

    transaction: PointsTransaction | None
    points: int
    partner_amount: Decimal
    reasons: tuple[str, ...] = ()


def _external_id(value: Any) -> str:
    text = str(value or "").strip()
    if not text or len(text) > MAX_EXTERNAL_ID_LENGTH or not _EXTERNAL_ID.match(text):
        raise ValidationFailed(
            _("The external id is required: 1 to 64 letters, digits or . _ : / # -"),
            code="invalid_external_id",
            fields={"external_id": _("1 to 64 letters, digits or . _ : / # -")},
        )
    return text


def _points(value: Any, name: str = "points") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationFailed(
            _("Points must be a whole number greater than zero."),
            code="invalid_points",
            fields={name: _("Enter a whole number of points greater than zero.")},
        )
    return value


def _amount(value: Any) -> Decimal:
    if isinstance(value, float):
        value = str(value)
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError) as error:
        raise ValidationFailed(
            _("The amount is not a number."),
            code="invalid_amount",
            fields={"amount_eur": _("Enter an amount.")},
        ) from error
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1000000000"):
        raise ValidationFailed(
            _("The amount must be between 0 and 999,999,999.99 EUR."),
            code="invalid_amount",
            fields={"amount_eur": _("Between 0 and 999,999,999.99.")},
        )
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _occurred_at(value: datetime | None) -> datetime:
    now = clock.now()
    if value is None:
        return now
    if timezone.is_naive(value):
        raise ValidationFailed(
            _("The time of the purchase needs a time zone."),
            code="invalid_occurred_at",
            fields={"occurred_at": _("Give a time zone (e.g. 2026-03-31T22:30:00Z).")},
        )
    if value > now + CLOCK_SKEW or value < now - BACKDATE_LIMIT:
        raise ValidationFailed(
            _("The time of the purchase must be within the last 30 days."),
            code="invalid_occurred_at",
            fields={"occurred_at": _("Within the last 30 days, not in the future.")},
        )
    return value


def _check_period_open(partner: Partner, occurred_at: datetime) -> None:
    """A purchase can't be added to a month whose statement has been issued. Call it inside the
    posting's transaction: for a back-dated month it takes the partner's row lock, which issuing a
    statement also takes, so an issue and a late purchase never interleave."""
    local = occurred_at.astimezone(ZoneInfo(partner.programme.timezone))
    if (local.year, local.month) == selectors.current_month(partner.programme):
        return
    Partner.objects.select_for_update().filter(pk=partner.pk).first()
    closed = (
        PartnerSettlement.objects.filter(partner=partner, period_start=local.date().replace(day=1))
        .exclude(state=PartnerSettlement.State.DRAFT)
        .exists()
    )
    if closed:
        raise Conflict(
            _("The statement of that month has been issued: the purchase can't be added to it."),
            code="period_closed",
            fields={"occurred_at": _("The month is closed.")},
        )


def _key(partner: Partner, operation: str, external_id: str) -> str:
    return f"partner:{partner.code}:{operation}:{external_id}"


def _source(partner: Partner) -> str:
    return f"partner:{partner.code}"[:24]


def partner_price(points: int, price_per_point: Decimal) -> Decimal:
    """points × price, half-up to the cent (the amount written on one transaction)."""
    return (Decimal(points) * price_per_point).quantize(CENT, rounding=ROUND_HALF_UP)


def _reused() -> Conflict:
    return Conflict(
        _("This external id was already used for a different request."),
        code="external_id_reused",
        fields={"external_id": _("Already used.")},
    )


def _replayed(partner: Partner, key: str) -> PointsTransaction | None:
    return PointsTransaction.objects.filter(programme_id=partner.programme_id, idempotency_key=key).first()


def partner_earn(
    *,
    actor: Actor | None,
    partner: Partner,
    card_number: str,
    external_id: str,
    amount_eur: Decimal | str | None = None,
    points: int | None = None,
    occurred_at: datetime | None = None,
    reference: str = "",
) -> PartnerEarnResult:
    """Points for a purchase at the partner: ``amount_eur`` goes through the earning rules (event
    ``spend``, source ``partner:<code>``, the partner as a condition field); ``points`` credits that
    many directly. The partner buys them at its earn price (``partner_amount``, per transaction).
    The same ``external_id`` again → the first result, nothing written twice."""
    _authorise_partner_side(actor, partner)
    if (amount_eur is None) == (points is None):
        raise ValidationFailed(
            _("Send either an amount or a number of points."),
            code="amount_or_points",
            fields={
                "amount_eur": _("Either amount_eur or points."),
                "points": _("Either amount_eur or points."),
            },
        )
    external = _external_id(external_id)
    direct_points = _points(points) if points is not None else None
    amount = _amount(amount_eur) if amount_eur is not None else None
    moment = _occurred_at(occurred_at)
    reference = (reference or "").strip()[:80] or external
    _check_partner_can(partner, burn=False)
    member = selectors.member_for_card(partner=partner, card_number=card_number)
    key = _key(partner, "earn", external)
    if direct_points is not None:
        if LoyaltyEvent.objects.filter(
            programme_id=partner.programme_id, source=_source(partner), external_id=external
        ).exists():
            raise _reused()
        found = _replayed(partner, key)
        if found is not None:
            if (
                found.member_id != member.pk
                or found.points != direct_points
                or found.kind != TransactionKind.EARN
            ):
                raise _reused()
            return PartnerEarnResult(found, found.points, found.partner_amount or ZERO)
        from fedele.loyalty.services import ledger

        settle = partner_price(direct_points, partner.earn_price_per_point)
        with transaction.atomic():
            _check_period_open(partner, moment)
            txn = ledger.points_earn(
                actor=actor,
                member=member,
                points=direct_points,
                source=_source(partner),
                idempotency_key=key,
                reference=reference,
                partner=partner,
                partner_amount=settle,
                occurred_at=moment,
                details={"partner": partner.code, "external_id": external},
            )
        if txn.member_id != member.pk or txn.points != direct_points:
            raise _reused()
        return PartnerEarnResult(txn, txn.points, txn.partner_amount or settle)
    assert amount is not None
    if _replayed(partner, key) is not None:
        raise _reused()
    with transaction.atomic():
        _check_period_open(partner, moment)
        return _earn_by_rules(actor, partner, member, external, amount, moment, reference)


def _earn_by_rules(
    actor: Actor | None,
    partner: Partner,
    member: Member,
    external: str,
    amount: Decimal,
    moment: datetime,
    reference: str,
) -> PartnerEarnResult:
    """A spend event through the earning rules; the rules engine writes the partner's amount."""
    from fedele.loyalty.services import rules_events

    source = _source(partner)
    previous = (
        LoyaltyEvent.objects.select_related("transaction")
        .filter(programme_id=partner.programme_id, source=source, external_id=external)
        .first()
    )
    if previous is not None and (previous.member_id != member.pk or previous.amount_eur != amount):
        raise _reused()
    event = rules_events.event_record(
        actor=actor,
        programme=partner.programme,
        member=member,
        event_type=EventType.SPEND,
        source=source,
        external_id=external,
        amount_eur=amount,
        partner=partner,
        reference=reference,
        occurred_at=moment,
    )
    if event.member_id != member.pk or event.amount_eur != amount:
        raise _reused()
    txn = event.transaction
    reasons = tuple(str(reason) for reason in (event.result or {}).get("reasons", []))
    if txn is None:
        return PartnerEarnResult(None, 0, ZERO, reasons)
    return PartnerEarnResult(txn, txn.points, txn.partner_amount or ZERO, reasons)


def partner_burn(
    *,
    actor: Actor | None,
    partner: Partner,
    card_number: str,
    points: int,
    external_id: str,
    reference: str = "",
) -> PointsTransaction:
    """The member pays with points at the partner (hold and confirm at once). The operator reimburses
    the partner at its burn price (``partner_amount``). Same ``external_id`` → the same REDEEM."""
    _authorise_partner_side(actor, partner)
    external = _external_id(external_id)
    wanted = _points(points)
    reference = (reference or "").strip()[:80] or external
    _check_partner_can(partner, burn=True)
    member = selectors.member_for_card(partner=partner, card_number=card_number)
    key = _key(partner, "burn", external)
    previous = Reservation.objects.filter(programme_id=partner.programme_id, idempotency_key=key).first()
    if previous is not None and (previous.member_id != member.pk or previous.points != wanted):
        raise _reused()
    from fedele.loyalty.services import ledger

    return ledger.points_redeem(
        actor=actor,
        member=member,
        points=wanted,
        idempotency_key=key,
        source=_source(partner),
        reference=reference,
        partner=partner,
        partner_amount=partner_price(wanted, partner.burn_price_per_point),
    )


def partner_hold(
    *,
    actor: Actor | None,
    partner: Partner,
    card_number: str,
    points: int,
    external_id: str,
    reference: str = "",
    minutes: int | None = None,
) -> Reservation:
    """Step one of a point-of-sale payment: hold the points (the programme's reservation time unless
    ``minutes``); then confirm or cancel. Same ``external_id`` → the same hold."""
    _authorise_partner_side(actor, partner)
    external = _external_id(external_id)
    wanted = _points(points)
    reference = (reference or "").strip()[:80] or external
    _check_partner_can(partner, burn=True)
    member = selectors.member_for_card(partner=partner, card_number=card_number)
    key = _key(partner, "hold", external)
    previous = Reservation.objects.filter(programme_id=partner.programme_id, idempotency_key=key).first()
    if previous is not None and (previous.member_id != member.pk or previous.points != wanted):
        raise _reused()
    from fedele.loyalty.services import ledger

    return ledger.reservation_hold(
        actor=actor,
        member=member,
        points=wanted,
        idempotency_key=key,
        source=_source(partner),
        reference=reference,
        partner=partner,
        minutes=minutes,
    )


def _own_reservation(partner: Partner, reservation: Reservation) -> None:
    if reservation.partner_id != partner.pk:
        raise NotFound(_("Hold not found."))


def partner_hold_confirm(
    *, actor: Actor | None, partner: Partner, reservation: Reservation
) -> PointsTransaction:
    """Step two: redeem the held points at the partner's burn price (of now). Confirmed already → the
    same REDEEM; cancelled or timed out → Conflict ``reservation_not_held``."""
    _authorise_partner_side(actor, partner)
    _own_reservation(partner, reservation)
    if reservation.state != Reservation.State.CONFIRMED:
        _check_partner_can(partner, burn=True)
    from fedele.loyalty.services import ledger

    return ledger.reservation_confirm(
        actor=actor,
        reservation=reservation,
        partner_amount=partner_price(reservation.points, partner.burn_price_per_point),
    )


def partner_hold_cancel(*, actor: Actor | None, partner: Partner, reservation: Reservation) -> Reservation:
    """Give the held points back (a suspended partner may still cancel). Cancelled already: no change;
    confirmed → Conflict (reverse the burn instead)."""
    _authorise_partner_side(actor, partner)
    _own_reservation(partner, reservation)
    if reservation.state == Reservation.State.CONFIRMED:
        raise Conflict(
            _("The hold has been confirmed: reverse the transaction instead."), code="reservation_confirmed"
        )
    from fedele.loyalty.services import ledger

    ledger.reservation_release(actor=actor, reservation=reservation, reason="cancelled by partner")
    reservation.refresh_from_db()
    return reservation


def partner_reverse(
    *, actor: Actor | None, partner: Partner, transaction_to_reverse: PointsTransaction, reason: str
) -> PointsTransaction:
    """Undo one of the partner's own earns or burns within 30 days of it. The reversal carries the
    same ``partner_amount``, netted on the statement of the month the reversal happens in. Asking
    again → the same reversal."""
    _authorise_partner_side(actor, partner)
    original = transaction_to_reverse
    if original.partner_id != partner.pk:
        raise NotFound(_("Transaction not found."))
    if original.kind not in (TransactionKind.EARN, TransactionKind.REDEEM):
        raise ValidationFailed(
            _("Only the partner's earns and burns can be reversed."),
            code="not_reversible",
            fields={"transaction": _("Not reversible.")},
        )
    reason = (reason or "").strip()
    if not reason or len(reason) > 200:
        raise ValidationFailed(
            _("Give a reason of at most 200 characters."),
            code="invalid_reason",
            fields={"reason": _("1 to 200 characters.")},
        )
    key = f"partner:{partner.code}:{original.public_id}"
    existing = PointsTransaction.objects.filter(reversal_of=original).first()
    if existing is not None:
        if existing.idempotency_key == f"reverse:{key}":
            return existing
        raise Conflict(_("This transaction has already been reversed."), code="already_reversed")
    if clock.now() - original.occurred_at > REVERSAL_WINDOW:
        raise Conflict(
            _("Transactions can be reversed within 30 days only."),
            code="reversal_window_closed",
        )
    from fedele.loyalty.services import ledger

    # The ledger lets staff reverse; the partner's right to reverse its own transaction was checked
    # above, so the ledger runs as the system and this audit row names the partner's user.
    with transaction.atomic():
        try:
            with transaction.atomic():
                reversal = ledger.transaction_reverse(
                    actor=None, transaction=original, reason=reason, idempotency_key=key
                )
        except Conflict as conflict:
            raced = PointsTransaction.objects.filter(
                reversal_of=original, idempotency_key=f"reverse:{key}"
            ).first()
            if raced is None:
                raise conflict from None
            return raced
        audit.record(
            action="loyalty.partner_reversal",
            object_type="loyalty.transaction",
            object_id=str(original.public_id),
            after={"reversal": str(reversal.public_id), "partner": partner.code, "reason": reason},
            actor_id=actor.user_id if actor else None,
        )
    return reversal

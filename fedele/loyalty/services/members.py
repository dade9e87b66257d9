"""Members: enrolment (card number, referral code, base tier), status, profile edits and households
(family pools for transfers). One transaction per action with its audit row and events."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.customers.facade import customer_summary
from fedele.loyalty.events import MemberEnrolled
from fedele.loyalty.models import Household, Member, MemberStatus, Programme, Tier, TierChange
from fedele.loyalty.services.ledger_core import (
    OPERATE,
    actor_id,
    authorise_operator,
    check_programme_active,
    check_text,
    deny,
    owns_member,
    portal_customer_id,
)
from fedele.shared import audit, clock, events, sequences
from fedele.shared.errors import NotFound, ValidationFailed

CARD_SERIES = "loyalty-card"
CARD_PREFIX = "8"
REFERRAL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ23456789"
REFERRAL_LENGTH = 8
CHANNELS = frozenset({"backoffice", "portal", "api", "import", "pos", "partner", "demo"})
LANGUAGES = ("it", "en")
NAME_MAX = 120
REASON_MAX = 200


class _Unset:
    """Marks an argument the caller did not pass (None is a value: "no birthday")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def luhn_check_digit(payload: str) -> str:
    """The digit that makes ``payload + digit`` pass the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(payload)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) >= 2 and luhn_check_digit(number[:-1]) == number[-1]


def next_card_number() -> str:
    """16 digits: "8", a 14-digit gapless counter (so unique across programmes), a Luhn digit."""
    payload = f"{CARD_PREFIX}{sequences.next_value(CARD_SERIES):014d}"
    return payload + luhn_check_digit(payload)


def new_referral_code() -> str:
    while True:
        code = "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(REFERRAL_LENGTH))
        if not Member.objects.filter(referral_code=code).exists():
            return code


def _check_birthday(birthday: date | None) -> date | None:
    if birthday is None:
        return None
    if not isinstance(birthday, date) or isinstance(birthday, datetime):
        raise ValidationFailed(
            _("The birthday must be a date."),
            code="invalid_birthday",
            fields={"birthday": _("Invalid date.")},
        )
    today = clock.today()
    if birthday > today or birthday.year < today.year - 130:
        raise ValidationFailed(
            _("The birthday is not plausible."),
            code="invalid_birthday",
            fields={"birthday": _("Enter a date in the past.")},
        )
    return birthday


def _check_language(language: str | None) -> str | None:
    if language is None:
        return None
    if language not in LANGUAGES:
        raise ValidationFailed(
            _("The language must be Italian (it) or English (en)."),
            code="invalid_language",
            fields={"language": _("Choose it or en.")},
        )
    return language


def _snapshot(member: Member) -> dict[str, Any]:
    return {
        "status": member.status,
        "birthday": member.birthday,
        "language": member.language,
        "household": member.household_id,
    }


# ----------------------------------------------------------------------------------------------
# Enrolment


def member_enrol(
    *,
    actor: Actor | None,
    programme: Programme,
    customer_public_id: str,
    channel: str = "backoffice",
    referral_code: str = "",
    birthday: date | None = None,
    language: str | None = None,
    at: datetime | None = None,
) -> Member:
    """Enrol a customer. Idempotent: an existing membership is returned unchanged."""
    if channel not in CHANNELS:
        raise ValidationFailed(
            _("Unknown enrolment channel."), code="invalid_channel", fields={"channel": _("Unknown channel.")}
        )
    birthday = _check_birthday(birthday)
    language = _check_language(language)
    code = (referral_code or "").strip().upper()
    customer = customer_summary(str(customer_public_id)) if customer_public_id else None
    if customer is None:
        raise NotFound(_("Customer not found."), code="customer_not_found")
    if (
        actor is not None
        and not actor.can(OPERATE)
        and not (actor.is_portal_customer and portal_customer_id(actor) == customer.customer_id)
    ):
        raise deny()
    existing = Member.objects.filter(programme=programme, customer_id=customer.customer_id).first()
    if existing is not None:
        return existing
    check_programme_active(programme)
    referrer: Member | None = None
    if code:
        referrer = Member.objects.filter(programme=programme, referral_code=code).first()
        if referrer is None:
            raise ValidationFailed(
                _("Unknown referral code."),
                code="unknown_referral_code",
                fields={"referral_code": _("No member has this code.")},
            )
    base_tier = Tier.objects.filter(programme=programme, rank=0).first()
    moment = at or clock.now()
    try:
        with transaction.atomic():
            member = Member.objects.create(
                programme=programme,
                customer_id=customer.customer_id,
                card_number=next_card_number(),
                status=MemberStatus.ACTIVE,
                tier=base_tier,
                tier_since=moment if base_tier else None,
                enrolled_at=moment,
                enrolment_channel=channel,
                referral_code=new_referral_code(),
                referred_by=referrer,
                birthday=birthday,
                language=language or (customer.language if customer.language in LANGUAGES else "it"),
            )
            if base_tier is not None:
                TierChange.objects.create(
                    member=member,
                    from_tier=None,
                    to_tier=base_tier,
                    reason=TierChange.Reason.ENROLMENT,
                    changed_at=moment,
                    changed_by_id=actor_id(actor),
                )
            audit.record(
                action="loyalty.member_enrolled",
                object_type="loyalty.member",
                object_id=str(member.public_id),
                after={
                    "programme": programme.code,
                    "customer": str(customer.public_id),
                    "card_number": member.card_number,
                    "channel": channel,
                    "referred_by": referrer.card_number if referrer else "",
                },
                actor_id=actor_id(actor),
            )
            events.publish(
                MemberEnrolled(
                    member_id=str(member.public_id),
                    customer_id=str(customer.public_id),
                    programme=programme.code,
                    card_number=member.card_number,
                    channel=channel,
                    referred_by_member_id=str(referrer.public_id) if referrer else None,
                    enrolled_at=moment.isoformat(),
                ),
                aggregate_type="loyalty.member",
                aggregate_id=str(member.public_id),
            )
    except IntegrityError:
        # A concurrent enrolment of the same customer won the unique (programme, customer) index.
        existing = Member.objects.filter(programme=programme, customer_id=customer.customer_id).first()
        if existing is None:
            raise
        return existing
    return member


# ----------------------------------------------------------------------------------------------
# Status and profile


def member_set_status(*, actor: Actor | None, member: Member, status: str, reason: str) -> Member:
    """Suspend, reactivate or close a membership (points stay where they are: a suspended or closed
    member cannot earn, redeem or transfer). Same status → unchanged, nothing written."""
    if status not in MemberStatus.values:
        raise ValidationFailed(
            _("Unknown member status."), code="invalid_status", fields={"status": _("Unknown status.")}
        )
    reason = check_text(reason, name="reason", max_length=REASON_MAX, required=True)
    authorise_operator(actor)
    with transaction.atomic():
        locked = Member.objects.select_for_update().get(pk=member.pk)
        if locked.status == status:
            return locked
        if locked.status == MemberStatus.CLOSED:
            raise ValidationFailed(
                _("A closed membership cannot be reopened."),
                code="member_closed",
                fields={"status": _("The membership is closed.")},
            )
        before = _snapshot(locked)
        locked.status = status
        locked.save(update_fields=["status", "updated_at"])
        audit.record(
            action="loyalty.member_status_changed",
            object_type="loyalty.member",
            object_id=str(locked.public_id),
            before={**before, "reason": ""},
            after={**_snapshot(locked), "reason": reason},
            actor_id=actor_id(actor),
        )
    member.status = locked.status
    return locked


def member_update(
    *, actor: Actor | None, member: Member, birthday: date | None = UNSET, language: str = UNSET
) -> Member:
    """Edit the member's own details (back office, or the member through the portal)."""
    changes: dict[str, Any] = {}
    if birthday is not UNSET:
        changes["birthday"] = _check_birthday(birthday)
    if language is not UNSET:
        if language is None:
            raise ValidationFailed(
                _("The language must be Italian (it) or English (en)."),
                code="invalid_language",
                fields={"language": _("Choose it or en.")},
            )
        changes["language"] = _check_language(language)
    if actor is not None and not actor.can(OPERATE) and not owns_member(actor, member):
        raise deny()
    with transaction.atomic():
        locked = Member.objects.select_for_update().get(pk=member.pk)
        before = _snapshot(locked)
        for name, value in changes.items():
            setattr(locked, name, value)
        if _snapshot(locked) == before:
            return locked
        locked.save(update_fields=[*changes.keys(), "updated_at"])
        audit.record(
            action="loyalty.member_updated",
            object_type="loyalty.member",
            object_id=str(locked.public_id),
            before=before,
            after=_snapshot(locked),
            actor_id=actor_id(actor),
        )
    for name, value in changes.items():
        setattr(member, name, value)
    return locked


# ----------------------------------------------------------------------------------------------
# Households


def _authorise_household(actor: Actor | None, member: Member) -> None:
    if actor is None or actor.can(OPERATE) or owns_member(actor, member):
        return
    raise deny()


def household_create(*, actor: Actor | None, owner: Member, name: str) -> Household:
    """A new family pool with ``owner`` as its first member."""
    name = check_text(name, name="name", max_length=NAME_MAX, required=True)
    _authorise_household(actor, owner)
    with transaction.atomic():
        locked = Member.objects.select_for_update().get(pk=owner.pk)
        if locked.household_id is not None:
            raise ValidationFailed(
                _("The member already belongs to a household."),
                code="already_in_household",
                fields={"member": _("Already in a household.")},
            )
        if locked.status != MemberStatus.ACTIVE:
            raise ValidationFailed(
                _("Only an active member can create a household."),
                code="member_not_active",
                fields={"member": _("Not active.")},
            )
        household = Household.objects.create(programme_id=locked.programme_id, name=name, owner=locked)
        locked.household = household
        locked.save(update_fields=["household", "updated_at"])
        audit.record(
            action="loyalty.household_created",
            object_type="loyalty.household",
            object_id=str(household.public_id),
            after={"name": name, "owner": locked.card_number},
            actor_id=actor_id(actor),
        )
    owner.household = household
    return household


def household_add(*, actor: Actor | None, household: Household, member: Member) -> Member:
    """Staff add a member of the same programme, up to the programme's ``household_max_members``."""
    authorise_operator(actor)
    return _household_enter(actor, household, member, action="loyalty.household_member_added")


def household_join(*, actor: Actor | None, household: Household, member: Member) -> Member:
    """A member joins a household themselves (through the portal, after an invitation the caller has
    checked): the same rules as ``household_add``, but only for the caller's own membership."""
    _authorise_household(actor, member)
    return _household_enter(actor, household, member, action="loyalty.household_member_joined")


def _household_enter(actor: Actor | None, household: Household, member: Member, *, action: str) -> Member:
    with transaction.atomic():
        locked_household = (
            Household.objects.select_for_update().select_related("programme").filter(pk=household.pk).first()
        )
        if locked_household is None:
            raise NotFound(_("Household not found."), code="household_not_found")
        locked = Member.objects.select_for_update().get(pk=member.pk)
        if locked.household_id == locked_household.pk:
            return locked
        if locked.programme_id != locked_household.programme_id:
            raise ValidationFailed(
                _("The member belongs to another programme."),
                code="not_same_programme",
                fields={"member": _("Another programme.")},
            )
        if locked.household_id is not None:
            raise ValidationFailed(
                _("The member already belongs to a household."),
                code="already_in_household",
                fields={"member": _("Already in a household.")},
            )
        if locked.status != MemberStatus.ACTIVE:
            raise ValidationFailed(
                _("Only an active member can join a household."),
                code="member_not_active",
                fields={"member": _("Not active.")},
            )
        limit = locked_household.programme.household_max_members
        if Member.objects.filter(household=locked_household).count() >= limit:
            raise ValidationFailed(
                _("A household has at most %(max)s members.") % {"max": limit},
                code="household_full",
                fields={"member": _("The household is full.")},
            )
        locked.household = locked_household
        locked.save(update_fields=["household", "updated_at"])
        audit.record(
            action=action,
            object_type="loyalty.household",
            object_id=str(locked_household.public_id),
            after={"member": locked.card_number},
            actor_id=actor_id(actor),
        )
    member.household = locked.household
    return locked


def household_remove(*, actor: Actor | None, member: Member) -> Member:
    """Take a member out of its household. The owner leaving hands the household to the longest
    standing other member; the last member leaving deletes it."""
    _authorise_household(actor, member)
    with transaction.atomic():
        locked = Member.objects.select_for_update().get(pk=member.pk)
        if locked.household_id is None:
            return locked
        household = Household.objects.select_for_update().get(pk=locked.household_id)
        locked.household = None
        locked.save(update_fields=["household", "updated_at"])
        others = Member.objects.filter(household=household).order_by("enrolled_at", "id")
        next_owner = others.first()
        if next_owner is None:
            public_id = household.public_id
            household.delete()
            outcome: dict[str, Any] = {"member": locked.card_number, "household": "deleted"}
        else:
            public_id = household.public_id
            if household.owner_id == locked.pk:
                household.owner = next_owner
                household.save(update_fields=["owner"])
            outcome = {"member": locked.card_number, "owner": household.owner_id}
        audit.record(
            action="loyalty.household_member_removed",
            object_type="loyalty.household",
            object_id=str(public_id),
            after=outcome,
            actor_id=actor_id(actor),
        )
    member.household = None
    return locked

"""Member portal (/club/) writes: portal-only orchestration around the other loyalty services.

The business rules live where they belong (enrolment and member updates in ``services.members``,
redemptions in ``services.rewards``, consent in the customers module); this file checks what only
the portal needs — the caller is a portal customer acting for their own customer, the programme terms
are accepted, the birthday can be given once, a physical reward has a shipping address — and then
calls those services inside one transaction, so a failure anywhere leaves nothing behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from django.core import signing
from django.db import transaction
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.customers.contracts import CustomerSummary
from fedele.loyalty.models import (
    Household,
    Member,
    PointsTransaction,
    Programme,
    ProgrammeStatus,
    Redemption,
    Reward,
    RewardKind,
)
from fedele.loyalty.selectors import club as selectors
from fedele.shared import audit, clock
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed

LANGUAGES = ("it", "en")
REFERRAL_CODE_MAX_LENGTH = 16
ADDRESS_FIELDS = ("name", "street", "postcode", "city", "province", "country", "phone")


def _portal_customer(actor: Actor) -> CustomerSummary:
    if not actor.is_portal_customer:
        raise PermissionDenied(_("These pages are for customers with a portal login."))
    customer = selectors.portal_customer(actor)
    if customer is None:
        raise PermissionDenied(
            _("Your login is not linked to a customer yet: contact us and we will link it."),
            code="portal_login_not_linked",
        )
    return customer


def _own_member(actor: Actor, member: Member) -> CustomerSummary:
    customer = _portal_customer(actor)
    if member.customer_id != customer.customer_id:
        # The same answer as for a membership that does not exist: an id reveals nothing.
        raise NotFound(_("Membership not found."), code="member_not_found")
    return customer


# enrolment -------------------------------------------------------------------------------------------


def club_enrol(
    *,
    actor: Actor,
    programme_code: str,
    accept_terms: bool,
    birthday: date | None = None,
    referral_code: str = "",
    language: str = "it",
) -> Member:
    """The signed-in portal customer joins ``programme_code`` (channel "portal"). The terms must be
    accepted; a referral code (from a member's link) makes that member the referrer. The acceptance is
    audited with the enrolment in the same transaction."""
    from fedele.loyalty.services.members import member_enrol

    customer = _portal_customer(actor)
    errors: dict[str, str] = {}
    programme = Programme.objects.filter(
        code=str(programme_code or ""), status=ProgrammeStatus.ACTIVE
    ).first()
    if programme is None:
        errors["programme"] = _("Choose a programme.")
    if not accept_terms:
        errors["accept_terms"] = _("Accept the programme terms to join.")
    code = (referral_code or "").strip().upper()
    if len(code) > REFERRAL_CODE_MAX_LENGTH or (code and not code.isalnum()):
        errors["referral_code"] = _("This referral code is not valid.")
    if language not in LANGUAGES:
        errors["language"] = _("Choose Italian or English.")
    if errors or programme is None:
        raise ValidationFailed(_("Some fields are not valid."), code="validation_error", fields=errors)
    if Member.objects.filter(programme=programme, customer_id=customer.customer_id).exists():
        raise ValidationFailed(
            _("You are already a member of this programme."),
            code="already_member",
            fields={"programme": _("You are already a member of this programme.")},
        )
    with transaction.atomic():
        member = member_enrol(
            actor=actor,
            programme=programme,
            customer_public_id=str(customer.public_id),
            channel="portal",
            referral_code=code,
            birthday=birthday,
            language=language,
        )
        audit.record(
            action="loyalty.club_terms_accepted",
            object_type="loyalty.member",
            object_id=str(member.public_id),
            after={"programme": programme.code, "channel": "portal", "accepted_at": clock.now()},
            actor_id=actor.user_id,
        )
    return member


# preferences -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreferencesResult:
    member: Member
    changed: tuple[str, ...]


def club_preferences_update(
    *,
    actor: Actor,
    member: Member,
    language: str,
    birthday: date | None,
    email_marketing: bool,
    sms_marketing: bool,
) -> PreferencesResult:
    """Language (of the programme's messages), birthday (once: afterwards only staff can correct it)
    and the programme's marketing consent by e-mail and SMS (recorded through the customers module
    only when it changes, source "portal"). One transaction: either everything changes or nothing."""
    from fedele.customers.facade import consent_change
    from fedele.loyalty.services.members import member_update

    customer = _own_member(actor, member)
    errors: dict[str, str] = {}
    if language not in LANGUAGES:
        errors["language"] = _("Choose Italian or English.")
    new_birthday = None
    if birthday is not None and birthday != member.birthday:
        if member.birthday is not None:
            errors["birthday"] = _("Your birthday is already set: contact us to correct it.")
        else:
            new_birthday = birthday  # the members service checks it is a plausible date
    if errors:
        raise ValidationFailed(_("Some fields are not valid."), code="validation_error", fields=errors)
    consents = selectors.marketing_consents(str(customer.public_id))
    wanted = {"email": bool(email_marketing), "sms": bool(sms_marketing)}
    changed: list[str] = []
    with transaction.atomic():
        if new_birthday is not None:
            member = member_update(actor=actor, member=member, birthday=new_birthday)
            changed.append("birthday")
        if language != member.language:
            member = member_update(actor=actor, member=member, language=language)
            changed.append("language")
        for channel in selectors.MARKETING_CHANNELS:
            if wanted[channel] == consents[channel]:
                continue
            consent_change(
                actor=actor,
                customer_public_id=str(customer.public_id),
                channel=channel,
                purpose=selectors.MARKETING_PURPOSE,
                granted=wanted[channel],
                source="portal",
                evidence=f"loyalty club preferences, programme {member.programme.code}",
            )
            changed.append(f"{channel}_marketing")
    return PreferencesResult(member=member, changed=tuple(changed))


# redemption ------------------------------------------------------------------------------------------


def redemption_key(member: Member, form_key: str) -> str:
    """The idempotency key of a portal redemption: the form's UUID (made when the confirmation page was
    shown, so a double submit sends the same one) bound to the member, so another member's key can
    never find this member's redemption."""
    try:
        parsed = uuid.UUID(str(form_key).strip())
    except (ValueError, AttributeError) as error:
        raise ValidationFailed(
            _("This form has expired: open the reward again."),
            code="invalid_idempotency_key",
            fields={"idempotency_key": _("Invalid.")},
        ) from error
    return f"club:{member.public_id.hex}:{parsed.hex}"


def club_redeem(
    *,
    actor: Actor,
    member: Member,
    reward: Reward,
    form_key: str,
    shipping_address: Mapping[str, object] | None = None,
) -> Redemption:
    """Redeem one ``reward`` for the signed-in member (reserve and confirm at once). The same
    ``form_key`` twice returns the first redemption: a double submit never redeems twice. Eligibility
    (balance, stock, tier, limits) and the address rules are the rewards service's; its errors come
    back unchanged (address fields as ``shipping_address.<part>``)."""
    from fedele.loyalty.services.rewards import reward_redeem

    _own_member(actor, member)
    if reward.programme_id != member.programme_id:
        raise NotFound(_("Reward not found."), code="reward_not_found")
    key = redemption_key(member, form_key)
    address = None
    if reward.kind == RewardKind.PHYSICAL:
        # The rewards service validates the address (required parts, postcode, country).
        raw = shipping_address or {}
        address = {name: " ".join(str(raw.get(name) or "").split()) for name in ADDRESS_FIELDS}
        address["country"] = address["country"].upper()
    return reward_redeem(
        actor=actor,
        member=member,
        reward=reward,
        idempotency_key=key,
        quantity=1,
        shipping_address=address,
        confirm=True,
    )


# household (family pooling) --------------------------------------------------------------------------

INVITATION_SALT = "fedele.loyalty.household-invitation"
INVITATION_MAX_AGE = timedelta(days=7)
HOUSEHOLD_NAME_MAX_LENGTH = 120


def _pooling(member: Member) -> None:
    from fedele.loyalty.selectors.members import programme_pools

    if not programme_pools(member.programme):
        raise ValidationFailed(
            _("This programme has no family pooling."),
            code="pooling_not_offered",
            fields={"household": _("Not offered by this programme.")},
        )


def club_household_create(*, actor: Actor, member: Member, name: str) -> Household:
    """The signed-in member starts a household (and owns it)."""
    from fedele.loyalty.services.members import household_create

    _own_member(actor, member)
    _pooling(member)
    return household_create(actor=actor, owner=member, name=" ".join(str(name or "").split()))


def household_invitation(*, actor: Actor, member: Member) -> str:
    """A signed, expiring invitation to the member's household, to share as a link. It names the
    household and who invited; nothing is stored, so it cannot be revoked before it expires (leaving
    the household makes the inviter's invitations useless: joining checks the inviter is still in)."""
    _own_member(actor, member)
    if member.household_id is None:
        raise ValidationFailed(
            _("You are not in a household."), code="not_in_household", fields={"household": _("None.")}
        )
    household = Household.objects.get(pk=member.household_id)
    payload = {"household": household.public_id.hex, "by": member.public_id.hex}
    return signing.dumps(payload, salt=INVITATION_SALT, compress=True)


@dataclass(frozen=True, slots=True)
class Invitation:
    household: Household
    inviter: Member


def _invalid_invitation() -> ValidationFailed:
    return ValidationFailed(
        _("This invitation is not valid or has expired: ask for a new link."),
        code="invalid_invitation",
        fields={"invitation": _("Not valid.")},
    )


def invitation_read(token: str, *, for_member: Member | None = None) -> Invitation:
    """The household an invitation leads to, checked: signature, age, the inviter still in that
    household, the same programme as ``for_member``."""
    try:
        payload = signing.loads(str(token or ""), salt=INVITATION_SALT, max_age=INVITATION_MAX_AGE)
        household_key = uuid.UUID(hex=str(payload["household"]))
        inviter_key = uuid.UUID(hex=str(payload["by"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError) as error:
        raise _invalid_invitation() from error
    household = Household.objects.select_related("programme").filter(public_id=household_key).first()
    inviter = Member.objects.filter(public_id=inviter_key).first()
    if household is None or inviter is None or inviter.household_id != household.pk:
        raise _invalid_invitation()
    if for_member is not None and household.programme_id != for_member.programme_id:
        raise ValidationFailed(
            _("This invitation is for another programme."),
            code="not_same_programme",
            fields={"invitation": _("Another programme.")},
        )
    return Invitation(household=household, inviter=inviter)


def club_household_join(*, actor: Actor, member: Member, token: str) -> Household:
    """The signed-in member accepts an invitation: they join the household if it has room."""
    from fedele.loyalty.services.members import household_join

    _own_member(actor, member)
    _pooling(member)
    invitation = invitation_read(token, for_member=member)
    if member.household_id == invitation.household.pk:
        return invitation.household
    household_join(actor=actor, household=invitation.household, member=member)
    return invitation.household


def club_household_leave(*, actor: Actor, member: Member) -> None:
    """The signed-in member leaves their household (the points they hold stay theirs)."""
    from fedele.loyalty.services.members import household_remove

    _own_member(actor, member)
    if member.household_id is None:
        raise ValidationFailed(
            _("You are not in a household."), code="not_in_household", fields={"household": _("None.")}
        )
    household_remove(actor=actor, member=member)


def transfer_key(member: Member, form_key: str) -> str:
    """The idempotency key of a portal transfer: the form's UUID bound to the member (a double submit
    transfers once; another member's key never finds this member's transfer)."""
    try:
        parsed = uuid.UUID(str(form_key).strip())
    except (ValueError, AttributeError) as error:
        raise ValidationFailed(
            _("This form has expired: open the page again."),
            code="invalid_idempotency_key",
            fields={"idempotency_key": _("Invalid.")},
        ) from error
    return f"club-transfer:{member.public_id.hex}:{parsed.hex}"


def club_household_transfer(
    *, actor: Actor, member: Member, to_member_id: str, points: int, form_key: str
) -> PointsTransaction:
    """Give points to another member of the signed-in member's household. The limits (per transfer,
    per calendar month), the balance and the household are the ledger's checks; a recipient outside the
    household is refused the same way as an unknown one."""
    from fedele.loyalty.services.ledger import points_transfer

    _own_member(actor, member)
    key = transfer_key(member, form_key)
    try:
        recipient_key = uuid.UUID(str(to_member_id or "").strip())
    except ValueError:
        recipient_key = None
    recipient = (
        Member.objects.select_related("programme").filter(public_id=recipient_key).first()
        if recipient_key is not None and member.household_id is not None
        else None
    )
    if recipient is None or recipient.household_id != member.household_id:
        raise ValidationFailed(
            _("Choose a member of your household."),
            code="not_same_household",
            fields={"to_member": _("Choose a member of your household.")},
        )
    return points_transfer(
        actor=actor, from_member=member, to_member=recipient, points=points, idempotency_key=key
    )

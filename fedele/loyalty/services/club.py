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
from datetime import date

from django.db import transaction
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.customers.contracts import CustomerSummary
from fedele.loyalty.models import Member, Programme, ProgrammeStatus, Redemption, Reward, RewardKind
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

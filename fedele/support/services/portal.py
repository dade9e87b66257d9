"""Self-service portal writes: sign-up with e-mail verification, new requests, replies, "mark as
solved".

Sign-up: the form's data is not stored anywhere until the address is proven. The verification link
carries it, signed with a timestamp (django.core.signing, valid 48 hours) and with the password
encrypted (Fernet, key derived from SECRET_KEY), so nothing readable sits in the mailbox. Only when
the link is opened is the portal login created, and only then is it attached to an existing customer
with that e-mail address: someone who types a customer's address cannot take their account over,
because they never receive the link. An address that already has a login gets a "you already have an
account" e-mail instead, so the form does not reveal who is registered.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from fedele.accounts.contracts import Actor, Role
from fedele.shared import audit, clock, ratelimit
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed
from fedele.support.attachments import IncomingFile
from fedele.support.models import StatusKind, Ticket, TicketMessage, TicketType

logger = logging.getLogger(__name__)

SIGNUP_SALT = "fedele.support.portal.signup"
SIGNUP_VALID_FOR = timedelta(hours=48)
LANGUAGES = ("it", "en")
NAME_MAX_LENGTH = 150
SUBJECT_MAX_LENGTH = 250
BODY_MAX_LENGTH = 20_000


# sign-up -------------------------------------------------------------------------------------------


def _fernet() -> Any:
    from cryptography.fernet import Fernet

    digest = hashlib.sha256(f"{SIGNUP_SALT}:{settings.SECRET_KEY}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def split_name(name: str) -> tuple[str, str]:
    parts = name.strip().split(None, 1)
    return (parts[0], parts[1]) if len(parts) == 2 else (name.strip(), "")


def _clean_signup(email: str, name: str, password: str, language: str, consent: bool) -> tuple[str, str]:
    errors: dict[str, list[str]] = {}
    address = (email or "").strip().lower()
    try:
        validate_email(address)
    except DjangoValidationError:
        errors["email"] = ["Enter a valid e-mail address."]
    clean_name = " ".join((name or "").split())
    if not clean_name or len(clean_name) > NAME_MAX_LENGTH:
        errors["name"] = [f"Enter your name (at most {NAME_MAX_LENGTH} characters)."]
    if language not in LANGUAGES:
        errors["language"] = ["Choose Italian or English."]
    if not consent:
        errors["consent"] = ["Please accept the privacy notice to create an account."]
    if not password:
        errors["password"] = ["Choose a password."]
    else:
        from django.contrib.auth import get_user_model

        first, last = split_name(clean_name)
        probe = get_user_model()(email=address, first_name=first, last_name=last)
        try:
            validate_password(password, probe)
        except DjangoValidationError as error:
            errors["password"] = [str(message) for message in error.messages]
    if errors:
        raise ValidationFailed("Some fields are not valid.", code="validation_error", fields=errors)
    return address, clean_name


def signup_token(*, email: str, name: str, password: str, language: str) -> str:
    secret = _fernet().encrypt(password.encode("utf-8")).decode("ascii")
    consent_at = clock.now().isoformat()
    return signing.dumps(
        {"e": email, "n": name, "l": language, "p": secret, "c": consent_at}, salt=SIGNUP_SALT, compress=True
    )


def verify_url(token: str) -> str:
    base = str(getattr(settings, "FEDELE_PUBLIC_URL", "")).rstrip("/")
    return f"{base}{reverse('help:signup_verify', args=[token])}"


def signup_start(
    *, email: str, name: str, password: str, language: str, consent: bool, client_ip: str = ""
) -> None:
    """Validate and e-mail the verification link (after commit). Creates nothing yet."""
    limit = int(getattr(settings, "FEDELE_PORTAL_SIGNUPS_PER_HOUR", 10))
    ratelimit.hit(f"support.portal.signup:{client_ip or 'unknown'}", limit=limit, window_seconds=3600)
    address, clean_name = _clean_signup(email, name, password, language, consent)
    from fedele.accounts.facade import user_id_for_email

    exists = user_id_for_email(address) is not None
    context = {
        "name": clean_name,
        "brand_name": getattr(settings, "FEDELE_BRAND_NAME", "fedele"),
        "valid_hours": int(SIGNUP_VALID_FOR.total_seconds() // 3600),
        "login_url": f"{str(getattr(settings, 'FEDELE_PUBLIC_URL', '')).rstrip('/')}"
        f"{reverse('accounts:login')}?next={reverse('help:home')}",
        "url": ""
        if exists
        else verify_url(signup_token(email=address, name=clean_name, password=password, language=language)),
    }
    template = "already_registered" if exists else "signup_verify"
    with translation.override(language):
        subject = " ".join(render_to_string(f"support/portal/emails/{template}_subject.txt", context).split())
        body = render_to_string(f"support/portal/emails/{template}_body.txt", context)
    audit.record(
        action="portal.signup_requested",
        object_type="portal_signup",
        object_id=hashlib.sha256(address.encode()).hexdigest()[:32],
        after={"language": language, "existing_login": exists},
    )

    def deliver() -> None:
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address])
        except Exception:
            logger.exception("Could not send the portal sign-up e-mail")

    transaction.on_commit(deliver)


@dataclass(frozen=True, slots=True)
class SignupResult:
    user_id: int
    email: str
    customer_public_id: str | None
    linked_existing_customer: bool


def _read_token(token: str) -> dict[str, Any]:
    try:
        data = signing.loads(token, salt=SIGNUP_SALT, max_age=SIGNUP_VALID_FOR)
    except signing.SignatureExpired as error:
        raise ValidationFailed("This link has expired. Please sign up again.", code="link_expired") from error
    except signing.BadSignature as error:
        raise ValidationFailed("This link is not valid.", code="link_invalid") from error
    if not isinstance(data, dict) or not {"e", "n", "l", "p"} <= set(data):
        raise ValidationFailed("This link is not valid.", code="link_invalid")
    return data


def _system_actor_for(user_id: int, email: str, language: str) -> Actor:
    """The new customer creates their own customer record: the portal user, allowed that one thing."""
    from fedele.accounts.facade import user_summary

    summary = user_summary(user_id)
    if summary is None:  # pragma: no cover - the user was created in this transaction
        raise ValidationFailed("The account could not be created.")
    return Actor(
        user_id=user_id,
        public_id=summary.public_id,
        email=email,
        roles=frozenset({Role.PORTAL_CUSTOMER.value}),
        permissions=frozenset({"customers.add_customer"}),
        organisation_id=None,
        organisation_kind=None,
        language=language,
    )


def _link_login(*, customer_public_id: str, user_id: int, email: str, name: str, language: str) -> bool:
    """Attach the login to the customer through customers.facade.link_portal_user (which creates
    or reuses the contact with that e-mail)."""
    from fedele.customers.facade import link_portal_user

    first, last = split_name(name)
    link_portal_user(
        customer_public_id=customer_public_id,
        user_id=user_id,
        email=email,
        first_name=first,
        last_name=last,
        language=language,
    )
    return True


def signup_verify(token: str) -> SignupResult:
    """Create the portal login from a verified link and attach it to its customer (existing one with
    that e-mail, or a new person customer with source "portal"). A second click is a Conflict."""
    from fedele.accounts.facade import create_portal_user, user_id_for_email
    from fedele.customers.facade import create_customer, find_customer_by_email

    data = _read_token(token)
    address, name, language = str(data["e"]), str(data["n"]), str(data["l"])
    if user_id_for_email(address) is not None:
        raise Conflict("This account is already active: sign in.", code="already_verified")
    try:
        password = _fernet().decrypt(str(data["p"]).encode("ascii")).decode("utf-8")
    except Exception as error:
        raise ValidationFailed("This link is not valid.", code="link_invalid") from error
    first, last = split_name(name)
    with transaction.atomic():
        user_id = create_portal_user(
            email=address, password=password, first_name=first, last_name=last, language=language
        )
        existing = find_customer_by_email(address)
        if existing is not None:
            customer_public_id = str(existing.public_id)
        else:
            created = create_customer(
                actor=_system_actor_for(user_id, address, language),
                data={
                    "kind": "person",
                    "email": address,
                    "first_name": first,
                    "last_name": last or first,
                    "language": language,
                },
                source="portal",
            )
            customer_public_id = str(created.public_id)
        linked = _link_login(
            customer_public_id=customer_public_id,
            user_id=user_id,
            email=address,
            name=name,
            language=language,
        )
        audit.record(
            action="portal.signup_verified",
            object_type="user",
            object_id=str(user_id),
            after={
                "customer": customer_public_id,
                "existing_customer": existing is not None,
                "linked": linked,
                "privacy_consent_at": data.get("c", ""),
            },
            actor_id=user_id,
        )
    return SignupResult(user_id, address, customer_public_id, existing is not None)


# requests ------------------------------------------------------------------------------------------


def _require_portal(actor: Actor) -> None:
    if not actor.is_portal_customer:
        raise PermissionDenied("These pages are for customers with a portal login.")


def portal_types() -> list[TicketType]:
    return list(TicketType.objects.filter(active=True, portal_visible=True).order_by("position", "id"))


def portal_fields(ticket_type: TicketType) -> list[dict[str, Any]]:
    return [
        field
        for field in (ticket_type.custom_fields or [])
        if isinstance(field, dict) and field.get("portal") and field.get("key")
    ]


def custom_values(ticket_type: TicketType, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The type's portal fields from the form (prefix cf_); the ticket service validates them."""
    values: dict[str, Any] = {}
    for field in portal_fields(ticket_type):
        key = str(field["key"])
        if field.get("type") == "boolean":
            values[key] = str(raw.get(f"cf_{key}", "")).lower() in ("1", "true", "on", "yes")
            continue
        value = str(raw.get(f"cf_{key}", "") or "").strip()
        if value:
            values[key] = value
    return values


def request_submit(
    *,
    actor: Actor,
    ticket_type: str,
    subject: str,
    description: str,
    custom_fields: Mapping[str, Any] | None = None,
    attachments: Sequence[IncomingFile] = (),
    deflection_token: str = "",
    language: str | None = None,
) -> Ticket:
    """A portal customer's new request: channel "portal", requester = the signed-in user, customer =
    the user's customer. The knowledge-base suggestions shown while typing are marked as not having
    deflected this request."""
    from fedele.accounts.facade import user_summary
    from fedele.customers.facade import customer_for_user
    from fedele.support.services.tickets import ticket_create

    _require_portal(actor)
    errors: dict[str, str] = {}
    chosen = TicketType.objects.filter(code=ticket_type, active=True, portal_visible=True).first()
    if chosen is None:
        errors["ticket_type"] = "Choose the kind of request."
    clean_subject = " ".join((subject or "").split())
    if not clean_subject:
        errors["subject"] = "Write a short subject."
    elif len(clean_subject) > SUBJECT_MAX_LENGTH:
        errors["subject"] = f"At most {SUBJECT_MAX_LENGTH} characters."
    body = (description or "").replace("\x00", "").strip()
    if not body:
        errors["description"] = "Describe what happened."
    elif len(body) > BODY_MAX_LENGTH:
        errors["description"] = f"At most {BODY_MAX_LENGTH} characters."
    if errors:
        raise ValidationFailed("Some fields are not valid.", fields=errors)
    summary = user_summary(actor.user_id)
    customer = customer_for_user(actor.user_id)
    with transaction.atomic():
        ticket = ticket_create(
            actor=actor,
            subject=clean_subject,
            body=body,
            channel="portal",
            requester_email=actor.email,
            requester_name=summary.full_name if summary is not None else "",
            requester_user_id=actor.user_id,
            customer_public_id=str(customer.public_id) if customer is not None else None,
            ticket_type=ticket_type,
            custom_fields=dict(custom_fields or {}),
            attachments=attachments,
            language=(language or actor.language or "it")[:2],
        )
        if deflection_token:
            from fedele.support.services import kb

            record: Any = getattr(kb, "deflection_record_submitted", None)
            if record is not None:
                record(deflection_token[:64], ticket)
    return ticket


def request_reply(
    *, actor: Actor, ticket_public_id: str, body: str, attachments: Sequence[IncomingFile] = ()
) -> TicketMessage:
    from fedele.support.selectors.tickets import ticket_get
    from fedele.support.services.tickets import message_add

    _require_portal(actor)
    ticket = ticket_get(actor=actor, public_id=ticket_public_id)
    text = (body or "").replace("\x00", "").strip()
    if not text and not attachments:
        raise ValidationFailed("Write a message.", fields={"body": "Write a message."})
    if len(text) > BODY_MAX_LENGTH:
        raise ValidationFailed(
            "The message is too long.", fields={"body": f"At most {BODY_MAX_LENGTH} characters."}
        )
    if ticket.status_kind == StatusKind.CLOSED:
        raise ValidationFailed(
            "This request is closed: open a new one.", code="ticket_closed", fields={"body": "Closed."}
        )
    return message_add(
        actor=actor, ticket=ticket, kind="customer", body=text, channel="portal", attachments=attachments
    )


def request_mark_solved(*, actor: Actor, ticket_public_id: str) -> Ticket:
    """The requester says the problem is gone. The change is made by the system on their behalf (the
    history names them) because portal users cannot edit tickets."""
    from fedele.support.selectors.tickets import ticket_get
    from fedele.support.services.tickets import ticket_update

    _require_portal(actor)
    ticket = ticket_get(actor=actor, public_id=ticket_public_id)
    if ticket.status_kind in (StatusKind.SOLVED, StatusKind.CLOSED):
        return ticket
    with transaction.atomic():
        updated = ticket_update(actor=None, ticket=ticket, changes={"status": "solved"})
        audit.record(
            action="ticket.solved_by_customer",
            object_type="ticket",
            object_id=str(ticket.public_id),
            after={"status": "solved"},
            actor_id=actor.user_id,
        )
    return updated

"""What the field service services share: permission checks, actor labels, text and phone clean-up."""

from __future__ import annotations

import re
from typing import Any

from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.shared.errors import PermissionDenied, ValidationFailed

VIEW = "field_service.view_field_service"
WORK = "field_service.work_field_service"
MANAGE = "field_service.manage_field_service"
BUSINESS_TZ = "Europe/Rome"
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def require(actor: Actor | None, permission: str) -> None:
    """None is the system (demo loader, event handlers): always allowed."""
    if actor is not None and not (actor.is_internal and actor.can(permission)):
        raise PermissionDenied(_("You do not have permission for this action."), code="permission_denied")


def actor_id(actor: Actor | None) -> int | None:
    return actor.user_id if actor is not None else None


def actor_label(actor: Actor | None) -> str:
    """Who made a change, as history shows it; empty for the system (pages word it in the reader's
    language)."""
    if actor is None:
        return ""
    return (actor.display_name or actor.email)[:200]


def text(value: Any, field: str, *, max_length: int, required: bool = False) -> str:
    cleaned = str(value or "").strip()
    if "\x00" in cleaned:
        raise ValidationFailed(_("The text contains a NUL character."), fields={field: _("Not allowed.")})
    if required and not cleaned:
        raise ValidationFailed(_("Please fill in the required fields."), fields={field: _("Required.")})
    if len(cleaned) > max_length:
        raise ValidationFailed(
            _("The text is too long."),
            fields={field: _("At most %(count)s characters.") % {"count": max_length}},
        )
    return cleaned


def phone(value: Any, field: str = "phone") -> str:
    """Any written form of a phone number as E.164; an Italian number without prefix gets +39."""
    raw = str(value or "").strip()
    if not raw:
        return ""
    digits = re.sub(r"[\s\-./()]", "", raw)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif not digits.startswith("+") and digits[:1] in {"0", "3"}:
        digits = "+39" + digits
    if not _E164.match(digits):
        raise ValidationFailed(
            _("The phone number is not valid."),
            code="invalid_phone",
            fields={field: _("Write it with the country prefix, e.g. +39 335 123 4567.")},
        )
    return digits


def email(value: Any, field: str = "email") -> str:
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    address = str(value or "").strip().lower()
    if not address:
        return ""
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationFailed(
            _("The e-mail address is not valid."), code="invalid_email", fields={field: _("Not valid.")}
        ) from None
    return address

"""Support mailboxes: create, change, deactivate, test the IMAP connection (support.manage_support).

The IMAP password is never stored: a mailbox names the environment variable that holds it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.shared import audit, clock
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed
from fedele.support.models import Mailbox, Priority, TicketType

MANAGE = "support.manage_support"
EDITABLE = (
    "name",
    "address",
    "from_name",
    "team",
    "ticket_type",
    "default_priority",
    "language",
    "max_attachment_bytes",
    "imap_host",
    "imap_port",
    "imap_ssl",
    "imap_username",
    "imap_password_env",
    "imap_folder",
    "active",
)
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,79}$")
ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


def require_manager(actor: Actor | None) -> Actor:
    if actor is None or not actor.is_internal or not actor.can(MANAGE):
        raise PermissionDenied(_("You may not configure mailboxes."), code="permission_denied")
    return actor


def _snapshot(mailbox: Mailbox) -> dict[str, Any]:
    return {
        "name": mailbox.name,
        "address": mailbox.address,
        "from_name": mailbox.from_name,
        "team": str(mailbox.team.public_id) if mailbox.team_id and mailbox.team else None,
        "ticket_type": mailbox.ticket_type.code if mailbox.ticket_type_id and mailbox.ticket_type else None,
        "default_priority": mailbox.default_priority,
        "language": mailbox.language,
        "max_attachment_bytes": mailbox.max_attachment_bytes,
        "imap_host": mailbox.imap_host,
        "imap_port": mailbox.imap_port,
        "imap_ssl": mailbox.imap_ssl,
        "imap_username": mailbox.imap_username,
        "imap_password_env": mailbox.imap_password_env,
        "imap_folder": mailbox.imap_folder,
        "active": mailbox.active,
    }


def _clean(values: Mapping[str, Any], *, current: Mailbox | None) -> dict[str, Any]:
    """Validated values for the model fields; every problem reported at once, nothing applied."""
    from fedele.support.services.email_inbound import max_email_bytes

    unknown = sorted(set(values) - set(EDITABLE))
    if unknown:
        raise ValidationFailed(
            _("Unknown fields: %(names)s.") % {"names": ", ".join(unknown)},
            code="unknown_fields",
            fields={name: _("Unknown field.") for name in unknown},
        )
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, str):
            value = value.strip()
        cleaned[key] = value
    if "name" in cleaned and (not cleaned["name"] or len(str(cleaned["name"])) > 80):
        errors["name"] = _("Give a name of at most 80 characters.")
    if "address" in cleaned:
        address = str(cleaned["address"] or "").lower()
        cleaned["address"] = address
        if not ADDRESS.match(address) or len(address) > 254 or "+" in address.split("@")[0]:
            errors["address"] = _("Enter an e-mail address without plus-addressing.")
        elif (
            Mailbox.objects.filter(address__iexact=address).exclude(pk=current.pk if current else 0).exists()
        ):
            errors["address"] = _("Another mailbox already uses this address.")
    if "from_name" in cleaned and len(str(cleaned["from_name"] or "")) > 120:
        errors["from_name"] = _("At most 120 characters.")
    if "team" in cleaned:
        cleaned["team"] = _team(cleaned["team"], errors)
    if "ticket_type" in cleaned:
        code = cleaned["ticket_type"] or None
        cleaned["ticket_type"] = None
        if code:
            found = TicketType.objects.filter(code=code, active=True).first()
            if found is None:
                errors["ticket_type"] = _("Unknown ticket type.")
            cleaned["ticket_type"] = found
    if "default_priority" in cleaned and cleaned["default_priority"] not in Priority.values:
        errors["default_priority"] = _("Choose low, normal, high or urgent.")
    if "language" in cleaned and cleaned["language"] not in ("it", "en"):
        errors["language"] = _("Choose Italian or English.")
    if "max_attachment_bytes" in cleaned:
        size = _integer(cleaned["max_attachment_bytes"])
        if size is None or size < 1024 or size > max_email_bytes():
            errors["max_attachment_bytes"] = _("Between 1 KB and %(limit)s MB.") % {
                "limit": max_email_bytes() // (1024 * 1024)
            }
        cleaned["max_attachment_bytes"] = size
    if "imap_port" in cleaned:
        port = _integer(cleaned["imap_port"])
        if port is None or not 1 <= port <= 65535:
            errors["imap_port"] = _("A port between 1 and 65535.")
        cleaned["imap_port"] = port
    for flag in ("imap_ssl", "active"):
        if flag in cleaned and not isinstance(cleaned[flag], bool):
            errors[flag] = _("Yes or no.")
    if cleaned.get("imap_password_env") and not ENV_NAME.match(str(cleaned["imap_password_env"])):
        errors["imap_password_env"] = _("The name of an environment variable, e.g. SUPPORT_IMAP_PASSWORD.")
    if "imap_folder" in cleaned and not cleaned["imap_folder"]:
        cleaned["imap_folder"] = "INBOX"
    merged = {**(_snapshot(current) if current else {}), **cleaned}
    if merged.get("imap_host"):
        if not merged.get("imap_username"):
            errors["imap_username"] = _("Required to fetch mail by IMAP.")
        if not merged.get("imap_password_env"):
            errors["imap_password_env"] = _("Required to fetch mail by IMAP.")
    if errors:
        raise ValidationFailed(_("The mailbox is not valid."), code="invalid_mailbox", fields=errors)
    return cleaned


def _integer(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _team(value: Any, errors: dict[str, str]) -> Any:
    if not value:
        return None
    from fedele.support.models import Ticket

    team_model = Ticket._meta.get_field("team").related_model
    try:
        return team_model._default_manager.get(public_id=str(value))
    except Exception:
        errors["team"] = _("Unknown team.")
        return None


def mailbox_create(*, actor: Actor | None, data: Mapping[str, Any]) -> Mailbox:
    actor = require_manager(actor)
    missing = [name for name in ("name", "address") if not str(data.get(name) or "").strip()]
    if missing:
        raise ValidationFailed(
            _("The mailbox is not valid."),
            code="invalid_mailbox",
            fields={name: _("Required.") for name in missing},
        )
    cleaned = _clean(data, current=None)
    with transaction.atomic():
        mailbox = Mailbox(created_at=clock.now(), **cleaned)
        mailbox.save()
        audit.record(
            action="support.mailbox_created",
            object_type="support.mailbox",
            object_id=str(mailbox.public_id),
            after=_snapshot(mailbox),
            actor_id=actor.user_id,
        )
    return mailbox


def mailbox_get(*, actor: Actor | None, public_id: str) -> Mailbox:
    require_manager(actor)
    try:
        mailbox = Mailbox.objects.select_related("team", "ticket_type").filter(public_id=public_id).first()
    except Exception:  # not a UUID
        mailbox = None
    if mailbox is None:
        raise NotFound(_("Mailbox not found."), code="mailbox_not_found")
    return mailbox


def mailbox_update(*, actor: Actor | None, public_id: str, changes: Mapping[str, Any]) -> Mailbox:
    actor = require_manager(actor)
    mailbox = mailbox_get(actor=actor, public_id=public_id)
    cleaned = _clean(changes, current=mailbox)
    with transaction.atomic():
        locked = (
            Mailbox.objects.select_for_update(of=("self",))
            .select_related("team", "ticket_type")
            .get(pk=mailbox.pk)
        )
        before = _snapshot(locked)
        for key, value in cleaned.items():
            setattr(locked, key, value)
        where = (locked.imap_host, locked.imap_folder, locked.imap_username)
        if (before["imap_host"], before["imap_folder"], before["imap_username"]) != where:
            # Another folder: its UIDs mean nothing here; the Message-ID dedupe covers overlap.
            locked.imap_uidvalidity, locked.imap_last_uid, locked.imap_last_error = None, 0, ""
        locked.save()
        audit.record(
            action="support.mailbox_updated",
            object_type="support.mailbox",
            object_id=str(locked.public_id),
            before=before,
            after=_snapshot(locked),
            actor_id=actor.user_id,
        )
    return locked


def mailbox_delete(*, actor: Actor | None, public_id: str) -> None:
    """Delete a mailbox; its tickets and inbound log stay (their link is cleared)."""
    actor = require_manager(actor)
    mailbox = mailbox_get(actor=actor, public_id=public_id)
    with transaction.atomic():
        locked = Mailbox.objects.select_for_update().get(pk=mailbox.pk)
        before = _snapshot(locked)
        locked.delete()
        audit.record(
            action="support.mailbox_deleted",
            object_type="support.mailbox",
            object_id=public_id,
            before=before,
            actor_id=actor.user_id,
        )


def mailbox_test_connection(*, actor: Actor | None, public_id: str) -> tuple[bool, str]:
    """Log in to the mailbox's IMAP server and open its folder (changes nothing)."""
    from fedele.support.email.imap import check_connection

    mailbox = mailbox_get(actor=actor, public_id=public_id)
    if not mailbox.imap_host:
        return False, _("This mailbox does not fetch mail by IMAP.")
    return check_connection(mailbox)

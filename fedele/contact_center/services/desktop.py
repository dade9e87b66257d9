"""Writes of the agent desktop: canned replies (settings) and linking an unknown caller to a customer.

Everything else the desktop does goes through the area that owns it: presence and offers (routing),
call control (telephony), chat messages (messaging), wrap-up and ticket links (interactions).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from fedele.contact_center.models import Agent, CannedReply, Interaction, InteractionEvent, Queue
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fedele.shared.realtime import notify_group

SHORTCUT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_REPLY_CHARS = 4000
MAX_TITLE_CHARS = 120


def _reply_problems(data: dict[str, Any]) -> dict[str, str]:
    problems: dict[str, str] = {}
    if not SHORTCUT.match(data["shortcut"]):
        problems["shortcut"] = _("Use 1–40 lower-case letters, digits, - or _ (typed as /shortcut).")
    if not data["title"]:
        problems["title"] = _("Give the reply a title.")
    elif len(data["title"]) > MAX_TITLE_CHARS:
        problems["title"] = _("At most %(limit)d characters.") % {"limit": MAX_TITLE_CHARS}
    for name in ("body_it", "body_en"):
        if not data[name]:
            problems[name] = _("Write the text in both languages.")
        elif len(data[name]) > MAX_REPLY_CHARS:
            problems[name] = _("At most %(limit)d characters.") % {"limit": MAX_REPLY_CHARS}
    return problems


def canned_reply_save(
    *,
    shortcut: str,
    title: str,
    body_it: str,
    body_en: str,
    queue_code: str = "",
    active: bool = True,
    reply: CannedReply | None = None,
    actor_id: int | None = None,
) -> CannedReply:
    """Create (``reply`` None) or update a canned reply. A shortcut is unique; bad input changes nothing."""
    data = {
        "shortcut": (shortcut or "").strip().lstrip("/").lower(),
        "title": (title or "").strip(),
        "body_it": (body_it or "").strip(),
        "body_en": (body_en or "").strip(),
    }
    problems = _reply_problems(data)
    queue = None
    if queue_code:
        queue = Queue.objects.filter(code=queue_code).first()
        if queue is None:
            problems["queue"] = _("Unknown queue.")
    if problems:
        raise ValidationFailed(
            _("The canned reply cannot be saved."), code="invalid_canned_reply", fields=problems
        )
    try:
        with transaction.atomic():
            if reply is None:
                row = CannedReply(**data, queue=queue, active=active)
                before = None
            else:
                row = CannedReply.objects.select_for_update().get(pk=reply.pk)
                before = {"shortcut": row.shortcut, "title": row.title, "active": row.active}
                for name, value in data.items():
                    setattr(row, name, value)
                row.queue = queue
                row.active = active
            row.save()
            audit.record(
                action="contact_center.canned_reply_saved",
                object_type="contact_center.canned_reply",
                object_id=str(row.pk),
                before=before,
                after={"shortcut": row.shortcut, "title": row.title, "active": row.active},
                actor_id=actor_id,
            )
    except IntegrityError as error:
        raise ValidationFailed(
            _("The canned reply cannot be saved."),
            code="duplicate_shortcut",
            fields={"shortcut": _("Another reply already uses this shortcut.")},
        ) from error
    return row


def canned_reply_delete(*, reply: CannedReply, actor_id: int | None = None) -> None:
    with transaction.atomic():
        deleted, _rows = CannedReply.objects.filter(pk=reply.pk).delete()
        if not deleted:
            raise NotFound(_("This canned reply does not exist."), code="canned_reply_not_found")
        audit.record(
            action="contact_center.canned_reply_deleted",
            object_type="contact_center.canned_reply",
            object_id=str(reply.pk),
            before={"shortcut": reply.shortcut},
            actor_id=actor_id,
        )


def interaction_customer_link(
    *, interaction: Interaction, agent: Agent | None, customer_public_id: str, actor_id: int | None = None
) -> Interaction:
    """An unknown caller turns out to be a customer: the agent holding the contact (or a supervisor,
    ``agent`` None) links it. The customer must exist; relinking to the same customer changes nothing."""
    from fedele.customers.facade import customer_summary

    try:
        customer = customer_summary(str(uuid.UUID(str(customer_public_id or ""))))
    except ValueError:
        customer = None
    if customer is None:
        raise NotFound(_("This customer does not exist."), code="customer_not_found")
    with transaction.atomic():
        locked = Interaction.objects.select_for_update().get(pk=interaction.pk)
        if agent is not None and locked.agent_id != agent.pk:
            raise PermissionDenied(_("This contact is not yours."), code="not_your_interaction")
        if locked.customer_public_id == str(customer.public_id):
            return locked
        if locked.customer_public_id:
            raise Conflict(
                _("This contact is already linked to another customer."), code="customer_already_linked"
            )
        locked.customer_public_id = str(customer.public_id)
        locked.save(update_fields=["customer_public_id"])
        InteractionEvent.objects.create(
            interaction=locked,
            kind="customer_linked",
            data={"customer": str(customer.public_id), "by_agent": agent.pk if agent else None},
            created_at=clock.now(),
        )
        audit.record(
            action="contact_center.interaction_customer_linked",
            object_type="contact_center.interaction",
            object_id=str(locked.public_id),
            before={"customer_public_id": ""},
            after={"customer_public_id": locked.customer_public_id},
            actor_id=actor_id,
        )
        if locked.agent_id is not None:
            notify_group(
                f"cc.agent.{locked.agent_id}",
                "cc.interaction.changed",
                {"interaction": str(locked.public_id), "what": "customer"},
            )
    interaction.customer_public_id = locked.customer_public_id
    return locked

"""Tickets: create, converse, update. Every action is one transaction that locks the ticket, writes
its history (TicketEvent rows), one audit row and the outbox events, calls the SLA hooks and the
triggers, and leaves e-mails and websocket pushes to after commit."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils.text import slugify
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.customers.contracts import CustomerSummary, TimelineAppend
from fedele.customers.facade import customer_for_user, customer_summary, find_customer_by_email
from fedele.shared import audit, clock, events, realtime, sequences, subjects
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed
from fedele.shared.subjects import SubjectRef
from fedele.support.attachments import CheckedFile, IncomingFile, check_files, store_files
from fedele.support.events import TicketCreated, TicketSolved
from fedele.support.html import html_to_text, sanitise_html, text_to_html
from fedele.support.models import (
    Category,
    Channel,
    Mailbox,
    Priority,
    StatusKind,
    Tag,
    Ticket,
    TicketEvent,
    TicketMessage,
    TicketStatus,
    TicketType,
)
from fedele.support.services import automations, config_cache, notify, sla

logger = logging.getLogger(__name__)
SEARCH_TEXT_LIMIT = 20_000
SUBJECT_MAX = 250
MESSAGE_MAX = 200_000
LANGUAGES = ("it", "en")
# Channels whose conversation is not e-mail: replies go back through the channel, not by mail.
NON_EMAIL_CHANNELS = frozenset({Channel.CHAT, Channel.SMS, Channel.SOCIAL})
# Channels with no form on which a customer could fill required custom fields.
FORMLESS_CHANNELS = frozenset({Channel.EMAIL, Channel.IMPORT, Channel.CHAT, Channel.SMS, Channel.SOCIAL})
UPDATE_KEYS = frozenset(
    {
        "subject",
        "priority",
        "status",
        "ticket_type",
        "category",
        "team",
        "assignee",
        "tags",
        "add_tags",
        "remove_tags",
        "custom_fields",
        "customer",
        "subject_kind",
        "subject_reference",
        "language",
    }
)
SUBJECT_KINDS = frozenset({"", "entitlement", "equipment", "work_order"})
WORK_PERMISSION = "support.work_tickets"


# ----------------------------------------------------------------------------------------------
# Small lookups


def _team_model() -> Any:
    return Ticket._meta.get_field("team").related_model


def _user_model() -> Any:
    return get_user_model()


def actor_name(actor: Actor | None) -> str:
    """The acting person's display name for history rows and realtime pushes ("" = the system)."""
    if actor is None:
        return ""
    if actor.display_name:
        return actor.display_name
    user = _user_model().objects.filter(pk=actor.user_id).first()
    if user is None:
        return actor.email
    full_name = str(user.get_full_name()).strip()
    return full_name or actor.email


def user_display_name(user_id: int | None) -> str:
    if user_id is None:
        return ""
    user = _user_model().objects.filter(pk=user_id).first()
    if user is None:
        return ""
    return str(user.get_full_name()).strip() or str(user.email)


def ticket_url(ticket: Ticket) -> str:
    try:
        return reverse("support:ticket_detail", args=[ticket.public_id])
    except NoReverseMatch:
        return f"/support/tickets/{ticket.public_id}/"


def status_for(code: str) -> TicketStatus:
    status = config_cache.active_status(code)
    if status is None:
        raise ValidationFailed(
            _("Unknown status '%(code)s'.") % {"code": code},
            code="unknown_status",
            fields={"status": _("Unknown status.")},
        )
    return status


def default_status(kind: str) -> TicketStatus:
    status = config_cache.default_status(kind)
    if status is None:
        raise ValidationFailed(
            _("No status of kind '%(kind)s' is configured.") % {"kind": kind}, code="unknown_status"
        )
    return status


def _ticket_type_for(code: str) -> TicketType:
    ticket_type = config_cache.active_ticket_type(code)
    if ticket_type is None:
        raise _unknown_code(
            "ticket_type", code, _("Unknown ticket type '%(code)s'."), _("Unknown ticket type.")
        )
    return ticket_type


def _category_for(code: str) -> Category:
    category = config_cache.active_category(code)
    if category is None:
        raise _unknown_code("category", code, _("Unknown category '%(code)s'."), _("Unknown category."))
    return category


def _unknown_code(field: str, code: str, message: str, short: str) -> ValidationFailed:
    return ValidationFailed(message % {"code": code}, code=f"unknown_{field}", fields={field: short})


def _team_for(public_id: str) -> Any:
    team = _team_model().objects.filter(public_id=_uuid_or_none(public_id)).first()
    if team is None:
        raise ValidationFailed(_("Unknown team."), code="unknown_team", fields={"team": _("Unknown team.")})
    return team


def _assignee_for(public_id: str) -> Any:
    user = _user_model().objects.filter(public_id=_uuid_or_none(public_id), is_active=True).first()
    if user is None or not (user.is_superuser or user.has_perm(WORK_PERMISSION)):
        raise ValidationFailed(
            _("Unknown assignee (not an active support agent)."),
            code="unknown_assignee",
            fields={"assignee": _("Unknown assignee.")},
        )
    return user


def _uuid_or_none(value: object) -> str | None:
    text = str(value or "").strip()
    if re.fullmatch(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}", text):
        return text
    # A value that is not a UUID matches nothing (and never reaches the database as a bad UUID).
    return "00000000-0000-0000-0000-000000000000"


def _customer_for(public_id: str) -> CustomerSummary:
    summary = customer_summary(public_id) if _uuid_or_none(public_id) == public_id.strip() else None
    if summary is None:
        raise ValidationFailed(
            _("Unknown customer."), code="unknown_customer", fields={"customer": _("Unknown customer.")}
        )
    return summary


def check_subject(kind: str, reference: str, customer_public_id: str | None) -> SubjectRef | None:
    """What a ticket is about, checked with the module that owns it (``fedele.shared.subjects``):
    the kind must be installed, the reference known to its owner, and it must belong to the ticket's
    customer when both have one. ("", "") = about nothing in particular."""
    reference = (reference or "").strip()[:64]
    if not kind and not reference:
        return None
    if kind not in SUBJECT_KINDS or not subjects.is_available(kind):
        raise ValidationFailed(
            _("Tickets cannot refer to this kind of item."),
            code="invalid_subject_kind",
            fields={"subject_kind": _("Not available.")},
        )
    found = subjects.resolve(kind, reference)
    if found is None:
        raise ValidationFailed(
            _("The item this ticket is about does not exist."),
            code="unknown_subject_reference",
            fields={"subject_reference": _("Not found.")},
        )
    if customer_public_id and found.customer_public_id and found.customer_public_id != customer_public_id:
        raise ValidationFailed(
            _("The item this ticket is about belongs to another customer."),
            code="subject_of_another_customer",
            fields={"subject_reference": _("Belongs to another customer.")},
        )
    return found


def normalise_tag(name: str) -> str:
    return slugify(str(name))[:60]


def _tag_names(names: Sequence[str]) -> list[str]:
    result: list[str] = []
    for name in names:
        tag = normalise_tag(name)
        if not tag:
            raise ValidationFailed(
                _("A tag needs letters or digits."), code="invalid_tag", fields={"tags": _("Invalid tag.")}
            )
        if tag not in result:
            result.append(tag)
    if len(result) > 50:
        raise ValidationFailed(
            _("At most 50 tags."), code="invalid_tag", fields={"tags": _("Too many tags.")}
        )
    return result


def _tags_for(names: Sequence[str]) -> list[Tag]:
    return [Tag.objects.get_or_create(name=name)[0] for name in names]


def _priority(value: str) -> str:
    if value not in Priority.values:
        raise ValidationFailed(
            _("Unknown priority '%(value)s'.") % {"value": value},
            code="unknown_priority",
            fields={"priority": _("Use low, normal, high or urgent.")},
        )
    return value


def _language(value: str) -> str:
    if value not in LANGUAGES:
        raise ValidationFailed(
            _("Unknown language '%(value)s'.") % {"value": value},
            code="unknown_language",
            fields={"language": _("Use it or en.")},
        )
    return value


def _subject(value: str) -> str:
    subject = " ".join(str(value or "").split())
    if not subject:
        raise ValidationFailed(
            _("A ticket needs a subject."), code="subject_required", fields={"subject": _("Required.")}
        )
    return subject[:SUBJECT_MAX]


def validate_custom_fields(
    ticket_type: TicketType | None,
    values: Mapping[str, Any],
    *,
    existing: Mapping[str, Any] | None = None,
    enforce_required: bool,
) -> dict[str, Any]:
    """Merge ``values`` into ``existing`` after checking them against the type's field definitions.

    None or "" removes a value. Returns the merged dictionary."""
    definitions = {str(d.get("key")): d for d in (ticket_type.custom_fields if ticket_type else []) or []}
    merged: dict[str, Any] = dict(existing or {})
    errors: dict[str, str] = {}
    for key, raw in values.items():
        definition = definitions.get(str(key))
        if definition is None:
            errors[f"custom_fields.{key}"] = _("Unknown field for this ticket type.")
            continue
        if raw is None or raw == "":
            merged.pop(str(key), None)
            continue
        kind = str(definition.get("type", "text"))
        try:
            merged[str(key)] = _custom_value(kind, raw, definition)
        except ValueError as error:
            errors[f"custom_fields.{key}"] = str(error)
    if enforce_required:
        for key, definition in definitions.items():
            if definition.get("required") and merged.get(key) in (None, ""):
                errors[f"custom_fields.{key}"] = _("Required.")
    if errors:
        raise ValidationFailed(
            _("Some custom fields are not valid."), code="invalid_custom_fields", fields=errors
        )
    return merged


def _custom_value(kind: str, raw: Any, definition: Mapping[str, Any]) -> Any:
    if kind in ("text", "textarea"):
        if not isinstance(raw, str):
            raise ValueError(_("Must be text."))
        limit = 250 if kind == "text" else 5000
        if len(raw) > limit:
            raise ValueError(_("At most %(limit)d characters.") % {"limit": limit})
        return raw.strip()
    if kind == "number":
        if isinstance(raw, bool):
            raise ValueError(_("Must be a number."))
        if isinstance(raw, (int, float)):
            number: float | int = raw
        else:
            try:
                number = float(str(raw).replace(",", "."))
            except ValueError as error:
                raise ValueError(_("Must be a number.")) from error
        if number != number or number in (float("inf"), float("-inf")) or abs(number) > 1e15:
            raise ValueError(_("Must be a number."))
        return int(number) if float(number).is_integer() else number
    if kind == "date":
        try:
            return dt.date.fromisoformat(str(raw)).isoformat()
        except ValueError as error:
            raise ValueError(_("Must be a date (YYYY-MM-DD).")) from error
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("true", "1", "yes", "on"):
            return True
        if str(raw).lower() in ("false", "0", "no", "off"):
            return False
        raise ValueError(_("Must be true or false."))
    if kind == "choice":
        choices = [str(c) for c in definition.get("choices", [])]
        if str(raw) not in choices:
            raise ValueError(_("Must be one of: %(choices)s.") % {"choices": ", ".join(choices)})
        return str(raw)
    raise ValueError(_("Unsupported field type."))


def _short(value: object) -> str:
    if value is None:
        return ""
    return str(value)[:250]


def _event(
    ticket: Ticket,
    kind: str,
    *,
    actor: Actor | None,
    name: str,
    at: dt.datetime,
    field: str = "",
    old: object = None,
    new: object = None,
    data: Mapping[str, Any] | None = None,
) -> TicketEvent:
    return TicketEvent.objects.create(
        ticket=ticket,
        kind=kind,
        field=field,
        old_value=_short(old),
        new_value=_short(new),
        data=audit.jsonable(dict(data or {})),
        actor_id=actor.user_id if actor else None,
        actor_name=name[:200],
        created_at=at,
    )


def build_search_text(ticket: Ticket, message_texts: Sequence[str] = ()) -> str:
    parts = [ticket.number, ticket.subject, ticket.requester_name, ticket.requester_email, *message_texts]
    return " ".join(p for p in parts if p).lower()[:SEARCH_TEXT_LIMIT]


def _append_search_text(ticket: Ticket, text: str) -> None:
    if not text or len(ticket.search_text) >= SEARCH_TEXT_LIMIT:
        return
    ticket.search_text = f"{ticket.search_text} {text.lower()}"[:SEARCH_TEXT_LIMIT]


def rebuild_search_text(ticket: Ticket) -> None:
    texts = list(
        TicketMessage.objects.filter(ticket=ticket)
        .exclude(kind=TicketMessage.Kind.SYSTEM)
        .order_by("id")
        .values_list("body_text", flat=True)
    )
    ticket.search_text = build_search_text(ticket, texts)


def _customer_public_id(ticket: Ticket) -> str | None:
    if ticket.customer_id is None:
        return None
    return str(ticket.customer.public_id)  # type: ignore[union-attr]


def _publish_timeline(
    ticket: Ticket, *, kind: str, title: str, at: dt.datetime, customer_id: str | None = ""
) -> None:
    """A line on the customer's 360 timeline. ``customer_id`` "" = read it from the ticket."""
    customer_id = _customer_public_id(ticket) if customer_id == "" else customer_id
    if customer_id is None:
        return
    events.publish(
        TimelineAppend(
            customer_public_id=customer_id,
            module="support",
            kind=kind,
            title=title,
            occurred_at=at,
            summary=ticket.subject,
            link=ticket_url(ticket),
            data={"ticket": ticket.number, "status": ticket.status.code, "channel": ticket.channel},
        ),
        aggregate_type="support.ticket",
        aggregate_id=str(ticket.public_id),
    )


def _publish_solved(ticket: Ticket, at: dt.datetime) -> None:
    assignee_public_id = None
    if ticket.assignee_id is not None:
        assignee_public_id = str(ticket.assignee.public_id)  # type: ignore[union-attr]
    team_public_id = str(ticket.team.public_id) if ticket.team_id else None  # type: ignore[union-attr]
    events.publish(
        TicketSolved(
            ticket_id=str(ticket.public_id),
            number=ticket.number,
            customer_id=_customer_public_id(ticket),
            assignee_id=assignee_public_id,
            team_id=team_public_id,
            category=ticket.category.code if ticket.category_id else "",  # type: ignore[union-attr]
            solved_at=at.isoformat(),
        ),
        aggregate_type="support.ticket",
        aggregate_id=str(ticket.public_id),
    )
    _publish_timeline(
        ticket, kind="ticket_solved", title=_("Ticket %(number)s solved") % {"number": ticket.number}, at=at
    )


def _push(ticket: Ticket, what: str, by: str) -> None:
    realtime.notify_group(
        f"support.ticket.{ticket.public_id}",
        "ticket.changed",
        {"ticket": str(ticket.public_id), "what": what, "by": by},
    )
    realtime.notify_group("support.queue", "queue.changed", {"ticket": str(ticket.public_id)})


def _require_agent(actor: Actor | None) -> None:
    if actor is None:
        return
    if actor.is_portal_customer or not actor.can(WORK_PERMISSION):
        raise PermissionDenied(_("You may not work on tickets."), code="permission_denied")


def _locked(ticket: Ticket | str) -> Ticket:
    key: dict[str, Any]
    if isinstance(ticket, Ticket):
        key = {"pk": ticket.pk}
    else:
        if _uuid_or_none(ticket) != str(ticket).strip():
            raise NotFound(_("Ticket not found."), code="ticket_not_found")
        key = {"public_id": str(ticket).strip()}
    # No join in the locking query: PostgreSQL re-checks a join against the row version it waited
    # for, so a ticket whose status another transaction just changed would vanish from the result.
    locked = Ticket.objects.select_for_update().filter(**key).first()
    if locked is None:
        raise NotFound(_("Ticket not found."), code="ticket_not_found")
    return locked


def portal_owns(actor: Actor, ticket: Ticket) -> bool:
    """A portal customer's own ticket: they asked it, or it belongs to their customer."""
    if ticket.requester_user_id == actor.user_id:
        return True
    if ticket.customer_id is None:
        return False
    customer = customer_for_user(actor.user_id)
    return customer is not None and customer.customer_id == ticket.customer_id


def _message_bodies(body: str, body_html: str) -> tuple[str, str]:
    clean_html = sanitise_html(body_html) if body_html else ""
    text = (body or "").replace("\x00", "").strip()
    if not text and clean_html:
        text = html_to_text(clean_html)
    if not clean_html and text:
        clean_html = text_to_html(text)
    if len(text) > MESSAGE_MAX:
        raise ValidationFailed(
            _("The message is too long."), code="body_too_long", fields={"body": _("Too long.")}
        )
    return text, clean_html


# ----------------------------------------------------------------------------------------------
# Create


def ticket_create(
    *,
    actor: Actor | None,
    subject: str,
    body: str = "",
    body_html: str = "",
    channel: str,
    requester_email: str = "",
    requester_name: str = "",
    customer_public_id: str | None = None,
    requester_user_id: int | None = None,
    ticket_type: str | None = None,
    category: str | None = None,
    priority: str | None = None,
    team_public_id: str | None = None,
    assignee_public_id: str | None = None,
    tags: Sequence[str] = (),
    custom_fields: Mapping[str, Any] | None = None,
    language: str | None = None,
    subject_kind: str = "",
    subject_reference: str = "",
    mailbox: Mailbox | None = None,
    attachments: Sequence[IncomingFile] = (),
    email_message_id: str = "",
    email_in_reply_to: str = "",
    email_references: str = "",
    email_to: str = "",
    email_cc: str = "",
    external_source: str = "",
    external_id: str = "",
    created_at: dt.datetime | None = None,
    run_automations: bool = True,
    parent: Ticket | None = None,
) -> Ticket:
    """Open a ticket with its first (customer) message. Idempotent on (external_source, external_id)."""
    if actor is not None and not actor.is_portal_customer:
        _require_agent(actor)
    if channel not in Channel.values:
        raise ValidationFailed(
            _("Unknown channel '%(value)s'.") % {"value": channel},
            code="unknown_channel",
            fields={"channel": _("Unknown channel.")},
        )
    subject = _subject(subject)
    external_id = (external_id or "").strip()[:64]
    external_source = (external_source or "").strip()[:24]
    if external_id:
        existing = Ticket.objects.filter(external_source=external_source, external_id=external_id).first()
        if existing is not None:
            return existing
    requester_email = (requester_email or "").strip().lower()[:254]
    requester_name = " ".join((requester_name or "").split())[:200]
    customer: CustomerSummary | None = None
    if actor is not None and actor.is_portal_customer:
        # A portal customer asks for themselves: the rest comes from their account, never the form.
        if team_public_id or assignee_public_id or external_id:
            raise PermissionDenied(_("Customers cannot route tickets."), code="permission_denied")
        requester_user_id = actor.user_id
        requester_email = requester_email or actor.email.lower()
        customer = customer_for_user(actor.user_id) or find_customer_by_email(actor.email)
    elif customer_public_id:
        customer = _customer_for(customer_public_id)
    elif requester_user_id is not None:
        customer = customer_for_user(requester_user_id)
    if customer is None and requester_email and not (actor is not None and actor.is_portal_customer):
        customer = find_customer_by_email(requester_email)
    customer_pk = customer.customer_id if customer is not None else None
    customer_public = str(customer.public_id) if customer is not None else None
    customer_language = customer.language if customer is not None else ""
    if requester_email and "@" not in requester_email:
        raise ValidationFailed(
            _("The requester e-mail is not valid."),
            code="invalid_email",
            fields={"requester_email": _("Not an e-mail address.")},
        )
    type_row = _ticket_type_for(ticket_type or "question")
    category_row = _category_for(category) if category else None
    priority_value = _priority(priority) if priority else type_row.default_priority
    team = _team_for(team_public_id) if team_public_id else None
    if team is None and type_row.default_team_id:
        # Read here, not through the type: the type is the process's cached row, shared by requests.
        team = _team_model().objects.filter(pk=type_row.default_team_id).first()
    assignee = _assignee_for(assignee_public_id) if assignee_public_id else None
    tag_names = _tag_names(tags)
    about = check_subject(subject_kind, subject_reference, customer_public)
    if about is not None and customer is None and about.customer_public_id:
        # A request about a customer's line or device is that customer's request.
        customer = customer_summary(about.customer_public_id)
        customer_pk = customer.customer_id if customer is not None else None
        customer_public = str(customer.public_id) if customer is not None else None
        customer_language = customer.language if customer is not None else ""
    fields = validate_custom_fields(
        type_row, custom_fields or {}, enforce_required=channel not in FORMLESS_CHANNELS
    )
    chosen_language = language or customer_language or (actor.language if actor else "") or "it"
    chosen_language = _language(chosen_language if chosen_language in LANGUAGES else "it")
    if language:
        _language(language)
    text, clean_html = _message_bodies(body, body_html)
    checked = check_files(attachments)
    at = created_at or clock.now()
    name = actor_name(actor)

    status = default_status(StatusKind.NEW)
    ticket = Ticket(
        subject=subject,
        customer_id=customer_pk,
        requester_email=requester_email,
        requester_name=requester_name,
        requester_user_id=requester_user_id,
        language=chosen_language,
        channel=channel,
        ticket_type=type_row,
        category=category_row,
        priority=priority_value,
        status=status,
        status_kind=status.kind,
        assignee=assignee,
        team=team,
        custom_fields=fields,
        subject_kind=subject_kind,
        subject_reference=about.reference if about is not None else "",
        parent=parent,
        external_source=external_source,
        external_id=external_id,
        mailbox=mailbox,
        created_by_id=actor.user_id if actor else None,
        created_at=at,
        updated_at=at,
        message_count=1 if text or checked else 0,
        last_customer_message_at=at if text or checked else None,
    )
    # Policies and calendars are configuration: the SLA is worked out before the transaction, which
    # then only writes (the gapless number's row lock is held for as short a time as possible).
    plan = sla.sla_plan(ticket, at=at, customer_public_id=customer_public, customer=customer)
    sla.sla_apply_plan(ticket, plan)

    with transaction.atomic():
        number = f"T-{sequences.next_value('support.ticket'):06d}"
        ticket.number = number
        ticket.search_text = build_search_text(ticket, [text] if text else [])
        ticket.save(force_insert=True)
        if tag_names:
            ticket.tags.set(_tags_for(tag_names))
        first_message: TicketMessage | None = None
        if text or checked:
            first_message = _create_message(
                ticket,
                kind=TicketMessage.Kind.CUSTOMER,
                channel=channel,
                author_user_id=requester_user_id,
                author_email=requester_email,
                author_name=requester_name,
                text=text,
                clean_html=clean_html,
                checked=checked,
                email_message_id=email_message_id,
                email_in_reply_to=email_in_reply_to,
                email_references=email_references,
                email_to=email_to,
                email_cc=email_cc,
                at=at,
                uploaded_by_id=actor.user_id if actor else None,
            )
        _event(
            ticket,
            "created",
            actor=actor,
            name=name,
            at=at,
            data={
                "channel": channel,
                "priority": priority_value,
                "ticket_type": type_row.code,
                "parent": parent.number if parent else "",
            },
        )
        if assignee is not None:
            _event(ticket, "assigned", actor=actor, name=name, at=at, field="assignee", new=_label(assignee))
        audit.record(
            action="support.ticket_created",
            object_type="support.ticket",
            object_id=str(ticket.public_id),
            after={
                "number": number,
                "subject": subject,
                "channel": channel,
                "priority": priority_value,
                "ticket_type": type_row.code,
                "customer": customer_public,
                "attachments": len(checked),
            },
            actor_id=actor.user_id if actor else None,
        )
        events.publish(
            TicketCreated(
                ticket_id=str(ticket.public_id),
                number=number,
                customer_id=customer_public,
                channel=channel,
                priority=priority_value,
                ticket_type=type_row.code,
                subject=subject,
                created_at=at.isoformat(),
            ),
            aggregate_type="support.ticket",
            aggregate_id=str(ticket.public_id),
        )
        _publish_timeline(
            ticket,
            kind="ticket_created",
            title=_("Ticket %(number)s opened") % {"number": number},
            at=at,
            customer_id=customer_public,
        )
        sla.sla_start(ticket, plan)
        if ticket.assignee_id is None and ticket.team_id is not None:
            from fedele.support.services.assignment import assign_automatically

            chosen = assign_automatically(ticket)
            if chosen is not None:
                _event(
                    ticket,
                    "assigned",
                    actor=None,
                    name="",
                    at=at,
                    field="assignee",
                    new=user_display_name(chosen),
                    data={"automatic": True},
                )
        if run_automations and automations.run_triggers(ticket, event="created", actor=actor):
            # A trigger changed the ticket through its own queries: hand back what is stored.
            ticket.refresh_from_db()
        elif not checked:
            # Nothing but this function wrote the ticket: callers may answer from these objects.
            parts = NewTicketParts(
                tags=sorted(tag_names),
                messages=[first_message] if first_message is not None else [],
                customer_public_id=customer_public,
            )
            setattr(ticket, _NEW_PARTS_ATTRIBUTE, parts)
        _push(ticket, "created", name)
    return ticket


@dataclass(frozen=True, slots=True)
class NewTicketParts:
    """What ``ticket_create`` wrote besides the ticket row, when no trigger changed it afterwards and
    no file came with it: its tags (sorted names), its messages (no attachments) and its customer's
    public id (so that nobody reads the customer row again for it)."""

    tags: list[str]
    messages: list[TicketMessage]
    customer_public_id: str | None


_NEW_PARTS_ATTRIBUTE = "_fedele_new_ticket_parts"


def new_ticket_parts(ticket: Ticket) -> NewTicketParts | None:
    """The parts of a ticket just returned by ``ticket_create``; None = read them from the database."""
    parts = getattr(ticket, _NEW_PARTS_ATTRIBUTE, None)
    return parts if isinstance(parts, NewTicketParts) else None


def _label(user: Any) -> str:
    full_name = str(user.get_full_name()).strip()
    return full_name or str(user.email)


def _create_message(
    ticket: Ticket,
    *,
    kind: str,
    channel: str,
    author_user_id: int | None,
    author_email: str,
    author_name: str,
    text: str,
    clean_html: str,
    checked: Sequence[CheckedFile],
    email_message_id: str,
    email_in_reply_to: str,
    email_references: str,
    email_to: str,
    email_cc: str,
    at: dt.datetime,
    uploaded_by_id: int | None,
) -> TicketMessage:
    message = TicketMessage.objects.create(
        ticket=ticket,
        kind=kind,
        channel=channel,
        author_user_id=author_user_id,
        author_email=(author_email or "")[:254],
        author_name=(author_name or "")[:200],
        body_text=text,
        body_html=clean_html,
        email_message_id=(email_message_id or "")[:255],
        email_in_reply_to=(email_in_reply_to or "")[:255],
        email_references=email_references or "",
        email_to=email_to or "",
        email_cc=email_cc or "",
        created_at=at,
    )
    if checked:
        store_files(checked, ticket=ticket, message=message, uploaded_by_id=uploaded_by_id)
    return message


# ----------------------------------------------------------------------------------------------
# Messages


def message_add(
    *,
    actor: Actor | None,
    ticket: Ticket | str,
    kind: str,
    body: str = "",
    body_html: str = "",
    channel: str | None = None,
    author_email: str = "",
    author_name: str = "",
    attachments: Sequence[IncomingFile] = (),
    email_message_id: str = "",
    email_in_reply_to: str = "",
    email_references: str = "",
    email_to: str = "",
    email_cc: str = "",
    new_status: str | None = None,
    created_at: dt.datetime | None = None,
    send_email: bool = True,
) -> TicketMessage:
    """Add a customer message, public reply, internal note or system line to a ticket.

    A customer writing to a closed ticket opens a follow-up ticket (parent = the closed one) and the
    message becomes its first message; to a merged ticket, the message goes to the ticket it was
    merged into."""
    if kind not in TicketMessage.Kind.values:
        raise ValidationFailed(
            _("Unknown message kind '%(kind)s'.") % {"kind": kind},
            code="unknown_message_kind",
            fields={"kind": _("Use customer, reply, note or system.")},
        )
    if actor is not None:
        if actor.is_portal_customer:
            if kind != TicketMessage.Kind.CUSTOMER:
                raise PermissionDenied(_("Customers can only write messages."), code="permission_denied")
            if new_status not in (None, "") and status_for(new_status).kind != StatusKind.SOLVED:
                raise PermissionDenied(
                    _("Customers can only mark their request as solved."), code="permission_denied"
                )
        else:
            _require_agent(actor)
    if channel is not None and channel not in Channel.values:
        raise ValidationFailed(
            _("Unknown channel '%(value)s'.") % {"value": channel},
            code="unknown_channel",
            fields={"channel": _("Unknown channel.")},
        )
    target_status = status_for(new_status) if new_status else None
    text, clean_html = _message_bodies(body, body_html)
    if not text and not attachments:
        raise ValidationFailed(
            _("Write a message or attach a file."), code="body_required", fields={"body": _("Required.")}
        )
    checked = check_files(attachments)
    at = created_at or clock.now()
    name = actor_name(actor)
    deliver: list[int] = []

    with transaction.atomic():
        locked = _locked(ticket)
        if actor is not None and actor.is_portal_customer and not portal_owns(actor, locked):
            raise NotFound(_("Ticket not found."), code="ticket_not_found")
        hops = 0
        while locked.merged_into_id is not None and hops < 10:
            locked = _locked(Ticket(pk=locked.merged_into_id))
            hops += 1
        if locked.status_kind == StatusKind.CLOSED:
            if kind != TicketMessage.Kind.CUSTOMER:
                raise ValidationFailed(
                    _("Ticket %(number)s is closed.") % {"number": locked.number}, code="ticket_closed"
                )
            return _follow_up(
                locked,
                actor=actor,
                text=text,
                clean_html=clean_html,
                attachments=attachments,
                channel=channel,
                author_email=author_email,
                author_name=author_name,
                email_message_id=email_message_id,
                email_in_reply_to=email_in_reply_to,
                email_references=email_references,
                email_to=email_to,
                email_cc=email_cc,
                at=at,
                name=name,
            )
        if target_status is not None and target_status.kind == StatusKind.CLOSED and kind == "customer":
            target_status = None
        author_user_id = actor.user_id if actor else None
        if kind == TicketMessage.Kind.CUSTOMER:
            author_email = author_email or (actor.email if actor and actor.is_portal_customer else "")
            author_email = author_email or locked.requester_email
            author_name = author_name or (
                locked.requester_name if author_email == locked.requester_email else ""
            )
            if actor is not None and not actor.is_portal_customer:
                author_user_id = locked.requester_user_id  # an agent logging what the customer said
        else:
            author_email = author_email or (actor.email if actor else "")
            author_name = author_name or name
        message_channel = channel or (
            locked.channel
            if kind == TicketMessage.Kind.CUSTOMER or locked.channel in NON_EMAIL_CHANNELS
            else (Channel.EMAIL if locked.requester_email else locked.channel)
        )
        if kind in (TicketMessage.Kind.NOTE, TicketMessage.Kind.SYSTEM) and channel is None:
            message_channel = Channel.INTERNAL
        message = _create_message(
            locked,
            kind=kind,
            channel=message_channel,
            author_user_id=author_user_id,
            author_email=author_email,
            author_name=author_name,
            text=text,
            clean_html=clean_html,
            checked=checked,
            email_message_id=email_message_id,
            email_in_reply_to=email_in_reply_to,
            email_references=email_references,
            email_to=email_to,
            email_cc=email_cc,
            at=at,
            uploaded_by_id=actor.user_id if actor else None,
        )
        old_status = locked.status
        changed_fields = ["message_count", "search_text", "updated_at"]
        locked.message_count += 1
        locked.updated_at = max(locked.updated_at, at)
        if kind != TicketMessage.Kind.SYSTEM:
            _append_search_text(locked, text)
        automation_event = ""
        if kind == TicketMessage.Kind.CUSTOMER:
            locked.last_customer_message_at = at
            changed_fields.append("last_customer_message_at")
            automation_event = "customer_replied"
            if target_status is None and locked.status_kind in (StatusKind.SOLVED, StatusKind.PENDING):
                target_status = default_status(StatusKind.OPEN)
        elif kind == TicketMessage.Kind.REPLY:
            locked.last_agent_message_at = at
            changed_fields.append("last_agent_message_at")
            automation_event = "agent_replied"
            if locked.first_responded_at is None:
                locked.first_responded_at = at
                changed_fields.append("first_responded_at")
            if target_status is None and locked.status_kind == StatusKind.NEW:
                target_status = default_status(StatusKind.OPEN)
        assigned_to = None
        if (
            kind == TicketMessage.Kind.REPLY
            and actor is not None
            and locked.assignee_id is None
            and old_status.kind == StatusKind.NEW
        ):
            locked.assignee_id = actor.user_id
            changed_fields.append("assignee")
            assigned_to = name
        locked.save(update_fields=changed_fields)
        event_kind = {"customer": "customer_message", "reply": "replied", "note": "noted", "system": "system"}
        _event(
            locked,
            event_kind[kind],
            actor=actor,
            name=name,
            at=at,
            data={"message": str(message.public_id), "attachments": len(checked)},
        )
        if assigned_to is not None:
            _event(locked, "assigned", actor=actor, name=name, at=at, field="assignee", new=assigned_to)
        audit.record(
            action="support.message_added",
            object_type="support.ticket",
            object_id=str(locked.public_id),
            after={"message": str(message.public_id), "kind": kind, "attachments": len(checked)},
            actor_id=actor.user_id if actor else None,
        )
        sla.sla_on_message(locked, message, at=at)
        status_changed = False
        if target_status is not None and target_status.pk != old_status.pk:
            _change_status(locked, old_status, target_status, actor=actor, name=name, at=at)
            status_changed = True
        if automation_event:
            automations.run_triggers(locked, event=automation_event, actor=actor)
        if status_changed:
            automations.run_triggers(
                locked,
                event="status_changed",
                actor=actor,
                changes={"status": (old_status.code, target_status.code if target_status else "")},
            )
        if (
            kind == TicketMessage.Kind.REPLY
            and send_email
            and locked.requester_email
            and message.channel not in NON_EMAIL_CHANNELS
        ):
            deliver.append(message.pk)
        for message_pk in deliver:
            transaction.on_commit(functools.partial(_deliver, message_pk))
        if kind == TicketMessage.Kind.CUSTOMER:
            notify.notify_ticket_change(locked, notify.CUSTOMER_MESSAGE, actor.user_id if actor else None)
        _push(locked, "message", name)
    return message


def _deliver(message_pk: int) -> None:
    from fedele.support.services import email_outbound

    try:
        email_outbound.deliver_reply(message_pk)
    except Exception:
        # The reply is saved; a failed hand-over to the mail backend must not fail the request.
        # (The e-mail area retries unsent replies.)
        logger.exception("Delivery of reply %s failed", message_pk)


def _follow_up(
    closed: Ticket,
    *,
    actor: Actor | None,
    text: str,
    clean_html: str,
    attachments: Sequence[IncomingFile],
    channel: str | None,
    author_email: str,
    author_name: str,
    email_message_id: str,
    email_in_reply_to: str,
    email_references: str,
    email_to: str,
    email_cc: str,
    at: dt.datetime,
    name: str,
) -> TicketMessage:
    follow_up = ticket_create(
        actor=actor,
        subject=closed.subject,
        body=text,
        body_html=clean_html,
        channel=channel or closed.channel,
        requester_email=author_email or closed.requester_email,
        requester_name=author_name or closed.requester_name,
        customer_public_id=_customer_public_id(closed),
        requester_user_id=closed.requester_user_id,
        ticket_type=closed.ticket_type.code if closed.ticket_type_id else None,  # type: ignore[union-attr]
        category=closed.category.code if closed.category_id else None,  # type: ignore[union-attr]
        priority=closed.priority,
        custom_fields=closed.custom_fields,
        language=closed.language,
        subject_kind=closed.subject_kind,
        subject_reference=closed.subject_reference,
        mailbox=closed.mailbox,
        attachments=attachments,
        email_message_id=email_message_id,
        email_in_reply_to=email_in_reply_to,
        email_references=email_references,
        email_to=email_to,
        email_cc=email_cc,
        created_at=at,
        parent=closed,
    )
    if follow_up.team_id is None and closed.team_id is not None:
        Ticket.objects.filter(pk=follow_up.pk).update(team_id=closed.team_id)
        follow_up.team_id = closed.team_id
    _event(
        closed,
        "follow_up",
        actor=actor,
        name=name,
        at=at,
        data={"ticket": follow_up.number, "ticket_id": str(follow_up.public_id)},
    )
    _event(
        follow_up,
        "follow_up_of",
        actor=actor,
        name=name,
        at=at,
        data={"ticket": closed.number, "ticket_id": str(closed.public_id)},
    )
    message = TicketMessage.objects.filter(ticket=follow_up).order_by("id").first()
    assert message is not None  # ticket_create wrote the text or the attachments as its first message
    return message


# ----------------------------------------------------------------------------------------------
# Status


def _change_status(
    ticket: Ticket,
    old: TicketStatus,
    new: TicketStatus,
    *,
    actor: Actor | None,
    name: str,
    at: dt.datetime,
) -> None:
    """Apply a status change to a locked ticket (saved here) with its history, SLA hook and events."""
    if old.kind == StatusKind.CLOSED and new.pk != old.pk:
        raise ValidationFailed(
            _("Ticket %(number)s is closed; a closed ticket cannot be reopened.") % {"number": ticket.number},
            code="ticket_closed",
            fields={"status": _("Closed is final.")},
        )
    ticket.status = new
    ticket.status_kind = new.kind
    fields = ["status", "status_kind", "updated_at"]
    ticket.updated_at = max(ticket.updated_at, at)
    if new.kind == StatusKind.SOLVED and old.kind != StatusKind.SOLVED:
        ticket.solved_at = at
        fields.append("solved_at")
    if new.kind == StatusKind.CLOSED:
        ticket.closed_at = at
        fields.append("closed_at")
        if ticket.solved_at is None:
            ticket.solved_at = at
            fields.append("solved_at")
    if old.kind == StatusKind.SOLVED and new.kind in (StatusKind.NEW, StatusKind.OPEN, StatusKind.PENDING):
        ticket.reopened_count += 1
        ticket.solved_at = None
        fields += ["reopened_count", "solved_at"]
    ticket.save(update_fields=fields)
    _event(
        ticket, "status_changed", actor=actor, name=name, at=at, field="status", old=old.code, new=new.code
    )
    sla.sla_on_status_change(ticket, old_status=old, new_status=new, at=at)
    if new.kind == StatusKind.SOLVED and old.kind != StatusKind.SOLVED:
        _publish_solved(ticket, at)
    elif new.kind == StatusKind.CLOSED and old.kind not in (StatusKind.SOLVED, StatusKind.CLOSED):
        # Closed without passing through solved: still a resolution for CSAT and reports.
        _publish_solved(ticket, at)


# ----------------------------------------------------------------------------------------------
# Update


def ticket_update(*, actor: Actor | None, ticket: Ticket | str, changes: Mapping[str, Any]) -> Ticket:
    """Change a ticket's fields. Unknown keys, unknown codes and invalid values change nothing."""
    _require_agent(actor)
    unknown = sorted(set(changes) - UPDATE_KEYS)
    if unknown:
        raise ValidationFailed(
            _("Unknown fields: %(fields)s.") % {"fields": ", ".join(unknown)},
            code="unknown_field",
            fields={key: _("Unknown field.") for key in unknown},
        )
    name = actor_name(actor)
    at = clock.now()
    with transaction.atomic():
        locked = _locked(ticket)
        applied = _apply_changes(locked, changes, actor=actor, name=name, at=at)
        if applied:
            _push(locked, "status" if set(applied) == {"status"} else "update", name)
    return locked


def _apply_changes(
    ticket: Ticket, changes: Mapping[str, Any], *, actor: Actor | None, name: str, at: dt.datetime
) -> dict[str, tuple[Any, Any]]:
    """Validate everything first, then write. Returns field → (old, new) of what changed."""
    diffs: dict[str, tuple[Any, Any]] = {}
    old_status = ticket.status
    new_status: TicketStatus | None = None
    if ticket.status_kind == StatusKind.CLOSED and set(changes) - {"tags", "add_tags", "remove_tags"}:
        # A closed ticket keeps its record; only tags (for reporting) may still change.
        raise ValidationFailed(
            _("Ticket %(number)s is closed.") % {"number": ticket.number}, code="ticket_closed"
        )
    if "subject" in changes:
        subject = _subject(changes["subject"])
        if subject != ticket.subject:
            diffs["subject"] = (ticket.subject, subject)
    if "priority" in changes:
        priority = _priority(str(changes["priority"]))
        if priority != ticket.priority:
            diffs["priority"] = (ticket.priority, priority)
    if "status" in changes:
        new_status = status_for(str(changes["status"]))
        if new_status.pk != old_status.pk:
            diffs["status"] = (old_status.code, new_status.code)
        else:
            new_status = None
    type_row = ticket.ticket_type
    if "ticket_type" in changes:
        type_row = _ticket_type_for(str(changes["ticket_type"]))
        if type_row.pk != ticket.ticket_type_id:
            diffs["ticket_type"] = (ticket.ticket_type.code if ticket.ticket_type else "", type_row.code)
    category_row = ticket.category
    if "category" in changes:
        category_row = _category_for(str(changes["category"])) if changes["category"] else None
        if (category_row.pk if category_row else None) != ticket.category_id:
            diffs["category"] = (
                ticket.category.code if ticket.category else "",
                category_row.code if category_row else "",
            )
    team: Any = ticket.team
    if "team" in changes:
        team = _team_for(str(changes["team"])) if changes["team"] else None
        if (team.pk if team else None) != ticket.team_id:
            diffs["team"] = (
                ticket.team.name if ticket.team else "",
                team.name if team else "",
            )
    assignee: Any = ticket.assignee
    if "assignee" in changes:
        assignee = _assignee_for(str(changes["assignee"])) if changes["assignee"] else None
        if (assignee.pk if assignee else None) != ticket.assignee_id:
            diffs["assignee"] = (
                _label(ticket.assignee) if ticket.assignee else "",
                _label(assignee) if assignee else "",
            )
    current_tags = sorted(ticket.tags.values_list("name", flat=True))
    wanted_tags = list(current_tags)
    if "tags" in changes:
        wanted_tags = _tag_names(list(changes["tags"] or []))
    if "add_tags" in changes:
        wanted_tags += [t for t in _tag_names(list(changes["add_tags"] or [])) if t not in wanted_tags]
    if "remove_tags" in changes:
        removed = set(_tag_names(list(changes["remove_tags"] or [])))
        wanted_tags = [t for t in wanted_tags if t not in removed]
    if sorted(wanted_tags) != current_tags:
        diffs["tags"] = (current_tags, sorted(wanted_tags))
    fields_value = ticket.custom_fields
    if "custom_fields" in changes or "ticket_type" in diffs:
        raw = changes.get("custom_fields") or {}
        if not isinstance(raw, Mapping):
            raise ValidationFailed(
                _("custom_fields must be an object."),
                code="invalid_custom_fields",
                fields={"custom_fields": _("Must be an object.")},
            )
        existing = ticket.custom_fields or {}
        if "ticket_type" in diffs:
            keys = {str(d.get("key")) for d in type_row.custom_fields or []} if type_row else set()
            existing = {k: v for k, v in existing.items() if k in keys}
        fields_value = validate_custom_fields(type_row, raw, existing=existing, enforce_required=False)
        if fields_value != (ticket.custom_fields or {}):
            diffs["custom_fields"] = (ticket.custom_fields, fields_value)
    customer_pk = ticket.customer_id
    if "customer" in changes:
        customer_pk = _customer_for(str(changes["customer"])).customer_id if changes["customer"] else None
        if customer_pk != ticket.customer_id:
            diffs["customer"] = (_customer_public_id(ticket), str(changes["customer"] or "") or None)
    if "subject_kind" in changes or "subject_reference" in changes:
        kind = str(changes.get("subject_kind", ticket.subject_kind) or "")
        reference = str(changes.get("subject_reference", ticket.subject_reference) or "")
        customer_public = diffs["customer"][1] if "customer" in diffs else _customer_public_id(ticket)
        about = check_subject(kind, reference, customer_public)
        kind, reference = (about.kind, about.reference) if about is not None else ("", "")
        if kind != ticket.subject_kind:
            diffs["subject_kind"] = (ticket.subject_kind, kind)
        if reference != ticket.subject_reference:
            diffs["subject_reference"] = (ticket.subject_reference, reference)
    if "language" in changes:
        value = _language(str(changes["language"]))
        if value != ticket.language:
            diffs["language"] = (ticket.language, value)
    if new_status is not None and old_status.kind == StatusKind.CLOSED:
        raise ValidationFailed(
            _("Ticket %(number)s is closed.") % {"number": ticket.number}, code="ticket_closed"
        )
    if not diffs:
        return {}

    # Everything is valid: write.
    update_fields = ["updated_at"]
    ticket.updated_at = max(ticket.updated_at, at)
    simple = {"subject", "priority", "subject_kind", "subject_reference", "language"}
    for key in simple & set(diffs):
        setattr(ticket, key, diffs[key][1])
        update_fields.append(key)
    resolved = {
        "ticket_type": type_row,
        "category": category_row,
        "team": team,
        "assignee": assignee,
        "custom_fields": fields_value,
        "customer_id": customer_pk,
    }
    for attribute, value in resolved.items():
        field = attribute.removesuffix("_id")
        if field in diffs:
            setattr(ticket, attribute, value)
            update_fields.append(field)
    if "subject" in diffs:
        rebuild_search_text(ticket)
        update_fields.append("search_text")
    ticket.save(update_fields=update_fields)
    if "tags" in diffs:
        ticket.tags.set(_tags_for(diffs["tags"][1]))
    if "assignee" in diffs and ticket.assignee_id is not None:
        notify.notify_ticket_change(ticket, notify.ASSIGNED, actor.user_id if actor else None)
    for key, (old, new) in diffs.items():
        if key == "status":
            continue
        kind = {"assignee": "assigned", "tags": "tagged"}.get(key, "field_changed")
        _event(
            ticket,
            kind,
            actor=actor,
            name=name,
            at=at,
            field=key,
            old=", ".join(old) if isinstance(old, list) else old,
            new=", ".join(new) if isinstance(new, list) else new,
        )
    audit.record(
        action="support.ticket_updated",
        object_type="support.ticket",
        object_id=str(ticket.public_id),
        before={key: old for key, (old, _new) in diffs.items()},
        after={key: new for key, (_old, new) in diffs.items()},
        actor_id=actor.user_id if actor else None,
    )
    if new_status is not None:
        _change_status(ticket, old_status, new_status, actor=actor, name=name, at=at)
    if {"priority", "ticket_type", "category", "customer"} & set(diffs):
        sla.sla_reapply(ticket, at=at)
    if "team" in diffs and ticket.assignee_id is None and ticket.team_id is not None:
        from fedele.support.services.assignment import assign_automatically

        chosen = assign_automatically(ticket)
        if chosen is not None:
            _event(
                ticket,
                "assigned",
                actor=None,
                name="",
                at=at,
                field="assignee",
                new=user_display_name(chosen),
                data={"automatic": True},
            )
    automations.run_triggers(ticket, event="updated", actor=actor, changes=diffs)
    if "status" in diffs:
        automations.run_triggers(
            ticket, event="status_changed", actor=actor, changes={"status": diffs["status"]}
        )
    return diffs


def ticket_assign(*, actor: Actor | None, ticket: Ticket | str, assignee_public_id: str | None) -> Ticket:
    return ticket_update(actor=actor, ticket=ticket, changes={"assignee": assignee_public_id})


def ticket_set_status(*, actor: Actor | None, ticket: Ticket | str, status: str) -> Ticket:
    return ticket_update(actor=actor, ticket=ticket, changes={"status": status})

"""Operations across tickets: merge, split, links, parent/child, followers and CC, bulk updates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.shared import audit, clock
from fedele.shared.errors import NotFound, ValidationFailed
from fedele.support.models import (
    Attachment,
    StatusKind,
    Ticket,
    TicketEvent,
    TicketLink,
    TicketMessage,
    TicketWatcher,
)
from fedele.support.selectors.tickets import visible_tickets
from fedele.support.services import sla
from fedele.support.services.tickets import (
    _apply_changes,
    _event,
    _push,
    _require_agent,
    actor_name,
    default_status,
    rebuild_search_text,
    ticket_create,
)

MAX_BULK = 500


def _uuid_text(value: Ticket | str) -> str:
    return str(value.public_id) if isinstance(value, Ticket) else str(value).strip()


def _lock_visible(actor: Actor | None, refs: Sequence[Ticket | str]) -> list[Ticket]:
    """Lock the tickets (ordered by pk, so concurrent operations never deadlock); every one must be
    visible to the actor, else NotFound. Returned in the order of ``refs``."""
    from fedele.support.selectors.tickets import _is_uuid

    wanted = [_uuid_text(ref) for ref in refs]
    if not all(_is_uuid(value) for value in wanted):
        raise NotFound(_("Ticket not found."), code="ticket_not_found")
    base = Ticket.objects.all() if actor is None else visible_tickets(actor)
    ids = list(base.filter(public_id__in=wanted).values_list("pk", flat=True))
    locked = {
        str(t.public_id): t
        # No join in the locking query (PostgreSQL re-checks joins against the updated row).
        for t in Ticket.objects.select_for_update().filter(pk__in=sorted(ids)).order_by("pk")
    }
    missing = [value for value in wanted if value not in locked]
    if missing:
        raise NotFound(_("Ticket not found."), code="ticket_not_found", fields={"tickets": missing[:10]})
    return [locked[value] for value in wanted]


def _system_note(ticket: Ticket, text: str, *, at: dt.datetime) -> TicketMessage:
    message = TicketMessage.objects.create(
        ticket=ticket, kind=TicketMessage.Kind.SYSTEM, channel="internal", body_text=text, created_at=at
    )
    ticket.message_count += 1
    return message


def _refresh_counters(ticket: Ticket) -> None:
    messages = TicketMessage.objects.filter(ticket=ticket)
    ticket.message_count = messages.count()
    last_customer = messages.filter(kind=TicketMessage.Kind.CUSTOMER).order_by("-created_at").first()
    last_agent = messages.filter(kind=TicketMessage.Kind.REPLY).order_by("-created_at").first()
    ticket.last_customer_message_at = last_customer.created_at if last_customer else None
    ticket.last_agent_message_at = last_agent.created_at if last_agent else None
    rebuild_search_text(ticket)


COUNTER_FIELDS = [
    "message_count",
    "last_customer_message_at",
    "last_agent_message_at",
    "search_text",
    "updated_at",
]


# ----------------------------------------------------------------------------------------------
# Merge and split


def ticket_merge(
    *, actor: Actor | None, source: Ticket | str, target: Ticket | str, force: bool = False
) -> Ticket:
    """Move ``source``'s conversation, attachments and watchers into ``target``; close ``source`` as
    merged. Refused: into itself, from/into a closed or merged ticket, across customers (unless force)."""
    _require_agent(actor)
    if _uuid_text(source) == _uuid_text(target):
        raise ValidationFailed(_("A ticket cannot be merged into itself."), code="merge_into_itself")
    at = clock.now()
    name = actor_name(actor)
    with transaction.atomic():
        source_row, target_row = _lock_visible(actor, [source, target])
        if source_row.merged_into_id or source_row.status_kind == StatusKind.CLOSED:
            raise ValidationFailed(
                _("Ticket %(number)s is closed or already merged.") % {"number": source_row.number},
                code="merge_source_closed",
            )
        if target_row.merged_into_id or target_row.status_kind == StatusKind.CLOSED:
            raise ValidationFailed(
                _("Ticket %(number)s is closed or merged: merge into an open ticket.")
                % {"number": target_row.number},
                code="merge_target_closed",
            )
        if (
            source_row.customer_id is not None
            and target_row.customer_id is not None
            and source_row.customer_id != target_row.customer_id
            and not force
        ):
            raise ValidationFailed(
                _("The two tickets belong to different customers."), code="merge_customer_mismatch"
            )
        moved = TicketMessage.objects.filter(ticket=source_row).update(ticket=target_row)
        Attachment.objects.filter(ticket=source_row).update(ticket=target_row)
        for watcher in TicketWatcher.objects.filter(ticket=source_row):
            duplicate = TicketWatcher.objects.filter(ticket=target_row)
            duplicate = (
                duplicate.filter(user_id=watcher.user_id)
                if watcher.user_id
                else duplicate.filter(email=watcher.email)
            )
            if not duplicate.exists():
                TicketWatcher.objects.create(
                    ticket=target_row,
                    kind=watcher.kind,
                    user_id=watcher.user_id,
                    email=watcher.email,
                    created_at=watcher.created_at,
                )
        TicketWatcher.objects.filter(ticket=source_row).delete()
        if source_row.requester_email and source_row.requester_email != target_row.requester_email:
            TicketWatcher.objects.get_or_create(
                ticket=target_row,
                email=source_row.requester_email,
                defaults={"kind": TicketWatcher.Kind.CC, "created_at": at},
            )
        old_status = source_row.status
        closed = default_status(StatusKind.CLOSED)
        source_row.status = closed
        source_row.status_kind = closed.kind
        source_row.merged_into = target_row
        source_row.closed_at = at
        source_row.updated_at = at
        _refresh_counters(source_row)
        _system_note(source_row, _("Merged into %(number)s.") % {"number": target_row.number}, at=at)
        source_row.save(update_fields=[*COUNTER_FIELDS, "status", "status_kind", "merged_into", "closed_at"])
        _refresh_counters(target_row)
        _system_note(
            target_row,
            _("%(number)s was merged into this ticket (%(count)d messages).")
            % {"number": source_row.number, "count": moved},
            at=at,
        )
        target_row.updated_at = at
        target_row.save(update_fields=COUNTER_FIELDS)
        _event(
            source_row,
            "merged",
            actor=actor,
            name=name,
            at=at,
            field="merged_into",
            new=target_row.number,
            data={"messages": moved},
        )
        _event(
            target_row,
            "merged",
            actor=actor,
            name=name,
            at=at,
            field="merged_from",
            new=source_row.number,
            data={"messages": moved},
        )
        audit.record(
            action="support.ticket_merged",
            object_type="support.ticket",
            object_id=str(source_row.public_id),
            after={"merged_into": str(target_row.public_id), "messages": moved, "forced": force},
            actor_id=actor.user_id if actor else None,
        )
        sla.sla_on_status_change(source_row, old_status=old_status, new_status=closed, at=at)
        _push(source_row, "update", name)
        _push(target_row, "update", name)
    return target_row


def ticket_split(
    *, actor: Actor | None, ticket: Ticket | str, message_public_ids: Sequence[str], subject: str
) -> Ticket:
    """Move some messages of a ticket into a new child ticket (same requester, customer, type,
    priority and team). At least one message must stay behind."""
    _require_agent(actor)
    wanted = sorted({str(value).strip() for value in message_public_ids})
    if not wanted:
        raise ValidationFailed(
            _("Choose the messages to split off."), code="split_nothing", fields={"messages": _("Required.")}
        )
    at = clock.now()
    name = actor_name(actor)
    with transaction.atomic():
        (original,) = _lock_visible(actor, [ticket])
        if original.status_kind == StatusKind.CLOSED:
            raise ValidationFailed(
                _("Ticket %(number)s is closed.") % {"number": original.number}, code="ticket_closed"
            )
        from fedele.support.selectors.tickets import _is_uuid

        if not all(_is_uuid(value) for value in wanted):
            raise ValidationFailed(
                _("Unknown messages."), code="unknown_message", fields={"messages": _("Unknown.")}
            )
        messages = list(TicketMessage.objects.filter(ticket=original, public_id__in=wanted))
        if len(messages) != len(wanted):
            raise ValidationFailed(
                _("Some messages are not on this ticket."),
                code="unknown_message",
                fields={"messages": _("Unknown.")},
            )
        if (
            TicketMessage.objects.filter(ticket=original)
            .exclude(public_id__in=wanted)
            .exclude(kind=TicketMessage.Kind.SYSTEM)
            .count()
            == 0
        ):
            raise ValidationFailed(
                _("At least one message must stay on the original ticket."), code="split_everything"
            )
        child = ticket_create(
            actor=actor,
            subject=subject,
            channel=original.channel,
            requester_email=original.requester_email,
            requester_name=original.requester_name,
            requester_user_id=original.requester_user_id,
            customer_public_id=str(original.customer.public_id) if original.customer_id else None,  # type: ignore[union-attr]
            ticket_type=original.ticket_type.code if original.ticket_type_id else None,  # type: ignore[union-attr]
            category=original.category.code if original.category_id else None,  # type: ignore[union-attr]
            priority=original.priority,
            team_public_id=str(original.team.public_id) if original.team_id else None,  # type: ignore[union-attr]
            language=original.language,
            custom_fields=original.custom_fields,
            parent=original,
            created_at=at,
        )
        child = Ticket.objects.select_for_update().get(pk=child.pk)
        TicketMessage.objects.filter(pk__in=[m.pk for m in messages]).update(ticket=child)
        Attachment.objects.filter(message__in=[m.pk for m in messages]).update(ticket=child)
        _refresh_counters(child)
        _system_note(child, _("Split from %(number)s.") % {"number": original.number}, at=at)
        child.updated_at = at
        child.save(update_fields=COUNTER_FIELDS)
        _refresh_counters(original)
        _system_note(
            original,
            _("%(count)d messages moved to %(number)s.") % {"count": len(messages), "number": child.number},
            at=at,
        )
        original.updated_at = at
        original.save(update_fields=COUNTER_FIELDS)
        for row, other in ((original, child), (child, original)):
            _event(
                row,
                "split",
                actor=actor,
                name=name,
                at=at,
                new=other.number,
                data={"messages": len(messages)},
            )
        audit.record(
            action="support.ticket_split",
            object_type="support.ticket",
            object_id=str(original.public_id),
            after={"child": str(child.public_id), "messages": wanted},
            actor_id=actor.user_id if actor else None,
        )
        _push(original, "update", name)
    return child


# ----------------------------------------------------------------------------------------------
# Links and parent/child


def ticket_link(
    *, actor: Actor | None, source: Ticket | str, target: Ticket | str, kind: str = TicketLink.Kind.RELATED
) -> TicketLink:
    _require_agent(actor)
    if kind not in TicketLink.Kind.values:
        raise ValidationFailed(
            _("Unknown link kind."), code="invalid_link_kind", fields={"kind": _("Use related or duplicate.")}
        )
    if _uuid_text(source) == _uuid_text(target):
        raise ValidationFailed(_("A ticket cannot be linked to itself."), code="link_to_itself")
    at = clock.now()
    name = actor_name(actor)
    with transaction.atomic():
        source_row, target_row = _lock_visible(actor, [source, target])
        existing = TicketLink.objects.filter(source=source_row, target=target_row).first()
        if existing is not None:
            if existing.kind == kind:
                return existing
            existing.kind = kind
            existing.save(update_fields=["kind"])
            link = existing
        else:
            link = TicketLink.objects.create(
                source=source_row,
                target=target_row,
                kind=kind,
                created_by_id=actor.user_id if actor else None,
                created_at=at,
            )
        _event(source_row, "linked", actor=actor, name=name, at=at, field=kind, new=target_row.number)
        _event(target_row, "linked", actor=actor, name=name, at=at, field=kind, old=source_row.number)
        audit.record(
            action="support.ticket_linked",
            object_type="support.ticket",
            object_id=str(source_row.public_id),
            after={"target": str(target_row.public_id), "kind": kind},
            actor_id=actor.user_id if actor else None,
        )
        _push(source_row, "update", name)
    return link


def ticket_unlink(*, actor: Actor | None, source: Ticket | str, target: Ticket | str) -> bool:
    _require_agent(actor)
    at = clock.now()
    name = actor_name(actor)
    with transaction.atomic():
        source_row, target_row = _lock_visible(actor, [source, target])
        deleted, _rows = TicketLink.objects.filter(source=source_row, target=target_row).delete()
        if not deleted:
            deleted, _rows = TicketLink.objects.filter(source=target_row, target=source_row).delete()
        if not deleted:
            return False
        _event(source_row, "unlinked", actor=actor, name=name, at=at, old=target_row.number)
        audit.record(
            action="support.ticket_unlinked",
            object_type="support.ticket",
            object_id=str(source_row.public_id),
            before={"target": str(target_row.public_id)},
            actor_id=actor.user_id if actor else None,
        )
        _push(source_row, "update", name)
    return True


def ticket_set_parent(*, actor: Actor | None, ticket: Ticket | str, parent: Ticket | str | None) -> Ticket:
    """Make ``ticket`` a child of ``parent`` (None: no parent). Cycles are refused."""
    _require_agent(actor)
    at = clock.now()
    name = actor_name(actor)
    with transaction.atomic():
        if parent is None:
            (child,) = _lock_visible(actor, [ticket])
            parent_row = None
        else:
            if _uuid_text(ticket) == _uuid_text(parent):
                raise ValidationFailed(_("A ticket cannot be its own parent."), code="parent_cycle")
            child, parent_row = _lock_visible(actor, [ticket, parent])
            ancestor: Ticket | None = parent_row
            depth = 0
            while ancestor is not None and depth < 50:
                if ancestor.pk == child.pk:
                    raise ValidationFailed(
                        _("That would make a ticket its own ancestor."), code="parent_cycle"
                    )
                ancestor = ancestor.parent
                depth += 1
        old = child.parent.number if child.parent_id else ""  # type: ignore[union-attr]
        new = parent_row.number if parent_row else ""
        if old == new:
            return child
        child.parent = parent_row
        child.updated_at = at
        child.save(update_fields=["parent", "updated_at"])
        _event(child, "field_changed", actor=actor, name=name, at=at, field="parent", old=old, new=new)
        audit.record(
            action="support.ticket_updated",
            object_type="support.ticket",
            object_id=str(child.public_id),
            before={"parent": old},
            after={"parent": new},
            actor_id=actor.user_id if actor else None,
        )
        _push(child, "update", name)
    return child


# ----------------------------------------------------------------------------------------------
# Watchers


def _watcher_change(
    actor: Actor | None, ticket: Ticket | str, *, kind: str, label: str, add: bool, lookup: dict[str, Any]
) -> bool:
    at = clock.now()
    name = actor_name(actor)
    with transaction.atomic():
        (row,) = _lock_visible(actor, [ticket])
        existing = TicketWatcher.objects.filter(ticket=row, **lookup)
        if add:
            if existing.exists():
                return False
            TicketWatcher.objects.create(ticket=row, kind=kind, created_at=at, **lookup)
        else:
            deleted, _rows = existing.delete()
            if not deleted:
                return False
        _event(
            row,
            "watcher_added" if add else "watcher_removed",
            actor=actor,
            name=name,
            at=at,
            field=kind,
            old="" if add else label,
            new=label if add else "",
        )
        audit.record(
            action="support.watcher_added" if add else "support.watcher_removed",
            object_type="support.ticket",
            object_id=str(row.public_id),
            after={"kind": kind, "watcher": label},
            actor_id=actor.user_id if actor else None,
        )
        _push(row, "update", name)
    return True


def _agent_user(user_public_id: str) -> Any:
    from fedele.support.selectors.tickets import _is_uuid

    user = (
        get_user_model().objects.filter(public_id=user_public_id, is_active=True).first()
        if _is_uuid(str(user_public_id))
        else None
    )
    if user is None or not (user.is_superuser or user.has_perm("support.view_ticket")):
        raise ValidationFailed(
            _("Only support agents can follow tickets."),
            code="unknown_user",
            fields={"user": _("Unknown agent.")},
        )
    return user


def follower_add(*, actor: Actor | None, ticket: Ticket | str, user_public_id: str) -> bool:
    _require_agent(actor)
    user = _agent_user(user_public_id)
    return _watcher_change(
        actor,
        ticket,
        kind=TicketWatcher.Kind.FOLLOWER,
        label=user.email,
        add=True,
        lookup={"user_id": user.pk},
    )


def follower_remove(*, actor: Actor | None, ticket: Ticket | str, user_public_id: str) -> bool:
    _require_agent(actor)
    user = _agent_user(user_public_id)
    return _watcher_change(
        actor,
        ticket,
        kind=TicketWatcher.Kind.FOLLOWER,
        label=user.email,
        add=False,
        lookup={"user_id": user.pk},
    )


def _email(value: str) -> str:
    address = str(value or "").strip().lower()
    try:
        validate_email(address)
    except DjangoValidationError as error:
        raise ValidationFailed(
            _("Not a valid e-mail address."), code="invalid_email", fields={"email": _("Invalid.")}
        ) from error
    return address


def cc_add(*, actor: Actor | None, ticket: Ticket | str, email: str) -> bool:
    _require_agent(actor)
    address = _email(email)
    return _watcher_change(
        actor, ticket, kind=TicketWatcher.Kind.CC, label=address, add=True, lookup={"email": address}
    )


def cc_remove(*, actor: Actor | None, ticket: Ticket | str, email: str) -> bool:
    _require_agent(actor)
    address = _email(email)
    return _watcher_change(
        actor, ticket, kind=TicketWatcher.Kind.CC, label=address, add=False, lookup={"email": address}
    )


# ----------------------------------------------------------------------------------------------
# Bulk


def tickets_bulk_update(*, actor: Actor | None, public_ids: Sequence[str], changes: Mapping[str, Any]) -> int:
    """Apply the same changes to up to 500 tickets: all or nothing. Returns how many changed."""
    _require_agent(actor)
    wanted = list(dict.fromkeys(str(value).strip() for value in public_ids))
    if not wanted:
        return 0
    if len(wanted) > MAX_BULK:
        raise ValidationFailed(
            _("At most %(count)d tickets at a time.") % {"count": MAX_BULK},
            code="too_many_tickets",
            fields={"tickets": _("Too many.")},
        )
    from fedele.support.services.tickets import UPDATE_KEYS

    unknown = sorted(set(changes) - UPDATE_KEYS - {"subject"}) + (["subject"] if "subject" in changes else [])
    if unknown:
        raise ValidationFailed(
            _("Unknown fields: %(fields)s.") % {"fields": ", ".join(unknown)},
            code="unknown_field",
            fields={key: _("Not allowed in a bulk update.") for key in unknown},
        )
    at = clock.now()
    name = actor_name(actor)
    changed = 0
    with transaction.atomic():
        rows = _lock_visible(actor, wanted)
        for row in sorted(rows, key=lambda t: t.pk):
            try:
                diffs = _apply_changes(row, changes, actor=actor, name=name, at=at)
            except ValidationFailed as error:
                raise ValidationFailed(
                    f"{row.number}: {error.message}", code=error.code, fields={"tickets": [row.number]}
                ) from error
            if diffs:
                changed += 1
                _push(row, "update", name)
    return changed


__all__ = [
    "MAX_BULK",
    "TicketEvent",
    "cc_add",
    "cc_remove",
    "follower_add",
    "follower_remove",
    "ticket_link",
    "ticket_merge",
    "ticket_set_parent",
    "ticket_split",
    "ticket_unlink",
    "tickets_bulk_update",
]

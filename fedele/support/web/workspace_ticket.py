"""The agent's ticket page: header and properties side form, SLA badges, conversation, reply box with
macros, customer 360, KB suggestions, history; plus the permission-checked attachment download."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from fedele.accounts.facade import Actor
from fedele.customers.facade import customer_summaries
from fedele.shared import clock
from fedele.shared.errors import ApplicationError, NotFound, ValidationFailed
from fedele.shared.web.panels import panels_for_customer
from fedele.support.attachments import download_response
from fedele.support.models import (
    Attachment,
    BusinessCalendar,
    Macro,
    Priority,
    Ticket,
    TicketEvent,
    TicketMessage,
    TicketWatcher,
)
from fedele.support.web import workspace_common as common

MAX_BODY_LENGTH = 100_000
PAST_TICKETS = 10


def ticket_for(actor: Actor, public_id: str) -> Ticket:
    from fedele.support.selectors.tickets import ticket_get

    return ticket_get(actor=actor, public_id=str(public_id))


@dataclass(frozen=True, slots=True)
class SlaBadge:
    label: str
    due_at: datetime
    text: str
    level: str  # danger | warning | success


def _business_seconds(ticket: Ticket, start: datetime, end: datetime) -> int:
    from fedele.support.calendars import clock_for

    calendar = ticket.sla_policy.calendar if ticket.sla_policy is not None else None
    calendar = calendar or BusinessCalendar.objects.filter(is_default=True).first()
    if calendar is None:
        return int((end - start).total_seconds())
    return clock_for(calendar).business_seconds_between(start, end)


def sla_badges(ticket: Ticket, *, now: datetime | None = None) -> list[SlaBadge]:
    """One badge per running SLA target, with the business time left (or overdue), red when breached."""
    if ticket.status_kind not in common.UNSOLVED_KINDS:
        return []
    at = now or clock.now()
    badges = []
    for label, due_at in (
        (_("First response"), ticket.first_response_due_at),
        (_("Next response"), ticket.next_response_due_at),
        (_("Resolution"), ticket.resolution_due_at),
    ):
        if due_at is None:
            continue
        if due_at <= at:
            overdue = _business_seconds(ticket, due_at, at)
            text = _("overdue %(time)s") % {"time": common.remaining_text(overdue)}
            badges.append(SlaBadge(label, due_at, text, "danger"))
            continue
        left = _business_seconds(ticket, at, due_at)
        level = "warning" if left <= common.DUE_SOON.total_seconds() else "success"
        text = _("%(time)s left") % {"time": common.remaining_text(left)}
        badges.append(SlaBadge(label, due_at, text, level))
    return badges


@dataclass(frozen=True, slots=True)
class ConversationEntry:
    message: TicketMessage
    author: str
    attachments: list[Attachment]


def conversation(actor: Actor, ticket: Ticket) -> list[ConversationEntry]:
    from fedele.support.selectors.tickets import messages_for

    rows = (
        messages_for(actor=actor, ticket=ticket).select_related("author_user").prefetch_related("attachments")
    )
    return [
        ConversationEntry(
            message=message,
            author=common.person_name(message.author_user) or message.author_name or message.author_email,
            attachments=list(message.attachments.all()),
        )
        for message in rows
    ]


def _custom_fields(ticket: Ticket) -> list[dict[str, Any]]:
    definitions = ticket.ticket_type.custom_fields if ticket.ticket_type is not None else []
    fields = []
    for definition in definitions if isinstance(definitions, list) else []:
        if not isinstance(definition, dict) or not definition.get("key"):
            continue
        key = str(definition["key"])
        fields.append(
            {
                "key": key,
                "label": definition.get("label_it" if common.is_italian() else "label_en") or key,
                "type": definition.get("type", "text"),
                "choices": definition.get("choices") or [],
                "required": bool(definition.get("required")),
                "value": (ticket.custom_fields or {}).get(key, ""),
            }
        )
    return fields


def macros_for(actor: Actor) -> list[Macro]:
    teams = common.team_model().objects.filter(members__id=actor.user_id)  # type: ignore[attr-defined]
    return list(Macro.objects.filter(Q(team__isnull=True) | Q(team__in=teams), active=True).order_by("name"))


def _customer_context(request: HttpRequest, actor: Actor, ticket: Ticket) -> dict[str, Any]:
    if ticket.customer_id is None:
        return {"customer": None, "panels": [], "past_tickets": []}
    customer = customer_summaries([ticket.customer_id]).get(ticket.customer_id)
    if customer is None:
        return {"customer": None, "panels": [], "past_tickets": []}
    from fedele.support.selectors.tickets import visible_tickets

    past = (
        visible_tickets(actor)
        .filter(customer_id=ticket.customer_id)
        .exclude(pk=ticket.pk)
        .select_related("status")
        .order_by("-id")[:PAST_TICKETS]
    )
    return {
        "customer": customer,
        "panels": panels_for_customer(request, str(customer.public_id)),
        "past_tickets": [(row, common.name_of(row.status)) for row in past],
    }


def header_context(ticket: Ticket) -> dict[str, Any]:
    return {
        "ticket": ticket,
        "status_label": common.name_of(ticket.status),
        "status_colour": common.STATUS_COLOURS.get(ticket.status_kind, "secondary"),
        "priority_colour": common.PRIORITY_COLOURS.get(ticket.priority, "light"),
        "type_label": common.name_of(ticket.ticket_type),
        "tags": [tag.name for tag in ticket.tags.all()],
        "sla": sla_badges(ticket),
    }


def properties_context(actor: Actor, ticket: Ticket) -> dict[str, Any]:
    can_work = actor.can("support.work_tickets")
    return {
        "ticket": ticket,
        "can_work": can_work,
        "statuses": common.choice_labels(common.statuses()),
        "types": common.choice_labels(common.ticket_types()),
        "categories": common.choice_labels(common.categories()),
        "priorities": Priority.choices,
        "teams": common.teams(),
        "agents": common.agents() if can_work else [],
        "tags_text": ", ".join(tag.name for tag in ticket.tags.all()),
        "custom_fields": _custom_fields(ticket),
    }


def reply_context(actor: Actor, ticket: Ticket, **extra: Any) -> dict[str, Any]:
    context = {
        "ticket": ticket,
        "statuses": common.choice_labels(common.statuses()),
        "macros": macros_for(actor),
        "kind": "reply",
        "body": "",
        "error": None,
    }
    context.update(extra)
    return context


def _page_context(request: HttpRequest, actor: Actor, ticket: Ticket) -> dict[str, Any]:
    context: dict[str, Any] = {
        **header_context(ticket),
        **properties_context(actor, ticket),
        **reply_context(actor, ticket),
        **_customer_context(request, actor, ticket),
        "entries": conversation(actor, ticket),
        "events": list(TicketEvent.objects.filter(ticket=ticket).order_by("id")[:500]),
        "followers": [
            common.person_name(watcher.user)
            for watcher in TicketWatcher.objects.filter(ticket=ticket, kind="follower").select_related("user")
        ],
        "following": TicketWatcher.objects.filter(
            ticket=ticket, kind="follower", user_id=actor.user_id
        ).exists(),
        "assignee_name": common.person_name(ticket.assignee),
        "socket_path": f"/ws/support/tickets/{ticket.public_id}/",
    }
    return context


def _load(actor: Actor, public_id: str) -> Ticket:
    ticket = ticket_for(actor, public_id)
    return (
        Ticket.objects.select_related(
            "status", "ticket_type", "category", "team", "assignee", "sla_policy__calendar", "merged_into"
        )
        .prefetch_related("tags")
        .get(pk=ticket.pk)
    )


@login_required
@require_GET
def ticket_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = common.agent(request)
    ticket = _load(actor, public_id)
    return render(request, "support/workspace/ticket.html", _page_context(request, actor, ticket))


@login_required
@require_GET
def ticket_conversation(request: HttpRequest, public_id: str) -> HttpResponse:
    """The conversation alone, for a live reload after a "ticket.changed" push."""
    actor = common.agent(request)
    ticket = _load(actor, public_id)
    return render(
        request,
        "support/workspace/_conversation.html",
        {"ticket": ticket, "entries": conversation(actor, ticket)},
    )


def _incoming_files(request: HttpRequest) -> list[Any]:
    from fedele.support.attachments import IncomingFile

    return [
        IncomingFile(
            filename=upload.name or "file", content=upload.read(), declared_type=upload.content_type or ""
        )
        for upload in request.FILES.getlist("attachments")
    ]


@login_required
@require_POST
def ticket_reply(request: HttpRequest, public_id: str) -> HttpResponse:
    """The reply form: a public reply or an internal note, optionally moving the ticket to a status."""
    from fedele.support.services.tickets import message_add

    actor = common.worker(request)
    ticket = _load(actor, public_id)
    kind = request.POST.get("kind", "reply")
    body = request.POST.get("body", "")
    new_status = request.POST.get("status", "").strip() or None
    try:
        if kind not in ("reply", "note"):
            raise ValidationFailed(
                _("Choose a public reply or an internal note."), fields={"kind": _("Invalid.")}
            )
        if not body.strip():
            raise ValidationFailed(_("Write a message first."), fields={"body": _("This field is required.")})
        if len(body) > MAX_BODY_LENGTH:
            raise ValidationFailed(_("The message is too long."), fields={"body": _("Too long.")})
        message_add(
            actor=actor,
            ticket=ticket,
            kind=kind,
            body=body,
            attachments=_incoming_files(request),
            new_status=new_status,
        )
    except ApplicationError as error:
        context = reply_context(
            actor, ticket, kind=kind, body=body, error=error, chosen_status=new_status or ""
        )
        if request.htmx:  # type: ignore[attr-defined]
            response = render(request, "support/workspace/_reply_form.html", context, status=422)
            response["HX-Retarget"] = "#reply-form"
            response["HX-Reswap"] = "outerHTML"
            return response
        messages.error(request, error.message)
        page = _page_context(request, actor, ticket)
        page.update(context)
        return render(request, "support/workspace/ticket.html", page, status=422)
    if request.htmx:  # type: ignore[attr-defined]
        ticket = _load(actor, public_id)
        context = {
            **header_context(ticket),
            **reply_context(actor, ticket),
            "entries": conversation(actor, ticket),
            "oob": True,
        }
        return render(request, "support/workspace/_after_reply.html", context)
    messages.success(request, _("Note added.") if kind == "note" else _("Reply sent."))
    return redirect(reverse("support:ticket_detail", args=[ticket.public_id]))


def _changes(request: HttpRequest, actor: Actor, ticket: Ticket) -> dict[str, Any]:
    """Only what the side form actually changed, in ticket_update's keys."""
    post = request.POST
    changes: dict[str, Any] = {}
    if "assign_me" in post:
        return {"assignee": str(actor.public_id)}
    current = {
        "subject": ticket.subject,
        "priority": ticket.priority,
        "status": ticket.status.code,
        "ticket_type": ticket.ticket_type.code if ticket.ticket_type else "",
        "category": ticket.category.code if ticket.category else "",
        "team": str(ticket.team.public_id) if ticket.team else "",
        "assignee": str(ticket.assignee.public_id) if ticket.assignee else "",
    }
    for key, old in current.items():
        if key not in post:
            continue
        new = post.get(key, "").strip()
        if new != old:
            changes[key] = new or None
    if "tags" in post:
        tags = sorted({tag.strip().lower() for tag in post.get("tags", "").split(",") if tag.strip()})
        if tags != sorted(tag.name for tag in ticket.tags.all()):
            changes["tags"] = tags
    custom = {}
    for field in _custom_fields(ticket):
        name = f"cf_{field['key']}"
        if field["type"] == "boolean":
            value: Any = name in post
        elif name in post:
            value = post.get(name, "").strip()
        else:
            continue
        if value != field["value"]:
            custom[field["key"]] = value
    if custom:
        changes["custom_fields"] = custom
    return changes


@login_required
@require_POST
def ticket_update_view(request: HttpRequest, public_id: str) -> HttpResponse:
    from fedele.support.services.tickets import ticket_update

    actor = common.worker(request)
    ticket = _load(actor, public_id)
    error: ApplicationError | None = None
    try:
        changes = _changes(request, actor, ticket)
        if changes:
            ticket_update(actor=actor, ticket=ticket, changes=changes)
    except ApplicationError as failure:
        error = failure
    ticket = _load(actor, public_id)
    if request.htmx:  # type: ignore[attr-defined]
        context = {**header_context(ticket), **properties_context(actor, ticket), "error": error, "oob": True}
        return render(request, "support/workspace/_properties.html", context, status=422 if error else 200)
    if error is not None:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Ticket updated."))
    return redirect(reverse("support:ticket_detail", args=[ticket.public_id]))


@login_required
@require_GET
def macro_preview(request: HttpRequest, public_id: str) -> HttpResponse:
    """What a macro would write on this ticket, before applying it."""
    from fedele.support.services.automations import render_template

    actor = common.worker(request)
    ticket = _load(actor, public_id)
    macro = next((m for m in macros_for(actor) if str(m.public_id) == request.GET.get("macro", "")), None)
    preview = ""
    if macro is not None:
        text = macro.reply_it if ticket.language == "it" else macro.reply_en
        text = text or macro.reply_it or macro.reply_en
        preview = render_template(text, ticket=ticket, agent=request.user) if text else ""
    return render(
        request,
        "support/workspace/_macro_preview.html",
        {"ticket": ticket, "macro": macro, "preview": preview},
    )


@login_required
@require_POST
def macro_apply_view(request: HttpRequest, public_id: str) -> HttpResponse:
    from fedele.support.services.automations import macro_apply

    actor = common.worker(request)
    ticket = _load(actor, public_id)
    macro = next((m for m in macros_for(actor) if str(m.public_id) == request.POST.get("macro", "")), None)
    try:
        if macro is None:
            raise NotFound(_("This macro does not exist."))
        macro_apply(actor=actor, ticket=ticket, macro_public_id=str(macro.public_id))
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Macro applied."))
    return redirect(reverse("support:ticket_detail", args=[ticket.public_id]))


@login_required
@require_GET
def kb_suggestions(request: HttpRequest, public_id: str) -> HttpResponse:
    """Knowledge-base articles that may answer this ticket, loaded lazily by the ticket page."""
    from fedele.support.selectors.kb_search import suggest_for_ticket

    actor = common.agent(request)
    ticket = _load(actor, public_id)
    hits = suggest_for_ticket(ticket, limit=5)
    return render(
        request, "support/kb/_suggestions.html", {"hits": hits, "ticket": ticket, "agent_view": True}
    )


@login_required
@require_GET
def attachment_download(request: HttpRequest, public_id: str) -> FileResponse:
    """A ticket attachment, for agents who may see its ticket; always downloaded, never rendered inline."""
    from fedele.support.selectors.tickets import attachment_get

    actor = common.agent(request)
    attachment = attachment_get(actor=actor, public_id=str(public_id))
    return download_response(attachment)


@login_required
@require_POST
def ticket_action(request: HttpRequest, public_id: str) -> HttpResponse:
    """Follow or unfollow, merge this ticket into another, or link it to another (by T-number)."""
    from fedele.support.selectors.tickets import ticket_by_number
    from fedele.support.services import ticket_ops

    actor = common.worker(request)
    ticket = _load(actor, public_id)
    action = request.POST.get("action", "")
    try:
        if action == "follow":
            ticket_ops.follower_add(actor=actor, ticket=ticket, user_public_id=str(actor.public_id))
            messages.success(request, _("You follow this ticket."))
        elif action == "unfollow":
            ticket_ops.follower_remove(actor=actor, ticket=ticket, user_public_id=str(actor.public_id))
            messages.success(request, _("You no longer follow this ticket."))
        elif action in ("merge", "link"):
            other = ticket_by_number(actor=actor, number=request.POST.get("number", ""))
            if action == "merge":
                ticket_ops.ticket_merge(actor=actor, source=ticket, target=other)
                messages.success(request, _("Merged into %(number)s.") % {"number": other.number})
                return redirect(reverse("support:ticket_detail", args=[other.public_id]))
            ticket_ops.ticket_link(
                actor=actor, source=ticket, target=other, kind=request.POST.get("kind", "related")
            )
            messages.success(request, _("Linked to %(number)s.") % {"number": other.number})
        else:
            messages.error(request, _("Choose an action."))
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect(reverse("support:ticket_detail", args=[ticket.public_id]))

"""Support API: tickets, their conversation, merges/splits/links/watchers, bulk updates, search and
saved views. Parse, authorise, call a service or selector; nothing else.

Portal customers (API tokens of portal users) see only their own tickets and no internal notes, and
may only write customer messages. POSTs honour Idempotency-Key (shared middleware)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Field, File, Form, Query, Router, Schema, Status, UploadedFile

from fedele.accounts.facade import Actor, actor_for
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import PermissionDenied
from fedele.shared.pagination import paginate
from fedele.support.attachments import IncomingFile, max_attachment_bytes
from fedele.support.models import SavedView, Ticket, TicketMessage
from fedele.support.selectors import tickets as selectors
from fedele.support.services import saved_views, ticket_ops
from fedele.support.services import tickets as services

router = Router(tags=["support: tickets"])

ChannelLiteral = Literal["email", "portal", "phone", "chat", "sms", "social", "api", "internal"]
PriorityLiteral = Literal["low", "normal", "high", "urgent"]
KindLiteral = Literal["customer", "reply", "note"]
OrderingLiteral = Literal["-id", "id", "priority", "-priority", "due", "-due", "updated", "-updated"]


# ----------------------------------------------------------------------------------------------
# Schemas


class AttachmentOut(Schema):
    id: UUID
    filename: str
    content_type: str
    size: int


class MessageOut(Schema):
    id: UUID
    kind: str
    channel: str
    author_name: str
    author_email: str
    body_text: str
    body_html: str
    created_at: datetime
    attachments: list[AttachmentOut]


class TicketOut(Schema):
    id: UUID
    number: str
    subject: str
    status: str
    status_kind: str
    priority: str
    channel: str
    ticket_type: str | None
    category: str | None
    team_id: UUID | None
    assignee_id: UUID | None
    customer_id: UUID | None
    requester_email: str
    requester_name: str
    language: str
    tags: list[str]
    custom_fields: dict[str, Any]
    parent_id: UUID | None
    merged_into_id: UUID | None
    message_count: int
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    sla_breached: bool
    created_at: datetime
    updated_at: datetime


class TicketDetailOut(TicketOut):
    messages: list[MessageOut]


class TicketPage(Schema):
    items: list[TicketOut]
    next_cursor: str | None


class TicketSearchOut(Schema):
    items: list[TicketOut]


class TicketListQuery(Schema):
    status_kind: str = Field("", max_length=60)
    status: str = Field("", max_length=200)
    priority: str = Field("", max_length=60)
    assignee: str = Field("", max_length=36)
    team: str = Field("", max_length=36)
    tag: str = Field("", max_length=60)
    type: str = Field("", max_length=200)
    category: str = Field("", max_length=200)
    channel: str = Field("", max_length=100)
    customer: str = Field("", max_length=36)
    sla: Literal["breached", "due_soon", ""] = ""
    created_from: str = Field("", max_length=40)
    created_to: str = Field("", max_length=40)
    q: str = Field("", max_length=200)
    ordering: OrderingLiteral = "-id"
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


class SearchQuery(Schema):
    q: str = Field(..., min_length=1, max_length=200)
    limit: int = Field(20, ge=1, le=100)


class TicketIn(StrictSchema):
    subject: str = Field(..., min_length=1, max_length=250)
    body: str = Field("", max_length=200_000)
    body_html: str = Field("", max_length=400_000)
    channel: ChannelLiteral = "api"
    requester_email: str = Field("", max_length=254)
    requester_name: str = Field("", max_length=200)
    customer_id: UUID | None = None
    ticket_type: str | None = Field(None, max_length=40)
    category: str | None = Field(None, max_length=60)
    priority: PriorityLiteral | None = None
    team_id: UUID | None = None
    assignee_id: UUID | None = None
    tags: list[str] = Field(default_factory=list, max_length=50)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    language: Literal["it", "en"] | None = None
    subject_kind: Literal["entitlement", "equipment", "work_order", ""] = ""
    subject_reference: str = Field("", max_length=64)
    external_id: str = Field("", max_length=64)


class TicketPatch(StrictSchema):
    subject: str | None = Field(None, min_length=1, max_length=250)
    priority: PriorityLiteral | None = None
    status: str | None = Field(None, max_length=40)
    ticket_type: str | None = Field(None, max_length=40)
    category: str | None = Field(None, max_length=60)
    team_id: UUID | None = None
    assignee_id: UUID | None = None
    tags: list[str] | None = Field(None, max_length=50)
    add_tags: list[str] | None = Field(None, max_length=50)
    remove_tags: list[str] | None = Field(None, max_length=50)
    custom_fields: dict[str, Any] | None = None
    customer_id: UUID | None = None
    subject_kind: Literal["entitlement", "equipment", "work_order", ""] | None = None
    subject_reference: str | None = Field(None, max_length=64)
    language: Literal["it", "en"] | None = None


class MessageIn(StrictSchema):
    kind: KindLiteral = "reply"
    body: str = Field("", max_length=200_000)
    body_html: str = Field("", max_length=400_000)
    status: str | None = Field(None, max_length=40)
    send_email: bool = True


class MergeIn(StrictSchema):
    target_id: UUID
    force: bool = False


class SplitIn(StrictSchema):
    message_ids: list[UUID] = Field(..., min_length=1, max_length=500)
    subject: str = Field(..., min_length=1, max_length=250)


class LinkIn(StrictSchema):
    target_id: UUID
    kind: Literal["related", "duplicate"] = "related"


class ParentIn(StrictSchema):
    parent_id: UUID | None


class WatcherIn(StrictSchema):
    kind: Literal["follower", "cc"]
    user_id: UUID | None = None
    email: str = Field("", max_length=254)


class BulkIn(StrictSchema):
    ticket_ids: list[UUID] = Field(..., min_length=1, max_length=ticket_ops.MAX_BULK)
    changes: TicketPatch


class BulkOut(Schema):
    updated: int


class ChangedOut(Schema):
    changed: bool


class LinkOut(Schema):
    source_id: UUID
    target_id: UUID
    kind: str


class ViewIn(StrictSchema):
    name: str = Field(..., min_length=1, max_length=80)
    filters: dict[str, str] = Field(default_factory=dict)
    ordering: OrderingLiteral = "-id"
    shared: bool = False
    position: int = Field(0, ge=0, le=32767)


class ViewPatch(StrictSchema):
    name: str | None = Field(None, min_length=1, max_length=80)
    filters: dict[str, str] | None = None
    ordering: OrderingLiteral | None = None
    shared: bool | None = None
    position: int | None = Field(None, ge=0, le=32767)


class ViewOut(Schema):
    id: UUID
    name: str
    shared: bool
    mine: bool
    filters: dict[str, Any]
    ordering: str
    position: int
    count: int | None = None


# ----------------------------------------------------------------------------------------------
# Helpers


def _reader(request: HttpRequest) -> Actor:
    require_scope(request, "read")
    return actor_for(request.user)


def _writer(request: HttpRequest) -> Actor:
    require_scope(request, "write")
    return actor_for(request.user)


def _agent(request: HttpRequest) -> Actor:
    actor = _writer(request)
    if actor.is_portal_customer or not actor.can("support.work_tickets"):
        raise PermissionDenied("You may not work on tickets.", code="permission_denied")
    return actor


def _ticket_out(
    ticket: Ticket, tags: list[str] | None = None, customer_public_id: str | None = None
) -> dict[str, Any]:
    if customer_public_id is None and ticket.customer_id is not None:
        customer_public_id = str(ticket.customer.public_id)  # type: ignore[union-attr]
    return {
        "id": ticket.public_id,
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status.code,
        "status_kind": ticket.status_kind,
        "priority": ticket.priority,
        "channel": ticket.channel,
        "ticket_type": ticket.ticket_type.code if ticket.ticket_type else None,
        "category": ticket.category.code if ticket.category else None,
        "team_id": ticket.team.public_id if ticket.team else None,
        "assignee_id": ticket.assignee.public_id if ticket.assignee else None,
        "customer_id": customer_public_id,
        "requester_email": ticket.requester_email,
        "requester_name": ticket.requester_name,
        "language": ticket.language,
        "tags": tags if tags is not None else sorted(tag.name for tag in ticket.tags.all()),
        "custom_fields": ticket.custom_fields or {},
        "parent_id": ticket.parent.public_id if ticket.parent_id and ticket.parent else None,
        "merged_into_id": ticket.merged_into.public_id
        if ticket.merged_into_id and ticket.merged_into
        else None,
        "message_count": ticket.message_count,
        "first_response_due_at": ticket.first_response_due_at,
        "resolution_due_at": ticket.resolution_due_at,
        "sla_breached": ticket.sla_breached,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
    }


def _message_out(message: TicketMessage, attachments: list[Any] | None = None) -> dict[str, Any]:
    return {
        "id": message.public_id,
        "kind": message.kind,
        "channel": message.channel,
        "author_name": message.author_name,
        "author_email": message.author_email,
        "body_text": message.body_text,
        "body_html": message.body_html,
        "created_at": message.created_at,
        "attachments": [
            {"id": a.public_id, "filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in (message.attachments.all() if attachments is None else attachments)
        ],
    }


def _detail(actor: Actor, public_id: UUID | str) -> dict[str, Any]:
    return _detail_of(actor, selectors.ticket_get(actor=actor, public_id=str(public_id)))


def _detail_of(actor: Actor, ticket: Ticket) -> dict[str, Any]:
    messages = selectors.messages_for(actor=actor, ticket=ticket).prefetch_related("attachments")
    return {**_ticket_out(ticket), "messages": [_message_out(m) for m in messages]}


def _list_related(queryset: Any) -> Any:
    return selectors.list_related(queryset).prefetch_related("parent", "merged_into", "tags")


def _patch_changes(patch: TicketPatch) -> dict[str, Any]:
    data = patch.model_dump(exclude_unset=True)
    renamed = {"team_id": "team", "assignee_id": "assignee", "customer_id": "customer"}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        name = renamed.get(key, key)
        changes[name] = str(value) if name in renamed.values() and value is not None else value
    return changes


def _view_out(actor: Actor, view: SavedView, count: int | None = None) -> dict[str, Any]:
    return {
        "id": view.public_id,
        "name": view.name,
        "shared": view.shared,
        "mine": view.owner_id == actor.user_id,
        "filters": view.filters or {},
        "ordering": view.ordering,
        "position": view.position,
        "count": count,
    }


# ----------------------------------------------------------------------------------------------
# Tickets


@router.get("/tickets", response={200: TicketPage, **ERROR_RESPONSES}, summary="List tickets")
def list_tickets(request: HttpRequest, query: Query[TicketListQuery]) -> dict[str, Any]:
    actor = _reader(request)
    filters = query.model_dump(exclude={"ordering", "cursor", "limit"})
    queryset = selectors.with_sort_keys(
        _list_related(selectors.apply_filters(selectors.visible_tickets(actor), actor=actor, filters=filters))
    )
    page = paginate(
        queryset,
        ordering=query.ordering,
        allowed=selectors.ORDERING_FIELDS,
        cursor=query.cursor,
        limit=query.limit,
    )
    return {"items": [_ticket_out(t) for t in page.items], "next_cursor": page.next_cursor}


@router.get("/tickets/search", response={200: TicketSearchOut, **ERROR_RESPONSES}, summary="Search tickets")
def search_tickets(request: HttpRequest, query: Query[SearchQuery]) -> dict[str, Any]:
    actor = _reader(request)
    found = selectors.ticket_search(actor=actor, query=query.q, limit=query.limit)
    tags: dict[int, list[str]] = {}
    for ticket_id, name in Ticket.tags.through.objects.filter(
        ticket_id__in=[t.pk for t in found]
    ).values_list("ticket_id", "tag__name"):
        tags.setdefault(ticket_id, []).append(name)
    return {"items": [_ticket_out(t, sorted(tags.get(t.pk, []))) for t in found]}


@router.post("/tickets", response={201: TicketDetailOut, **ERROR_RESPONSES}, summary="Create a ticket")
def create_ticket(request: HttpRequest, payload: TicketIn) -> Status[dict[str, Any]]:
    actor = _writer(request)
    ticket = services.ticket_create(
        actor=actor,
        subject=payload.subject,
        body=payload.body,
        body_html=payload.body_html,
        channel="portal" if actor.is_portal_customer else payload.channel,
        requester_email=payload.requester_email,
        requester_name=payload.requester_name,
        customer_public_id=str(payload.customer_id) if payload.customer_id else None,
        ticket_type=payload.ticket_type,
        category=payload.category,
        priority=payload.priority,
        team_public_id=str(payload.team_id) if payload.team_id else None,
        assignee_public_id=str(payload.assignee_id) if payload.assignee_id else None,
        tags=payload.tags,
        custom_fields=payload.custom_fields,
        language=payload.language,
        subject_kind=payload.subject_kind,
        subject_reference=payload.subject_reference,
        external_source="api" if payload.external_id else "",
        external_id=payload.external_id,
    )
    # The service's own row (it reloads it when a trigger changed it); relations it set stay cached.
    parts = services.new_ticket_parts(ticket)
    if parts is None:
        return Status(201, _detail_of(actor, ticket))
    # Nothing else wrote the ticket yet: its tags and first message are the ones in hand.
    return Status(
        201,
        {
            **_ticket_out(ticket, parts.tags, parts.customer_public_id),
            "messages": [_message_out(message, attachments=[]) for message in parts.messages],
        },
    )


@router.get(
    "/tickets/{ticket_id}", response={200: TicketDetailOut, **ERROR_RESPONSES}, summary="Get a ticket"
)
def get_ticket(request: HttpRequest, ticket_id: UUID) -> dict[str, Any]:
    return _detail(_reader(request), ticket_id)


@router.patch(
    "/tickets/{ticket_id}", response={200: TicketDetailOut, **ERROR_RESPONSES}, summary="Update a ticket"
)
def update_ticket(request: HttpRequest, ticket_id: UUID, payload: TicketPatch) -> dict[str, Any]:
    actor = _agent(request)
    ticket = selectors.ticket_get(actor=actor, public_id=str(ticket_id))
    services.ticket_update(actor=actor, ticket=ticket, changes=_patch_changes(payload))
    return _detail(actor, ticket_id)


def _add_message(
    request: HttpRequest,
    ticket_id: UUID,
    *,
    kind: str,
    body: str,
    body_html: str,
    status: str | None,
    send_email: bool,
    files: list[UploadedFile],
) -> Status[dict[str, Any]]:
    actor = _writer(request)
    ticket = selectors.ticket_get(actor=actor, public_id=str(ticket_id))
    limit = max_attachment_bytes()
    incoming = [
        IncomingFile(
            filename=upload.name or "attachment",
            content=upload.read(limit + 1),
            declared_type=upload.content_type or "",
        )
        for upload in files
    ]
    message = services.message_add(
        actor=actor,
        ticket=ticket,
        kind=kind,
        body=body,
        body_html=body_html,
        channel="portal" if actor.is_portal_customer else ("api" if kind == "customer" else None),
        attachments=incoming,
        new_status=status or None,
        send_email=send_email,
    )
    message = TicketMessage.objects.prefetch_related("attachments").get(pk=message.pk)
    return Status(201, _message_out(message))


@router.post(
    "/tickets/{ticket_id}/messages", response={201: MessageOut, **ERROR_RESPONSES}, summary="Add a message"
)
def add_message(request: HttpRequest, ticket_id: UUID, payload: MessageIn) -> Status[dict[str, Any]]:
    return _add_message(
        request,
        ticket_id,
        kind=payload.kind,
        body=payload.body,
        body_html=payload.body_html,
        status=payload.status,
        send_email=payload.send_email,
        files=[],
    )


@router.post(
    "/tickets/{ticket_id}/messages/upload",
    response={201: MessageOut, **ERROR_RESPONSES},
    summary="Add a message with attachments (multipart)",
)
def add_message_with_files(
    request: HttpRequest,
    ticket_id: UUID,
    files: File[list[UploadedFile]],
    kind: Form[KindLiteral] = "reply",
    body: Form[str] = "",
    status: Form[str] = "",
    send_email: Form[bool] = True,
) -> Status[dict[str, Any]]:
    return _add_message(
        request,
        ticket_id,
        kind=kind,
        body=body,
        body_html="",
        status=status,
        send_email=send_email,
        files=files,
    )


@router.post(
    "/tickets/{ticket_id}/merge", response={200: TicketDetailOut, **ERROR_RESPONSES}, summary="Merge"
)
def merge_ticket(request: HttpRequest, ticket_id: UUID, payload: MergeIn) -> dict[str, Any]:
    actor = _agent(request)
    target = ticket_ops.ticket_merge(
        actor=actor, source=str(ticket_id), target=str(payload.target_id), force=payload.force
    )
    return _detail(actor, target.public_id)


@router.post(
    "/tickets/{ticket_id}/split", response={201: TicketDetailOut, **ERROR_RESPONSES}, summary="Split"
)
def split_ticket(request: HttpRequest, ticket_id: UUID, payload: SplitIn) -> Status[dict[str, Any]]:
    actor = _agent(request)
    child = ticket_ops.ticket_split(
        actor=actor,
        ticket=str(ticket_id),
        message_public_ids=[str(m) for m in payload.message_ids],
        subject=payload.subject,
    )
    return Status(201, _detail(actor, child.public_id))


@router.post("/tickets/{ticket_id}/links", response={201: LinkOut, **ERROR_RESPONSES}, summary="Link tickets")
def link_ticket(request: HttpRequest, ticket_id: UUID, payload: LinkIn) -> Status[dict[str, Any]]:
    actor = _agent(request)
    ticket_ops.ticket_link(
        actor=actor, source=str(ticket_id), target=str(payload.target_id), kind=payload.kind
    )
    return Status(201, {"source_id": ticket_id, "target_id": payload.target_id, "kind": payload.kind})


@router.delete(
    "/tickets/{ticket_id}/links/{target_id}", response={200: ChangedOut, **ERROR_RESPONSES}, summary="Unlink"
)
def unlink_ticket(request: HttpRequest, ticket_id: UUID, target_id: UUID) -> dict[str, bool]:
    actor = _agent(request)
    return {"changed": ticket_ops.ticket_unlink(actor=actor, source=str(ticket_id), target=str(target_id))}


@router.put(
    "/tickets/{ticket_id}/parent", response={200: TicketDetailOut, **ERROR_RESPONSES}, summary="Set parent"
)
def set_parent(request: HttpRequest, ticket_id: UUID, payload: ParentIn) -> dict[str, Any]:
    actor = _agent(request)
    ticket_ops.ticket_set_parent(
        actor=actor, ticket=str(ticket_id), parent=str(payload.parent_id) if payload.parent_id else None
    )
    return _detail(actor, ticket_id)


def _watcher(request: HttpRequest, ticket_id: UUID, payload: WatcherIn, *, add: bool) -> dict[str, bool]:
    actor = _agent(request)
    if payload.kind == "follower":
        user = str(payload.user_id or "")
        operation = ticket_ops.follower_add if add else ticket_ops.follower_remove
        return {"changed": operation(actor=actor, ticket=str(ticket_id), user_public_id=user)}
    cc = ticket_ops.cc_add if add else ticket_ops.cc_remove
    return {"changed": cc(actor=actor, ticket=str(ticket_id), email=payload.email)}


@router.post(
    "/tickets/{ticket_id}/watchers", response={200: ChangedOut, **ERROR_RESPONSES}, summary="Add watcher"
)
def add_watcher(request: HttpRequest, ticket_id: UUID, payload: WatcherIn) -> dict[str, bool]:
    return _watcher(request, ticket_id, payload, add=True)


@router.post(
    "/tickets/{ticket_id}/watchers/remove",
    response={200: ChangedOut, **ERROR_RESPONSES},
    summary="Remove watcher",
)
def remove_watcher(request: HttpRequest, ticket_id: UUID, payload: WatcherIn) -> dict[str, bool]:
    return _watcher(request, ticket_id, payload, add=False)


@router.post("/tickets-bulk", response={200: BulkOut, **ERROR_RESPONSES}, summary="Update many tickets")
def bulk_update(request: HttpRequest, payload: BulkIn) -> dict[str, int]:
    actor = _agent(request)
    updated = ticket_ops.tickets_bulk_update(
        actor=actor, public_ids=[str(t) for t in payload.ticket_ids], changes=_patch_changes(payload.changes)
    )
    return {"updated": updated}


# ----------------------------------------------------------------------------------------------
# Saved views


@router.get(
    "/ticket-views", response={200: list[ViewOut], **ERROR_RESPONSES}, summary="Saved views with counts"
)
def list_views(request: HttpRequest, counts: bool = True) -> list[dict[str, Any]]:
    actor = _reader(request)
    if actor.is_portal_customer:
        raise PermissionDenied("Saved views are for agents.", code="permission_denied")
    views = list(selectors.saved_views_for(actor)[:100])
    numbers = selectors.view_counts(actor=actor, views=views) if counts else {}
    return [_view_out(actor, v, numbers.get(str(v.public_id))) for v in views]


@router.post("/ticket-views", response={201: ViewOut, **ERROR_RESPONSES}, summary="Create a saved view")
def create_view(request: HttpRequest, payload: ViewIn) -> Status[dict[str, Any]]:
    actor = _writer(request)
    view = saved_views.saved_view_create(actor=actor, **payload.model_dump())
    return Status(201, _view_out(actor, view))


@router.patch(
    "/ticket-views/{view_id}", response={200: ViewOut, **ERROR_RESPONSES}, summary="Update a saved view"
)
def update_view(request: HttpRequest, view_id: UUID, payload: ViewPatch) -> dict[str, Any]:
    actor = _writer(request)
    view = saved_views.saved_view_update(
        actor=actor, view=str(view_id), changes=payload.model_dump(exclude_unset=True)
    )
    return _view_out(actor, view)


@router.delete(
    "/ticket-views/{view_id}", response={204: None, **ERROR_RESPONSES}, summary="Delete a saved view"
)
def delete_view(request: HttpRequest, view_id: UUID) -> Status[None]:
    actor = _writer(request)
    saved_views.saved_view_delete(actor=actor, view=str(view_id))
    return Status(204, None)

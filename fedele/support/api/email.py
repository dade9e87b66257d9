"""Support API: mailboxes, the inbound log, and raw inbound mail for providers that POST it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status

from fedele.accounts.facade import actor_for
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import PayloadTooLarge, ValidationFailed
from fedele.shared.pagination import paginate
from fedele.support.models import InboundEmail, Mailbox
from fedele.support.services import mailboxes as mailbox_services
from fedele.support.services.email_inbound import max_email_bytes, process_inbound

router = Router(tags=["support: e-mail"])

RAW_TYPES = ("message/rfc822", "application/octet-stream", "text/plain")


class MailboxOut(Schema):
    id: UUID
    name: str
    address: str
    from_name: str
    team: UUID | None
    ticket_type: str | None
    default_priority: str
    language: str
    max_attachment_bytes: int
    imap_host: str
    imap_port: int
    imap_ssl: bool
    imap_username: str
    imap_password_env: str
    imap_folder: str
    imap_last_polled_at: datetime | None
    imap_last_error: str
    active: bool
    created_at: datetime


class MailboxIn(StrictSchema):
    name: str
    address: str
    from_name: str = ""
    team: UUID | None = None
    ticket_type: str | None = None
    default_priority: Literal["low", "normal", "high", "urgent"] = "normal"
    language: Literal["it", "en"] = "it"
    max_attachment_bytes: int = 25 * 1024 * 1024
    imap_host: str = ""
    imap_port: int = 993
    imap_ssl: bool = True
    imap_username: str = ""
    imap_password_env: str = ""
    imap_folder: str = "INBOX"
    active: bool = True


class MailboxPatch(StrictSchema):
    name: str | None = None
    address: str | None = None
    from_name: str | None = None
    team: UUID | None = None
    ticket_type: str | None = None
    default_priority: Literal["low", "normal", "high", "urgent"] | None = None
    language: Literal["it", "en"] | None = None
    max_attachment_bytes: int | None = None
    imap_host: str | None = None
    imap_port: int | None = None
    imap_ssl: bool | None = None
    imap_username: str | None = None
    imap_password_env: str | None = None
    imap_folder: str | None = None
    active: bool | None = None


class ConnectionOut(Schema):
    ok: bool
    detail: str


class InboundOut(Schema):
    id: int
    mailbox: str | None
    message_id: str
    sender: str
    subject: str
    size: int
    outcome: str
    detail: str
    ticket: UUID | None
    ticket_number: str | None
    received_via: str
    received_at: datetime


class InboundPage(Schema):
    items: list[InboundOut]
    next_cursor: str | None


class InboundFilters(Schema):
    mailbox: UUID | None = None
    outcome: str | None = None
    cursor: str | None = None
    limit: int = 50


class ProcessedOut(Schema):
    outcome: str
    ticket: UUID | None
    detail: str
    reply_code: int


def _mailbox_out(mailbox: Mailbox) -> dict[str, Any]:
    return {
        "id": mailbox.public_id,
        "name": mailbox.name,
        "address": mailbox.address,
        "from_name": mailbox.from_name,
        "team": mailbox.team.public_id if mailbox.team_id and mailbox.team else None,
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
        "imap_last_polled_at": mailbox.imap_last_polled_at,
        "imap_last_error": mailbox.imap_last_error,
        "active": mailbox.active,
        "created_at": mailbox.created_at,
    }


def _data(payload: StrictSchema, *, exclude_unset: bool) -> dict[str, Any]:
    data = payload.model_dump(exclude_unset=exclude_unset)
    if "team" in data and data["team"] is not None:
        data["team"] = str(data["team"])
    return data


@router.get("/email/mailboxes", response={200: list[MailboxOut], **ERROR_RESPONSES}, summary="List mailboxes")
def list_mailboxes(request: HttpRequest) -> list[dict[str, Any]]:
    require_scope(request, "read")
    mailbox_services.require_manager(actor_for(request.user))
    return [
        _mailbox_out(m) for m in Mailbox.objects.select_related("team", "ticket_type").order_by("address")
    ]


@router.post("/email/mailboxes", response={201: MailboxOut, **ERROR_RESPONSES}, summary="Create a mailbox")
def create_mailbox(request: HttpRequest, payload: MailboxIn) -> Status:
    require_scope(request, "write")
    mailbox = mailbox_services.mailbox_create(
        actor=actor_for(request.user), data=_data(payload, exclude_unset=False)
    )
    return Status(201, _mailbox_out(mailbox))


@router.get(
    "/email/mailboxes/{mailbox_id}", response={200: MailboxOut, **ERROR_RESPONSES}, summary="One mailbox"
)
def get_mailbox(request: HttpRequest, mailbox_id: UUID) -> dict[str, Any]:
    require_scope(request, "read")
    return _mailbox_out(
        mailbox_services.mailbox_get(actor=actor_for(request.user), public_id=str(mailbox_id))
    )


@router.patch(
    "/email/mailboxes/{mailbox_id}", response={200: MailboxOut, **ERROR_RESPONSES}, summary="Change a mailbox"
)
def update_mailbox(request: HttpRequest, mailbox_id: UUID, payload: MailboxPatch) -> dict[str, Any]:
    require_scope(request, "write")
    mailbox = mailbox_services.mailbox_update(
        actor=actor_for(request.user), public_id=str(mailbox_id), changes=_data(payload, exclude_unset=True)
    )
    return _mailbox_out(mailbox)


@router.delete(
    "/email/mailboxes/{mailbox_id}", response={204: None, **ERROR_RESPONSES}, summary="Delete a mailbox"
)
def delete_mailbox(request: HttpRequest, mailbox_id: UUID) -> Status:
    require_scope(request, "write")
    mailbox_services.mailbox_delete(actor=actor_for(request.user), public_id=str(mailbox_id))
    return Status(204, None)


@router.post(
    "/email/mailboxes/{mailbox_id}/test",
    response={200: ConnectionOut, **ERROR_RESPONSES},
    summary="Test the IMAP connection",
)
def test_mailbox(request: HttpRequest, mailbox_id: UUID) -> dict[str, Any]:
    require_scope(request, "write")
    ok, detail = mailbox_services.mailbox_test_connection(
        actor=actor_for(request.user), public_id=str(mailbox_id)
    )
    return {"ok": ok, "detail": detail}


@router.get(
    "/email/inbound",
    response={200: InboundPage, **ERROR_RESPONSES},
    summary="The inbound log: every message received and what became of it",
)
def inbound_log(request: HttpRequest, filters: Query[InboundFilters]) -> dict[str, Any]:
    require_scope(request, "read")
    mailbox_services.require_manager(actor_for(request.user))
    queryset = InboundEmail.objects.select_related("mailbox", "ticket")
    if filters.mailbox:
        queryset = queryset.filter(mailbox__public_id=filters.mailbox)
    if filters.outcome:
        if filters.outcome not in InboundEmail.Outcome.values:
            raise ValidationFailed("Unknown outcome.", code="invalid_filter", fields={"outcome": "Unknown."})
        queryset = queryset.filter(outcome=filters.outcome)
    page = paginate(
        queryset, ordering="-id", allowed={"id": "id"}, cursor=filters.cursor, limit=filters.limit
    )
    return {
        "items": [
            {
                "id": row.pk,
                "mailbox": row.mailbox.address if row.mailbox else None,
                "message_id": row.message_id,
                "sender": row.sender,
                "subject": row.subject,
                "size": row.size,
                "outcome": row.outcome,
                "detail": row.detail,
                "ticket": row.ticket.public_id if row.ticket else None,
                "ticket_number": row.ticket.number if row.ticket else None,
                "received_via": row.received_via,
                "received_at": row.received_at,
            }
            for row in page.items
        ],
        "next_cursor": page.next_cursor,
    }


@router.post(
    "/email/inbound",
    response={200: ProcessedOut, 503: ProcessedOut, **ERROR_RESPONSES},
    summary="Deliver one raw e-mail (body: the RFC 822 message, Content-Type message/rfc822)",
    description="For mail providers that POST incoming mail. `recipient` (repeatable) names the envelope "
    "recipients; without it the To/Cc/Delivered-To headers decide the mailbox. The same Message-ID "
    "delivered again is a duplicate and changes nothing. 503 means a temporary failure: retry.",
)
def inbound_raw(request: HttpRequest, recipient: Query[list[str] | None] = None) -> Status:
    require_scope(request, "write")
    mailbox_services.require_manager(actor_for(request.user))
    if request.content_type not in RAW_TYPES:
        raise ValidationFailed(
            "Send the message as the request body with Content-Type message/rfc822.",
            code="unsupported_content_type",
            fields={"body": "Content-Type must be message/rfc822."},
        )
    limit = max_email_bytes()
    raw = request.read(limit + 1)  # not request.body: its upload limit is far below an e-mail's
    if len(raw) > limit:
        raise PayloadTooLarge(
            f"The message is larger than {limit // (1024 * 1024)} MB.", code="message_too_large"
        )
    if not raw.strip():
        raise ValidationFailed("The message is empty.", code="empty_message", fields={"body": "Required."})
    result = process_inbound(raw, recipients=list(recipient or []), via="api")
    body = {
        "outcome": result.outcome,
        "ticket": result.ticket_public_id,
        "detail": result.detail,
        "reply_code": result.reply_code,
    }
    return Status(503 if result.reply_code // 100 == 4 else 200, body)

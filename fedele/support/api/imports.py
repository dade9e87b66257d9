"""Support API: ticket imports from Zendesk/Zammad exports (multipart upload), and their history."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import File, Form, Query, Router, Schema, Status, UploadedFile

from fedele.accounts.facade import Actor, actor_for
from fedele.shared.api import ERROR_RESPONSES, require_scope
from fedele.shared.errors import NotFound, PayloadTooLarge, PermissionDenied, ValidationFailed
from fedele.shared.pagination import paginate
from fedele.support.models import TicketImport
from fedele.support.services import imports as services

router = Router(tags=["support: imports"])


class ImportErrorOut(Schema):
    line: int
    message: str


class TicketImportOut(Schema):
    id: UUID
    source: str
    format: str
    mode: str
    status: str
    total: int
    imported: int
    skipped: int
    failed: int
    messages_imported: int
    errors: list[ImportErrorOut]
    created_at: datetime
    finished_at: datetime | None


class TicketImportPage(Schema):
    items: list[TicketImportOut]
    next_cursor: str | None


class ImportListQuery(Schema):
    cursor: str | None = None
    limit: int = 25


def _importer(request: HttpRequest) -> Actor:
    actor = actor_for(request.user)
    if not actor.can(services.PERMISSION):
        raise PermissionDenied("You may not import tickets.", code="permission_denied")
    return actor


def import_out(row: TicketImport) -> TicketImportOut:
    return TicketImportOut(
        id=row.public_id,
        source=row.source,
        format=row.file_format,
        mode=row.mode,
        status=row.status,
        total=row.total,
        imported=row.imported,
        skipped=row.skipped,
        failed=services.bad_ticket_count(row),
        messages_imported=row.messages_imported,
        errors=[
            ImportErrorOut(line=int(e.get("line", 0)), message=str(e.get("message", ""))) for e in row.errors
        ],
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


@router.post(
    "/imports",
    response={201: TicketImportOut, **ERROR_RESPONSES},
    summary="Import tickets from a Zendesk or Zammad export (CSV or JSON, up to 50 MB / 200,000 tickets)",
)
def create_import(
    request: HttpRequest,
    file: File[UploadedFile],
    source: Form[Literal["zendesk", "zammad"]],
    format: Form[Literal["csv", "json"]],
    mode: Form[Literal["all_or_none", "good_rows"]] = "all_or_none",
) -> Status[TicketImportOut]:
    require_scope(request, "write")
    actor = _importer(request)
    if (file.size or 0) > services.max_upload_bytes():
        raise PayloadTooLarge(
            "The file is larger than 50 MB: split it, or use the support_import command.",
            code="file_too_large",
            fields={"file": "Too large."},
        )
    data = file.read()
    if not isinstance(data, bytes):  # pragma: no cover - Django always gives bytes
        raise ValidationFailed("The file could not be read.", fields={"file": "Unreadable."})
    result = services.ticket_import(actor=actor, source=source, file_format=format, data=data, mode=mode)
    return Status(201, import_out(result))


@router.get("/imports", response={200: TicketImportPage, **ERROR_RESPONSES}, summary="Import history")
def list_imports(request: HttpRequest, query: Query[ImportListQuery]) -> TicketImportPage:
    require_scope(request, "read")
    _importer(request)
    page = paginate(
        TicketImport.objects.all(),
        ordering="-created_at",
        allowed={"created_at": "created_at"},
        cursor=query.cursor,
        limit=query.limit,
    )
    return TicketImportPage(items=[import_out(row) for row in page.items], next_cursor=page.next_cursor)


@router.get("/imports/{import_id}", response={200: TicketImportOut, **ERROR_RESPONSES}, summary="One import")
def get_import(request: HttpRequest, import_id: UUID) -> TicketImportOut:
    require_scope(request, "read")
    _importer(request)
    row = TicketImport.objects.filter(public_id=import_id).first()
    if row is None:
        raise NotFound("Import not found.", code="import_not_found")
    return import_out(row)

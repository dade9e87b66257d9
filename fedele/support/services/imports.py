"""Bulk import of tickets from another helpdesk's export: Zendesk or Zammad, JSON or CSV.

Formats read (documented in docs/support.md):

- Zendesk JSON: an array of ticket objects, ``{"tickets": [...]}``, or the newline-delimited JSON of
  Zendesk's full data export (one ticket per line). Ticket fields: ``id``, ``subject`` (or
  ``raw_subject``), ``description``, ``status`` (new/open/pending/hold/solved/closed), ``priority``,
  ``type``, ``via.channel``, ``tags``, ``created_at``, ``updated_at``, ``solved_at``, the requester as
  ``requester: {"email", "name"}`` (side-loaded), ``requester_email``/``requester_name`` or
  ``via.source.from.address``, and ``comments: [{"id", "author_id", "body"/"plain_body",
  "html_body", "public", "created_at", "author": {"email", "name"}}]``.
- Zendesk CSV (the view/report export): ``Id, Requester, Requester email, Subject, Description,
  Tags, Status, Priority, Via, Ticket type, Created at, Updated at, Solved at`` (header names matched
  case-insensitively; tags separated by spaces).
- Zammad JSON (``GET /api/v1/tickets?expand=true`` with the articles of each ticket): ``id``,
  ``number``, ``title``, ``state``, ``priority`` ("2 normal"), ``group``, ``customer`` (e-mail),
  ``tags``, ``create_article_type``, ``created_at``, ``updated_at``, ``close_at`` and
  ``articles: [{"id", "from", "body", "content_type", "internal", "sender", "type", "created_at"}]``.
- Zammad CSV: ``id, number, title, state, priority, group, customer, customer_name, tags,
  channel, created_at, updated_at, close_at, body``.

Speed: the file is parsed and validated in pure Python beside the calling thread, which writes chunks
of 5,000 tickets (the first one smaller), each in its own transaction: tickets, messages, tag links and
one "imported" history row per ticket; numbers are reserved in one block per chunk. On PostgreSQL the
reader also turns each ticket into COPY text (all but its id, number, customer and tag ids, which the
writer adds), so the database takes one chunk while the next is prepared, and on a machine with more
than one core the reader is a forked process rather than a thread, so parsing, writing and the
database's work really run at the same time (100,000 tickets: 18.9 s with a thread, 14.7 s with the
process; docs/performance.md). Other databases get ``bulk_create`` and a reading thread. One audit row
and one ``support.tickets_imported`` event describe the whole import. No per-row service calls,
events, e-mails or automations.

SLA clocks are not started for imported tickets: the response and resolution targets were measured
by the previous system, and starting clocks now on tickets created weeks ago would mark almost all
open imported tickets as breached at once and fire a burst of escalations. Open imported tickets get
their clocks from the next change made in fedele (helper SLA hooks run on ticket_update/message_add).
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import queue
import re
import signal
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, ClassVar

import nh3
import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.utils.text import slugify

from fedele.accounts.facade import Actor
from fedele.customers import facade as customers_facade
from fedele.shared import audit, clock, events
from fedele.shared.bulk import BulkTable
from fedele.shared.csvfiles import csv_lines
from fedele.shared.errors import PermissionDenied, ValidationFailed
from fedele.shared.events import DomainEvent
from fedele.shared.models import SequenceCounter
from fedele.support import html as support_html
from fedele.support.html import html_to_text
from fedele.support.models import (
    Tag,
    Ticket,
    TicketEvent,
    TicketImport,
    TicketMessage,
    TicketStatus,
    TicketType,
)

SOURCES = ("zendesk", "zammad")
FORMATS = ("csv", "json")
MODES = ("all_or_none", "good_rows")
MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 200_000
MAX_REPORTED_ERRORS = 1_000
BATCH_SIZE = 2_000
TICKET_SERIES = "support.ticket"
PERMISSION = "support.import_tickets"
SEARCH_TEXT_LIMIT = 20_000  # as services.tickets.SEARCH_TEXT_LIMIT

ZENDESK_STATUS = {
    "new": "new",
    "open": "open",
    "pending": "pending_customer",
    "hold": "pending_third_party",
    "on-hold": "pending_third_party",
    "solved": "solved",
    "closed": "closed",
}
ZAMMAD_STATUS = {
    "new": "new",
    "open": "open",
    "pending reminder": "pending_customer",
    "pending close": "pending_customer",
    "closed": "closed",
    "merged": "closed",
}
ZENDESK_PRIORITY = {
    "": "normal",
    "-": "normal",
    "low": "low",
    "normal": "normal",
    "high": "high",
    "urgent": "urgent",
}
ZAMMAD_PRIORITY = {
    "": "normal",
    "1 low": "low",
    "2 normal": "normal",
    "3 high": "high",
    "low": "low",
    "normal": "normal",
    "high": "high",
    "urgent": "urgent",
}
ZENDESK_CHANNEL = {
    "email": "email",
    "mail": "email",
    "web": "portal",
    "web_form": "portal",
    "help_center": "portal",
    "mobile": "portal",
    "mobile_sdk": "portal",
    "web_widget": "chat",
    "chat": "chat",
    "native_messaging": "chat",
    "messaging": "chat",
    "voice": "phone",
    "phone": "phone",
    "sms": "sms",
    "twitter": "social",
    "facebook": "social",
    "instagram_dm": "social",
    "whatsapp": "social",
    "any_channel": "social",
    "api": "api",
    "rule": "internal",
    "side_conversation": "internal",
}
ZAMMAD_CHANNEL = {
    "email": "email",
    "web": "portal",
    "phone": "phone",
    "note": "internal",
    "sms": "sms",
    "chat": "chat",
    "twitter status": "social",
    "twitter direct-message": "social",
    "facebook feed post": "social",
    "telegram personal-message": "social",
    "whatsapp message": "social",
}
ZENDESK_TYPE = {
    "": None,
    "-": None,
    "question": "question",
    "incident": "incident",
    "problem": "incident",
    "task": "request",
}
ZENDESK_CSV_COLUMNS = ("id", "subject", "status")
ZAMMAD_CSV_COLUMNS = ("id", "title", "state")


@dataclass(frozen=True, slots=True)
class TicketsImported(DomainEvent):
    """One summary event per import (never one per ticket)."""

    event_type: ClassVar[str] = "support.tickets_imported"
    import_id: str
    source: str
    imported: int
    skipped: int
    messages_imported: int


@dataclass(slots=True)
class ImportedMessage:
    kind: str
    body_text: str
    body_html: str
    author_email: str
    author_name: str
    channel: str
    external_id: str
    created_at: datetime


@dataclass(slots=True)
class ImportedTicket:
    position: int
    external_id: str
    subject: str
    requester_email: str
    requester_name: str
    status_code: str
    priority: str
    channel: str
    ticket_type: str | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    solved_at: datetime | None
    closed_at: datetime | None
    messages: list[ImportedMessage] = field(default_factory=list)


class RowError(Exception):
    """A bad ticket in the file: reported with its line (CSV) or 1-based index (JSON)."""

    @property
    def message(self) -> str:
        return str(self)


@dataclass(slots=True)
class _Progress:
    total: int = 0
    imported: int = 0
    skipped: int = 0
    messages: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    seen_ids: dict[str, int] = field(default_factory=dict)

    def error(self, line: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"line": line, "message": message})


class _Rollback(Exception):
    """Undo an all-or-none import that found bad rows."""


# Reading files ----------------------------------------------------------------------------------------


def _text(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValidationFailed(
            "The file is not UTF-8 text.", code="invalid_encoding", fields={"file": "must be UTF-8."}
        ) from error
    if "\x00" in text:
        raise ValidationFailed(
            "The file contains NUL bytes: it is not a text export.",
            code="invalid_file",
            fields={"file": "is binary."},
        )
    return text


def _json_items(text: str) -> Iterator[tuple[int, Any]]:
    """(1-based index of the ticket, the ticket object) from an array, {"tickets": [...]} or NDJSON."""
    stripped = text.strip()
    if not stripped:
        raise ValidationFailed("The file is empty.", code="empty_file", fields={"file": "is empty."})
    try:
        document = json.loads(stripped)
    except json.JSONDecodeError as whole_error:
        if not stripped.startswith("{"):
            raise _malformed_json(whole_error) from whole_error
        yield from _ndjson_items(stripped.splitlines())
        return
    if isinstance(document, dict) and isinstance(document.get("tickets"), list):
        document = document["tickets"]
    elif isinstance(document, dict) and ("id" in document or "subject" in document or "title" in document):
        document = [document]
    if not isinstance(document, list):
        raise ValidationFailed(
            "The JSON file must hold an array of tickets or an object with a 'tickets' array.",
            code="invalid_json",
            fields={"file": "no ticket array."},
        )
    yield from enumerate(document, start=1)


def _malformed_json(error: json.JSONDecodeError) -> ValidationFailed:
    return ValidationFailed(
        f"The file is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}).",
        code="invalid_json",
        fields={"file": f"line {error.lineno}: {error.msg}"},
    )


def _ndjson_items(lines: Iterable[str | bytes]) -> Iterator[tuple[int, Any]]:
    index = 0
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        index += 1
        try:
            yield index, json.loads(line)
        except json.JSONDecodeError as error:
            raise ValidationFailed(
                f"Line {line_number} is not valid JSON ({error.msg}).",
                code="invalid_json",
                fields={"file": f"line {line_number}: {error.msg}"},
            ) from error


def _csv_items(text: str, required: Sequence[str]) -> Iterator[tuple[int, Any]]:
    rows = csv_lines(text)
    header: list[str] | None = None
    for line, cells in rows:
        if header is None:
            if not any(cell.strip() for cell in cells):
                continue
            header = [cell.strip().lower() for cell in cells]
            missing = [name for name in required if name not in header]
            if missing:
                raise ValidationFailed(
                    f"The CSV header lacks the column(s): {', '.join(missing)}.",
                    code="missing_columns",
                    fields={"file": f"missing columns: {', '.join(missing)}"},
                )
            continue
        if not any(cell.strip() for cell in cells):
            continue
        yield (
            line,
            dict(zip(header, cells, strict=False)) | {"__cells__": len(cells), "__width__": len(header)},
        )
    if header is None:
        raise ValidationFailed("The file is empty.", code="empty_file", fields={"file": "is empty."})


# Normalising one ticket -------------------------------------------------------------------------------


def _string(value: Any, *, limit: int | None = None) -> str:
    if value is None:
        return ""
    text = value.strip() if type(value) is str else str(value).strip()
    return text[:limit] if limit else text


def _moment(value: Any, name: str, *, required: bool = False) -> datetime | None:
    text = _string(value)
    if not text:
        if required:
            raise RowError(f"{name} is required.")
        return None
    try:
        moment = _parse_moment(text)
    except ValueError as error:
        raise RowError(f"{name} '{text[:40]}' is not a date and time (use ISO 8601).") from error
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@functools.lru_cache(maxsize=4_096)
def _parse_moment_cached(text: str) -> datetime:
    return datetime.fromisoformat(text.replace(" UTC", "").replace("/", "-"))


def _parse_moment(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return _parse_moment_cached(text)


@functools.lru_cache(maxsize=65_536)
def _tag_name(raw: str) -> str:
    return slugify(raw.strip())[:60]


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _external_id(value: Any) -> str:
    text = _string(value)
    if not text:
        raise RowError("The ticket id is required.")
    if len(text) > 64:
        raise RowError("The ticket id is longer than 64 characters.")
    return text


def _email(value: Any) -> str:
    if not value:
        return ""
    text = _checked_email(value if type(value) is str else str(value))
    if text is None:
        raise RowError(f"'{_string(value)[:60]}' is not an e-mail address.")
    return text


@functools.lru_cache(maxsize=65_536)
def _checked_email(value: str) -> str | None:
    text = value.strip().lower()
    if not text:
        return ""
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain or " " in text or len(text) > 254:
        return None
    return text


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    items: Iterable[Any]
    if isinstance(value, str):
        items = value.replace(",", " ").split()
    elif isinstance(value, list):
        items = value
    else:
        raise RowError("tags must be a list or a space-separated text.")
    names: list[str] = []
    for item in items:
        name = _tag_name(item if type(item) is str else str(item))
        if name and name not in names:
            names.append(name)
    return names


def _mapped(table: Mapping[str, str | None], value: Any, name: str) -> str | None:
    key = _string(value).lower()
    if key not in table:
        choices = ", ".join(sorted(k for k in table if k and k != "-"))
        raise RowError(f"The {name} '{key[:40]}' cannot be imported (expected one of: {choices}).")
    return table[key]


def _subject(value: Any, fallback: str) -> str:
    subject = _string(value)
    if not subject:
        subject = fallback.strip().split("\n", 1)[0].strip()
    if not subject:
        raise RowError("The subject is required (the ticket has neither subject nor description).")
    return subject[:250]


# The policy of fedele.support.html.sanitise_html (its own constants and filter), built once: calling
# nh3.clean builds a new cleaner per call, which costs five times the cleaning of a short message.
# test_imports checks both give the same output.
_CLEANER = nh3.Cleaner(
    tags=set(support_html.ALLOWED_TAGS),
    clean_content_tags=set(support_html.DROPPED_WITH_CONTENT),
    attributes={tag: set(names) for tag, names in support_html.ALLOWED_ATTRIBUTES.items()},
    attribute_filter=support_html._attribute_filter,
    url_schemes=set(support_html.URL_SCHEMES),
    link_rel="noopener noreferrer",
    strip_comments=True,
)


def sanitise_html(html: str) -> str:
    return _CLEANER.clean(html).strip() if html else ""


def _body(text_value: Any, html_value: Any) -> tuple[str, str]:
    html = _string(html_value)
    if html:
        clean = sanitise_html(html)
        text = _string(text_value) or html_to_text(clean)
        return text, clean
    return _string(text_value), ""


def _times(
    status_code: str,
    created: datetime,
    updated: datetime | None,
    solved: datetime | None,
    closed: datetime | None,
) -> tuple[datetime, datetime | None, datetime | None]:
    updated_at = updated or created
    if updated_at < created:
        raise RowError("updated_at is before created_at.")
    if status_code in ("solved", "closed"):
        solved = solved or closed or updated_at
        if status_code == "closed":
            closed = closed or updated_at
    else:
        solved, closed = None, None
    if solved is not None and solved < created:
        raise RowError("solved_at is before created_at.")
    return updated_at, solved, closed if status_code == "closed" else None


def _zendesk_json(position: int, item: Any) -> ImportedTicket:
    if not isinstance(item, dict):
        raise RowError("The ticket is not a JSON object.")
    external_id = _external_id(item.get("id"))
    via = _object(item.get("via"))
    requester = _object(item.get("requester"))
    source = _object(via.get("source"))
    sender = _object(source.get("from"))
    requester_email = _email(requester.get("email") or item.get("requester_email") or sender.get("address"))
    requester_name = _string(
        requester.get("name") or item.get("requester_name") or sender.get("name"), limit=200
    )
    status_code = _mapped(ZENDESK_STATUS, item.get("status"), "status") or "new"
    priority = _mapped(ZENDESK_PRIORITY, item.get("priority"), "priority") or "normal"
    channel = ZENDESK_CHANNEL.get(_string(via.get("channel")).lower(), "import")
    created = _moment(item.get("created_at"), "created_at", required=True)
    assert created is not None
    updated_at, solved_at, closed_at = _times(
        status_code,
        created,
        _moment(item.get("updated_at"), "updated_at"),
        _moment(item.get("solved_at"), "solved_at"),
        None,
    )
    requester_id = item.get("requester_id")
    comments = item.get("comments")
    if comments is None:
        comments = []
    if not isinstance(comments, list):
        raise RowError("comments must be a list.")
    messages: list[ImportedMessage] = []
    for number, comment in enumerate(comments, start=1):
        if not isinstance(comment, dict):
            raise RowError(f"Comment {number} is not a JSON object.")
        author = _object(comment.get("author"))
        author_email = _email(author.get("email"))
        by_requester = (requester_id is not None and comment.get("author_id") == requester_id) or (
            bool(author_email) and author_email == requester_email
        )
        public = comment.get("public", True) is not False
        kind = ("customer" if by_requester else "reply") if public else "note"
        text, html = _body(comment.get("plain_body") or comment.get("body"), comment.get("html_body"))
        comment_via = _object(comment.get("via"))
        at = _moment(comment.get("created_at"), f"comment {number} created_at") or created
        messages.append(
            ImportedMessage(
                kind=kind,
                body_text=text,
                body_html=html,
                author_email=author_email or (requester_email if by_requester else ""),
                author_name=_string(author.get("name"), limit=200)
                or (requester_name if by_requester else ""),
                channel=ZENDESK_CHANNEL.get(_string(comment_via.get("channel")).lower(), channel),
                external_id=_string(comment.get("id"), limit=64),
                created_at=at,
            )
        )
    description = _string(item.get("description"))
    if not messages and description:
        messages.append(
            ImportedMessage(
                "customer", description, "", requester_email, requester_name, channel, "", created
            )
        )
    return ImportedTicket(
        position=position,
        external_id=external_id,
        subject=_subject(item.get("subject") or item.get("raw_subject"), description),
        requester_email=requester_email,
        requester_name=requester_name,
        status_code=status_code,
        priority=priority,
        channel=channel,
        ticket_type=_mapped(ZENDESK_TYPE, item.get("type"), "type"),
        tags=_tags(item.get("tags")),
        created_at=created,
        updated_at=updated_at,
        solved_at=solved_at,
        closed_at=closed_at,
        messages=messages,
    )


def _zendesk_csv(position: int, row: Mapping[str, Any]) -> ImportedTicket:
    _check_width(row)
    external_id = _external_id(row.get("id"))
    requester_email = _email(row.get("requester email"))
    requester_name = _string(row.get("requester"), limit=200)
    status_code = _mapped(ZENDESK_STATUS, row.get("status"), "status") or "new"
    channel = ZENDESK_CHANNEL.get(_string(row.get("via")).lower().replace(" ", "_"), "import")
    created = _moment(row.get("created at"), "Created at", required=True)
    assert created is not None
    updated_at, solved_at, closed_at = _times(
        status_code,
        created,
        _moment(row.get("updated at"), "Updated at"),
        _moment(row.get("solved at"), "Solved at"),
        None,
    )
    description = _string(row.get("description"))
    messages = (
        [ImportedMessage("customer", description, "", requester_email, requester_name, channel, "", created)]
        if description
        else []
    )
    return ImportedTicket(
        position=position,
        external_id=external_id,
        subject=_subject(row.get("subject"), description),
        requester_email=requester_email,
        requester_name=requester_name,
        status_code=status_code,
        priority=_mapped(ZENDESK_PRIORITY, row.get("priority"), "priority") or "normal",
        channel=channel,
        ticket_type=_mapped(ZENDESK_TYPE, row.get("ticket type"), "type"),
        tags=_tags(row.get("tags") or ""),
        created_at=created,
        updated_at=updated_at,
        solved_at=solved_at,
        closed_at=closed_at,
        messages=messages,
    )


def _zammad_json(position: int, item: Any) -> ImportedTicket:
    if not isinstance(item, dict):
        raise RowError("The ticket is not a JSON object.")
    external_id = _external_id(item.get("id"))
    customer = item.get("customer")
    if isinstance(customer, dict):
        requester_email = _email(customer.get("email"))
        requester_name = _string(
            f"{_string(customer.get('firstname'))} {_string(customer.get('lastname'))}", limit=200
        )
    else:
        requester_email = _email(customer if "@" in _string(customer) else item.get("customer_email"))
        requester_name = _string(item.get("customer_name"), limit=200)
    status_code = _mapped(ZAMMAD_STATUS, item.get("state"), "state") or "new"
    channel = ZAMMAD_CHANNEL.get(_string(item.get("create_article_type")).lower(), "import")
    created = _moment(item.get("created_at"), "created_at", required=True)
    assert created is not None
    close_at = _moment(item.get("close_at"), "close_at")
    updated_at, solved_at, closed_at = _times(
        status_code, created, _moment(item.get("updated_at"), "updated_at"), close_at, close_at
    )
    articles = item.get("articles")
    if articles is None:
        articles = []
    if not isinstance(articles, list):
        raise RowError("articles must be a list.")
    messages: list[ImportedMessage] = []
    for number, article in enumerate(articles, start=1):
        if not isinstance(article, dict):
            raise RowError(f"Article {number} is not a JSON object.")
        sender = _string(article.get("sender")).lower()
        if article.get("internal") is True:
            kind = "note"
        elif sender == "customer":
            kind = "customer"
        elif sender == "system":
            kind = "system"
        else:
            kind = "reply"
        body = article.get("body")
        is_html = _string(article.get("content_type")).lower() == "text/html"
        text, html = _body(None if is_html else body, body if is_html else None)
        author = _string(article.get("from"))
        address = author.rsplit("<", 1)[-1].rstrip(">").strip() if "<" in author else author
        author_name = author.rsplit("<", 1)[0].strip().strip('"') if "<" in author else ""
        try:
            author_email = _email(address) if "@" in address else ""
        except RowError:
            author_email = ""
        if not author_email and kind == "customer":
            author_email = requester_email
        at = _moment(article.get("created_at"), f"article {number} created_at") or created
        messages.append(
            ImportedMessage(
                kind=kind,
                body_text=text,
                body_html=html,
                author_email=author_email,
                author_name=(author_name or (requester_name if kind == "customer" else ""))[:200],
                channel=ZAMMAD_CHANNEL.get(_string(article.get("type")).lower(), channel),
                external_id=_string(article.get("id"), limit=64),
                created_at=at,
            )
        )
    return ImportedTicket(
        position=position,
        external_id=external_id,
        subject=_subject(item.get("title"), messages[0].body_text if messages else ""),
        requester_email=requester_email,
        requester_name=requester_name,
        status_code=status_code,
        priority=_mapped(ZAMMAD_PRIORITY, item.get("priority"), "priority") or "normal",
        channel=channel,
        ticket_type=None,
        tags=_tags(item.get("tags")),
        created_at=created,
        updated_at=updated_at,
        solved_at=solved_at,
        closed_at=closed_at,
        messages=messages,
    )


def _zammad_csv(position: int, row: Mapping[str, Any]) -> ImportedTicket:
    _check_width(row)
    item = {key: value for key, value in row.items() if not key.startswith("__")}
    item["create_article_type"] = row.get("channel")
    item["customer_email"] = row.get("customer")
    body = _string(row.get("body"))
    item["articles"] = (
        [
            {
                "sender": "Customer",
                "body": body,
                "created_at": row.get("created_at"),
                "type": row.get("channel"),
            }
        ]
        if body
        else []
    )
    return _zammad_json(position, item)


def _check_width(row: Mapping[str, Any]) -> None:
    if row["__cells__"] != row["__width__"]:
        raise RowError(f"The row has {row['__cells__']} columns, the header has {row['__width__']}.")


READERS: dict[tuple[str, str], Callable[[int, Any], ImportedTicket]] = {
    ("zendesk", "json"): _zendesk_json,
    ("zendesk", "csv"): _zendesk_csv,
    ("zammad", "json"): _zammad_json,
    ("zammad", "csv"): _zammad_csv,
}


def _items(source: str, file_format: str, text: str) -> Iterator[tuple[int, Any]]:
    if file_format == "json":
        return _json_items(text)
    return _csv_items(text, ZENDESK_CSV_COLUMNS if source == "zendesk" else ZAMMAD_CSV_COLUMNS)


# Writing ----------------------------------------------------------------------------------------------


def _lock_counter() -> None:
    table = SequenceCounter._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (series, last_value) VALUES (%s, 0) ON CONFLICT (series) DO NOTHING",  # noqa: S608
            [TICKET_SERIES],
        )
    SequenceCounter.objects.select_for_update().filter(series=TICKET_SERIES).values_list("pk").first()


def _reserve_numbers(count: int) -> int:
    """Reserve ``count`` consecutive ticket numbers in one statement; returns the first one.

    The same counter row ``sequences.next_value`` uses, incremented by ``count`` in the caller's
    transaction (its row lock serialises imports and ticket creation, and a rollback gives the
    block back, so numbers stay gapless)."""
    table = SequenceCounter._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (series, last_value) VALUES (%s, 0) ON CONFLICT (series) DO NOTHING",  # noqa: S608
            [TICKET_SERIES],
        )
        cursor.execute(
            f"UPDATE {table} SET last_value = last_value + %s WHERE series = %s RETURNING last_value",  # noqa: S608
            [count, TICKET_SERIES],
        )
        row = cursor.fetchone()
    assert row is not None
    return int(row[0]) - count + 1


class _Writer:
    """Caches the lookups one import needs (statuses, types, tags, customers by e-mail)."""

    def __init__(self, *, source: str, actor: Actor | None, import_id: str) -> None:
        self.source = source
        self.actor_id = actor.user_id if actor else None
        self.actor_name = actor.email if actor else ""
        self.import_id = import_id
        self.statuses = {status.code: status for status in TicketStatus.objects.all()}
        self.types = {ticket_type.code: ticket_type.pk for ticket_type in TicketType.objects.all()}
        self.tags: dict[str, int] = {}
        self.customers: dict[str, int | None] = {}

    def existing(self, external_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(external_ids), 5_000):
            found.update(
                Ticket.objects.filter(
                    external_source=self.source, external_id__in=external_ids[start : start + 5_000]
                ).values_list("external_id", flat=True)
            )
        return found

    def load_customers(self, emails: Iterable[str]) -> None:
        """Customer keys for the requesters' addresses: the customers facade's batch lookup (two
        queries per chunk), remembered for the whole import."""
        missing = sorted({email for email in emails if email and email not in self.customers})
        if not missing:
            return
        found = customers_facade.find_customers_by_emails(missing)
        for email in missing:
            summary = found.get(email)
            self.customers[email] = summary.customer_id if summary else None

    def tag_ids(self, names: Iterable[str]) -> None:
        missing = sorted({name for name in names if name not in self.tags})
        if not missing:
            return
        Tag.objects.bulk_create([Tag(name=name) for name in missing], ignore_conflicts=True)
        for start in range(0, len(missing), 5_000):
            self.tags.update(
                Tag.objects.filter(name__in=missing[start : start + 5_000]).values_list("name", "pk")
            )

    def preparer(self) -> Callable[[ImportedTicket], PreparedTicket] | None:
        """What the reading thread does to each ticket before handing it to write()."""
        return None

    def write(self, records: Sequence[_Record], progress: _Progress) -> None:
        batch = [record for record in records if isinstance(record, ImportedTicket)]
        if not batch:
            return
        first = _reserve_numbers(len(batch))
        self.tag_ids(name for record in batch for name in record.tags)
        self.load_customers(record.requester_email for record in batch)
        public_ids = _uuids(len(batch) + sum(len(record.messages) for record in batch))
        rows = [self._ticket(record, first + offset, next(public_ids)) for offset, record in enumerate(batch)]
        ticket_ids = _TICKETS.insert(rows, returning_ids=True)
        messages: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        for record, ticket_id, row in zip(batch, ticket_ids, rows, strict=True):
            for message in record.messages:
                messages.append(
                    {
                        "public_id": next(public_ids),
                        "ticket_id": ticket_id,
                        "kind": message.kind,
                        "channel": message.channel,
                        "author_email": message.author_email,
                        "author_name": message.author_name,
                        "body_text": message.body_text,
                        "body_html": message.body_html,
                        "external_id": message.external_id,
                        "created_at": message.created_at,
                    }
                )
            history.append(
                {
                    "ticket_id": ticket_id,
                    "kind": "imported",
                    "data": json.dumps(
                        {"source": self.source, "external_id": record.external_id, "import": self.import_id}
                    ),
                    "actor_id": self.actor_id,
                    "actor_name": self.actor_name,
                    "created_at": row["updated_at"],
                }
            )
            links.extend({"ticket_id": ticket_id, "tag_id": self.tags[name]} for name in record.tags)
        _MESSAGES.insert(messages)
        _HISTORY.insert(history)
        _TAG_LINKS.insert(links)
        progress.imported += len(batch)
        progress.messages += len(messages)

    def _ticket(self, record: ImportedTicket, number: int, public_id: uuid.UUID) -> dict[str, Any]:
        status = self.statuses[record.status_code]
        customer_messages = [m.created_at for m in record.messages if m.kind == "customer"]
        agent_replies = [m.created_at for m in record.messages if m.kind == "reply"]
        # The same text, in the same order, as tickets.build_search_text.
        parts = [f"T-{number:06d}", record.subject, record.requester_name, record.requester_email]
        parts.extend(m.body_text for m in record.messages if m.kind != "system")
        return {
            "public_id": public_id,
            "number": f"T-{number:06d}",
            "subject": record.subject,
            "customer_id": self.customers.get(record.requester_email),
            "requester_email": record.requester_email,
            "requester_name": record.requester_name,
            "channel": record.channel,
            "ticket_type_id": self.types.get(record.ticket_type or "question"),
            "priority": record.priority,
            "status_id": status.pk,
            "status_kind": status.kind,
            "external_source": self.source,
            "external_id": record.external_id,
            "first_responded_at": min(agent_replies) if agent_replies else None,
            "last_customer_message_at": max(customer_messages) if customer_messages else None,
            "last_agent_message_at": max(agent_replies) if agent_replies else None,
            "solved_at": record.solved_at,
            "closed_at": record.closed_at,
            "message_count": len(record.messages),
            "search_text": " ".join(part for part in parts if part).lower()[:SEARCH_TEXT_LIMIT],
            "created_by_id": self.actor_id,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }


def _uuids(count: int) -> Iterator[uuid.UUID]:
    """Random (version 4) UUIDs from one read of the system's random source."""
    raw = os.urandom(16 * count)
    for offset in range(0, 16 * count, 16):
        yield uuid.UUID(bytes=raw[offset : offset + 16], version=4)


_TICKETS = BulkTable(Ticket)
_MESSAGES = BulkTable(TicketMessage)
_HISTORY = BulkTable(TicketEvent)
_TAG_LINKS = BulkTable(Ticket.tags.through)


# Writing on PostgreSQL: the COPY text of each ticket is built by the reading thread ----------------------
#
# Everything about a ticket that does not depend on the database is turned into COPY text while the file
# is read (in the reading thread), so the writing thread only adds what is known inside the chunk's
# transaction (ticket id, number, customer, tag ids) and hands PostgreSQL whole chunks of text: it waits
# on the database while the next chunk is being built. Text fields are escaped for COPY's text format;
# NUL cannot be stored in PostgreSQL text, so a ticket holding one is refused by name.

_ID = "\x00"  # where the ticket id goes in a ticket's message and history rows (NUL never reaches here)
_TICKET_COLUMNS = (
    "id",
    "number",
    "customer_id",
    "search_text",
    "subject",
    "requester_email",
    "requester_name",
    "external_id",
    "public_id",
    "channel",
    "ticket_type_id",
    "priority",
    "status_id",
    "status_kind",
    "first_responded_at",
    "last_customer_message_at",
    "last_agent_message_at",
    "solved_at",
    "closed_at",
    "message_count",
    "created_at",
    "updated_at",
    "external_source",
    "created_by_id",
)
_MESSAGE_COLUMNS = (
    "ticket_id",
    "public_id",
    "kind",
    "channel",
    "created_at",
    "author_email",
    "author_name",
    "body_text",
    "body_html",
    "external_id",
)
_HISTORY_COLUMNS = ("ticket_id", "created_at", "data", "kind", "actor_id", "actor_name")
_NUMBER_SPACE = 16  # Ticket.number's max_length: room left in search_text for "t-000123 "


@dataclass(slots=True)
class PreparedTicket:
    """A ticket as COPY text, less what the writer fills in (see _CopyWriter.write)."""

    position: int
    external_id: str
    requester_email: str
    tags: list[str]
    message_count: int
    search_suffix: bytes  # escaped " rest of the search text", when it cannot need truncating
    search_rest: str | None  # the raw rest when it might (the writer truncates, then escapes)
    ticket_tail: bytes  # the columns after search_text, escaped, ending with a newline
    message_rows: bytes  # one row per message, _ID in place of the ticket id
    history_row: bytes


def _copy_text(values: Sequence[str]) -> str:
    """Text fields as one tab-separated piece of a COPY text row (backslash, tab, newline, carriage
    return escaped)."""
    raw = "\x00".join(values)
    if raw.count("\x00") != len(values) - 1:
        raise RowError("The ticket contains a NUL character, which cannot be stored.")
    return (
        raw.replace("\\", "\\\\")
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\x00", "\t")
    )


def _copy_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return _copy_escape(json.dumps(value))
    return _copy_escape(str(value))


def _defaults(model: type[Any], given: Sequence[str]) -> tuple[list[str], str]:
    """The columns of ``model`` not in ``given`` (primary key aside) and the COPY text of their
    defaults, starting with a tab."""
    rest = [f for f in model._meta.concrete_fields if not f.primary_key and f.attname not in given]
    return [str(f.column) for f in rest], "".join("\t" + _copy_value(f.get_default()) for f in rest)


_UUID_VERSION = bytes((byte & 0x0F) | 0x40 for byte in range(256))
_UUID_VARIANT = bytes((byte & 0x3F) | 0x80 for byte in range(256))


def _uuid_texts(count: int) -> Iterator[str]:
    """Random (version 4) UUIDs as 32 hex digits (PostgreSQL reads them without dashes), from one read
    of the system's random source."""
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = raw[6::16].translate(_UUID_VERSION)
    raw[8::16] = raw[8::16].translate(_UUID_VARIANT)
    digits = raw.hex()
    return (digits[offset : offset + 32] for offset in range(0, 32 * count, 32))


class _UuidTexts:
    """An endless supply of _uuid_texts, drawn 4,096 at a time."""

    def __init__(self) -> None:
        self.supply: Iterator[str] = iter(())

    def __next__(self) -> str:
        try:
            return next(self.supply)
        except StopIteration:
            self.supply = _uuid_texts(4_096)
            return next(self.supply)


def _moment_text(moment: datetime | None) -> str:
    return "\\N" if moment is None else moment.isoformat()


class _Preparer:
    """Turns parsed tickets into PreparedTicket: pure Python, run by the reading thread."""

    def __init__(
        self,
        *,
        source: str,
        actor_id: int | None,
        actor_name: str,
        import_id: str,
        statuses: Mapping[str, TicketStatus],
        types: Mapping[str, int],
    ) -> None:
        self.statuses = {code: (str(status.pk), status.kind) for code, status in statuses.items()}
        self.types = {code: str(pk) for code, pk in types.items()}
        _, message_defaults = _defaults(TicketMessage, _MESSAGE_COLUMNS)
        _, ticket_defaults = _defaults(Ticket, _TICKET_COLUMNS)
        _, history_defaults = _defaults(TicketEvent, _HISTORY_COLUMNS)
        self.message_end = message_defaults + "\n"
        self.ticket_end = f"{_copy_escape(source)}\t{_copy_value(actor_id)}{ticket_defaults}\n"
        self.history_end = (
            f"imported\t{_copy_value(actor_id)}\t{_copy_escape(actor_name)}{history_defaults}\n"
        )
        # The history row's data, as json.dumps writes {"source": ..., "external_id": ..., "import": ...}.
        self.data_head = '{"source": ' + json.dumps(source) + ', "external_id": '
        self.data_end = ', "import": ' + json.dumps(import_id) + "}"
        self.public_ids = _UuidTexts()

    def __call__(self, record: ImportedTicket) -> PreparedTicket:
        messages = record.messages
        public_id = self.public_ids
        customer_last: datetime | None = None
        reply_first: datetime | None = None
        reply_last: datetime | None = None
        # The same text, in the same order, as tickets.build_search_text (the number goes first).
        search = [record.subject, record.requester_name, record.requester_email]
        rows: list[str] = []
        for message in messages:
            kind = message.kind
            at = message.created_at
            if kind == "customer":
                if customer_last is None or at > customer_last:
                    customer_last = at
            elif kind == "reply":
                if reply_first is None or at < reply_first:
                    reply_first = at
                if reply_last is None or at > reply_last:
                    reply_last = at
            if kind != "system":
                search.append(message.body_text)
            text = _copy_text(
                (
                    message.author_email,
                    message.author_name,
                    message.body_text,
                    message.body_html,
                    message.external_id,
                )
            )
            rows.append(
                f"{_ID}\t{next(public_id)}\t{kind}\t{message.channel}\t{at.isoformat()}\t{text}{self.message_end}"
            )
        rest = " ".join(part for part in search if part).lower()
        search_suffix, search_rest = "", None
        if len(rest) + 1 + _NUMBER_SPACE > SEARCH_TEXT_LIMIT:
            search_rest = rest
        elif rest:
            search_suffix = _copy_escape(" " + rest)
        status_id, status_kind = self.statuses[record.status_code]
        text = _copy_text((record.subject, record.requester_email, record.requester_name, record.external_id))
        ticket_type = self.types.get(record.ticket_type or "question", "\\N")
        tail = (
            f"{text}\t{next(public_id)}\t{record.channel}\t{ticket_type}\t{record.priority}\t{status_id}\t"
            f"{status_kind}\t{_moment_text(reply_first)}\t{_moment_text(customer_last)}\t"
            f"{_moment_text(reply_last)}\t{_moment_text(record.solved_at)}\t{_moment_text(record.closed_at)}\t"
            f"{len(messages)}\t{record.created_at.isoformat()}\t{record.updated_at.isoformat()}\t"
            f"{self.ticket_end}"
        )
        data = self.data_head + json.dumps(record.external_id) + self.data_end
        history = f"{_ID}\t{record.updated_at.isoformat()}\t{_copy_escape(data)}\t{self.history_end}"
        try:
            return PreparedTicket(
                position=record.position,
                external_id=record.external_id,
                requester_email=record.requester_email,
                tags=record.tags,
                message_count=len(messages),
                search_suffix=search_suffix.encode(),
                search_rest=search_rest,
                ticket_tail=tail.encode(),
                message_rows="".join(rows).encode(),
                history_row=history.encode(),
            )
        except UnicodeEncodeError as error:
            raise RowError(
                "The ticket contains text that is not valid Unicode (a lone surrogate)."
            ) from error


class _CopyWriter(_Writer):
    """PostgreSQL: writes prepared tickets with four COPY statements per chunk."""

    def existing(self, external_ids: Sequence[str]) -> set[str]:
        # One array parameter instead of thousands, and the unique index's own condition spelled out
        # so the planner probes that index even before the growing table has statistics.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT external_id FROM {Ticket._meta.db_table} WHERE external_source = %s "  # noqa: S608
                "AND external_id = ANY(%s) AND NOT external_id = ''",
                [self.source, list(external_ids)],
            )
            return {row[0] for row in cursor.fetchall()}

    def preparer(self) -> Callable[[ImportedTicket], PreparedTicket] | None:
        return _Preparer(
            source=self.source,
            actor_id=self.actor_id,
            actor_name=self.actor_name,
            import_id=self.import_id,
            statuses=self.statuses,
            types=self.types,
        )

    def write(self, records: Sequence[_Record], progress: _Progress) -> None:
        batch = [record for record in records if isinstance(record, PreparedTicket)]
        if not batch:
            return
        first = _reserve_numbers(len(batch))
        self.tag_ids(name for record in batch for name in record.tags)
        self.load_customers(record.requester_email for record in batch)
        customers = {
            email: "\\N" if customer_id is None else str(customer_id)
            for email, customer_id in self.customers.items()
        }
        tags = {name: str(tag_id) for name, tag_id in self.tags.items()}
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [Ticket._meta.db_table, len(batch)],
            )
            ticket_ids = [str(row[0]) for row in cursor.fetchall()]
        tickets: list[bytes] = []
        messages: list[bytes] = []
        history: list[bytes] = []
        links: list[str] = []
        message_count = 0
        placeholder = _ID.encode()
        for offset, (record, ticket_id) in enumerate(zip(batch, ticket_ids, strict=True)):
            number = f"T-{first + offset:06d}"
            customer = customers.get(record.requester_email, "\\N")
            if record.search_rest is None:
                head = f"{ticket_id}\t{number}\t{customer}\tt{number[1:]}"
                tickets.append(b"%b%b\t%b" % (head.encode(), record.search_suffix, record.ticket_tail))
            else:
                search = _copy_escape(("t" + number[1:] + " " + record.search_rest)[:SEARCH_TEXT_LIMIT])
                head = f"{ticket_id}\t{number}\t{customer}\t{search}\t"
                tickets.append(head.encode() + record.ticket_tail)
            ticket_id_bytes = ticket_id.encode()
            messages.append(record.message_rows.replace(placeholder, ticket_id_bytes))
            history.append(record.history_row.replace(placeholder, ticket_id_bytes))
            links.extend(f"{ticket_id}\t{tags[name]}\n" for name in record.tags)
            message_count += record.message_count
        _copy(Ticket, _TICKET_COLUMNS, tickets, batch, lambda record: 1)
        _copy(TicketMessage, _MESSAGE_COLUMNS, messages, batch, lambda record: record.message_count)
        _copy(TicketEvent, _HISTORY_COLUMNS, history, batch, lambda record: 1)
        _copy(
            Ticket.tags.through,
            ("ticket_id", "tag_id"),
            ["".join(links).encode()],
            batch,
            lambda record: len(record.tags),
        )
        progress.imported += len(batch)
        progress.messages += message_count


def _copy(
    model: type[Any],
    given: Sequence[str],
    rows: list[bytes],
    batch: Sequence[PreparedTicket],
    lines: Callable[[PreparedTicket], int],
) -> None:
    """One COPY of rows whose text is ready: the given columns, then every other one with its default
    (the order _defaults gives). ``lines`` tells how many rows each ticket of ``batch`` has here, to
    name the ticket PostgreSQL refused."""
    data = b"".join(rows)
    if not data:
        return
    columns, _ = _defaults(model, given)
    names = ", ".join([*given, *columns])
    try:
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {model._meta.db_table} ({names}) FROM STDIN") as copy,
        ):
            copy.write(data)
    except psycopg.Error as error:
        refused = _refused_ticket(error, batch, lines)
        if refused is None:
            raise
        message = error.diag.message_primary or str(error)
        raise ValidationFailed(
            f"The ticket {refused.external_id} (ticket {refused.position} of the file) could not be "
            f"stored: {message}. Nothing of its chunk was saved.",
            code="ticket_not_stored",
            fields={"file": f"ticket {refused.position}: {message}"},
        ) from error


def _refused_ticket(
    error: psycopg.Error, batch: Sequence[PreparedTicket], lines: Callable[[PreparedTicket], int]
) -> PreparedTicket | None:
    """The ticket whose row PostgreSQL names in the error's context ("COPY table, line N ...")."""
    found = re.search(r"\bline (\d+)", error.diag.context or "")
    if found is None:
        return None
    line = int(found.group(1))
    for record in batch:
        line -= lines(record)
        if line <= 0:
            return record
    return None


_Record = ImportedTicket | PreparedTicket


# Entry points -----------------------------------------------------------------------------------------


def max_upload_bytes() -> int:
    return int(getattr(settings, "FEDELE_SUPPORT_IMPORT_MAX_BYTES", MAX_BYTES))


def bad_ticket_count(row: TicketImport) -> int:
    """How many tickets of the file were refused (all of them count when an all-or-none import failed
    only for the bad ones it names)."""
    if row.status == TicketImport.Status.DONE:
        return row.total - row.imported - row.skipped
    return sum(int(error.get("more", 1)) for error in row.errors)


def _check_arguments(actor: Actor | None, source: str, file_format: str, mode: str) -> None:
    if actor is not None and not actor.can(PERMISSION):
        raise PermissionDenied("You may not import tickets.", code="permission_denied")
    problems: dict[str, str] = {}
    if source not in SOURCES:
        problems["source"] = "must be zendesk or zammad."
    if file_format not in FORMATS:
        problems["format"] = "must be csv or json."
    if mode not in MODES:
        problems["mode"] = "must be all_or_none or good_rows."
    if problems:
        raise ValidationFailed("The import settings are not valid.", code="invalid_import", fields=problems)


def ticket_import(
    *, actor: Actor | None, source: str, file_format: str, data: bytes, mode: str
) -> TicketImport:
    """Import one uploaded export (at most 50 MB and 200,000 tickets). Raises ValidationFailed for a
    file that cannot be read at all (nothing is written); bad tickets are reported on the returned
    TicketImport (``errors``: line/index and message)."""
    _check_arguments(actor, source, file_format, mode)
    if len(data) > max_upload_bytes():
        raise ValidationFailed(
            "The file is larger than 50 MB: split it, or use the support_import command.",
            code="file_too_large",
            fields={"file": "larger than 50 MB."},
        )
    items = list(_items(source, file_format, _text(data)))
    if not items:
        raise ValidationFailed(
            "The file holds no tickets.", code="empty_file", fields={"file": "no tickets."}
        )
    if len(items) > MAX_ROWS:
        raise ValidationFailed(
            f"The file holds {len(items):,} tickets; the limit per upload is {MAX_ROWS:,}. "
            "Split it, or use the support_import command.",
            code="too_many_rows",
            fields={"file": f"more than {MAX_ROWS} tickets."},
        )
    return ticket_import_items(actor=actor, source=source, file_format=file_format, items=items, mode=mode)


def ticket_import_stream(
    *,
    actor: Actor | None,
    source: str,
    file_format: str,
    stream: IO[bytes],
    mode: str,
    progress: Callable[[int], None] | None = None,
) -> TicketImport:
    """No size limit (the management command): newline-delimited JSON is read line by line; a JSON
    array or a CSV file is read whole and written in chunks."""
    _check_arguments(actor, source, file_format, mode)
    head = stream.read(1)
    while head in (b" ", b"\n", b"\r", b"\t", b"\xef", b"\xbb", b"\xbf"):
        head = stream.read(1)
    items: Iterable[tuple[int, Any]]
    if file_format == "json" and head == b"{":
        # A JSON object first: either one object per line (NDJSON) or {"tickets": [...]} on many lines.
        rest = stream.read()
        first_line = (head + rest.split(b"\n", 1)[0]).strip()
        try:
            json.loads(first_line)
            items = _ndjson_items((head + rest).splitlines())
        except json.JSONDecodeError:
            items = _json_items(_text(head + rest))
    else:
        items = _items(source, file_format, _text(head + stream.read()))
    return ticket_import_items(
        actor=actor, source=source, file_format=file_format, items=items, mode=mode, progress=progress
    )


def ticket_import_items(
    *,
    actor: Actor | None,
    source: str,
    file_format: str,
    items: Iterable[tuple[int, Any]],
    mode: str,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = 5_000,
) -> TicketImport:
    _check_arguments(actor, source, file_format, mode)
    reader = READERS[(source, file_format)]
    started = clock.now()
    import_id = uuid.uuid4()
    state = _Progress()
    writer_class = _CopyWriter if connection.vendor == "postgresql" else _Writer
    writer = writer_class(source=source, actor=actor, import_id=str(import_id))
    # all_or_none: one transaction for the whole file. good_rows: one per chunk, so a long import
    # does not hold the ticket-number lock (and block new tickets) from start to end.
    whole_file: AbstractContextManager[Any] = transaction.atomic() if mode == "all_or_none" else nullcontext()
    # A small first chunk: the database starts writing while the rest of the first chunk is read.
    first_chunk = min(chunk_size, 1_000)
    try:
        with whole_file:
            writing = True
            chunk: list[_Record] = []
            for position, record in _read_ahead(reader, items, writer.preparer()):
                state.total += 1
                try:
                    if isinstance(record, str):
                        raise RowError(record)
                    first = state.seen_ids.setdefault(record.external_id, position)
                    if first != position:
                        raise RowError(
                            f"The ticket id {record.external_id} appears twice (first at {first})."
                        )
                except (RowError, ValidationFailed) as error:
                    state.error(position, error.message)
                    writing = writing and mode != "all_or_none"
                    continue
                if writing:
                    chunk.append(record)
                if len(chunk) >= (chunk_size if state.imported or state.skipped else first_chunk):
                    _flush(writer, chunk, state)
                    chunk = []
                if progress is not None and state.total % 1_000 == 0:
                    progress(state.total)
            if writing:
                _flush(writer, chunk, state)
            if progress is not None and state.total % 1_000:
                progress(state.total)
            if state.total == 0:
                raise ValidationFailed(
                    "The file holds no tickets.", code="empty_file", fields={"file": "no tickets."}
                )
            if mode == "all_or_none" and state.error_count:
                raise _Rollback
            with transaction.atomic():
                return _finish(
                    actor, source, file_format, mode, import_id, started, state, TicketImport.Status.DONE
                )
    except _Rollback:
        state.imported = state.skipped = state.messages = 0
        with transaction.atomic():
            return _finish(
                actor, source, file_format, mode, import_id, started, state, TicketImport.Status.FAILED
            )


_PARSED_BATCH = 1_000
_END = object()


def _parse(
    reader: Callable[[int, Any], ImportedTicket],
    items: Iterable[tuple[int, Any]],
    prepare: Callable[[ImportedTicket], PreparedTicket] | None = None,
) -> Iterator[list[tuple[int, _Record | str]]]:
    """Batches of (position, ticket or the message of its error); tickets turned into COPY text when
    the writer wants them so."""
    batch: list[tuple[int, _Record | str]] = []
    for position, item in items:
        try:
            record = reader(position, item)
            batch.append((position, record if prepare is None else prepare(record)))
        except (RowError, ValidationFailed) as error:
            batch.append((position, error.message))
        if len(batch) >= _PARSED_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _read_ahead(
    reader: Callable[[int, Any], ImportedTicket],
    items: Iterable[tuple[int, Any]],
    prepare: Callable[[ImportedTicket], PreparedTicket] | None = None,
) -> Iterator[tuple[int, _Record | str]]:
    """Parse and validate beside the writer. When the rows are turned into COPY text (PostgreSQL) and
    the machine has more than one core, that happens in a forked process (``_read_in_process``): the
    writer and the database then run at the same time as the parsing, on another core, instead of
    taking turns with it for the interpreter lock. Otherwise a thread does it (``_read_in_thread``)."""
    if prepare is not None and _process_reader_wanted(items):
        return _read_in_process(reader, items, prepare)
    return _read_in_thread(reader, items, prepare)


# Below this many rows (when the count is known) a process is not worth its start (a fork of a large
# process takes some milliseconds, and a small file is parsed in less).
_PROCESS_READER_MIN_ROWS = 2_000


def _process_reader_wanted(items: Iterable[tuple[int, Any]]) -> bool:
    if not getattr(settings, "FEDELE_SUPPORT_IMPORT_READER_PROCESS", True):
        return False
    if (os.cpu_count() or 1) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return False
    return not (isinstance(items, Sized) and len(items) < _PROCESS_READER_MIN_ROWS)


def _read_in_thread(
    reader: Callable[[int, Any], ImportedTicket],
    items: Iterable[tuple[int, Any]],
    prepare: Callable[[ImportedTicket], PreparedTicket] | None = None,
) -> Iterator[tuple[int, _Record | str]]:
    """Parse and validate in a thread (pure Python, no database) while this one writes: the thread
    runs while the writer waits for PostgreSQL to take a COPY or a commit, so reading the file and
    indexing the rows overlap. An error reading the file itself is raised here, in the caller."""
    parsed: queue.Queue[Any] = queue.Queue(maxsize=20)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in _parse(reader, items, prepare):
                while not stop.is_set():
                    try:
                        parsed.put(batch, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            parsed.put(_END)
        except BaseException as error:  # handed to the consumer, which raises it
            parsed.put(error)

    thread = threading.Thread(target=produce, name="ticket-import-reader", daemon=True)
    _quick_switches(True)
    try:
        thread.start()
        while True:
            batch = parsed.get()
            if batch is _END:
                return
            if isinstance(batch, BaseException):
                raise batch
            yield from batch
    finally:
        stop.set()
        while thread.is_alive():
            try:
                parsed.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.1)
        _quick_switches(False)


# What the reading process sends: batches of (position, fields of a PreparedTicket or an error message),
# then one of these markers. Plain tuples pickle and unpickle several times faster than the dataclass.
_PROCESS_DONE = "done"
_PROCESS_REFUSED = "refused"  # the file itself cannot be read: ValidationFailed's message, code, fields
_PROCESS_CRASHED = "crashed"  # anything else: its traceback
_PROCESS_READ_AHEAD = 24  # batches of _PARSED_BATCH rows the reader may be ahead of the writer


def _read_in_process(
    reader: Callable[[int, Any], ImportedTicket],
    items: Iterable[tuple[int, Any]],
    prepare: Callable[[ImportedTicket], PreparedTicket],
) -> Iterator[tuple[int, _Record | str]]:
    """Parse, validate and build the COPY text in a forked child process. The child inherits the
    file's text, the reader and the preparer as they are (a fork copies memory, nothing is pickled on
    the way in) and never touches the database; it ends with os._exit (multiprocessing's fork start),
    so no finaliser of the parent's objects, the database connection among them, runs there. Batches
    come back through a multiprocessing queue, whose feeding thread lets the child keep parsing while
    the writer is busy. If the writer stops early (an error), the child is terminated."""
    context = multiprocessing.get_context("fork")
    parsed: Any = context.Queue(maxsize=_PROCESS_READ_AHEAD)
    child = context.Process(
        target=_produce_in_process,
        args=(parsed, reader, items, prepare),
        name="ticket-import-reader",
        daemon=True,
    )
    child.start()
    try:
        while True:
            try:
                message = parsed.get(timeout=1.0)
            except queue.Empty:
                if not child.is_alive():
                    raise RuntimeError(
                        f"The import's reading process ended without an answer (exit code {child.exitcode})."
                    ) from None
                continue
            if isinstance(message, list):
                for position, entry in message:
                    yield position, entry if isinstance(entry, str) else PreparedTicket(*entry)
                continue
            kind, *details = message
            if kind == _PROCESS_DONE:
                return
            if kind == _PROCESS_REFUSED:
                text, code, fields = details
                raise ValidationFailed(text, code=code, fields=fields)
            raise RuntimeError(f"The import's reading process failed:\n{details[0]}")
    finally:
        if child.is_alive():
            child.terminate()
            child.join(timeout=5)
        if child.is_alive():  # SIGTERM not obeyed in time: end it for sure
            child.kill()
        child.join(timeout=10)
        parsed.close()
        parsed.cancel_join_thread()


def _produce_in_process(
    parsed: Any,
    reader: Callable[[int, Any], ImportedTicket],
    items: Iterable[tuple[int, Any]],
    prepare: Callable[[ImportedTicket], PreparedTicket],
) -> None:
    """The reading process's body (see _read_in_process)."""
    # The fork copies the parent's signal handlers (a server's or a test runner's SIGTERM handler may
    # not exit): the reader must die when the writer terminates it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        for batch in _parse(reader, items, prepare):
            parsed.put(
                [
                    (position, entry if isinstance(entry, str) else _prepared_fields(entry))
                    for position, entry in batch
                ]
            )
        parsed.put((_PROCESS_DONE,))
    except ValidationFailed as error:
        parsed.put((_PROCESS_REFUSED, error.message, error.code, error.fields))
    except BaseException:
        parsed.put((_PROCESS_CRASHED, traceback.format_exc()))
    finally:
        parsed.close()
        parsed.join_thread()  # everything handed over before the process exits


def _prepared_fields(record: _Record) -> tuple[Any, ...]:
    assert isinstance(record, PreparedTicket)
    return (
        record.position,
        record.external_id,
        record.requester_email,
        record.tags,
        record.message_count,
        record.search_suffix,
        record.search_rest,
        record.ticket_tail,
        record.message_rows,
        record.history_row,
    )


# The writer waits on PostgreSQL hundreds of times per import (a COPY is sent as fast as the server
# takes it in, a few hundred kilobytes at a time) and each time it wakes it needs the GIL back from the
# reading thread, which by default keeps it for up to 5 ms: the server then sits idle. A 0.5 ms switch
# interval while a reading thread runs (the interpreter's setting: restored when the last import in the
# process ends) took the benchmark import from 53 s to 36 s on a busy machine.
_SWITCH_INTERVAL = 0.000_5


class _SwitchInterval:
    """Counts the imports running with quick switches; the interpreter's own interval comes back when
    the last one ends."""

    lock = threading.Lock()
    users = 0
    saved = 0.005


def _quick_switches(on: bool) -> None:
    with _SwitchInterval.lock:
        if on:
            if _SwitchInterval.users == 0:
                _SwitchInterval.saved = sys.getswitchinterval()
                sys.setswitchinterval(min(_SWITCH_INTERVAL, _SwitchInterval.saved))
            _SwitchInterval.users += 1
        else:
            _SwitchInterval.users -= 1
            if _SwitchInterval.users == 0:
                sys.setswitchinterval(_SwitchInterval.saved)


# Durability of the chunks of a good_rows import on PostgreSQL (measured 2026-12-08: a chunk's commit
# waited 19-36 ms for its ~24 MB of WAL to reach the disk, against 0.4-6 ms without the wait; 21 chunks
# per 100,000 tickets). Each chunk's own transaction is committed with synchronous_commit = off, which is
# safe here because:
# - only a crash of PostgreSQL itself (not of the importer) can lose such a commit, and only one made in
#   the last few hundred milliseconds before the crash; the whole transaction is lost then, atomically:
#   tickets, messages, tag links, history and the ticket-number block together, so numbering stays
#   gapless and nothing half-written remains;
# - the import is idempotent and resumable: running the same file again skips the tickets already stored
#   (same source and external id) and stores the rest, lost chunks included;
# - the import's last transaction (its TicketImport row, audit row and event) is committed
#   synchronously, and a synchronous commit flushes all the WAL written before it: once the import
#   reports "done", every chunk is on disk. The same holds for any other synchronous commit made after a
#   chunk (a ticket created next, numbered after the chunk's block), so nothing that depends on a chunk
#   can outlive it.
# An all_or_none import (one transaction for the whole file) and an import run inside the caller's own
# transaction are not touched: their chunks are savepoints, and SET LOCAL would reach the caller's commit.
_CHUNK_DURABILITY = "SET LOCAL synchronous_commit = off"


def _flush(writer: _Writer, chunk: list[_Record], state: _Progress) -> None:
    if not chunk:
        return
    own_transaction = not connection.in_atomic_block
    with transaction.atomic():
        if own_transaction and isinstance(writer, _CopyWriter):
            with connection.cursor() as cursor:
                cursor.execute(_CHUNK_DURABILITY)
        # Lock the ticket-number counter first: a concurrent import of the same file waits here and
        # then sees this one's tickets as existing (skipped) instead of failing on the unique key.
        _lock_counter()
        existing = writer.existing([record.external_id for record in chunk])
        fresh = [record for record in chunk if record.external_id not in existing]
        state.skipped += len(chunk) - len(fresh)
        writer.write(fresh, state)


def _finish(
    actor: Actor | None,
    source: str,
    file_format: str,
    mode: str,
    import_id: uuid.UUID,
    started: datetime,
    state: _Progress,
    status: str,
) -> TicketImport:
    errors = list(state.errors)
    if state.error_count > len(errors):
        more = state.error_count - len(errors)
        errors.append({"line": 0, "message": f"... and {more} more bad tickets.", "more": more})
    imported = TicketImport.objects.create(
        public_id=import_id,
        source=source,
        file_format=file_format,
        mode=mode,
        status=status,
        total=state.total,
        imported=state.imported,
        skipped=state.skipped,
        messages_imported=state.messages,
        errors=errors,
        created_by_id=actor.user_id if actor else None,
        created_at=started,
        finished_at=clock.now(),
    )
    if status == TicketImport.Status.DONE:
        audit.record(
            action="support.tickets_imported",
            object_type="support.ticketimport",
            object_id=str(import_id),
            after={
                "source": source,
                "format": file_format,
                "mode": mode,
                "total": state.total,
                "imported": state.imported,
                "skipped": state.skipped,
                "messages": state.messages,
                "errors": state.error_count,
            },
            actor_id=actor.user_id if actor else None,
        )
        events.publish(
            TicketsImported(
                import_id=str(import_id),
                source=source,
                imported=state.imported,
                skipped=state.skipped,
                messages_imported=state.messages,
            ),
            aggregate_type="support.ticketimport",
            aggregate_id=str(import_id),
        )
    return imported

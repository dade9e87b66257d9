"""The import's reading process (PostgreSQL, more than one core): a forked child parses the file and
builds the COPY text while the writer and the database work. It must store exactly what the reading
thread stores, refuse an unreadable file the same way, and never outlive an import that stopped."""

from __future__ import annotations

import io
import json
import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fedele.customers.tests.factories import CustomerFactory
from fedele.shared import sequences
from fedele.shared.errors import ValidationFailed
from fedele.support.models import Tag, Ticket, TicketImport, TicketMessage
from fedele.support.services import imports
from fedele.support.tests.test_import_copy import _awkward_tickets, _import_then_undo

FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def readers(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts which reader each import used."""
    used = {"process": 0, "thread": 0}
    in_process, in_thread = imports._read_in_process, imports._read_in_thread

    def process(*args: Any) -> Any:
        used["process"] += 1
        return in_process(*args)

    def thread(*args: Any) -> Any:
        used["thread"] += 1
        return in_thread(*args)

    monkeypatch.setattr(imports, "_read_in_process", process)
    monkeypatch.setattr(imports, "_read_in_thread", thread)
    return used


@pytest.mark.parametrize(
    ("source", "data"),
    [
        ("zendesk", (FIXTURES / "zendesk_tickets.json").read_bytes()),
        ("zammad", (FIXTURES / "zammad_tickets.json").read_bytes()),
        ("zendesk", _awkward_tickets()),
    ],
    ids=["zendesk", "zammad", "awkward"],
)
def test_the_reading_process_stores_exactly_what_the_reading_thread_stores(
    source: str, data: bytes, readers: dict[str, int], monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    CustomerFactory(email="giulia.bianchi@example.it")
    sequences.next_value("support.ticket")
    Tag.objects.create(name="due")

    monkeypatch.setattr(imports, "_PROCESS_READER_MIN_ROWS", 0)  # these files are small
    by_process = _import_then_undo(source, data)
    assert readers == {"process": 1, "thread": 0}

    settings.FEDELE_SUPPORT_IMPORT_READER_PROCESS = False
    by_thread = _import_then_undo(source, data)
    assert readers == {"process": 1, "thread": 1}

    assert by_process == by_thread
    assert by_process["tickets"]
    assert multiprocessing.active_children() == []


def _lines(count: int, *, broken_at: int | None = None) -> bytes:
    rows = []
    for n in range(1, count + 1):
        if n == broken_at:
            rows.append('{"id": 1, "subject": ')
            continue
        rows.append(
            json.dumps(
                {
                    "id": n,
                    "subject": f"Richiesta {n}",
                    "status": "open",
                    "created_at": "2026-02-28T23:30:00+01:00",
                    "comments": [{"id": n, "body": f"Testo {n}", "created_at": "2026-02-28T23:30:00+01:00"}],
                }
            )
        )
    return "\n".join(rows).encode()


def test_a_streamed_file_is_read_by_the_process_and_numbered_in_order(readers: dict[str, int]) -> None:
    result = imports.ticket_import_stream(
        actor=None, source="zendesk", file_format="json", stream=io.BytesIO(_lines(2_500)), mode="good_rows"
    )

    assert readers == {"process": 1, "thread": 0}
    assert (result.status, result.total, result.imported, result.messages_imported) == (
        "done",
        2_500,
        2_500,
        2_500,
    )
    first, last = Ticket.objects.order_by("number").first(), Ticket.objects.order_by("number").last()
    assert first is not None and last is not None
    assert (first.number, first.external_id, first.subject) == ("T-000001", "1", "Richiesta 1")
    assert (last.number, last.external_id, last.subject) == ("T-002500", "2500", "Richiesta 2500")
    assert TicketMessage.objects.count() == 2_500
    assert multiprocessing.active_children() == []


def test_a_line_the_process_cannot_read_refuses_the_file_as_the_thread_does(
    readers: dict[str, int], settings: Any
) -> None:
    data = _lines(30, broken_at=17)
    refusals = []
    for use_process in (True, False):
        settings.FEDELE_SUPPORT_IMPORT_READER_PROCESS = use_process
        with pytest.raises(ValidationFailed) as refused:
            imports.ticket_import_stream(
                actor=None, source="zendesk", file_format="json", stream=io.BytesIO(data), mode="all_or_none"
            )
        refusals.append((refused.value.code, refused.value.message, refused.value.fields))

    assert readers == {"process": 1, "thread": 1}
    assert refusals[0] == refusals[1]
    assert refusals[0][0] == "invalid_json"
    assert refusals[0][2] == {"file": ["line 17: Expecting value"]}
    assert Ticket.objects.count() == 0
    assert TicketImport.objects.count() == 0
    assert multiprocessing.active_children() == []


def test_a_writer_that_fails_stops_the_reading_process(
    readers: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_write(self: Any, records: Any, progress: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(imports._CopyWriter, "write", failing_write)

    def endless() -> Iterator[tuple[int, Any]]:
        n = 0
        while True:  # the reader would never end on its own
            n += 1
            yield n, {"id": n, "subject": "x", "status": "open", "created_at": "2026-01-01T00:00:00Z"}

    with pytest.raises(RuntimeError, match="disk full"):
        imports.ticket_import_items(
            actor=None, source="zendesk", file_format="json", items=endless(), mode="good_rows"
        )

    assert readers == {"process": 1, "thread": 0}
    assert multiprocessing.active_children() == []
    assert Ticket.objects.count() == 0

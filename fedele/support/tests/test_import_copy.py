"""The PostgreSQL import path (COPY text built while the file is read) stores exactly what the ORM path
stores, escapes every awkward character, and refuses what PostgreSQL cannot hold by naming the ticket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from fedele.customers.tests.factories import CustomerFactory
from fedele.shared import sequences
from fedele.shared.errors import ValidationFailed
from fedele.support.models import Tag, Ticket, TicketEvent, TicketMessage
from fedele.support.services import imports
from fedele.support.services.imports import ticket_import

FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

AWKWARD = "Tab\there, new\nline, return\r, back\\slash \\N \\. «àèìòù» 😀 'quote' \"double\""


def _awkward_tickets() -> bytes:
    tickets: list[dict[str, Any]] = [
        {
            "id": "ext\\1\t2",
            "subject": AWKWARD,
            "status": "open",
            "priority": "high",
            "type": "incident",
            "via": {"channel": "web"},
            "tags": ["Prova Uno", "due"],
            "created_at": "2026-03-01T09:00:00+01:00",
            "updated_at": "2026-03-02T10:00:00Z",
            "requester": {"email": "Giulia.Bianchi@Example.it", "name": "Giulia\tBianchi\\"},
            "requester_id": 7,
            "comments": [
                {
                    "id": 1,
                    "author_id": 7,
                    "body": AWKWARD,
                    "html_body": "<p>Ciao\\n<b>bold</b>\t</p><script>x()</script>",
                    "created_at": "2026-03-01T09:00:00+01:00",
                },
                {
                    "id": 2,
                    "author_id": 99,
                    "author": {"email": "agente@example.it", "name": "Agente"},
                    "body": "Risposta\r\ncon CRLF",
                    "created_at": "2026-03-01T12:00:00Z",
                },
                {
                    "id": 3,
                    "author_id": 99,
                    "body": "Prima risposta",
                    "created_at": "2026-03-01T10:00:00Z",
                },
                {"id": 4, "author_id": 99, "public": False, "body": "Nota interna", "created_at": None},
            ],
        },
        {
            # A search text longer than the limit: the writer cuts it after adding the number.
            "id": 2,
            "subject": "Lungo",
            "status": "solved",
            "created_at": "2026-03-03T08:00:00Z",
            "requester_email": "cliente@example.it",
            "comments": [{"id": 5, "body": "parola\\ " * 3_000, "created_at": "2026-03-03T08:00:00Z"}],
        },
        {
            "id": 3,
            "subject": "Nessun richiedente",
            "status": "closed",
            "type": "task",
            "created_at": "2026-03-04T08:00:00Z",
            "updated_at": "2026-03-05T08:00:00Z",
            "comments": [],
        },
    ]
    return "\n".join(json.dumps(ticket) for ticket in tickets).encode()


def _stored() -> dict[str, Any]:
    """Everything the import wrote, without the keys that differ between runs (ids, public ids, the
    import's own id)."""
    tickets = {ticket.pk: ticket.external_id for ticket in Ticket.objects.all()}
    ticket_rows = sorted(
        (
            {key: value for key, value in row.items() if key not in ("id", "public_id")}
            for row in Ticket.objects.values()
        ),
        key=lambda row: row["external_id"],
    )
    messages = sorted(
        (
            {key: value for key, value in row.items() if key not in ("id", "public_id")}
            | {"ticket_id": tickets[row["ticket_id"]]}
            for row in TicketMessage.objects.values()
        ),
        key=lambda row: (row["ticket_id"], row["external_id"]),
    )
    history = sorted(
        (
            {key: value for key, value in row.items() if key not in ("id", "data")}
            | {"ticket_id": tickets[row["ticket_id"]]}
            | {"data": {k: v for k, v in row["data"].items() if k != "import"}}
            for row in TicketEvent.objects.values()
        ),
        key=lambda row: row["ticket_id"],
    )
    links = sorted((tickets[link.ticket_id], link.tag.name) for link in Ticket.tags.through.objects.all())
    return {"tickets": ticket_rows, "messages": messages, "history": history, "tags": links}


class _Undo(Exception):
    pass


def _import_then_undo(source: str, data: bytes) -> dict[str, Any]:
    stored: dict[str, Any] = {}
    try:
        with transaction.atomic():
            ticket_import(actor=None, source=source, file_format="json", data=data, mode="good_rows")
            stored.update(_stored())
            raise _Undo
    except _Undo:
        pass
    return stored


@pytest.mark.parametrize(
    ("source", "data"),
    [
        ("zendesk", (FIXTURES / "zendesk_tickets.json").read_bytes()),
        ("zammad", (FIXTURES / "zammad_tickets.json").read_bytes()),
        ("zendesk", _awkward_tickets()),
    ],
    ids=["zendesk", "zammad", "awkward"],
)
def test_copy_path_stores_exactly_what_the_orm_path_stores(
    source: str, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    CustomerFactory(email="giulia.bianchi@example.it")
    sequences.next_value("support.ticket")  # numbering goes on from the counter
    Tag.objects.create(name="due")  # an existing tag is reused

    by_copy = _import_then_undo(source, data)
    monkeypatch.setattr(imports, "_CopyWriter", imports._Writer)
    by_orm = _import_then_undo(source, data)

    assert by_copy == by_orm
    assert by_copy["tickets"]
    assert sequences.current_value("support.ticket") == 1


def test_awkward_characters_arrive_unchanged() -> None:
    result = ticket_import(
        actor=None, source="zendesk", file_format="json", data=_awkward_tickets(), mode="all_or_none"
    )

    assert (result.status, result.imported, result.messages_imported) == ("done", 3, 5)
    ticket = Ticket.objects.get(external_id="ext\\1\t2")
    assert ticket.subject == AWKWARD
    assert ticket.requester_name == "Giulia\tBianchi\\"
    assert ticket.number == "T-000001"
    assert ticket.search_text.startswith("t-000001 " + AWKWARD.lower() + " giulia\tbianchi\\ ")
    bodies = list(TicketMessage.objects.filter(ticket=ticket).values_list("body_text", flat=True))
    assert bodies == [AWKWARD, "Risposta\r\ncon CRLF", "Prima risposta", "Nota interna"]
    long = Ticket.objects.get(external_id="2")
    assert long.search_text == ("t-000002 lungo cliente@example.it " + "parola\\ " * 3_000)[:20_000]
    assert len(long.search_text) == imports.SEARCH_TEXT_LIMIT
    assert sorted(
        Ticket.objects.filter(external_id="3").values_list("number", "customer_id", "ticket_type__code")
    ) == [("T-000003", None, "request")]


def test_a_nul_character_is_refused_naming_the_ticket_and_the_rest_is_kept() -> None:
    lines = [
        {"id": 1, "subject": "Buono", "status": "open", "created_at": "2026-01-01T00:00:00Z"},
        {
            "id": 2,
            "subject": "Cattivo",
            "status": "open",
            "created_at": "2026-01-01T00:00:00Z",
            "comments": [{"id": 9, "body": "zero \u0000 byte"}],
        },
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode()

    result = ticket_import(actor=None, source="zendesk", file_format="json", data=data, mode="good_rows")

    assert (result.status, result.total, result.imported) == ("done", 2, 1)
    assert result.errors == [
        {"line": 2, "message": "The ticket contains a NUL character, which cannot be stored."}
    ]
    assert list(Ticket.objects.values_list("external_id", "number")) == [("1", "T-000001")]
    assert TicketMessage.objects.count() == 0


def test_the_existing_ticket_check_can_use_the_external_id_index() -> None:
    writer = imports._CopyWriter(source="zendesk", actor=None, import_id="x")
    ticket_import(
        actor=None,
        source="zendesk",
        file_format="json",
        data=(FIXTURES / "zendesk_tickets.json").read_bytes(),
        mode="good_rows",
    )

    with CaptureQueriesContext(connection) as queries:
        # More ids than PostgreSQL compares one by one when proving a partial index's condition.
        found = writer.existing(["1001", "1003", *(str(n) for n in range(5_000, 5_200))])
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + queries.captured_queries[0]["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert found == {"1001", "1003"}
    assert len(queries.captured_queries) == 1
    assert "support_ticket_external_unique" in plan


def test_a_lone_surrogate_is_refused_naming_the_ticket() -> None:
    data = (
        b'{"id": 1, "subject": "Buono", "status": "open", "created_at": "2026-01-01T00:00:00Z"}\n'
        b'{"id": 2, "subject": "Cattivo \\ud800", "status": "open", "created_at": "2026-01-01T00:00:00Z"}\n'
    )

    result = ticket_import(actor=None, source="zendesk", file_format="json", data=data, mode="all_or_none")

    assert (result.status, result.total, result.imported) == ("failed", 2, 0)
    assert result.errors == [
        {"line": 2, "message": "The ticket contains text that is not valid Unicode (a lone surrogate)."}
    ]
    assert Ticket.objects.count() == 0


def test_a_row_postgresql_refuses_is_named_and_its_chunk_is_not_saved() -> None:
    # A ticket numbered outside the counter (e.g. restored from a backup): the import's second ticket
    # would get the same number.
    sequences.next_value("support.ticket")
    ticket_import(
        actor=None,
        source="zammad",
        file_format="json",
        data=b'[{"id": 1, "title": "Vecchio", "state": "new", "created_at": "2026-01-01T00:00:00Z"}]',
        mode="good_rows",
    )
    Ticket.objects.filter(number="T-000002").update(number="T-000004")
    data = (FIXTURES / "zendesk_tickets.json").read_bytes()

    with pytest.raises(ValidationFailed) as refused:
        ticket_import(actor=None, source="zendesk", file_format="json", data=data, mode="good_rows")

    assert refused.value.code == "ticket_not_stored"
    assert str(refused.value) == (
        "The ticket 1002 (ticket 2 of the file) could not be stored: duplicate key value violates unique "
        'constraint "support_ticket_number_unique". Nothing of its chunk was saved.'
    )
    assert list(Ticket.objects.values_list("external_source", "number")) == [("zammad", "T-000004")]
    assert TicketMessage.objects.count() == 0
    assert TicketEvent.objects.filter(kind="imported").count() == 1
    assert sequences.current_value("support.ticket") == 2


def _five_tickets() -> list[tuple[int, Any]]:
    return [
        (n, {"id": n, "subject": f"Ticket {n}", "status": "open", "created_at": "2026-01-01T00:00:00Z"})
        for n in range(1, 6)
    ]


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        row = cursor.fetchone()
    assert row is not None
    return str(row[0])


def _watch_durability(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """synchronous_commit as each chunk is written and as the import's own row is written."""
    seen: dict[str, list[str]] = {"chunks": [], "finish": []}
    write, finish = imports._CopyWriter.write, imports._finish

    def watched_write(self: imports._CopyWriter, *args: Any) -> None:
        seen["chunks"].append(_synchronous_commit())
        write(self, *args)

    def watched_finish(*args: Any) -> Any:
        seen["finish"].append(_synchronous_commit())
        return finish(*args)

    monkeypatch.setattr(imports._CopyWriter, "write", watched_write)
    monkeypatch.setattr(imports, "_finish", watched_finish)
    return seen


@pytest.mark.django_db(transaction=True)
def test_good_rows_chunks_commit_without_waiting_for_the_disk_but_the_import_row_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = _watch_durability(monkeypatch)

    with CaptureQueriesContext(connection) as queries:
        result = imports.ticket_import_items(
            actor=None,
            source="zendesk",
            file_format="json",
            items=_five_tickets(),
            mode="good_rows",
            chunk_size=2,
        )

    assert (result.status, result.imported) == ("done", 5)
    assert seen == {"chunks": ["off", "off", "off"], "finish": ["on"]}
    assert [q["sql"] for q in queries.captured_queries].count(imports._CHUNK_DURABILITY) == 3
    assert _synchronous_commit() == "on"  # SET LOCAL ended with each chunk's transaction
    assert list(Ticket.objects.order_by("number").values_list("number", flat=True)) == [
        "T-000001",
        "T-000002",
        "T-000003",
        "T-000004",
        "T-000005",
    ]

    again = imports.ticket_import_items(
        actor=None,
        source="zendesk",
        file_format="json",
        items=_five_tickets(),
        mode="good_rows",
        chunk_size=2,
    )

    assert (again.imported, again.skipped) == (0, 5)
    assert Ticket.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_an_all_or_none_import_keeps_synchronous_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _watch_durability(monkeypatch)

    with CaptureQueriesContext(connection) as queries:
        result = imports.ticket_import_items(
            actor=None,
            source="zendesk",
            file_format="json",
            items=_five_tickets(),
            mode="all_or_none",
            chunk_size=2,
        )

    assert (result.status, result.imported) == ("done", 5)
    assert seen == {"chunks": ["on", "on", "on"], "finish": ["on"]}
    assert imports._CHUNK_DURABILITY not in [q["sql"] for q in queries.captured_queries]


def test_an_import_inside_the_callers_transaction_keeps_synchronous_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = _watch_durability(monkeypatch)

    result = imports.ticket_import_items(
        actor=None,
        source="zendesk",
        file_format="json",
        items=_five_tickets(),
        mode="good_rows",
        chunk_size=2,
    )

    assert (result.status, result.imported) == ("done", 5)
    assert seen == {"chunks": ["on", "on", "on"], "finish": ["on"]}
    assert _synchronous_commit() == "on"

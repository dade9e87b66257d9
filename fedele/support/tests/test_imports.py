"""Ticket imports from Zendesk and Zammad exports: mapping, line-numbered errors, modes, idempotency."""

from __future__ import annotations

import io
import json
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared import sequences
from fedele.shared.errors import PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent
from fedele.support.models import Tag, Ticket, TicketEvent, TicketImport, TicketMessage
from fedele.support.services import imports
from fedele.support.services.imports import ticket_import, ticket_import_stream

FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = pytest.mark.django_db


def _data(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _supervisor() -> Any:
    return actor_for(user_with_roles("supervisor"))


def _nothing_written() -> None:
    assert Ticket.objects.count() == 0
    assert TicketMessage.objects.count() == 0
    assert TicketEvent.objects.count() == 0
    assert OutboxEvent.objects.filter(event_type="support.tickets_imported").count() == 0
    assert AuditLog.objects.filter(action="support.tickets_imported").count() == 0


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_zendesk_json_maps_every_field() -> None:
    customer = CustomerFactory(email="giulia.bianchi@example.it")
    actor = _supervisor()

    result = ticket_import(
        actor=actor,
        source="zendesk",
        file_format="json",
        data=_data("zendesk_tickets.json"),
        mode="all_or_none",
    )

    assert (result.status, result.total, result.imported, result.skipped) == ("done", 5, 5, 0)
    assert result.messages_imported == 9
    assert result.errors == []
    tickets = {t.external_id: t for t in Ticket.objects.select_related("status", "ticket_type")}
    assert sorted(t.number for t in tickets.values()) == [f"T-00000{n}" for n in range(1, 6)]
    assert {key: t.status.code for key, t in tickets.items()} == {
        "1001": "open",
        "1002": "pending_third_party",
        "1003": "solved",
        "1004": "pending_customer",
        "1005": "closed",
    }
    assert {key: t.status_kind for key, t in tickets.items()} == {
        "1001": "open",
        "1002": "pending",
        "1003": "solved",
        "1004": "pending",
        "1005": "closed",
    }
    assert {key: t.priority for key, t in tickets.items()} == {
        "1001": "high",
        "1002": "low",
        "1003": "normal",
        "1004": "urgent",
        "1005": "normal",
    }
    assert {key: t.channel for key, t in tickets.items()} == {
        "1001": "email",
        "1002": "portal",
        "1003": "phone",
        "1004": "chat",
        "1005": "api",
    }
    assert {key: t.ticket_type.code if t.ticket_type else None for key, t in tickets.items()} == {
        "1001": "incident",
        "1002": "request",
        "1003": "question",
        "1004": "question",
        "1005": "question",
    }
    first = tickets["1001"]
    assert first.external_source == "zendesk"
    assert first.subject == "Fattura di febbraio addebitata due volte"
    assert first.requester_email == "giulia.bianchi@example.it"
    assert first.requester_name == "Giulia Bianchi"
    assert first.customer_id == customer.pk
    assert tickets["1003"].customer_id == customer.pk
    assert tickets["1002"].customer_id is None
    assert first.created_at == _at("2026-03-02T09:15:00")
    assert first.updated_at == _at("2026-03-03T11:00:00")
    assert first.first_responded_at == _at("2026-03-02T10:00:00")
    assert first.last_customer_message_at == _at("2026-03-02T09:15:00")
    assert first.last_agent_message_at == _at("2026-03-02T10:00:00")
    assert first.message_count == 3
    assert (first.solved_at, first.closed_at) == (None, None)
    assert first.created_by_id == actor.user_id
    # No SLA clocks on imported tickets (see the module docstring).
    assert (first.sla_policy_id, first.first_response_due_at, first.resolution_due_at) == (None, None, None)
    assert (tickets["1003"].solved_at, tickets["1003"].closed_at) == (_at("2026-03-05T15:30:00"), None)
    assert (tickets["1005"].solved_at, tickets["1005"].closed_at) == (
        _at("2026-02-25T10:00:00"),
        _at("2026-02-25T10:00:00"),
    )
    # No subject: the first line of the description.
    assert tickets["1005"].subject == "Richiesta copia contratto"
    assert sorted(first.tags.values_list("name", flat=True)) == ["doppio-addebito", "fattura"]
    assert sorted(tickets["1004"].tags.values_list("name", flat=True)) == ["fattura", "linea"]
    assert sorted(Tag.objects.values_list("name", flat=True)) == [
        "contratto",
        "doppio-addebito",
        "fattura",
        "linea",
        "modem",
    ]
    assert "addebitato due volte" in first.search_text
    assert "chiesto rimborso" in first.search_text
    assert first.search_text.startswith("t-00000")

    messages = list(first.messages.order_by("id"))
    assert [(m.kind, m.external_id, m.author_email) for m in messages] == [
        ("customer", "70001", "giulia.bianchi@example.it"),
        ("reply", "70002", "paolo.conti@esempio.it"),
        ("note", "70003", ""),
    ]
    assert (
        messages[0].body_html
        == "<p>Buongiorno, mi avete addebitato <b>due volte</b> la fattura di febbraio.</p>"
    )
    assert messages[0].channel == "email"
    assert messages[1].channel == "portal"
    assert messages[1].author_name == "Paolo Conti"
    assert messages[2].created_at == _at("2026-03-03T11:00:00")
    unsafe = tickets["1004"].messages.order_by("id").first()
    assert unsafe is not None
    assert unsafe.body_html == "<p>Linea assente da ieri sera</p>"
    assert unsafe.body_text == "Linea assente da ieri sera"
    described = list(tickets["1005"].messages.values_list("kind", "body_text"))
    assert described == [("customer", "Richiesta copia contratto\nVorrei una copia del contratto firmato.")]

    assert TicketEvent.objects.filter(kind="imported").count() == 5
    history = TicketEvent.objects.get(ticket=first)
    assert history.data == {"source": "zendesk", "external_id": "1001", "import": str(result.public_id)}
    assert sequences.current_value("support.ticket") == 5
    audit_row = AuditLog.objects.get(action="support.tickets_imported")
    assert audit_row.object_id == str(result.public_id)
    assert audit_row.after is not None and audit_row.after["imported"] == 5
    event = OutboxEvent.objects.get(event_type="support.tickets_imported")
    assert event.payload == {
        "import_id": str(result.public_id),
        "source": "zendesk",
        "imported": 5,
        "skipped": 0,
        "messages_imported": 9,
    }
    assert (
        OutboxEvent.objects.exclude(event_type="support.tickets_imported")
        .filter(event_type__startswith="support.")
        .count()
        == 0
    )


def test_reimport_skips_existing_tickets_and_numbers_continue() -> None:
    sequences.next_value("support.ticket")  # a ticket created in fedele before the import
    data = _data("zendesk_tickets.json")
    first = ticket_import(actor=None, source="zendesk", file_format="json", data=data, mode="all_or_none")
    again = ticket_import(actor=None, source="zendesk", file_format="json", data=data, mode="all_or_none")

    assert (first.imported, first.skipped) == (5, 0)
    assert (again.status, again.total, again.imported, again.skipped, again.messages_imported) == (
        "done",
        5,
        0,
        5,
        0,
    )
    assert Ticket.objects.count() == 5
    assert TicketMessage.objects.count() == 9
    assert sorted(Ticket.objects.values_list("number", flat=True)) == [f"T-00000{n}" for n in range(2, 7)]
    assert sequences.current_value("support.ticket") == 6


def test_same_ids_from_another_source_are_different_tickets() -> None:
    ticket_import(
        actor=None, source="zendesk", file_format="json", data=_data("zendesk_tickets.json"), mode="good_rows"
    )
    rows = [{"id": 1001, "title": "Altro sistema", "state": "new", "created_at": "2026-04-01T10:00:00Z"}]
    result = ticket_import(
        actor=None, source="zammad", file_format="json", data=json.dumps(rows).encode(), mode="good_rows"
    )
    assert (result.imported, result.skipped) == (1, 0)
    assert Ticket.objects.filter(external_id="1001").count() == 2


def test_all_or_none_reports_every_bad_ticket_and_writes_nothing() -> None:
    result = ticket_import(
        actor=_supervisor(),
        source="zendesk",
        file_format="json",
        data=_data("zendesk_bad.json"),
        mode="all_or_none",
    )

    assert (result.status, result.total, result.imported, result.skipped, result.messages_imported) == (
        "failed",
        6,
        0,
        0,
        0,
    )
    assert result.errors == [
        {
            "line": 2,
            "message": "The status 'deleted' cannot be imported "
            "(expected one of: closed, hold, new, on-hold, open, pending, solved).",
        },
        {"line": 4, "message": "created_at is required."},
        {"line": 5, "message": "'non una email' is not an e-mail address."},
        {"line": 6, "message": "The ticket id 2001 appears twice (first at 1)."},
    ]
    _nothing_written()
    assert Tag.objects.count() == 0
    assert sequences.current_value("support.ticket") == 0
    assert TicketImport.objects.count() == 1


def test_good_rows_commits_the_good_tickets_only() -> None:
    result = ticket_import(
        actor=None, source="zendesk", file_format="json", data=_data("zendesk_bad.json"), mode="good_rows"
    )

    assert (result.status, result.total, result.imported, result.messages_imported) == ("done", 6, 2, 1)
    assert [error["line"] for error in result.errors] == [2, 4, 5, 6]
    assert sorted(Ticket.objects.values_list("external_id", "number")) == [
        ("2001", "T-000001"),
        ("2003", "T-000002"),
    ]
    assert list(Tag.objects.values_list("name", flat=True)) == ["prova"]
    assert AuditLog.objects.get(action="support.tickets_imported").after == {
        "source": "zendesk",
        "format": "json",
        "mode": "good_rows",
        "total": 6,
        "imported": 2,
        "skipped": 0,
        "messages": 1,
        "errors": 4,
    }


def test_zendesk_csv_with_a_multiline_description() -> None:
    result = ticket_import(
        actor=None, source="zendesk", file_format="csv", data=_data("zendesk_tickets.csv"), mode="all_or_none"
    )

    assert (result.status, result.total, result.imported, result.messages_imported) == ("done", 3, 3, 2)
    tickets = {t.external_id: t for t in Ticket.objects.select_related("status", "ticket_type")}
    assert {k: (t.status.code, t.priority, t.channel) for k, t in tickets.items()} == {
        "3001": ("open", "normal", "email"),
        "3002": ("solved", "high", "portal"),
        "3003": ("pending_third_party", "urgent", "phone"),
    }
    assert tickets["3002"].ticket_type is not None and tickets["3002"].ticket_type.code == "request"
    assert tickets["3002"].solved_at == _at("2026-03-12T09:30:00")
    assert tickets["3001"].created_at == _at("2026-03-10T09:00:00")
    assert sorted(tickets["3001"].tags.values_list("name", flat=True)) == ["bolletta", "email"]
    message = tickets["3001"].messages.get()
    assert message.body_text == "Non ho ricevuto la bolletta di marzo.\r\nPotete rimandarla?"
    assert (message.kind, message.author_email, message.author_name) == (
        "customer",
        "sara.galli@example.it",
        "Sara Galli",
    )
    assert tickets["3003"].message_count == 0


def test_csv_errors_carry_the_file_line_numbers() -> None:
    result = ticket_import(
        actor=None, source="zendesk", file_format="csv", data=_data("zendesk_bad.csv"), mode="good_rows"
    )
    assert result.errors == [
        {"line": 3, "message": "'due@example' is not an e-mail address."},
        {"line": 4, "message": "Created at 'ieri' is not a date and time (use ISO 8601)."},
    ]
    assert sorted(Ticket.objects.values_list("external_id", flat=True)) == ["4001", "4004"]


def test_zammad_json_states_priorities_and_articles() -> None:
    result = ticket_import(
        actor=None, source="zammad", file_format="json", data=_data("zammad_tickets.json"), mode="all_or_none"
    )

    assert (result.status, result.imported, result.messages_imported) == ("done", 3, 5)
    tickets = {t.external_id: t for t in Ticket.objects.select_related("status")}
    assert {k: (t.status.code, t.priority, t.channel) for k, t in tickets.items()} == {
        "51": ("open", "high", "email"),
        "52": ("closed", "low", "portal"),
        "53": ("pending_customer", "normal", "phone"),
    }
    router = tickets["51"]
    assert router.subject == "Router non si accende"
    assert router.requester_email == "chiara.moretti@example.it"
    messages = list(router.messages.order_by("id"))
    assert [(m.kind, m.author_email, m.author_name) for m in messages] == [
        ("customer", "chiara.moretti@example.it", "Chiara Moretti"),
        ("note", "", ""),
        ("reply", "assistenza@esempio.it", "Assistenza"),
    ]
    assert messages[0].body_html == "<div>Il router non si accende più.</div>"
    assert messages[0].body_text == "Il router non si accende più."
    assert router.first_responded_at == _at("2026-04-01T09:00:00")
    assert sorted(router.tags.values_list("name", flat=True)) == ["guasto", "router"]
    closed = tickets["52"]
    assert (closed.solved_at, closed.closed_at) == (_at("2026-04-02T16:00:00"), _at("2026-04-02T16:00:00"))
    assert list(closed.messages.values_list("kind", flat=True)) == ["customer", "system"]
    assert "ticket chiuso automaticamente" not in closed.search_text.lower()


def test_zammad_csv() -> None:
    result = ticket_import(
        actor=None, source="zammad", file_format="csv", data=_data("zammad_tickets.csv"), mode="all_or_none"
    )
    assert (result.status, result.imported, result.messages_imported) == ("done", 2, 2)
    refund = Ticket.objects.select_related("status").get(external_id="62")
    assert (refund.status.code, refund.priority, refund.channel) == ("closed", "high", "phone")
    assert refund.requester_name == "Rita Sala"
    assert sorted(refund.tags.values_list("name", flat=True)) == ["fattura", "rimborso"]
    assert refund.messages.get().body_text == "Mi avete addebitato due volte."


@pytest.mark.parametrize(
    ("source", "file_format", "data", "code"),
    [
        ("zendesk", "json", b"", "empty_file"),
        ("zendesk", "json", b"   \n", "empty_file"),
        ("zendesk", "json", b"[]", "empty_file"),
        ("zendesk", "json", b'[{"id": 1,', "invalid_json"),
        ("zendesk", "json", b'{"id": 1}\n{"id": ', "invalid_json"),
        ("zendesk", "json", b'"just text"', "invalid_json"),
        ("zendesk", "json", b"\xff\xfe[]", "invalid_encoding"),
        ("zendesk", "csv", b"Id,Subject\n1,Ciao\n", "missing_columns"),
        ("zendesk", "csv", b"", "empty_file"),
        ("zendesk", "csv", b"Id,Subject,Status\n", "empty_file"),
        ("zendesk", "csv", b'Id,Subject,Status\n1,"unterminated\0', "invalid_file"),
        ("zammad", "xml", b"<tickets/>", "invalid_import"),
        ("freshdesk", "json", b"[]", "invalid_import"),
    ],
)
def test_unreadable_files_are_refused_with_nothing_written(
    source: str, file_format: str, data: bytes, code: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        ticket_import(actor=None, source=source, file_format=file_format, data=data, mode="all_or_none")
    assert caught.value.code == code
    _nothing_written()
    assert TicketImport.objects.count() == 0


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        ticket_import(actor=None, source="zendesk", file_format="json", data=b"[]", mode="some")
    assert caught.value.fields == {"mode": ["must be all_or_none or good_rows."]}


def test_huge_files_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "MAX_BYTES", 100)
    with pytest.raises(ValidationFailed) as caught:
        ticket_import(actor=None, source="zendesk", file_format="json", data=b" " * 101, mode="good_rows")
    assert caught.value.code == "file_too_large"
    monkeypatch.setattr(imports, "MAX_BYTES", 50 * 1024 * 1024)
    monkeypatch.setattr(imports, "MAX_ROWS", 2)
    rows = [
        {"id": n, "subject": "x", "status": "new", "created_at": "2026-01-01T00:00:00Z"} for n in range(3)
    ]
    with pytest.raises(ValidationFailed) as caught:
        ticket_import(
            actor=None, source="zendesk", file_format="json", data=json.dumps(rows).encode(), mode="good_rows"
        )
    assert caught.value.code == "too_many_rows"
    _nothing_written()


def test_error_list_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "MAX_REPORTED_ERRORS", 2)
    rows = [
        {"id": n, "subject": "x", "status": "gone", "created_at": "2026-01-01T00:00:00Z"} for n in range(5)
    ]
    result = ticket_import(
        actor=None, source="zendesk", file_format="json", data=json.dumps(rows).encode(), mode="all_or_none"
    )
    assert [error["line"] for error in result.errors] == [1, 2, 0]
    assert result.errors[-1] == {"line": 0, "message": "... and 3 more bad tickets.", "more": 3}
    assert imports.bad_ticket_count(result) == 5


def test_an_agent_without_the_permission_cannot_import() -> None:
    with pytest.raises(PermissionDenied):
        ticket_import(
            actor=actor_for(user_with_roles("agent")),
            source="zendesk",
            file_format="json",
            data=_data("zendesk_tickets.json"),
            mode="good_rows",
        )
    _nothing_written()


def test_stream_reads_newline_delimited_json_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [
        json.dumps(
            {"id": n, "subject": f"Problema {n}", "status": "open", "created_at": "2026-01-01T00:00:00Z"}
        )
        for n in range(1, 8)
    ]
    seen: list[int] = []
    original = imports.ticket_import_items

    def small_chunks(**kwargs: Any) -> TicketImport:
        return original(**kwargs, chunk_size=3)

    monkeypatch.setattr(imports, "ticket_import_items", small_chunks)
    result = ticket_import_stream(
        actor=None,
        source="zendesk",
        file_format="json",
        stream=io.BytesIO(("\n".join(lines) + "\n\n").encode()),
        mode="all_or_none",
        progress=seen.append,
    )
    assert (result.status, result.total, result.imported) == ("done", 7, 7)
    assert seen == [7]
    assert sorted(Ticket.objects.values_list("number", flat=True)) == [f"T-00000{n}" for n in range(1, 8)]


def test_stream_reads_a_pretty_printed_ticket_object() -> None:
    data = json.dumps(json.loads(_data("zendesk_tickets.json")), indent=2).encode()
    result = ticket_import_stream(
        actor=None, source="zendesk", file_format="json", stream=io.BytesIO(data), mode="all_or_none"
    )
    assert (result.imported, result.messages_imported) == (5, 9)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_imports_of_the_same_file_import_each_ticket_once() -> None:
    data = _data("zendesk_tickets.json")
    results: list[TicketImport] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait()
            results.append(
                ticket_import(actor=None, source="zendesk", file_format="json", data=data, mode="all_or_none")
            )
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert sorted((r.imported, r.skipped) for r in results) == [(0, 5), (5, 0)]
    assert Ticket.objects.count() == 5
    assert sorted(Ticket.objects.values_list("number", flat=True)) == [f"T-00000{n}" for n in range(1, 6)]


@pytest.mark.parametrize(
    "html",
    [
        '<p onclick="x()">Ciao <a href="https://esempio.it" target="_blank">link</a></p>',
        '<img src="http://tracker.example/p.gif"><img src="cid:logo" alt="logo"><script>alert(1)</script>',
        "<div><style>p{}</style><!-- commento --><table><tr><td colspan=2>x</td></tr></table></div>",
        '<a href="javascript:alert(1)">x</a><a href="cid:abc">y</a><iframe src="https://x">z</iframe>',
    ],
)
def test_the_importer_cleans_html_exactly_like_the_support_sanitiser(html: str) -> None:
    from fedele.support.html import sanitise_html

    assert imports.sanitise_html(html) == sanitise_html(html)


def test_the_interpreter_switch_interval_is_restored_after_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    before = sys.getswitchinterval()
    seen: list[float] = []

    def reader(position: int, item: Any) -> Any:
        seen.append(sys.getswitchinterval())
        return imports._zendesk_json(position, item)

    monkeypatch.setitem(imports.READERS, ("zendesk", "json"), reader)
    lines = [
        {"id": n, "subject": "Ciao", "status": "open", "created_at": "2026-01-01T00:00:00Z"} for n in (1, 2)
    ]
    result = imports.ticket_import_items(
        actor=None,
        source="zendesk",
        file_format="json",
        items=[(1, lines[0]), (2, lines[1])],
        mode="good_rows",
    )
    with pytest.raises(ValidationFailed):
        ticket_import(actor=None, source="zendesk", file_format="json", data=b"[1, ", mode="good_rows")

    assert result.imported == 2
    assert seen == [min(before, 0.0005)] * 2
    assert sys.getswitchinterval() == before
    assert imports._SwitchInterval.users == 0

"""``tickets_create_many``: a stream of creates made in groups leaves exactly the rows, answers, events and
pushes ``ticket_create`` leaves one by one; a bad request is refused alone; a round that fails as a
whole is made again one by one; the statements per group do not grow with the group; two groups
created at once on PostgreSQL share the gapless numbers with no gap and no duplicate."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from fedele.accounts.contracts import Actor
from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared import bulk, events, realtime, sequences, versioned_cache
from fedele.shared.errors import ApplicationError
from fedele.shared.models import AuditLog, OutboxEvent
from fedele.shared.testing import in_threads
from fedele.support.models import SlaClock, Tag, Ticket, TicketEvent, TicketMessage
from fedele.support.services import tickets as single
from fedele.support.services import tickets_batch
from fedele.support.services.tickets_batch import TicketOutcome, TicketRequest, tickets_create_many

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday, 10:00 in Rome
TEAM_MODEL: Any = Ticket._meta.get_field("team").related_model


class _Rollback(Exception):
    pass


@pytest.fixture(autouse=True)
def _frozen() -> Iterator[None]:
    with time_machine.travel(T0, tick=False):
        yield


@pytest.fixture
def agent() -> Actor:
    return actor_for(user_with_roles("agent", first_name="Anna", last_name="Rossi"))


def _request(index: int, **extra: Any) -> TicketRequest:
    fields: dict[str, Any] = {
        "subject": f"Nuovo problema n. {index}",
        "body": f"Buongiorno, da ieri ho un problema ({index}). Potete aiutarmi?",
        "channel": "api",
        "requester_email": f"nuovo{index}@example.it",
        "requester_name": f"Nuovo Cliente {index}",
        "priority": "normal",
        **extra,
    }
    return TicketRequest(**fields)


def _stream() -> list[TicketRequest]:
    """Known and unknown customers, tags old and new, a named assignee on a team, a team with nobody
    named (created alone), a repeated external id, errors of every kind in the middle."""
    customer = CustomerFactory(email="cliente@example.it")
    second = CustomerFactory(email="secondo@example.it", language="en")
    team = TEAM_MODEL.objects.create(name="Secondo livello")
    named = user_with_roles("agent", first_name="Bruno", last_name="Verdi")
    Tag.objects.create(name="modem")
    return [
        _request(1, requester_email="Cliente@Example.it", tags=["Modem", "vip", "modem"]),
        _request(2, priority="urgent", external_id="ext-1", external_source="api"),
        _request(3, customer_public_id=str(uuid.UUID(int=7))),  # unknown customer
        _request(4, customer_public_id=str(second.public_id), tags=["fattura"]),
        _request(5, team_public_id=str(team.public_id)),  # automatic assignment: alone
        _request(6, team_public_id=str(team.public_id), assignee_public_id=str(named.public_id)),
        _request(7, ticket_type="nessuno"),  # unknown type
        _request(8, external_id="ext-1", external_source="api"),  # the ticket of request 2
        _request(9, requester_email="senza-chiocciola"),  # bad e-mail
        _request(10, body="", body_html="<p>Solo <b>HTML</b></p>", language="en", tags=["vip"]),
        _request(11, requester_email="secondo@example.it", priority="high"),
        _request(12, subject="   "),  # no subject
        _request(13, body=""),  # no message at all
        _request(14, external_id="ext-2", external_source="api"),
    ] + [_request(100 + index, requester_email=customer.email) for index in range(3)]


def _answer(outcome: TicketOutcome) -> tuple[Any, ...]:
    if outcome.error is not None:
        return ("error", outcome.error.code, outcome.error.status_code, outcome.error.message)
    assert outcome.ticket is not None
    parts = single.new_ticket_parts(outcome.ticket)
    return (
        "ticket",
        outcome.ticket.number,
        None if parts is None else (parts.tags, len(parts.messages), parts.customer_public_id),
    )


def _one_by_one(actor: Actor, requests: list[TicketRequest]) -> list[TicketOutcome]:
    outcomes = []
    for request in requests:
        try:
            outcomes.append(TicketOutcome(ticket=single.ticket_create(actor=actor, **request.arguments())))
        except ApplicationError as error:
            outcomes.append(TicketOutcome(error=error))
    return outcomes


def _snapshot() -> dict[str, Any]:
    """Every row a create writes, with ids replaced by ticket numbers (ids differ between runs)."""
    tickets = list(Ticket.objects.order_by("number"))
    number_of = {ticket.pk: ticket.number for ticket in tickets}
    names = {str(ticket.public_id): ticket.number for ticket in tickets}
    messages = {str(m.public_id): f"{number_of[m.ticket_id]}/message" for m in TicketMessage.objects.all()}
    names.update(messages)

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        if isinstance(value, uuid.UUID):
            value = str(value)
        if isinstance(value, str):
            for public_id, name in names.items():
                value = value.replace(public_id, name)
        return value

    def rows(queryset: Any, *, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        found = []
        for row in queryset.values():
            row = {key: value for key, value in row.items() if key not in ("id", "public_id", *skip)}
            if "ticket_id" in row:
                row["ticket_id"] = number_of[row["ticket_id"]]
            found.append(clean(row))
        return sorted(found, key=repr)

    return {
        "tickets": rows(Ticket.objects.all()),
        "messages": rows(TicketMessage.objects.all()),
        "history": rows(TicketEvent.objects.all()),
        "clocks": rows(SlaClock.objects.all()),
        "tags": sorted(Ticket.tags.through.objects.values_list("ticket__number", "tag__name")),
        "tag_rows": list(Tag.objects.order_by("pk").values_list("name", flat=True)),
        "audit": rows(AuditLog.objects.filter(action="support.ticket_created")),
        # Per ticket, the events in the order they were written.
        "outbox": [
            clean(row)
            for row in OutboxEvent.objects.filter(aggregate_type="support.ticket")
            .order_by("pk")
            .values("event_type", "aggregate_type", "aggregate_id", "payload", "occurred_at", "dispatched_at")
        ],
        "counter": sequences.current_value(tickets_batch.SERIES),
    }


def _run(work: Callable[[], list[TicketOutcome]]) -> tuple[list[tuple[Any, ...]], dict[str, Any], list[Any]]:
    """``work`` in a transaction that is rolled back afterwards: its answers, rows, enqueued outbox
    events and realtime pushes (the after-commit callbacks run by hand before the rollback)."""
    pushed: list[Any] = []
    enqueued: list[str] = []
    result: dict[str, Any] = {}

    class Layer:
        async def group_send(self, group: str, message: dict[str, Any]) -> None:
            pushed.append((group, message["type"], message["data"]))

    layer = Layer()
    with (
        mock.patch.object(realtime, "get_channel_layer", lambda: layer),
        mock.patch("channels.layers.get_channel_layer", lambda: layer),
        mock.patch.object(events, "enqueue_dispatch", lambda event_id: enqueued.append(str(event_id))),
        mock.patch.object(events, "_enqueue_all", lambda ids: enqueued.extend(str(i) for i in ids)),
    ):
        try:
            with transaction.atomic():
                start = len(connection.run_on_commit)
                outcomes = work()
                for _savepoints, callback, _robust in connection.run_on_commit[start:]:
                    callback()
                result["answers"] = [_answer(outcome) for outcome in outcomes]
                result["rows"] = _snapshot()
                outbox_ids = [
                    str(i) for i in OutboxEvent.objects.order_by("pk").values_list("event_id", flat=True)
                ]
                assert sorted(enqueued) == sorted(outbox_ids)
                names = {str(t.public_id): t.number for t in Ticket.objects.all()}
                result["pushes"] = [
                    (
                        group.replace(group.rsplit(".", 1)[-1], names.get(group.rsplit(".", 1)[-1], "")),
                        kind,
                        {key: names.get(value, value) for key, value in data.items()},
                    )
                    for group, kind, data in pushed
                ]
                raise _Rollback
        except _Rollback:
            pass
    return result["answers"], result["rows"], result["pushes"]


def test_a_stream_created_in_groups_equals_the_same_stream_one_by_one(agent: Actor) -> None:
    requests = _stream()
    slow_answers, slow_rows, slow_pushes = _run(lambda: _one_by_one(agent, requests))
    groups_answers, groups_rows, groups_pushes = _run(
        lambda: tickets_create_many(actor=agent, requests=requests)
    )
    assert groups_answers == slow_answers
    assert groups_rows == slow_rows
    assert groups_pushes == slow_pushes
    # The exact outcome, for the record.
    assert [answer[:2] for answer in groups_answers] == [
        ("ticket", "T-000001"),
        ("ticket", "T-000002"),
        ("error", "unknown_customer"),
        ("ticket", "T-000003"),
        ("ticket", "T-000004"),
        ("ticket", "T-000005"),
        ("error", "unknown_ticket_type"),
        ("ticket", "T-000002"),
        ("error", "invalid_email"),
        ("ticket", "T-000006"),
        ("ticket", "T-000007"),
        ("error", "subject_required"),
        ("ticket", "T-000008"),
        ("ticket", "T-000009"),
        ("ticket", "T-000010"),
        ("ticket", "T-000011"),
        ("ticket", "T-000012"),
    ]
    assert groups_rows["counter"] == 12
    assert groups_answers[0][2][0] == ["modem", "vip"]
    assert groups_answers[7][2] is None  # the replay: the stored ticket, read back by the caller
    assert groups_rows["tag_rows"] == ["modem", "vip", "fattura"]
    assert len(groups_rows["clocks"]) == 24  # first response and resolution for each of 12
    assert len(groups_rows["audit"]) == 12
    # TicketCreated for each, a timeline line for the 6 with a customer (1, 3, 7 and the last 3).
    assert [row["event_type"] for row in groups_rows["outbox"]].count("support.ticket_created") == 12
    assert len(groups_rows["outbox"]) == 18
    assert len(groups_pushes) == 24
    first = groups_rows["tickets"][0]
    assert (first["number"], first["first_response_due_at"], first["resolution_due_at"]) == (
        "T-000001",
        datetime(2026, 11, 23, 13, 0, tzinfo=UTC),  # 10:00 Rome + 240 business minutes
        datetime(2026, 11, 30, 9, 0, tzinfo=UTC),  # + 45 business hours
    )


def test_a_bad_request_is_refused_alone_and_leaves_nothing(agent: Actor) -> None:
    requests = [_request(1), _request(2, category="nessuna"), _request(3, tags=["!!!"]), _request(4)]
    outcomes = tickets_create_many(actor=agent, requests=requests)
    assert [outcome.error.code if outcome.error else None for outcome in outcomes] == [
        None,
        "unknown_category",
        "invalid_tag",
        None,
    ]
    assert [outcome.ticket.number for outcome in outcomes if outcome.ticket] == ["T-000001", "T-000002"]
    assert sorted(Ticket.objects.values_list("number", flat=True)) == ["T-000001", "T-000002"]
    assert AuditLog.objects.filter(action="support.ticket_created").count() == 2
    assert OutboxEvent.objects.filter(event_type="support.ticket_created").count() == 2
    assert (TicketMessage.objects.count(), SlaClock.objects.count()) == (2, 4)


def test_a_round_that_fails_as_a_whole_is_created_one_by_one(agent: Actor) -> None:
    """A racing request stored ext-9 after the round's replay check: the round's insert fails on the
    unique external id, and one by one the racing ticket is found and the others are created."""
    raced = single.ticket_create(
        actor=agent, **_request(0, external_id="ext-9", external_source="api").arguments()
    )
    requests = [_request(1), _request(2, external_id="ext-9", external_source="api"), _request(3)]
    with mock.patch.object(tickets_batch, "_existing", lambda identities: {}):
        outcomes = tickets_create_many(actor=agent, requests=requests)
    assert [outcome.ticket.number for outcome in outcomes if outcome.ticket] == [
        "T-000002",
        "T-000001",
        "T-000003",
    ]
    assert outcomes[1].ticket is not None and outcomes[1].ticket.pk == raced.pk
    assert Ticket.objects.count() == 3
    assert sequences.current_value(tickets_batch.SERIES) == 3  # the failed round's numbers rolled back
    assert AuditLog.objects.filter(action="support.ticket_created").count() == 3


def test_triggers_on_created_make_every_create_one_by_one(agent: Actor) -> None:
    from fedele.support.services import sla_config

    sla_config.trigger_save(
        actor=actor_for(user_with_roles("admin")),
        name="Urgenti",
        event="created",
        conditions=[{"field": "subject", "operator": "contains", "value": "problema"}],
        actions=[{"type": "set_priority", "value": "urgent"}],
    )
    with mock.patch.object(tickets_batch, "_insert", side_effect=AssertionError("not in groups")):
        outcomes = tickets_create_many(actor=agent, requests=[_request(1), _request(2)])
    assert [(o.ticket.number, o.ticket.priority) for o in outcomes if o.ticket] == [
        ("T-000001", "urgent"),
        ("T-000002", "urgent"),
    ]


def _statements(captured: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"]
        for q in captured.captured_queries
        if not q["sql"].startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK"))
    ]


def _table(statement: str) -> str:
    """The statement's kind and first table: 'SELECT customers_customer', 'INSERT support_ticket'."""
    words = statement.replace('"', "").split()
    if words[0] == "INSERT":
        return f"INSERT {words[2]}"
    return f"{words[0]} {words[words.index('FROM') + 1]}"


@pytest.mark.postgres
@pytest.mark.parametrize("size", [1, 10, 40])
def test_a_group_takes_the_same_statements_whatever_its_size(agent: Actor, size: int) -> None:
    with versioned_cache.scope():  # warm caches, and the tag exists
        tickets_create_many(actor=agent, requests=[_request(0, tags=["vip"])])
    requests = [_request(index, tags=["vip"]) for index in range(1, size + 1)]
    # One request scope per group, as the fast path opens it: the cache versions are read once.
    with versioned_cache.scope(), CaptureQueriesContext(connection) as captured:
        outcomes = tickets_create_many(actor=agent, requests=requests)
    assert [outcome.ticket.number for outcome in outcomes if outcome.ticket] == [
        f"T-{value:06d}" for value in range(2, size + 2)
    ]
    # The audit rows and outbox events: a few rows (up to shared.bulk's SMALL_INSERT) go in by one
    # INSERT each; more by one COPY each, which the capture does not see. Either way the count of
    # statements does not grow with the group.
    small = size <= bulk.SMALL_INSERT
    written_by_insert = ["INSERT shared_auditlog", "INSERT shared_outboxevent"] if small else []
    assert [_table(statement) for statement in _statements(captured)] == [
        "SELECT shared_sequencecounter",  # the cache versions
        "SELECT customers_customer",  # the round's customers by e-mail
        "SELECT customers_contact",
        "INSERT shared_sequencecounter",  # the round's numbers, one row lock
        "INSERT support_ticket",
        "SELECT support_tag",
        "INSERT support_ticket_tags",
        "INSERT support_ticketmessage",
        "INSERT support_ticketevent",
        *written_by_insert,
        "INSERT support_slaclock",
    ]
    assert sequences.current_value(tickets_batch.SERIES) == size + 1
    assert AuditLog.objects.filter(action="support.ticket_created").count() == size + 1
    assert OutboxEvent.objects.filter(event_type="support.ticket_created").count() == size + 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_groups_at_once_share_gapless_unique_numbers() -> None:
    actors = [actor_for(user_with_roles("agent")) for _ in range(2)]
    numbers: list[list[str]] = [[], []]

    def work(index: int) -> None:
        for round_number in range(3):
            requests = [_request(100 * index + 10 * round_number + n) for n in range(10)]
            outcomes = tickets_create_many(actor=actors[index], requests=requests)
            numbers[index].extend(o.ticket.number for o in outcomes if o.ticket is not None)

    assert in_threads(work, 2) == []
    every = numbers[0] + numbers[1]
    assert len(every) == 60
    assert sorted(every) == [f"T-{value:06d}" for value in range(1, 61)]
    # Each caller's numbers rise in its own arrival order.
    assert numbers[0] == sorted(numbers[0]) and numbers[1] == sorted(numbers[1])
    assert Ticket.objects.count() == 60
    assert sequences.current_value(tickets_batch.SERIES) == 60

"""Transactional outbox: written with the change, dispatched after commit, at-least-once with dedupe."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, transaction

from fedele.shared import events
from fedele.shared.events import DomainEvent, EventEnvelope, publish
from fedele.shared.models import AuditLog, HandlerReceipt, OutboxEvent

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FAN_OUT = "shared.webhooks.fan_out"


@dataclass(frozen=True, slots=True)
class Pinged(DomainEvent):
    event_type = "tests.Pinged"
    target: str
    amount: int


@dataclass(frozen=True, slots=True)
class PlainContractEvent:
    """Like customers.contracts.TimelineAppend: a dataclass with an event_type but no DomainEvent base."""

    event_type = "tests.PlainContract"
    target: str
    when: datetime


class Recorder:
    """Registers test handlers and unsubscribes them afterwards; each run writes one AuditLog row."""

    def __init__(self) -> None:
        self.registered: list[tuple[str, str]] = []
        self.calls: list[tuple[str, EventEnvelope]] = []
        self.lock = threading.Lock()

    def add(
        self, name: str, event_type: str = Pinged.event_type, *, fail_times: int = 0, delay: float = 0.0
    ) -> Callable[[EventEnvelope], None]:
        remaining = [fail_times]

        def handler(envelope: EventEnvelope) -> None:
            if delay:
                time.sleep(delay)
            with self.lock:
                if remaining[0] > 0:
                    remaining[0] -= 1
                    raise RuntimeError(f"{name} is down")
                self.calls.append((name, envelope))
            AuditLog.objects.create(
                occurred_at=envelope.occurred_at,
                action=f"test.{name}",
                object_type="event",
                object_id=str(envelope.event_id)[:64],
            )

        events.handles(event_type, name=name)(handler)
        self.registered.append((event_type, name))
        return handler

    def runs(self, name: str) -> int:
        return AuditLog.objects.filter(action=f"test.{name}").count()

    def close(self) -> None:
        for event_type, name in self.registered:
            events.unsubscribe(event_type, name)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.close()


def _ping(target: str = "a", amount: int = 1) -> OutboxEvent:
    return publish(Pinged(target, amount), aggregate_type="thing", aggregate_id=target)


@pytest.mark.django_db
def test_event_rolled_back_with_the_change_is_never_dispatched(
    recorder: Recorder, django_capture_on_commit_callbacks
) -> None:
    recorder.add("tests.first")
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        _ping()
        assert OutboxEvent.objects.count() == 1
        raise RuntimeError("the change failed")
    assert callbacks == []
    assert OutboxEvent.objects.count() == 0
    assert HandlerReceipt.objects.count() == 0
    assert recorder.calls == []
    assert recorder.runs("tests.first") == 0


@pytest.mark.django_db
def test_event_is_written_in_the_transaction_and_dispatched_after_commit(
    recorder: Recorder, django_capture_on_commit_callbacks, time_machine
) -> None:
    time_machine.move_to(START, tick=False)
    recorder.add("tests.first")
    recorder.add("tests.second")
    recorder.add("tests.other", event_type="tests.Other")
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        row = _ping("cust-1", 7)
    # Not dispatched before the commit hook runs.
    assert recorder.calls == []
    assert len(callbacks) == 1
    stored = OutboxEvent.objects.get()
    assert stored.event_type == "tests.Pinged"
    assert stored.aggregate_type == "thing"
    assert stored.aggregate_id == "cust-1"
    assert stored.payload == {"target": "cust-1", "amount": 7}
    assert stored.occurred_at == START
    assert stored.dispatched_at is None

    callbacks[0]()  # the commit

    assert [name for name, _ in recorder.calls] == ["tests.first", "tests.second"]
    envelope = recorder.calls[0][1]
    assert envelope.event_id == row.event_id
    assert envelope.event_type == "tests.Pinged"
    assert envelope.aggregate_type == "thing"
    assert envelope.aggregate_id == "cust-1"
    assert envelope.occurred_at == START
    assert dict(envelope.payload) == {"target": "cust-1", "amount": 7}
    stored.refresh_from_db()
    assert stored.dispatched_at == START
    assert stored.attempts == 1
    assert stored.last_error == ""
    assert set(HandlerReceipt.objects.values_list("handler", flat=True)) == {
        "tests.first",
        "tests.second",
        FAN_OUT,
    }
    assert recorder.runs("tests.other") == 0


@pytest.mark.django_db
def test_failed_handler_is_retried_by_the_sweep_and_the_others_do_not_run_again(
    recorder: Recorder, time_machine
) -> None:
    time_machine.move_to(START, tick=False)
    recorder.add("tests.steady")
    recorder.add("tests.flaky", fail_times=2)
    row = _ping()  # dispatch never ran (test transaction): call it as the worker would
    assert events.dispatch(row.event_id) is False

    row.refresh_from_db()
    assert row.attempts == 1
    assert row.dispatched_at is None
    assert row.next_attempt_at == START + timedelta(seconds=2)
    assert row.last_error == "tests.flaky: RuntimeError: tests.flaky is down"
    assert recorder.runs("tests.steady") == 1
    assert recorder.runs("tests.flaky") == 0
    assert not HandlerReceipt.objects.filter(handler="tests.flaky").exists()

    # The sweep waits for the grace period and the backoff.
    time_machine.move_to(START + timedelta(seconds=4), tick=False)
    assert events.dispatch_due() == 0
    time_machine.move_to(START + timedelta(seconds=6), tick=False)
    assert events.dispatch_due() == 0  # the second failure
    row.refresh_from_db()
    assert row.attempts == 2
    assert row.next_attempt_at == START + timedelta(seconds=6 + 4)

    time_machine.move_to(START + timedelta(seconds=9), tick=False)
    assert events.dispatch_due() == 0  # still backing off: nothing ran
    assert recorder.runs("tests.flaky") == 0

    time_machine.move_to(START + timedelta(seconds=10), tick=False)
    assert events.dispatch_due() == 1
    row.refresh_from_db()
    assert row.dispatched_at == START + timedelta(seconds=10)
    assert row.attempts == 3
    assert row.last_error == ""
    assert recorder.runs("tests.steady") == 1
    assert recorder.runs("tests.flaky") == 1

    # Delivered again (at-least-once): nothing runs twice.
    assert events.dispatch(row.event_id) is True
    OutboxEvent.objects.filter(pk=row.pk).update(dispatched_at=None)
    assert events.dispatch(row.event_id) is True
    assert recorder.runs("tests.steady") == 1
    assert recorder.runs("tests.flaky") == 1
    assert HandlerReceipt.objects.filter(event_id=row.event_id).count() == 3


@pytest.mark.django_db
def test_a_failing_handler_rolls_back_its_own_writes(recorder: Recorder) -> None:
    def half_done(envelope: EventEnvelope) -> None:
        AuditLog.objects.create(
            occurred_at=envelope.occurred_at, action="test.half", object_type="x", object_id="1"
        )
        raise ValueError("boom after writing")

    events.handles(Pinged.event_type, name="tests.half")(half_done)
    recorder.registered.append((Pinged.event_type, "tests.half"))
    row = _ping()
    assert events.dispatch(row.event_id) is False
    assert AuditLog.objects.filter(action="test.half").count() == 0
    assert not HandlerReceipt.objects.filter(handler="tests.half").exists()


@pytest.mark.django_db
def test_sweep_delivers_lost_dispatches_only_after_the_grace_period(recorder: Recorder) -> None:
    recorder.add("tests.first")
    with time_machine.travel(START, tick=False):
        first = _ping("x")
        second = _ping("y")
        assert events.dispatch_due() == 0  # just written: the on-commit dispatch may still be on its way
    with time_machine.travel(START + events.DISPATCH_GRACE, tick=False):
        assert events.dispatch_due(limit=1) == 1
        assert events.dispatch_due() == 1
        assert events.dispatch_due() == 0
    assert OutboxEvent.objects.filter(dispatched_at__isnull=True).count() == 0
    assert [envelope.event_id for _, envelope in recorder.calls] == [first.event_id, second.event_id]


@pytest.mark.django_db
def test_plain_contract_dataclasses_can_be_published(recorder: Recorder) -> None:
    recorder.add("tests.plain", event_type=PlainContractEvent.event_type)
    row = publish(PlainContractEvent("t-1", START), aggregate_type="thing", aggregate_id="t-1")
    assert row.payload == {"target": "t-1", "when": "2026-03-02T09:00:00+00:00"}
    assert events.dispatch(row.event_id) is True
    assert recorder.runs("tests.plain") == 1


@pytest.mark.django_db
def test_publish_refuses_events_without_a_type() -> None:
    @dataclass(frozen=True)
    class Nameless(DomainEvent):
        value: int

    with pytest.raises(TypeError):
        publish(Nameless(1), aggregate_type="x", aggregate_id="1")
    with pytest.raises(TypeError):
        publish(object(), aggregate_type="x", aggregate_id="1")
    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db
def test_dispatch_of_an_unknown_event_is_a_no_op() -> None:
    assert events.dispatch("00000000-0000-0000-0000-000000000000") is True


def test_handles_is_idempotent_per_name(recorder: Recorder) -> None:
    recorder.add("tests.dup")
    recorder.add("tests.dup")
    names = [s.name for s in events.subscriptions_for(Pinged.event_type)]
    assert names.count("tests.dup") == 1
    assert names[-1] == FAN_OUT  # catch-all subscribers come after the specific ones


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_racing_run_each_handler_exactly_once(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "enqueue_dispatch", lambda event_id: None)  # no dispatch on commit
    recorder.add("tests.slow_a", delay=0.4)
    recorder.add("tests.slow_b", delay=0.1)
    with transaction.atomic():
        row = _ping("race")
    barrier = threading.Barrier(2)
    results: list[bool] = []
    errors: list[BaseException] = []

    def dispatcher() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(events.dispatch(row.event_id))
        except BaseException as error:  # pragma: no cover
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert recorder.runs("tests.slow_a") == 1
    assert recorder.runs("tests.slow_b") == 1
    assert len([c for c in recorder.calls if c[0] == "tests.slow_a"]) == 1
    assert HandlerReceipt.objects.filter(event_id=row.event_id).count() == 3
    row.refresh_from_db()
    assert row.dispatched_at is not None

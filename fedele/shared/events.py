"""Transactional outbox for domain events.

publish() writes the event in the caller's transaction; after commit it is dispatched (through
Celery, eager in embedded mode) to every handler subscribed to its type. Delivery is at-least-once;
each handler runs exactly once per event because its receipt is written in the same transaction as
the handler's own changes, and a second dispatcher that races it fails on the receipt's unique key.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from django.db import IntegrityError, transaction

from fedele.shared import clock
from fedele.shared.audit import jsonable
from fedele.shared.bulk import BulkTable, time_ordered_uuid
from fedele.shared.models import HandlerReceipt, OutboxEvent

logger = logging.getLogger(__name__)
_OUTBOX_ROWS = BulkTable(
    OutboxEvent, ("event_id", "event_type", "aggregate_type", "aggregate_id", "payload", "occurred_at")
)

ALL_EVENTS = "*"
DISPATCH_GRACE = timedelta(seconds=5)
MAX_BACKOFF = timedelta(hours=1)


class DomainEvent:
    """Base for the frozen dataclasses in each module's events.py."""

    event_type: ClassVar[str] = ""

    def to_payload(self) -> dict[str, Any]:
        if not dataclasses.is_dataclass(self):
            raise TypeError("Domain events must be dataclasses.")
        result: dict[str, Any] = jsonable(dataclasses.asdict(self))
        return result


@dataclass(frozen=True, slots=True)
class EventEnvelope:
    event_id: UUID
    event_type: str
    aggregate_type: str
    aggregate_id: str
    occurred_at: datetime
    payload: Mapping[str, Any]


Handler = Callable[[EventEnvelope], None]


@dataclass(frozen=True, slots=True)
class _Subscription:
    name: str
    function: Handler


_subscriptions: dict[str, list[_Subscription]] = {}


def handles(event_type: str, *, name: str | None = None) -> Callable[[Handler], Handler]:
    """Subscribe a handler. Its name is its dedupe identity: keep it stable across releases."""

    def register(function: Handler) -> Handler:
        handler_name = name or f"{function.__module__}.{function.__qualname__}"
        existing = _subscriptions.setdefault(event_type, [])
        if not any(s.name == handler_name for s in existing):
            existing.append(_Subscription(handler_name, function))
        return function

    return register


def unsubscribe(event_type: str, name: str) -> None:
    _subscriptions[event_type] = [s for s in _subscriptions.get(event_type, []) if s.name != name]


def subscriptions_for(event_type: str) -> list[_Subscription]:
    return [*_subscriptions.get(event_type, []), *_subscriptions.get(ALL_EVENTS, [])]


def _payload_of(event: object) -> dict[str, Any]:
    """DomainEvents serialise themselves; a plain frozen dataclass from a module's contracts.py
    (which may not import Django, hence not DomainEvent, e.g. customers' TimelineAppend) is
    serialised the same way."""
    if isinstance(event, DomainEvent):
        return event.to_payload()
    if dataclasses.is_dataclass(event) and not isinstance(event, type):
        result: dict[str, Any] = jsonable(dataclasses.asdict(event))
        return result
    raise TypeError(f"{type(event).__name__} is not a dataclass event.")


def publish(event: object, *, aggregate_type: str, aggregate_id: str) -> OutboxEvent:
    """Write a DomainEvent (or a contracts dataclass with an event_type) to the outbox."""
    event_type = str(getattr(event, "event_type", "") or "")
    if not event_type:
        raise TypeError(f"{type(event).__name__} has no event_type.")
    payload = _payload_of(event)
    # No savepoint: an outbox row that cannot be written fails the caller's whole transaction.
    with transaction.atomic(savepoint=False):
        row = OutboxEvent.objects.create(
            event_type=event_type,
            aggregate_type=aggregate_type,
            aggregate_id=str(aggregate_id),
            payload=payload,
            occurred_at=clock.now(),
        )
        event_id = row.event_id
        transaction.on_commit(lambda: enqueue_dispatch(event_id))
    return row


def publish_many(items: Sequence[tuple[object, str, str]]) -> list[UUID]:
    """Write many events to the outbox at once: (event, aggregate_type, aggregate_id) each; returns
    their event ids. For batch postings (thousands of loyalty earns at once); after commit one task
    dispatches them all, in order, each exactly as ``publish``'s own task would (and the sweep
    catches any it missed)."""
    now = clock.now()
    rows = []
    event_ids: list[UUID] = []
    dumps = json.dumps
    flat_fields: dict[type, tuple[str, ...] | None] = {}
    for event, aggregate_type, aggregate_id in items:
        event_type = str(getattr(event, "event_type", "") or "")
        if not event_type:
            raise TypeError(f"{type(event).__name__} has no event_type.")
        kind = type(event)
        if kind not in flat_fields:
            flat_fields[kind] = _flat_fields(kind)
        names = flat_fields[kind]
        payload: dict[str, Any] | None = None
        if names is not None:
            payload = {name: getattr(event, name) for name in names}
            # Plain values only: anything else goes through jsonable like publish's payloads.
            if not all(type(value) in _PLAIN for value in payload.values()):
                payload = None
        event_id = time_ordered_uuid()
        event_ids.append(event_id)
        rows.append(
            (
                event_id,
                event_type,
                aggregate_type,
                str(aggregate_id),
                dumps(payload if payload is not None else _payload_of(event)),
                now,
            )
        )
    with transaction.atomic(savepoint=False):
        _OUTBOX_ROWS.insert_tuples(rows)
        transaction.on_commit(lambda: _enqueue_all(event_ids))
    return event_ids


_PLAIN = frozenset({str, int, bool, float, type(None)})


def _flat_fields(kind: type) -> tuple[str, ...] | None:
    """The field names of a dataclass event whose payload is its fields as they are (``to_payload``
    not overridden); None when the payload must be built by ``_payload_of``."""
    if not dataclasses.is_dataclass(kind):
        return None
    if issubclass(kind, DomainEvent) and kind.to_payload is not DomainEvent.to_payload:
        return None
    return tuple(field.name for field in dataclasses.fields(kind))


def _enqueue_all(event_ids: Sequence[UUID]) -> None:
    """One task for the whole batch (thousands of tasks would cost more than the posting itself)."""
    from fedele.shared.tasks import dispatch_outbox_events

    try:
        dispatch_outbox_events.delay([str(event_id) for event_id in event_ids])
    except Exception:
        logger.exception("Could not enqueue dispatch of %s events; the sweep will retry them", len(event_ids))


def enqueue_dispatch(event_id: UUID) -> None:
    from fedele.shared.tasks import dispatch_outbox_event

    try:
        dispatch_outbox_event.delay(str(event_id))
    except Exception:
        # The broker is down: the periodic sweep delivers it later. The event is safe in the table.
        logger.exception("Could not enqueue dispatch of event %s; the sweep will retry it", event_id)


def _envelope(row: OutboxEvent) -> EventEnvelope:
    return EventEnvelope(
        event_id=row.event_id,
        event_type=row.event_type,
        aggregate_type=row.aggregate_type,
        aggregate_id=row.aggregate_id,
        occurred_at=row.occurred_at,
        payload=row.payload,
    )


def _run_once(subscription: _Subscription, envelope: EventEnvelope) -> bool:
    """Run a handler unless it already ran. Returns False if another dispatcher holds its receipt."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                HandlerReceipt.objects.create(
                    event_id=envelope.event_id, handler=subscription.name, processed_at=clock.now()
                )
        except IntegrityError:
            return False
        subscription.function(envelope)
    return True


def dispatch(event_id: UUID | str) -> bool:
    """Deliver one event to its handlers. Returns True when every handler has processed it."""
    row = OutboxEvent.objects.filter(event_id=event_id).first()
    if row is None or row.dispatched_at is not None:
        return True
    envelope = _envelope(row)
    done = set(HandlerReceipt.objects.filter(event_id=row.event_id).values_list("handler", flat=True))
    errors: list[str] = []
    for subscription in subscriptions_for(row.event_type):
        if subscription.name in done:
            continue
        try:
            _run_once(subscription, envelope)
        except Exception as error:
            logger.exception("Handler %s failed on event %s", subscription.name, row.event_id)
            errors.append(f"{subscription.name}: {type(error).__name__}: {error}")
    now = clock.now()
    if errors:
        attempts = row.attempts + 1
        backoff = min(timedelta(seconds=2**attempts), MAX_BACKOFF)
        OutboxEvent.objects.filter(pk=row.pk).update(
            attempts=attempts, next_attempt_at=now + backoff, last_error="\n".join(errors)[:4000]
        )
        return False
    OutboxEvent.objects.filter(pk=row.pk, dispatched_at__isnull=True).update(
        dispatched_at=now, attempts=row.attempts + 1, last_error=""
    )
    return True


def dispatch_due(limit: int = 500) -> int:
    """The sweep: deliver events whose first dispatch was lost or whose handlers must be retried."""
    now = clock.now()
    pending = (
        OutboxEvent.objects.filter(dispatched_at__isnull=True, occurred_at__lte=now - DISPATCH_GRACE)
        .exclude(next_attempt_at__gt=now)
        .order_by("id")
        .values_list("event_id", flat=True)[:limit]
    )
    delivered = 0
    for event_id in list(pending):
        if dispatch(event_id):
            delivered += 1
    return delivered

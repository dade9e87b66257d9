"""The router's decision on PostgreSQL in plain, prepared SQL: two statements per offer where the
ORM needed four (each ORM query spent 1.2–5.8 ms building and decoding in Python for 0.02–0.18 ms
of work in PostgreSQL; the task lock's join took 1.2 ms to plan on every call).

1. ``lock_task_and_agent``: the waiting task and its contact ``FOR UPDATE SKIP LOCKED`` (held by
   another router: no row), then the first-ranked agent ``FOR UPDATE``, in the house lock order
   Interaction → RoutingTask → Agent; it returns what the offer and the desktop push need and makes
   the transaction's commit asynchronous (see ``routing._assign``).
2. ``offer_if_room``: counts the agent's open contacts and, only if one more of the channel fits
   (``presence.has_room``'s rule), writes the offer, the task, the contact, the agent's last-offer
   time and the timeline row; it returns the new offer's id (None: no room) and the load counted.

The load is counted in the second statement on purpose. Under READ COMMITTED a statement sees the
rows committed when it started: had the agent's lock waited for another router's offer to commit,
a count in the same statement would miss that offer and overbook the agent. The second statement
starts with the agent's lock held, so it sees every contact given to the agent.

Both are prepared on the server (psycopg's server-side binding, ``prepare=True``) on first use in a
connection; Django's own cursors bind on the client and never prepare, so nothing else changes.
The statements still go through Django's cursor wrapper (query logging, CaptureQueriesContext).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from django.db import connection
from psycopg.types.json import Jsonb
from psycopg.types.numeric import Int8

from fedele.contact_center.models import (
    Agent,
    Channel,
    Interaction,
    InteractionEvent,
    InteractionState,
    Offer,
    OfferState,
    RoutingTask,
    RoutingTaskState,
)
from fedele.contact_center.services import presence

_LOAD_STATES = ", ".join(f"'{state}'" for state in presence.LOAD_STATES)

LOCK_TASK_AND_AGENT = f"""
    WITH task AS MATERIALIZED (
        SELECT t.id, t.interaction_id, t.queue_id, t.channel, t.effective_priority,
               t.offer_timeout_seconds, t.is_callback,
               i.public_id, i.number, i.network, i.direction, i.from_address, i.to_address,
               i.subject, i.customer_public_id, (i.attributes -> 'callback_of')::text
        FROM {RoutingTask._meta.db_table} t
        JOIN {Interaction._meta.db_table} i ON i.id = t.interaction_id
        WHERE t.id = %(task)s AND t.state = '{RoutingTaskState.WAITING}'
        FOR UPDATE OF t, i SKIP LOCKED
    ), agent AS MATERIALIZED (
        SELECT a.id, a.active, a.state, a.capacity::text
        FROM {Agent._meta.db_table} a
        WHERE a.id = %(agent)s AND EXISTS (SELECT FROM task)
        FOR UPDATE OF a
    )
    SELECT task.*, agent.*, set_config('synchronous_commit', 'off', true)
    FROM task LEFT JOIN agent ON true
"""  # noqa: S608 - table names and states come from the models, values are parameters

LOCK_AGENT = f"""
    SELECT a.id, a.active, a.state, a.capacity::text
    FROM {Agent._meta.db_table} a
    WHERE a.id = %(agent)s
    FOR UPDATE OF a
"""  # noqa: S608 - the table name comes from the model

OFFER_IF_ROOM = f"""
    WITH load AS MATERIALIZED (
        SELECT channel, count(*) AS open
        FROM {Interaction._meta.db_table}
        WHERE agent_id = %(agent)s AND state IN ({_LOAD_STATES})
        GROUP BY channel
    ), new_offer AS (
        INSERT INTO {Offer._meta.db_table}
            (public_id, task_id, interaction_id, agent_id, state, offered_at, expires_at, responded_at)
        SELECT %(offer)s, %(task)s, %(interaction)s, %(agent)s, '{OfferState.PENDING}', %(at)s,
               %(expires)s, NULL
        WHERE COALESCE((SELECT open FROM load WHERE channel = %(channel)s::text), 0) < %(capacity)s
          AND NOT (%(voice_blocks)s AND EXISTS (SELECT FROM load WHERE channel = 'voice'))
        RETURNING id
    ), task_row AS (
        UPDATE {RoutingTask._meta.db_table} SET state = '{RoutingTaskState.OFFERED}'
        WHERE id = %(task)s AND EXISTS (SELECT FROM new_offer)
    ), contact_row AS (
        UPDATE {Interaction._meta.db_table} SET state = '{InteractionState.OFFERED}', agent_id = %(agent)s
        WHERE id = %(interaction)s AND EXISTS (SELECT FROM new_offer)
    ), agent_row AS (
        UPDATE {Agent._meta.db_table} SET last_offered_at = %(at)s
        WHERE id = %(agent)s AND EXISTS (SELECT FROM new_offer)
    ), timeline AS (
        INSERT INTO {InteractionEvent._meta.db_table}
            (interaction_id, kind, data, provider_event_id, created_at)
        SELECT %(interaction)s, 'offered', %(event)s, '', %(at)s FROM new_offer
    )
    SELECT (SELECT id FROM new_offer),
           (SELECT COALESCE(jsonb_object_agg(channel, open), '{{}}'::jsonb) FROM load)::text
"""  # noqa: S608 - table names and states come from the models, values are parameters


@dataclass(frozen=True, slots=True)
class LockedTask:
    task_id: int
    interaction_id: int
    queue_id: int
    channel: str
    effective_priority: int
    offer_timeout_seconds: int
    is_callback: bool
    interaction_public_id: uuid.UUID
    number: str
    network: str
    direction: str
    from_address: str
    to_address: str
    subject: str
    customer_public_id: str
    callback: bool


@dataclass(frozen=True, slots=True)
class LockedAgent:
    agent_id: int
    active: bool
    state: str
    capacity: dict[str, int]

    @property
    def routable(self) -> bool:
        return self.active and self.state in presence.ROUTABLE_STATES


@dataclass(frozen=True, slots=True)
class OfferWritten:
    offer_id: int | None
    load: dict[str, int]


class _PreparingCursor(psycopg.Cursor[Any]):
    """A server-side binding cursor that prepares every statement (Django's cursor wrapper has no
    way to pass ``prepare``)."""

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
    ) -> Any:
        return super().execute(query, params, prepare=True, binary=binary)


class Statements:
    """The decision's prepared statements on the current connection (inside a transaction)."""

    def __init__(self) -> None:
        connection.ensure_connection()
        raw = connection.connection
        # Django turns psycopg's prepared statements off on the connection (for poolers in
        # transaction mode); they only ever apply to server-side binding cursors like this one,
        # never to the ORM's client-side binding cursors.
        if raw.prepare_threshold is None:
            raw.prepare_threshold = 5
        # Typed loosely: django-stubs expect a CursorWrapper where Django takes the database's cursor.
        cursor: Any = _PreparingCursor(raw)
        self.cursor = (
            connection.make_debug_cursor(cursor)
            if connection.queries_logged
            else connection.make_cursor(cursor)
        )

    def _row(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        self.cursor.execute(sql, params)
        row = self.cursor.fetchone()
        return tuple(row) if row is not None else None

    def lock_task_and_agent(
        self, *, task_id: int, agent_id: int
    ) -> tuple[LockedTask, LockedAgent | None] | None:
        """None when the task is no longer waiting or another router holds it or its contact."""
        row = self._row(LOCK_TASK_AND_AGENT, {"task": Int8(task_id), "agent": Int8(agent_id)})
        if row is None:
            return None
        callback_of = row[15]
        task = LockedTask(
            task_id=row[0],
            interaction_id=row[1],
            queue_id=row[2],
            channel=row[3],
            effective_priority=row[4],
            offer_timeout_seconds=row[5],
            is_callback=row[6],
            interaction_public_id=row[7],
            number=row[8],
            network=row[9],
            direction=row[10],
            from_address=row[11],
            to_address=row[12],
            subject=row[13],
            customer_public_id=row[14],
            # As the desktop reads ``attributes["callback_of"]``: any truthy value.
            callback=bool(json.loads(callback_of)) if callback_of else False,
        )
        return task, _agent(row[16:20])

    def lock_agent(self, agent_id: int) -> LockedAgent | None:
        return _agent(self._row(LOCK_AGENT, {"agent": Int8(agent_id)}))

    def offer_if_room(
        self,
        *,
        task: LockedTask,
        agent: LockedAgent,
        offer_public_id: uuid.UUID,
        at: datetime,
        expires_at: datetime,
        event_data: dict[str, Any],
    ) -> OfferWritten:
        row = self._row(
            OFFER_IF_ROOM,
            {
                "agent": Int8(agent.agent_id),
                "task": Int8(task.task_id),
                "interaction": Int8(task.interaction_id),
                "offer": offer_public_id,
                "at": at,
                "expires": expires_at,
                "channel": task.channel,
                "capacity": Int8(agent.capacity.get(task.channel, 0)),
                "voice_blocks": task.channel != Channel.VOICE and presence.voice_blocks_other_channels(),
                "event": Jsonb(event_data),
            },
        )
        assert row is not None
        offer_id, load = row
        return OfferWritten(offer_id=offer_id, load={str(k): int(v) for k, v in json.loads(load).items()})


def _agent(values: tuple[Any, ...] | None) -> LockedAgent | None:
    if values is None or values[0] is None:
        return None
    agent_id, active, state, capacity = values
    return LockedAgent(
        agent_id=agent_id,
        active=active,
        state=state,
        capacity=presence.capacity_from(json.loads(capacity) if capacity else None),
    )

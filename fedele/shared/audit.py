"""Audit log: who did what to which object, with before/after, when and from where."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from fedele.shared import clock, context
from fedele.shared.bulk import BulkTable, time_ordered_uuid
from fedele.shared.models import AuditLog

_AUDIT_FIELDS = (
    "public_id",
    "occurred_at",
    "actor_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "ip_address",
    "user_agent",
    "request_id",
)
_AUDIT_ROWS = BulkTable(AuditLog, _AUDIT_FIELDS)
# Values json.dumps writes as jsonable would leave them (record_many skips jsonable for flat rows).
_PLAIN = frozenset({str, int, bool, float, type(None)})


def jsonable(value: Any) -> Any:
    """Values as JSON keeps them: Decimals and dates as strings, UUIDs as text."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    return value


def record(
    *,
    action: str,
    object_type: str,
    object_id: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    actor_id: int | None = None,
) -> AuditLog:
    """Write one audit row in the caller's transaction. Only changed keys are kept when both sides exist."""
    ctx = context.current()
    before_data = jsonable(before) if before is not None else None
    after_data = jsonable(after) if after is not None else None
    if before_data is not None and after_data is not None:
        changed = {k for k in set(before_data) | set(after_data) if before_data.get(k) != after_data.get(k)}
        before_data = {k: before_data.get(k) for k in sorted(changed)}
        after_data = {k: after_data.get(k) for k in sorted(changed)}
    # Cut to the column widths: an e-mail used as actor label or object id (a failed login) may be
    # longer, and PostgreSQL refuses an over-long value where SQLite would keep it.
    return AuditLog.objects.create(
        occurred_at=clock.now(),
        actor_id=actor_id if actor_id is not None else ctx.actor_id,
        actor_label=ctx.actor_label[:200],
        action=action[:100],
        object_type=object_type[:100],
        object_id=str(object_id)[:64],
        before=before_data,
        after=after_data,
        ip_address=ctx.ip_address,
        user_agent=ctx.user_agent[:300],
        request_id=ctx.request_id[:64],
    )


def record_many(
    *,
    action: str,
    object_type: str,
    rows: Sequence[tuple[str, Mapping[str, Any]]],
    actor_id: int | None = None,
) -> int:
    """One audit row per (object_id, after) in one INSERT, for batch postings. Same context as ``record``."""
    ctx = context.current()
    now = clock.now()
    actor = actor_id if actor_id is not None else ctx.actor_id
    head = (now, actor, ctx.actor_label[:200], action[:100], object_type[:100])
    tail = (ctx.ip_address, ctx.user_agent[:300], ctx.request_id[:64])
    dumps = json.dumps
    plain = _PLAIN
    new_id = time_ordered_uuid
    values = []
    for object_id, after in rows:
        # A flat row of plain values (the usual batch row) is already what jsonable would make of it.
        flat = all(type(key) is str and type(value) in plain for key, value in after.items())
        text = dumps(after if flat else jsonable(after))
        values.append((new_id(), *head, str(object_id)[:64], None, text, *tail))
    _AUDIT_ROWS.insert_tuples(values)
    return len(rows)

"""Audit rows: who, what, before/after (changed keys only), where from; values as JSON keeps them."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal

import pytest

from fedele.shared import audit, context
from fedele.shared.models import AuditLog

MOMENT = datetime.datetime(2026, 7, 1, 12, 30, tzinfo=datetime.UTC)


def test_jsonable_converts_decimals_dates_and_uuids() -> None:
    identifier = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert audit.jsonable(
        {
            "amount": Decimal("12.30"),
            "when": MOMENT,
            "day": datetime.date(2026, 7, 1),
            "id": identifier,
            "tags": ("a", "b"),
            3: None,
        }
    ) == {
        "amount": "12.30",
        "when": "2026-07-01T12:30:00+00:00",
        "day": "2026-07-01",
        "id": "12345678-1234-5678-1234-567812345678",
        "tags": ["a", "b"],
        "3": None,
    }


@pytest.mark.django_db
def test_only_changed_keys_are_kept_and_the_context_is_recorded(time_machine) -> None:
    time_machine.move_to(MOMENT, tick=False)
    ctx = context.RequestContext(
        actor_id=None, actor_label="ops@example.it", ip_address="192.0.2.7", user_agent="cli", request_id="r1"
    )
    with context.acting(ctx):
        row = audit.record(
            action="thing.updated",
            object_type="thing",
            object_id="t-1",
            before={"name": "a", "city": "Roma", "amount": Decimal("1.00")},
            after={"name": "b", "city": "Roma", "amount": Decimal("1.0"), "new": 1},
        )
    row.refresh_from_db()
    assert row.before == {"amount": "1.00", "name": "a", "new": None}
    assert row.after == {"amount": "1.0", "name": "b", "new": 1}
    assert (row.occurred_at, row.actor_label, row.ip_address, row.user_agent, row.request_id) == (
        MOMENT,
        "ops@example.it",
        "192.0.2.7",
        "cli",
        "r1",
    )


@pytest.mark.django_db
def test_one_sided_snapshots_are_kept_whole() -> None:
    created = audit.record(action="x.created", object_type="x", object_id="1", after={"a": 1, "b": 2})
    deleted = audit.record(action="x.deleted", object_type="x", object_id="1", before={"a": 1})
    assert (created.before, created.after) == (None, {"a": 1, "b": 2})
    assert (deleted.before, deleted.after) == ({"a": 1}, None)


@pytest.mark.django_db
def test_over_long_values_are_cut_to_the_columns() -> None:
    """An e-mail as object id may pass the column's 64 characters: cut, not a 500 on PostgreSQL."""
    email = "a" * 90 + "@example.it"
    ctx = context.RequestContext(actor_label="l" * 250, request_id="r" * 80)
    with context.acting(ctx):
        audit.record(action="login.failed", object_type="login", object_id=email)
    row = AuditLog.objects.get(action="login.failed")
    assert row.object_id == email[:64]
    assert row.actor_label == "l" * 200
    assert row.request_id == "r" * 64

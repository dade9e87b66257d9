"""Gapless human numbers per series (INV-2026-000001), safe under concurrency.

The counter row is incremented with a single UPDATE ... RETURNING inside the caller's transaction:
PostgreSQL holds the row lock until commit, SQLite (BEGIN IMMEDIATE) holds the database write lock.
If the caller rolls back, the increment rolls back with it, so numbers never skip.
"""

from __future__ import annotations

from django.db import connection, transaction

from fedele.shared.errors import ValidationFailed
from fedele.shared.models import SequenceCounter


def next_value(series: str) -> int:
    if not series or len(series) > 64:
        raise ValidationFailed("A sequence series needs a name of 1-64 characters.", code="invalid_series")
    table = SequenceCounter._meta.db_table
    # One statement creates the series at 1 or takes the next value; no savepoint is needed (a failure
    # fails the caller's transaction anyway), and the row lock lasts until the caller commits.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (series, last_value) VALUES (%s, 1) "  # noqa: S608
            f"ON CONFLICT (series) DO UPDATE SET last_value = {table}.last_value + 1 RETURNING last_value",
            [series],
        )
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


def next_values(series: str, count: int) -> list[int]:
    """``count`` consecutive values of ``series`` with one statement (a group of records numbered
    together): the counter row is locked once and moved on by ``count``; the values are in order, so
    the caller numbers its records in its own order. Rolls back with the caller like ``next_value``."""
    if not series or len(series) > 64:
        raise ValidationFailed("A sequence series needs a name of 1-64 characters.", code="invalid_series")
    if count < 1:
        raise ValueError("next_values needs a count of at least 1")
    table = SequenceCounter._meta.db_table
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (series, last_value) VALUES (%s, %s) "  # noqa: S608
            f"ON CONFLICT (series) DO UPDATE SET last_value = {table}.last_value + EXCLUDED.last_value "
            "RETURNING last_value",
            [series, count],
        )
        row = cursor.fetchone()
    assert row is not None
    last = int(row[0])
    return list(range(last - count + 1, last + 1))


def next_number(prefix: str, *, year: int | None = None, width: int = 6) -> str:
    """'INV', 2026 -> 'INV-2026-000001'; 'T' -> 'T-000001'. Each (prefix, year) is its own series."""
    series = f"{prefix}-{year}" if year is not None else prefix
    value = next_value(series)
    return f"{series}-{value:0{width}d}"


def current_value(series: str) -> int:
    counter = SequenceCounter.objects.filter(series=series).first()
    return counter.last_value if counter else 0

"""Ticket full-text search behind one interface, on PostgreSQL or SQLite.

PostgreSQL matches the stored column ``search_vector`` (= to_tsvector('simple', search_text), GIN
index, migration 0003) with ``websearch_to_tsquery('simple', q)`` and ranks with ts_rank, then recency.
Only the most recent ``RANK_WINDOW`` matches are ranked: a query matching half a million tickets still
answers quickly, and the newest tickets are the ones people look for.
SQLite matches the FTS5 table ``support_ticket_fts`` (kept in step by triggers) and ranks with bm25().

Ticket numbers ("T-000123", "t123", "123") and exact e-mail addresses are looked up directly.
"""

from __future__ import annotations

import re

from django.db import connection
from django.db.models import QuerySet

from fedele.support.models import Ticket

RANK_WINDOW = 1000
MAX_QUERY_LENGTH = 200
_NUMBER = re.compile(r"^\s*(?:t-?)?(\d{1,9})\s*$", re.IGNORECASE)
_EMAIL = re.compile(r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$")
_WORD = re.compile(r"\w+", re.UNICODE)
MATCH_SQL_POSTGRES = "support_ticket.search_vector @@ websearch_to_tsquery('simple'::regconfig, %s)"
RANK_SQL_POSTGRES = (
    "SELECT id FROM support_ticket WHERE id = ANY(%s) "
    "ORDER BY ts_rank(search_vector, websearch_to_tsquery('simple'::regconfig, %s)) DESC, id DESC LIMIT %s"
)


def ticket_number_for(query: str) -> str | None:
    """'T-000123', 't123' or '123' → 'T-000123' (None when the query is not a number)."""
    match = _NUMBER.match(query)
    if match is None:
        return None
    return f"T-{int(match.group(1)):06d}"


def is_email(query: str) -> bool:
    return bool(_EMAIL.match(query))


def fts5_query(query: str) -> str:
    """User text as a safe FTS5 expression: every word quoted (no operators), all required."""
    words = _WORD.findall(query.lower())[:20]
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def _sqlite_ranked_ids(query: str, limit: int) -> list[int]:
    expression = fts5_query(query)
    if not expression:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rowid FROM support_ticket_fts WHERE support_ticket_fts MATCH %s "
            "ORDER BY bm25(support_ticket_fts), rowid DESC LIMIT %s",
            [expression, limit],
        )
        return [int(row[0]) for row in cursor.fetchall()]


def full_text_filter(queryset: QuerySet[Ticket], query: str) -> QuerySet[Ticket]:
    """Only the tickets matching the full-text query (no ranking, the caller orders)."""
    query = query.strip()[:MAX_QUERY_LENGTH]
    if not query:
        return queryset
    if connection.vendor == "postgresql":
        return queryset.extra(where=[MATCH_SQL_POSTGRES], params=[query])  # noqa: S610
    expression = fts5_query(query)
    if not expression:
        return queryset.none()
    return queryset.extra(
        where=[
            "support_ticket.id IN (SELECT rowid FROM support_ticket_fts WHERE support_ticket_fts MATCH %s)"
        ],
        params=[expression],
    )


def ranked_search(queryset: QuerySet[Ticket], query: str, *, limit: int = 50) -> list[Ticket]:
    """Tickets of ``queryset`` (already scoped) matching ``query``, best first."""
    query = query.strip()[:MAX_QUERY_LENGTH]
    if not query or limit <= 0:
        return []
    exact: list[Ticket] = []
    number = ticket_number_for(query)
    if number is not None:
        exact = list(queryset.filter(number=number)[:1])
    elif is_email(query):
        exact = list(queryset.filter(requester_email=query.strip().lower()).order_by("-id")[:limit])
    seen = {ticket.pk for ticket in exact}
    wanted = limit - len(exact)
    if wanted <= 0:
        return exact[:limit]
    if connection.vendor == "postgresql":
        # Two plain statements, never a subquery: the match must name the outer table's column.
        window = list(
            queryset.extra(where=[MATCH_SQL_POSTGRES], params=[query])  # noqa: S610
            .order_by("-id")
            .values_list("pk", flat=True)[:RANK_WINDOW]
        )
        if not window:
            return exact[:limit]
        with connection.cursor() as cursor:
            cursor.execute(RANK_SQL_POSTGRES, [window, query, wanted + len(seen)])
            best = [row[0] for row in cursor.fetchall()]
        position = {pk: index for index, pk in enumerate(best)}
        ranked = sorted(queryset.filter(pk__in=best), key=lambda ticket: position[ticket.pk])
    else:
        ids = _sqlite_ranked_ids(query, RANK_WINDOW)
        position = {pk: index for index, pk in enumerate(ids)}
        matched = list(queryset.filter(pk__in=ids))
        ranked = sorted(matched, key=lambda ticket: position[ticket.pk])[: wanted + len(seen)]
    return [*exact, *[t for t in ranked if t.pk not in seen]][:limit]

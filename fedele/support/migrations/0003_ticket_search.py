"""Full-text search on tickets' search_text (maintained by the ticket services).

PostgreSQL: a stored generated column search_vector = to_tsvector('simple', search_text) with a GIN
index, queried with websearch_to_tsquery and ranked with ts_rank on the stored vector (computing the
vector again for every ranked row is what made ranking slow). The column is not a model field: only the
search selector reads it, and PostgreSQL keeps it in step with search_text on every write.
SQLite: an FTS5 external-content table kept in step by triggers, queried with MATCH and ranked with
bm25(). The same selector (support.selectors.search) picks the right query for the database in use.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

POSTGRES_FORWARD = [
    "ALTER TABLE support_ticket ADD COLUMN IF NOT EXISTS search_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, search_text)) STORED",
    "CREATE INDEX IF NOT EXISTS support_ticket_search_gin ON support_ticket USING gin (search_vector)",
]
POSTGRES_REVERSE = [
    "DROP INDEX IF EXISTS support_ticket_search_gin",
    "ALTER TABLE support_ticket DROP COLUMN IF EXISTS search_vector",
]

SQLITE_FORWARD = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS support_ticket_fts USING fts5("
    "search_text, content='support_ticket', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS support_ticket_fts_insert AFTER INSERT ON support_ticket BEGIN "
    "INSERT INTO support_ticket_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS support_ticket_fts_delete AFTER DELETE ON support_ticket BEGIN "
    "INSERT INTO support_ticket_fts(support_ticket_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS support_ticket_fts_update AFTER UPDATE OF search_text ON support_ticket "
    "BEGIN "
    "INSERT INTO support_ticket_fts(support_ticket_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO support_ticket_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    # Tickets written before this migration.
    "INSERT INTO support_ticket_fts(support_ticket_fts) VALUES ('rebuild')",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS support_ticket_fts_update",
    "DROP TRIGGER IF EXISTS support_ticket_fts_delete",
    "DROP TRIGGER IF EXISTS support_ticket_fts_insert",
    "DROP TABLE IF EXISTS support_ticket_fts",
]


def _run(schema_editor: Any, statements: dict[str, list[str]]) -> None:
    for statement in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement)


def forward(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, {"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD})


def reverse(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, {"postgresql": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE})


class Migration(migrations.Migration):
    dependencies = [("support", "0002_defaults")]

    operations = [migrations.RunPython(forward, reverse)]

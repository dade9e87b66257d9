"""Full-text indexes for knowledge-base search (hand-written: they depend on the database).

PostgreSQL: one GIN index per language on ``to_tsvector(<language config>, search_text)``, partial on
the language, matching the expressions in ``fedele.support.kb.search_index``.
SQLite: an FTS5 table over ``support_article.search_text`` (external content, accents and case
folded) kept in step by triggers, filled once from the existing rows.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

POSTGRES_CREATE = [
    "CREATE INDEX IF NOT EXISTS support_article_fts_it ON support_article "
    "USING GIN (to_tsvector('italian', search_text)) WHERE language = 'it'",
    "CREATE INDEX IF NOT EXISTS support_article_fts_en ON support_article "
    "USING GIN (to_tsvector('english', search_text)) WHERE language = 'en'",
]
POSTGRES_DROP = [
    "DROP INDEX IF EXISTS support_article_fts_it",
    "DROP INDEX IF EXISTS support_article_fts_en",
]
SQLITE_CREATE = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS support_article_fts USING fts5("
    "search_text, content='support_article', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS support_article_fts_insert AFTER INSERT ON support_article BEGIN "
    "INSERT INTO support_article_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS support_article_fts_delete AFTER DELETE ON support_article BEGIN "
    "INSERT INTO support_article_fts(support_article_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS support_article_fts_update AFTER UPDATE OF search_text ON support_article "
    "BEGIN INSERT INTO support_article_fts(support_article_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO support_article_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "INSERT INTO support_article_fts(support_article_fts) VALUES ('rebuild')",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS support_article_fts_insert",
    "DROP TRIGGER IF EXISTS support_article_fts_delete",
    "DROP TRIGGER IF EXISTS support_article_fts_update",
    "DROP TABLE IF EXISTS support_article_fts",
]


def _run(schema_editor: Any, statements: dict[str, list[str]]) -> None:
    for statement in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement)


def create(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, {"postgresql": POSTGRES_CREATE, "sqlite": SQLITE_CREATE})


def drop(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, {"postgresql": POSTGRES_DROP, "sqlite": SQLITE_DROP})


class Migration(migrations.Migration):
    dependencies = [("support", "0003_ticket_search")]

    operations = [migrations.RunPython(create, drop)]

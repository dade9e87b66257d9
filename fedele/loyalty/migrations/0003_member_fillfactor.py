"""Members' rows keep room on their page for a new version (PostgreSQL ``fillfactor`` 85).

Every posting rewrites its member's row (the balance caches). When the page has room, PostgreSQL
writes the new version beside the old one without touching the member table's fourteen indexes (a
"HOT" update); on a full page (every page of a table filled by inserts or an import, at the default
fillfactor 100) each first update moves the row and inserts fourteen index entries. Measured on a batch
of 500 earns: 7 ms instead of about 60 ms for the balance update. Applies to the pages written from
now on (rows enrolled later, and rows once moved); ``VACUUM FULL loyalty_member`` repacks the rest.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

FILLFACTOR = 85


def set_fillfactor(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    table = apps.get_model("loyalty", "Member")._meta.db_table
    schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {FILLFACTOR})")


def reset_fillfactor(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    table = apps.get_model("loyalty", "Member")._meta.db_table
    schema_editor.execute(f"ALTER TABLE {table} RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0002_fraudflag_public_id")]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]

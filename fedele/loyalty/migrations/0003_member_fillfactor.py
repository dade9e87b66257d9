"""Members' rows keep room on their page for new versions (PostgreSQL ``fillfactor`` 70).

Every posting rewrites its member's row (the balance caches). When the page has room, PostgreSQL
writes the new version beside the old one without touching the member table's fourteen indexes (a
"HOT" update); on a full page (every page of a table filled by enrolments or an import, at the
default fillfactor 100) each first update moves the row and inserts fourteen index entries. Measured
with batches of 500 earns on 20,000 freshly enrolled members: 38% of the balance updates were HOT at
fillfactor 100, 56% at 85, 81% at 70 (the update's database time per batch: about 60, 14 and 11 ms).
Applies to the pages written from now on (members enrolled later, rows once moved); ``VACUUM FULL
loyalty_member`` repacks the existing rows.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

FILLFACTOR = 70


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

"""Import tickets from a Zendesk or Zammad export file, with no size limit.

    python manage.py support_import --source zendesk --format json tickets.json
    python manage.py support_import --source zammad --format csv --mode good_rows tickets.csv

Newline-delimited JSON (Zendesk's full export) is read line by line; other files are read whole.
Tickets are written in chunks; re-running the same file skips the tickets already imported. Progress
goes to stderr, the result (one JSON object) to stdout. Exit status 1 when tickets were refused.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from fedele.shared.errors import ApplicationError
from fedele.support.services import imports as services


class Command(BaseCommand):
    help = "Import tickets from a Zendesk or Zammad export (CSV or JSON), with a progress bar."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--source", choices=services.SOURCES, required=True)
        parser.add_argument("--format", choices=services.FORMATS, required=True, dest="file_format")
        parser.add_argument(
            "--mode",
            choices=services.MODES,
            default="good_rows",
            help="good_rows (default): import the good tickets, commit in chunks; "
            "all_or_none: one transaction, nothing is imported when a ticket is wrong",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        size = path.stat().st_size
        self._started = time.monotonic()
        self._estimate = max(1, size // 700)  # tickets, from a typical export's bytes per ticket
        try:
            with path.open("rb") as stream:
                result = services.ticket_import_stream(
                    actor=None,
                    source=options["source"],
                    file_format=options["file_format"],
                    stream=stream,
                    mode=options["mode"],
                    progress=self._progress,
                )
        except ApplicationError as error:
            raise CommandError(error.message) from error
        self.stderr.write("")
        self.stdout.write(
            json.dumps(
                {
                    "import": str(result.public_id),
                    "status": result.status,
                    "total": result.total,
                    "imported": result.imported,
                    "skipped": result.skipped,
                    "refused": services.bad_ticket_count(result),
                    "messages": result.messages_imported,
                    "seconds": round(time.monotonic() - self._started, 2),
                    "errors": result.errors[:20],
                }
            )
        )
        if result.errors:
            raise SystemExit(1)

    def _progress(self, done: int) -> None:
        estimate = max(self._estimate, done)
        width = 30
        filled = int(width * done / estimate)
        elapsed = max(time.monotonic() - self._started, 1e-6)
        self.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,} tickets read, {done / elapsed:,.0f}/s",
            ending="",
        )
        self.stderr.flush()

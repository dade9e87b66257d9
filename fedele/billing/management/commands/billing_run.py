"""manage.py billing_run [--as-of YYYY-MM-DD] [--resume RUN_ID] [--batch-size N] [--drafts] [--workers N]

Invoices every subscription due on or before the date (default: today in Europe/Rome). A run that
crashed (stale heartbeat) or failed for the same date is resumed instead of starting a new one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from fedele.billing.models import BillingRun
from fedele.billing.services.billing_run import (
    BATCH_SIZE,
    billing_run_execute,
    billing_run_latest_resumable,
    billing_run_start,
)
from fedele.billing.services.invoicing import business_today
from fedele.shared.errors import ApplicationError


class Command(BaseCommand):
    help = "Run billing: invoice every subscription due on or before a date (resumable)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--as-of", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default today)"
        )
        parser.add_argument("--resume", type=int, default=None, help="Resume this run id")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
        parser.add_argument("--drafts", action="store_true", help="Create drafts instead of issuing")
        parser.add_argument(
            "--workers", type=int, default=1, help="Processes sharing the run (one per core is a good start)"
        )
        parser.add_argument("--partition", default="0/1", help="k/n: this process takes ids k modulo n")

    def _progress(self, run: BillingRun) -> None:
        due = max(run.subscriptions_due, 1)
        done = min(run.subscriptions_processed, due)
        bar = "#" * (30 * done // due)
        self.stderr.write(
            f"\r[{bar:<30}] {run.subscriptions_processed}/{run.subscriptions_due} subscriptions, "
            f"{run.invoices_created} invoices, {len(run.errors or [])} errors",
            ending="",
        )
        self.stderr.flush()

    @staticmethod
    def _partition(text: str) -> tuple[int, int]:
        try:
            part, parts = (int(piece) for piece in text.split("/"))
        except ValueError as error:
            raise CommandError("--partition is k/n, e.g. 0/2.") from error
        if not 0 <= part < parts:
            raise CommandError("--partition needs 0 <= k < n.")
        return part, parts

    def _in_processes(self, run: BillingRun, workers: int, batch_size: int) -> BillingRun:
        """One child process per partition, each a plain `billing_run --resume --partition k/n`."""
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        children = [
            subprocess.Popen(  # noqa: S603  (our own interpreter and manage.py, fixed arguments)
                [
                    sys.executable,
                    manage,
                    "billing_run",
                    "--resume",
                    str(run.pk),
                    "--partition",
                    f"{part}/{workers}",
                    "--batch-size",
                    str(batch_size),
                ],
                stdout=subprocess.DEVNULL,
            )
            for part in range(workers)
        ]
        failed = [child.args for child in children if child.wait() != 0]
        if failed:
            raise CommandError(
                f"{len(failed)} of {workers} billing-run processes failed; run it again to resume."
            )
        run.refresh_from_db()
        return run

    def handle(self, *args: Any, **options: Any) -> None:
        as_of: date = options["as_of"] or business_today()
        batch_size: int = options["batch_size"]
        if not 1 <= batch_size <= 10_000:
            raise CommandError("--batch-size must be between 1 and 10000.")
        try:
            if options["resume"]:
                run = BillingRun.objects.filter(pk=options["resume"]).first()
                if run is None:
                    raise CommandError(f"No billing run {options['resume']}.")
            else:
                run = billing_run_latest_resumable(as_of) or billing_run_start(
                    as_of=as_of, finalise=not options["drafts"], execute=False
                )
            self.stderr.write(f"billing run {run.pk} as of {run.as_of}: {run.subscriptions_due} due")
            workers: int = options["workers"]
            if not 1 <= workers <= 64:
                raise CommandError("--workers must be between 1 and 64.")
            if workers > 1:
                run = self._in_processes(run, workers, batch_size)
            else:
                run = billing_run_execute(
                    run.pk,
                    batch_size=batch_size,
                    on_progress=self._progress,
                    partition=self._partition(options["partition"]),
                )
        except ApplicationError as error:
            raise CommandError(error.message) from error
        self.stderr.write("")
        self.stdout.write(
            json.dumps(
                {
                    "run_id": run.pk,
                    "as_of": run.as_of.isoformat(),
                    "status": run.status,
                    "subscriptions_due": run.subscriptions_due,
                    "subscriptions_processed": run.subscriptions_processed,
                    "invoices_created": run.invoices_created,
                    "errors": len(run.errors or []),
                }
            )
        )

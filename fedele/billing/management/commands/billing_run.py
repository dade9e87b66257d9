"""manage.py billing_run [--as-of YYYY-MM-DD] [--resume RUN_ID] [--batch-size N] [--drafts]

Invoices every subscription due on or before the date (default: today in Europe/Rome). A run that
crashed (stale heartbeat) or failed for the same date is resumed instead of starting a new one.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

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
            run = billing_run_execute(run.pk, batch_size=batch_size, on_progress=self._progress)
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

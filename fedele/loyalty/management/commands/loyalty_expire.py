"""Run the ledger's periodic work now: mature pending points, release timed-out reservations, expire
lots whose last day has passed, send the expiry notices. Idempotent; the scheduler runs the same.

    python manage.py loyalty_expire [--programme CODE] [--today YYYY-MM-DD] [--no-notices]
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from fedele.loyalty.models import Programme
from fedele.loyalty.services.ledger import (
    expiry_notices_send,
    lots_expire_due,
    lots_mature_due,
    reservations_expire_due,
)


class Command(BaseCommand):
    help = "Mature pending points, release timed-out reservations, expire due lots, send expiry notices."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--programme", default="", help="Only this programme (its code).")
        parser.add_argument("--today", default="", help="Expire as if today were this date (YYYY-MM-DD).")
        parser.add_argument("--no-notices", action="store_true", help="Do not send expiry notices.")

    def handle(self, *args: Any, **options: Any) -> None:
        programme = None
        if options["programme"]:
            programme = Programme.objects.filter(code=options["programme"]).first()
            if programme is None:
                raise CommandError(f"Unknown programme '{options['programme']}'.")
        today = None
        if options["today"]:
            try:
                today = date.fromisoformat(options["today"])
            except ValueError as error:
                raise CommandError("--today must be a date like 2026-04-01.") from error
        matured = lots_mature_due(programme=programme)
        released = reservations_expire_due()
        expired = lots_expire_due(today=today, programme=programme)
        notices = 0 if options["no_notices"] else expiry_notices_send(today=today)
        self.stdout.write(
            f"matured lots: {matured}; released reservations: {released}; "
            f"expired lots: {expired}; expiry notices: {notices}"
        )

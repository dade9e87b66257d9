"""The contact-center router for production: runs the router every ``--interval`` seconds until
stopped (several copies may run at once: decisions lock rows, so none is made twice)."""

from __future__ import annotations

import signal
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections


class Command(BaseCommand):
    help = "Offer waiting contacts to agents in a loop (expired offers, overflow and wrap-up included)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between runs")
        parser.add_argument("--limit", type=int, default=500, help="offers per run at most")
        parser.add_argument("--once", action="store_true", help="one run, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        from fedele.contact_center.services.routing import route_pending

        running = True

        def stop(_signum: int, _frame: object) -> None:
            nonlocal running
            running = False

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while running:
            started = time.monotonic()
            made = route_pending(limit=options["limit"])
            if options["verbosity"] > 1 or options["once"]:
                self.stdout.write(f"{made} offers")
            if options["once"]:
                return
            time.sleep(max(0.0, options["interval"] - (time.monotonic() - started)))
            # A long-running loop gives back a broken or aged connection between runs, as a request would.
            close_old_connections()

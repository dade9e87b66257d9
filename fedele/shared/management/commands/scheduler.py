"""Embedded-mode scheduler: runs the periodic jobs of PERIODIC_JOBS in-process, on their intervals.

Production uses Celery beat with the same schedule (config/celery.py); never run both.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

from celery import current_app
from django.core.management.base import BaseCommand, CommandError

from fedele.shared.scheduler import PERIODIC_JOBS

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run periodic jobs in-process (embedded mode)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="Run every job once and exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        stopping = False

        def stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        # Celery discovers tasks modules lazily; load them all so every scheduled name resolves.
        current_app.loader.import_default_modules()
        missing = [job.task_name for job in PERIODIC_JOBS.values() if job.task_name not in current_app.tasks]
        if missing:
            raise CommandError(f"Scheduled tasks not registered: {', '.join(missing)}")
        next_run = dict.fromkeys(PERIODIC_JOBS, 0.0)
        while not stopping:
            now = time.monotonic()
            for name, job in PERIODIC_JOBS.items():
                if now >= next_run[name]:
                    try:
                        current_app.tasks[job.task_name].apply()
                    except Exception:
                        logger.exception("Periodic job %s failed", name)
                    next_run[name] = now + job.every_seconds
            if options["once"]:
                return
            time.sleep(1)

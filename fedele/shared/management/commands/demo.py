"""`manage.py demo`: a believable Italian company, built through the real services."""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand
from django.test.utils import override_settings
from faker import Faker

from fedele.shared import demo
from fedele.shared.models import SequenceCounter

DEMO_MARKER_SERIES = "DEMO-LOADED"


class Command(BaseCommand):
    help = "Load demo data (Faker it_IT): ~500 customers, staff per role, and every module's own demo data."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing if demo data was loaded already."
        )
        parser.add_argument("--customers", type=int, default=500)
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument("--print-logins", action="store_true", help="Only print the demo logins.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["print_logins"]:
            self._print_logins()
            return
        if options["if_empty"] and SequenceCounter.objects.filter(series=DEMO_MARKER_SERIES).exists():
            self.stdout.write("Demo data already loaded.")
            return
        faker = Faker("it_IT")
        faker.seed_instance(options["seed"])

        def progress(label: str, done: int, total: int) -> None:
            width = 30
            filled = int(width * done / max(total, 1))
            sys.stdout.write(f"\r  {label:<22} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
            if done >= total:
                sys.stdout.write("\n")
            sys.stdout.flush()

        context = demo.DemoContext(
            faker=faker, seed=options["seed"], options={"customers": options["customers"]}, progress=progress
        )
        started = time.monotonic()
        # Demo customers are fictional: the invoices, reminders and notices the history generates are
        # not mailed anywhere (the console backend would print every one of them).
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
            for name, loader in demo.loaders():
                self.stdout.write(f"Loading demo data: {name}")
                loader(context)
        SequenceCounter.objects.get_or_create(series=DEMO_MARKER_SERIES, defaults={"last_value": 1})
        summary = ", ".join(f"{key}: {value}" for key, value in sorted(context.counts.items()))
        self.stdout.write(
            self.style.SUCCESS(f"Demo data loaded in {time.monotonic() - started:.1f}s ({summary}).")
        )
        self._print_logins()

    def _print_logins(self) -> None:
        from fedele.shared.demo import DEMO_PASSWORD

        self.stdout.write(f"  Demo logins (password for all: {DEMO_PASSWORD}):")
        for email, description in demo.logins():
            self.stdout.write(f"    {email:<34} {description}")

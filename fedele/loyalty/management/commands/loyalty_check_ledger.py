"""Check the loyalty ledger: every transaction balances, every member balance and lot equals its
entries, the liability equals the member balances. Exit status 1 (and one line per problem) when not.

    python manage.py loyalty_check_ledger [--programme CODE]
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from fedele.loyalty.models import Programme
from fedele.loyalty.services.ledger import ledger_check


class Command(BaseCommand):
    help = "Verify the loyalty ledger invariants; exit 1 and list the problems when any is broken."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--programme", default="", help="Only this programme (its code).")

    def handle(self, *args: Any, **options: Any) -> None:
        programme = None
        if options["programme"]:
            programme = Programme.objects.filter(code=options["programme"]).first()
            if programme is None:
                raise CommandError(f"Unknown programme '{options['programme']}'.")
        problems = ledger_check(programme=programme)
        if not problems:
            self.stdout.write(self.style.SUCCESS("Loyalty ledger OK: no problems found."))
            return
        for problem in problems:
            self.stdout.write(problem)
        raise CommandError(f"{len(problems)} problem(s) in the loyalty ledger.", returncode=1)

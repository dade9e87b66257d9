"""manage.py support_imap_poll [--mailbox ADDRESS]

Fetches new mail from every active IMAP mailbox (or one) once, as the scheduler does every minute.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from fedele.support.email.imap import imap_mailboxes, poll_mailbox


class Command(BaseCommand):
    help = "Fetch new support mail from the IMAP mailboxes once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--mailbox", default="", help="Only this mailbox address")

    def handle(self, *args: Any, **options: Any) -> None:
        mailboxes = imap_mailboxes()
        if options["mailbox"]:
            mailboxes = [m for m in mailboxes if m.address.lower() == options["mailbox"].lower()]
            if not mailboxes:
                raise CommandError(f"No active IMAP mailbox {options['mailbox']}.")
        failed = 0
        for mailbox in mailboxes:
            result = poll_mailbox(mailbox)
            outcomes = ", ".join(f"{name} {count}" for name, count in sorted(result.outcomes.items()))
            line = f"{mailbox.address}: {result.fetched} fetched" + (f" ({outcomes})" if outcomes else "")
            if result.error:
                failed += 1
                self.stderr.write(f"{line}; error: {result.error}")
            else:
                self.stdout.write(line)
        if not mailboxes:
            self.stdout.write("No active IMAP mailbox.")
        if failed:
            raise CommandError(f"{failed} mailbox(es) failed.")

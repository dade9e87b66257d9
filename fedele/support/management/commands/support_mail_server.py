"""manage.py support_mail_server [--host 127.0.0.1] [--port 2525] [--smtp]

Receives support mail over LMTP (default; what Postfix's ``lmtp:`` transport speaks) or plain SMTP
and turns each message into a ticket or a reply. Runs until interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from fedele.support.email.receiver import SupportController
from fedele.support.services.email_inbound import max_email_bytes


class Command(BaseCommand):
    help = "Receive support e-mail over LMTP (or SMTP with --smtp)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=2525, help="Port to listen on (default 2525)")
        parser.add_argument("--smtp", action="store_true", help="Speak SMTP instead of LMTP")

    def handle(self, *args: Any, **options: Any) -> None:
        controller = SupportController(hostname=options["host"], port=options["port"], smtp=options["smtp"])
        stop = threading.Event()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signal_number, lambda *_: stop.set())
        controller.start()
        protocol = "SMTP" if options["smtp"] else "LMTP"
        self.stdout.write(
            f"Support mail server ({protocol}) on {options['host']}:{options['port']}, "
            f"messages up to {max_email_bytes() // (1024 * 1024)} MiB. Ctrl-C to stop."
        )
        try:
            stop.wait()
        finally:
            controller.stop()
            self.stdout.write("Stopped.")

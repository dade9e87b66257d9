"""``manage.py cc_sip_server``: run fedele's SIP user agent in the foreground (see
docs/contact-center-sip.md). Point the PBX's trunk or a ring group's overflow at it."""

from __future__ import annotations

import asyncio
import ipaddress
import signal
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from fedele.contact_center.telephony.sip import register
from fedele.contact_center.telephony.sip.server import SipServer


class Command(BaseCommand):
    help = "Run the contact center's SIP user agent (answers calls, runs the IVR, hands calls to agents)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (UDP)")
        parser.add_argument("--port", type=int, default=5060)
        parser.add_argument(
            "--advertise",
            default="",
            help="address put in Contact and SDP (needed when listening on 0.0.0.0)",
        )
        parser.add_argument("--rtp-ports", default="", help="RTP port range, e.g. 20000-20999 (default: any)")
        parser.add_argument(
            "--flow", default="", help="IVR flow code for every call (default: by dialled number)"
        )
        parser.add_argument(
            "--answer-after", type=float, default=0.0, help="seconds of ringing before answering"
        )
        parser.add_argument(
            "--allow",
            default="",
            help="comma-separated addresses or networks allowed to send SIP (the PBX); default: anyone",
        )
        parser.add_argument("--prompts", default="", help="directory of pre-rendered prompt WAVs")

    def handle(self, *args: Any, **options: Any) -> None:
        rtp_ports: tuple[int, int] | None = None
        if options["rtp_ports"]:
            try:
                low, high = (int(part) for part in str(options["rtp_ports"]).split("-", 1))
            except ValueError as error:
                raise CommandError("--rtp-ports is LOW-HIGH, e.g. 20000-20999") from error
            if not 1024 <= low < high <= 65_535:
                raise CommandError("--rtp-ports must be within 1024-65535, low below high")
            rtp_ports = (low, high)
        if options["host"] in ("0.0.0.0", "::") and not options["advertise"]:  # noqa: S104 - refusing it
            raise CommandError("listening on every address: say which one to advertise with --advertise")
        if not 0 <= options["port"] <= 65_535:
            raise CommandError("--port must be within 0-65535")
        allowed = [part.strip() for part in str(options["allow"]).split(",") if part.strip()]
        for source in allowed:
            try:
                ipaddress.ip_network(source, strict=False)
            except ValueError as error:
                raise CommandError(f"--allow: {source!r} is not an address or network") from error
        register()
        server = SipServer(
            allowed_sources=allowed,
            host=options["host"],
            port=options["port"],
            advertised_host=options["advertise"],
            rtp_ports=rtp_ports,
            default_flow=options["flow"],
            answer_after_seconds=options["answer_after"],
            prompts_dir=Path(options["prompts"]) if options["prompts"] else None,
            listen_for_control=True,
        )

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for signal_number in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signal_number, server.request_stop)
            serving = asyncio.ensure_future(server.serve())
            while server.user_agent.transport is None and not serving.done():
                await asyncio.sleep(0.01)
            if not serving.done():
                self.stdout.write(f"SIP user agent on udp:{options['host']}:{server.port}; Ctrl-C to stop")
            await serving

        try:
            asyncio.run(main())
        finally:
            server.database.shutdown()

"""Shared set-up for the SIP tests: a running SIP server on a free port, an IVR flow with a menu,
queues, an agent with an extension."""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from fedele.contact_center.models import Agent, AgentState, IvrFlow, Queue
from fedele.contact_center.services.ivr import ivr_flow_create, ivr_number_assign, ivr_publish
from fedele.contact_center.services.presence import agent_state_set
from fedele.contact_center.telephony import sip
from fedele.contact_center.telephony.sip.message import SipMessage, SipParseError, new_branch, parse_message
from fedele.contact_center.telephony.sip.server import SipServer
from fedele.contact_center.tests.factories import AgentFactory, AgentSkillFactory, QueueFactory, SkillFactory
from fedele.contact_center.tests.sipp.tools import SIPP
from fedele.shared.testing import tools_required

IVR_NUMBER = "+390600000001"
MENU_FLOW: dict[str, Any] = {
    "languages": ["it", "en"],
    "default_language": "en",
    "start": "welcome",
    "nodes": {
        "welcome": {"type": "say", "prompt": {"it": "Benvenuto", "en": "Welcome"}, "next": "main"},
        "main": {
            "type": "menu",
            "prompt": {
                "it": "Premi 1 per le vendite, 2 per le fatture",
                "en": "Press 1 for sales, 2 for billing",
            },
            "options": {"1": "sales", "2": "billing", "3": "message"},
            "timeout_seconds": 20,
        },
        "sales": {"type": "queue", "queue": "sales", "announce": False},
        "billing": {"type": "queue", "queue": "billing", "skills": {"billing": 2}, "announce": False},
        "message": {"type": "voicemail", "box": "billing-box", "max_seconds": 3},
    },
}


class _SippMissing:
    """The ``skipif`` condition of ``needs_sipp``: true (skip) when sipp is missing on a developer's
    machine; when the run requires its tools (``FEDELE_REQUIRE_TOOLS``, set by the Makefile's pytest
    targets under CI), evaluating it raises, and pytest fails each sipp test with this message."""

    def __bool__(self) -> bool:
        if SIPP is not None:
            return False
        if tools_required():
            raise RuntimeError(
                "sipp is required (FEDELE_REQUIRE_TOOLS is set) but not installed: "
                "run `make chromium` (apt-get install sip-tester)"
            )
        return True


needs_sipp = pytest.mark.skipif(_SippMissing(), reason="sipp not installed: apt-get install sip-tester")


def sqlite_shared_connection() -> dict[str, Any] | None:
    """On SQLite's in-memory test database, the server's database thread uses the test's connection
    (as pytest-django's live server does); PostgreSQL gets its own connection."""
    connection = connections["default"]
    return {"default": connection} if connection.vendor == "sqlite" else None


def running_sip_server(tmp_path: Path) -> Iterator[SipServer]:
    """Body of each SIP test module's ``sip_server`` fixture."""
    sip.register()
    server = SipServer(
        host="127.0.0.1",
        port=0,
        prompts_dir=tmp_path / "prompts",
        connections_override=sqlite_shared_connection(),
    )
    server.start_in_thread()
    try:
        yield server
    finally:
        server.stop()


def menu_flow(*, number: str = IVR_NUMBER, definition: dict[str, Any] | None = None) -> IvrFlow:
    SkillFactory(code="billing")
    QueueFactory(code="sales", channels=["voice"])
    billing = QueueFactory(code="billing", channels=["voice"])
    from fedele.contact_center.models import VoicemailBox

    VoicemailBox.objects.get_or_create(code="billing-box", defaults={"name": "Billing", "queue": billing})
    flow = ivr_flow_create(
        actor=None, code="main-menu", name="Main menu", source=json.dumps(definition or MENU_FLOW)
    )
    ivr_publish(actor=None, flow=flow)
    ivr_number_assign(actor=None, number=number, flow=flow)
    return flow


def billing_agent(
    *, extension: str = "201", proficiency: int = 3, available: bool = True, user: Any = None
) -> Agent:
    agent = AgentFactory(display_name="Anna Bianchi", extension=extension, **({"user": user} if user else {}))
    agent.queues.add(Queue.objects.get(code="billing"))
    AgentSkillFactory(agent=agent, skill=SkillFactory(code="billing"), proficiency=proficiency)
    if available:
        agent_state_set(agent=agent, state=AgentState.AVAILABLE)
    return agent


OFFER = (
    "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP {types}\r\n{maps}a={direction}\r\n"
)
MAPS = {
    "0": "a=rtpmap:0 PCMU/8000\r\n",
    "8": "a=rtpmap:8 PCMA/8000\r\n",
    "18": "a=rtpmap:18 G729/8000\r\n",
    "101": "a=rtpmap:101 telephone-event/8000\r\n",
}


class Peer:
    """A SIP phone in a test: sends what it is told, reads what comes back."""

    def __init__(self, server_port: int) -> None:
        self.server = ("127.0.0.1", server_port)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(15)
        self.port = self.socket.getsockname()[1]
        self.media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # absorbs the server's RTP
        self.media.bind(("127.0.0.1", 0))
        self.media_port = self.media.getsockname()[1]
        self.call_id = f"{random.getrandbits(48):x}@test"
        self.tag = f"{random.getrandbits(32):x}"
        self.remote_tag = ""
        self.cseq = 1

    def close(self) -> None:
        self.socket.close()
        self.media.close()

    def request(
        self,
        method: str,
        *,
        uri: str = f"sip:{IVR_NUMBER}@127.0.0.1",
        branch: str | None = None,
        cseq: int | None = None,
        body: str = "",
        headers: dict[str, str] | None = None,
        in_dialog: bool = False,
    ) -> tuple[bytes, str]:
        branch = branch or new_branch()
        to_tag = f";tag={self.remote_tag}" if in_dialog and self.remote_tag else ""
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch}",
            f'From: "Mario Rossi" <sip:+390612345678@127.0.0.1:{self.port}>;tag={self.tag}',
            f"To: <sip:{IVR_NUMBER}@127.0.0.1>{to_tag}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq if cseq is not None else self.cseq} {method}",
            f"Contact: <sip:+390612345678@127.0.0.1:{self.port}>",
            "Max-Forwards: 70",
        ]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        data = ("\r\n".join(lines) + "\r\n\r\n" + body).encode()
        self.socket.sendto(data, self.server)
        return data, branch

    def offer(self, types: str = "0 8 101", direction: str = "sendrecv") -> str:
        maps = "".join(MAPS[payload_type] for payload_type in types.split())
        return OFFER.format(port=self.media_port, types=types, maps=maps, direction=direction)

    def receive(self, *, method: str | None = None, status: int | None = None) -> SipMessage:
        """The next message matching; others (e.g. retransmitted 200s, the server's BYE) are skipped."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                message = parse_message(self.socket.recv(65_535))
            except SipParseError:
                continue  # e.g. our 400 to a request without CSeq cannot carry one either
            if method is not None and message.is_request and message.method == method:
                return message
            if status is not None and not message.is_request and message.status == status:
                return message
        raise TimeoutError(f"nothing matched method={method} status={status}")

    def nothing_within(self, seconds: float) -> bool:
        self.socket.settimeout(seconds)
        try:
            self.socket.recv(65_535)
        except TimeoutError:
            return True
        finally:
            self.socket.settimeout(15)
        return False

    def ack(self) -> None:
        self.request("ACK", cseq=1, in_dialog=True)

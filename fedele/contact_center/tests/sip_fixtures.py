"""Shared set-up for the SIP tests: a running SIP server on a free port, an IVR flow with a menu,
queues, an agent with an extension."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from fedele.contact_center.models import Agent, AgentState, IvrFlow, Queue
from fedele.contact_center.services.ivr import ivr_flow_create, ivr_number_assign, ivr_publish
from fedele.contact_center.services.presence import agent_state_set
from fedele.contact_center.telephony import sip
from fedele.contact_center.telephony.sip.server import SipServer
from fedele.contact_center.tests.factories import AgentFactory, AgentSkillFactory, QueueFactory, SkillFactory
from fedele.contact_center.tests.sipp.tools import SIPP

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

needs_sipp = pytest.mark.skipif(SIPP is None, reason="sipp not installed: apt-get install sip-tester")


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

"""Shared set-up for the IVR tests: a bilingual flow that exercises menu → collect → lookup → queue,
and helpers to publish it and to place a call."""

from __future__ import annotations

import copy
import json
from typing import Any

from fedele.contact_center.models import Interaction, IvrFlow
from fedele.contact_center.services.interactions import interaction_create
from fedele.contact_center.services.ivr import ivr_flow_create, ivr_publish
from fedele.contact_center.tests.factories import QueueFactory, SkillFactory

CALLER = "+393331234567"

BILLING_FLOW: dict[str, Any] = {
    "languages": ["it", "en"],
    "default_language": "it",
    "start": "welcome",
    "nodes": {
        "welcome": {
            "type": "say",
            "prompt": {"it": "Benvenuti in Fedele.", "en": "Welcome to Fedele."},
            "next": "main",
        },
        "main": {
            "type": "menu",
            "prompt": {
                "it": "Premi 1 per l'assistenza, 2 per le fatture.",
                "en": "Press 1 for support, 2 for billing.",
            },
            "options": {"1": "support", "2": "code"},
            "retries": 1,
        },
        "code": {
            "type": "collect",
            "variable": "customer_code",
            "prompt": {
                "it": "Digita il codice cliente e premi cancelletto.",
                "en": "Enter your customer code, then hash.",
            },
            "invalid_prompt": {"it": "Codice non valido.", "en": "That code is not valid."},
            "min_length": 3,
            "max_length": 12,
            "timeout_seconds": 8,
            "check": "customer_code",
            "retries": 1,
            "next": "balance",
            "on_fail": "billing",
        },
        "balance": {"type": "lookup", "lookup": "balance_due", "next": "tell", "on_missing": "billing"},
        "tell": {
            "type": "say",
            "prompt": {
                "it": "Il saldo da pagare è {balance_due} euro.",
                "en": "Your balance due is {balance_due} euros.",
            },
            "next": "billing",
        },
        "billing": {"type": "queue", "queue": "billing", "skills": {"billing": 2}},
        "support": {"type": "queue", "queue": "support"},
    },
}


def billing_flow(**changes: Any) -> dict[str, Any]:
    definition = copy.deepcopy(BILLING_FLOW)
    definition.update(changes)
    return definition


def make_queues() -> None:
    """Queues billing and support (voice), skill billing, voicemail box support."""
    from fedele.contact_center.models import VoicemailBox

    SkillFactory(code="billing")
    QueueFactory(code="billing", channels=["voice"])
    support = QueueFactory(code="support", channels=["voice"])
    VoicemailBox.objects.get_or_create(code="support", defaults={"name": "Support", "queue": support})


def published_flow(definition: dict[str, Any] | None = None, code: str = "main-line") -> IvrFlow:
    flow = ivr_flow_create(
        actor=None,
        code=code,
        name="Main line",
        source=json.dumps(definition or BILLING_FLOW),
        source_format="json",
    )
    ivr_publish(actor=None, flow=flow)
    flow.refresh_from_db()
    return flow


def incoming_call(from_number: str = CALLER, *, call_ref: str = "CA0001") -> Interaction:
    return interaction_create(
        channel="voice",
        direction="inbound",
        from_address=from_number,
        to_address="+390212345678",
        provider="twilio",
        provider_ref=call_ref,
    )

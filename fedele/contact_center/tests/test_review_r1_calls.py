"""Review R1 — softphone: a callback whose dial is still with the provider is not dialled a second
time (a double click, a second tab); a dial the provider refused can be tried again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fedele.contact_center.models import AgentState, Interaction, Offer, VoicemailBox, VoiceNumber
from fedele.contact_center.services import calls, presence, routing
from fedele.contact_center.telephony.registry import adapter_override
from fedele.contact_center.telephony.simulator import SimulatorAdapter, silent_wav
from fedele.contact_center.telephony.twilio import TelephonyProviderError
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory
from fedele.shared.errors import Conflict

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)
LINE = "+390212345678"


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path


class Provider(SimulatorAdapter):
    """The simulator, with a hook run while the provider is being asked to dial."""

    during_originate: Any = None
    refuse = False

    def originate(self, *, to_number: str, from_number: str, context: dict[str, Any]) -> str:
        if self.refuse:
            raise TelephonyProviderError("trunk down")
        if self.during_originate is not None:
            hook, self.during_originate = self.during_originate, None
            hook()
        return super().originate(to_number=to_number, from_number=from_number, context=context)


def _callback_taken(sim: Provider) -> tuple[Interaction, Any]:
    queue = QueueFactory(code="support", channels=["voice"], wrap_up_seconds=0)
    VoiceNumber.objects.create(number=LINE, provider="simulator", queue=queue)
    agent = AgentFactory(extension="201")
    agent.queues.add(queue)
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=T0)
    VoicemailBox.objects.create(code="support-vm", name="Support", queue=queue)
    call_ref = sim.incoming_call(from_number="+393331234567", to_number=LINE)
    sim.leave_voicemail(call_ref, box="support-vm", audio=silent_wav(seconds=1), seconds=9)
    sim.caller_hangs_up(call_ref)
    assert routing.route_pending(limit=5, at=sim.now) == 1
    taken = routing.offer_accept(offer=Offer.objects.get(agent=agent), agent=agent, at=sim.now)
    return taken, agent


def _originates(sim: SimulatorAdapter) -> list[str]:
    return [ref for command, ref, _data in sim.commands if command == "originate"]


def test_a_second_dial_while_the_first_is_with_the_provider_is_refused() -> None:
    sim = Provider(start=T0, seed=7)
    with adapter_override("simulator", sim):
        taken, agent = _callback_taken(sim)
        refused: list[Exception] = []

        def second_click() -> None:
            try:
                calls.call_dial(interaction=taken, agent=agent, at=sim.now)
            except Conflict as error:
                refused.append(error)

        sim.during_originate = second_click
        dialled = calls.call_dial(interaction=taken, agent=agent, at=sim.now)
    assert [getattr(error, "code", "") for error in refused] == ["already_dialled"]
    assert _originates(sim) == ["SIM-OUT-000002"]
    assert dialled.provider_ref == "SIM-OUT-000002"


def test_a_dial_the_provider_refused_can_be_tried_again() -> None:
    sim = Provider(start=T0, seed=7)
    with adapter_override("simulator", sim):
        taken, agent = _callback_taken(sim)
        sim.refuse = True
        with pytest.raises(TelephonyProviderError):
            calls.call_dial(interaction=taken, agent=agent, at=sim.now)
        taken.refresh_from_db()
        assert (taken.provider_ref, "dialled_at" in taken.attributes) == ("", False)
        sim.refuse = False
        dialled = calls.call_dial(interaction=taken, agent=agent, at=sim.now)
    assert dialled.provider_ref == "SIM-OUT-000002"
    assert _originates(sim) == ["SIM-OUT-000002"]

"""Softphone call control on a simulated call, end to end: a call arrives through the simulator,
is queued, offered and accepted; the agent answers, holds, mutes, sends DTMF, pauses the recording
(PCI) and hangs up; exact durations, provider commands, the recording with its pause interval. Refusals
(someone else's call, wrong state, bad digits, a provider that refuses or lacks the feature) change
nothing. Click-to-dial through the simulator; a cold transfer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fedele.contact_center.models import (
    AgentState,
    Interaction,
    InteractionEvent,
    InteractionState,
    Offer,
    Outcome,
    QueueTelephonySettings,
    Recording,
    RecordingPause,
    VoiceNumber,
)
from fedele.contact_center.services import calls, presence, routing
from fedele.contact_center.telephony.registry import adapter_override
from fedele.contact_center.telephony.simulator import OutboundBehaviour, SimulatorAdapter
from fedele.contact_center.telephony.twilio import TelephonyProviderError
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path


T0 = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)
LINE = "+390212345678"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def sim() -> Any:
    simulator = SimulatorAdapter(start=T0, seed=7)
    with adapter_override("simulator", simulator):
        yield simulator


@pytest.fixture
def queue() -> Any:
    queue = QueueFactory(code="support", channels=["voice"], wrap_up_seconds=0)
    VoiceNumber.objects.create(number=LINE, provider="simulator", queue=queue)
    QueueTelephonySettings.objects.create(queue=queue, record_calls=True, recording_retention_days=30)
    return queue


@pytest.fixture
def agent(queue: Any) -> Any:
    agent = AgentFactory(extension="201")
    agent.queues.add(queue)
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=T0)
    return agent


def offered_and_accepted(sim: SimulatorAdapter, agent: Any, *, wait: int) -> Interaction:
    call_ref = sim.incoming_call(
        from_number="+393331234567", to_number=LINE, talk_seconds=600, patience_seconds=900
    )
    assert sim.calls[call_ref].context["steps"] == ["say", "queue"]  # consent announcement, then queue
    sim.advance(wait)
    assert routing.route_pending(limit=10, at=sim.now) == 1
    offer = Offer.objects.get(agent=agent)
    interaction = routing.offer_accept(offer=offer, agent=agent, at=sim.now)
    return calls.call_answer(interaction=interaction, agent=agent, at=sim.now)


def test_a_call_handled_from_answer_to_hangup(sim: SimulatorAdapter, queue: Any, agent: Any) -> None:
    call = offered_and_accepted(sim, agent, wait=12)
    assert call.state == InteractionState.CONNECTED
    sim.advance(30)
    calls.call_hold(interaction=call, agent=agent, on=True, at=sim.now)
    sim.advance(15)
    calls.call_hold(interaction=call, agent=agent, on=False, at=sim.now)
    calls.call_mute(interaction=call, agent=agent, on=True, at=sim.now)
    calls.call_send_dtmf(interaction=call, agent=agent, digits="1234#", at=sim.now)
    sim.advance(5)
    pause = calls.call_recording_pause(interaction=call, agent=agent, paused=True, at=sim.now)
    sim.advance(20)
    calls.call_recording_pause(interaction=call, agent=agent, paused=False, at=sim.now)
    sim.advance(10)
    ended = calls.call_hangup(interaction=call, agent=agent, at=sim.now)
    assert (ended.state, ended.outcome) == (InteractionState.ENDED, Outcome.HANDLED)
    # Answered at 12 s, hung up at 92 s: 80 s of which 15 s on hold.
    assert (ended.wait_seconds, ended.hold_seconds, ended.talk_seconds) == (12, 15, 65)
    assert [name for name, _ref, _data in sim.commands] == [
        "connect_agent",
        "recording_start",
        "hold",
        "hold",
        "mute",
        "send_dtmf",
        "recording_pause",
        "recording_pause",
        "hangup",
    ]
    pause.refresh_from_db()
    assert (pause.paused_at, pause.resumed_at, pause.seconds) == (at(62), at(82), 20)
    recording = Recording.objects.get(interaction=call)
    assert (recording.state, recording.duration_seconds, recording.content_type) == (
        Recording.State.STORED,
        80,
        "audio/wav",
    )
    assert recording.retain_until == recording.created_at + timedelta(days=30)
    dtmf = InteractionEvent.objects.get(interaction=call, kind="call.dtmf_sent")
    assert dtmf.data == {"agent_id": agent.pk, "count": 5}  # never the digits themselves


def test_someone_elses_call_is_refused(sim: SimulatorAdapter, queue: Any, agent: Any) -> None:
    call = offered_and_accepted(sim, agent, wait=1)
    other = AgentFactory()
    with pytest.raises(PermissionDenied):
        calls.call_hold(interaction=call, agent=other, on=True)
    assert [name for name, _r, _d in sim.commands] == ["connect_agent", "recording_start"]


def test_actions_in_the_wrong_state_or_with_bad_digits_change_nothing(
    sim: SimulatorAdapter, queue: Any, agent: Any
) -> None:
    call = offered_and_accepted(sim, agent, wait=1)
    before = InteractionEvent.objects.count()
    with pytest.raises(ValidationFailed) as bad:
        calls.call_send_dtmf(interaction=call, agent=agent, digits="12x")
    assert bad.value.code == "invalid_dtmf"
    with pytest.raises(ValidationFailed):
        calls.call_send_dtmf(interaction=call, agent=agent, digits="1" * 33)
    with pytest.raises(Conflict):
        calls.call_recording_pause(interaction=call, agent=agent, paused=False)
    with pytest.raises(Conflict):
        calls.call_leave(interaction=call, agent=agent)
    assert InteractionEvent.objects.count() == before
    calls.call_hangup(interaction=call, agent=agent, at=sim.now)
    with pytest.raises(Conflict):
        calls.call_hold(interaction=call, agent=agent, on=True)


def test_holding_twice_asks_the_provider_once(sim: SimulatorAdapter, queue: Any, agent: Any) -> None:
    call = offered_and_accepted(sim, agent, wait=1)
    calls.call_hold(interaction=call, agent=agent, on=True, at=sim.now)
    calls.call_hold(interaction=call, agent=agent, on=True, at=sim.now)
    assert [name for name, _r, _d in sim.commands].count("hold") == 1


class Refusing(SimulatorAdapter):
    def hold(self, call_ref: str, *, on: bool) -> None:
        raise TelephonyProviderError("Twilio refused the request (HTTP 400): nope")

    def conference(self, call_ref: str, *, target: str) -> None:
        raise NotImplementedError


def test_a_provider_refusal_or_a_missing_feature_changes_nothing(queue: Any, agent: Any) -> None:
    sim = Refusing(start=T0)
    with adapter_override("simulator", sim):
        call = offered_and_accepted(sim, agent, wait=1)
        with pytest.raises(TelephonyProviderError):
            calls.call_hold(interaction=call, agent=agent, on=True)
        call.refresh_from_db()
        assert "hold_started_at" not in call.attributes
        with pytest.raises(ValidationFailed) as missing:
            calls.call_conference(interaction=call, agent=agent, target="+390299999999")
        assert missing.value.code == "unsupported_call_action"
        call.refresh_from_db()
        assert "conference" not in call.attributes


def test_cold_transfer_ends_the_call_for_the_agent(sim: SimulatorAdapter, queue: Any, agent: Any) -> None:
    call = offered_and_accepted(sim, agent, wait=3)
    sim.advance(40)
    with pytest.raises(ValidationFailed):
        calls.call_transfer(interaction=call, agent=agent, target="not a number", warm=False)
    ended = calls.call_transfer(interaction=call, agent=agent, target="02 9999 9999", warm=False, at=sim.now)
    assert (ended.state, ended.outcome, ended.talk_seconds) == (
        InteractionState.ENDED,
        Outcome.TRANSFERRED,
        40,
    )
    assert sim.commands[-1] == ("transfer", call.provider_ref, {"target": "+390299999999", "warm": False})


def test_warm_transfer_then_leave(sim: SimulatorAdapter, queue: Any, agent: Any) -> None:
    call = offered_and_accepted(sim, agent, wait=3)
    calls.call_transfer(
        interaction=call, agent=agent, target="sip:billing@pbx.example.it", warm=True, at=sim.now
    )
    call.refresh_from_db()
    assert call.state == InteractionState.CONNECTED
    sim.advance(20)
    left = calls.call_leave(interaction=call, agent=agent, at=sim.now)
    assert (left.outcome, left.talk_seconds) == (Outcome.TRANSFERRED, 20)
    assert [name for name, _r, _d in sim.commands][-2:] == ["transfer", "leave"]


def test_conference_adds_participants(sim: SimulatorAdapter, queue: Any, agent: Any) -> None:
    call = offered_and_accepted(sim, agent, wait=3)
    calls.call_conference(interaction=call, agent=agent, target="301", at=sim.now)
    calls.call_conference(interaction=call, agent=agent, target="+39 02 1111 1111", at=sim.now)
    call.refresh_from_db()
    assert call.attributes["conference"] == ["301", "+390211111111"]


def test_click_to_dial_rings_then_connects_the_agent(sim: SimulatorAdapter, agent: Any) -> None:
    call = calls.call_originate(
        agent=agent, to_number="333 987 6543", provider="simulator", from_number=LINE, at=sim.now
    )
    assert (call.direction, call.to_address, call.provider_ref, call.state) == (
        "outbound",
        "+393339876543",
        "SIM-OUT-000001",
        InteractionState.IVR,
    )
    with pytest.raises(Conflict) as busy:
        calls.call_originate(agent=agent, to_number="+393330000000", provider="simulator")
    assert busy.value.code == "agent_on_call"
    sim.advance(8)  # the default behaviour answers after 8 s of ringing
    call.refresh_from_db()
    assert (call.state, call.agent_id, call.answered_at) == (InteractionState.CONNECTED, agent.pk, at(8))
    sim.advance(120)
    call.refresh_from_db()
    assert (call.state, call.outcome, call.talk_seconds) == (InteractionState.ENDED, Outcome.HANDLED, 120)


def test_click_to_dial_busy_and_offline_agent(sim: SimulatorAdapter, agent: Any) -> None:
    call = calls.call_originate(
        agent=agent,
        to_number="+393339876543",
        provider="simulator",
        context={"behaviour": OutboundBehaviour(result="busy")},
    )
    sim.advance(2)
    call.refresh_from_db()
    assert (call.state, call.outcome) == (InteractionState.ENDED, Outcome.BUSY)
    presence.agent_state_set(agent=agent, state=AgentState.OFFLINE)
    count = Interaction.objects.count()
    with pytest.raises(Conflict):
        calls.call_originate(agent=agent, to_number="+393339876543", provider="simulator")
    with pytest.raises(ValidationFailed):
        calls.call_originate(agent=agent, to_number="+393339876543", provider="carrier-pigeon")
    assert Interaction.objects.count() == count


def test_a_refused_originate_leaves_the_interaction_failed(agent: Any) -> None:
    class Down(SimulatorAdapter):
        def originate(self, *, to_number: str, from_number: str, context: dict[str, Any]) -> str:
            raise TelephonyProviderError("down")

    with adapter_override("simulator", Down(start=T0)), pytest.raises(TelephonyProviderError):
        calls.call_originate(agent=agent, to_number="+393339876543", provider="simulator")
    failed = Interaction.objects.get()
    assert (failed.state, failed.outcome) == (InteractionState.ENDED, Outcome.FAILED)


def test_the_call_ending_closes_an_open_recording_pause(
    sim: SimulatorAdapter, queue: Any, agent: Any
) -> None:
    call = offered_and_accepted(sim, agent, wait=2)
    calls.call_recording_pause(interaction=call, agent=agent, paused=True, at=sim.now)
    with pytest.raises(Conflict):
        calls.call_recording_pause(interaction=call, agent=agent, paused=True, at=sim.now)
    sim.advance(9)
    sim.caller_hangs_up(call.provider_ref)
    pause = RecordingPause.objects.get(interaction=call)
    assert (pause.resumed_at, pause.seconds) == (sim.now, 9)


def test_a_voicemail_callback_taken_from_the_queue_is_dialled_once(
    sim: SimulatorAdapter, queue: Any, agent: Any
) -> None:
    from fedele.contact_center.models import VoicemailBox
    from fedele.contact_center.telephony.simulator import silent_wav

    VoicemailBox.objects.create(code="support-vm", name="Support", queue=queue)
    call_ref = sim.incoming_call(from_number="+393331234567", to_number=LINE)
    sim.leave_voicemail(call_ref, box="support-vm", audio=silent_wav(seconds=1), seconds=9)
    sim.caller_hangs_up(call_ref)
    assert Interaction.objects.get(provider_ref=call_ref).outcome == Outcome.VOICEMAIL
    callback = Interaction.objects.get(attributes__kind="callback")
    assert callback.attributes["callback_of"] == Interaction.objects.get(provider_ref=call_ref).number
    assert routing.route_pending(limit=5, at=sim.now) == 1
    taken = routing.offer_accept(offer=Offer.objects.get(agent=agent), agent=agent, at=sim.now)
    dialled = calls.call_dial(interaction=taken, agent=agent, at=sim.now)
    assert (dialled.pk, dialled.provider, dialled.provider_ref) == (
        callback.pk,
        "simulator",
        "SIM-OUT-000002",
    )
    assert sim.commands[-1] == (
        "originate",
        "SIM-OUT-000002",
        {"to": "+393331234567", "from": "+390212345678"},
    )
    with pytest.raises(Conflict) as twice:
        calls.call_dial(interaction=dialled, agent=agent)
    assert twice.value.code == "already_dialled"
    sim.advance(8 + 120)
    dialled.refresh_from_db()
    assert (dialled.outcome, dialled.talk_seconds) == (Outcome.HANDLED, 120)
    assert Interaction.objects.filter(attributes__kind="callback").count() == 1

"""The simulator provider: a seeded arrival plan is repeatable; a busy hour of traffic through the
real router with robot agents ends every call, never gives an agent two calls at once, and every
answered call is handled by an agent of its queue; the virtual clock only moves forward."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fedele.contact_center.models import AgentState, Interaction, InteractionEvent, Outcome, VoiceNumber
from fedele.contact_center.services import presence
from fedele.contact_center.telephony.port import CallEvent, CallEventKind
from fedele.contact_center.telephony.registry import adapter_override
from fedele.contact_center.telephony.simulator import OutboundBehaviour, SimulatorAdapter
from fedele.contact_center.telephony.simulator_run import run_scenario
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory

T0 = datetime(2026, 12, 7, 9, 0, 0, tzinfo=UTC)
NUMBERS = [f"+39333000{n:04d}" for n in range(50)]


def test_the_same_seed_gives_the_same_plan_and_another_seed_another() -> None:
    first = SimulatorAdapter(start=T0, seed=42, sink=lambda event: None).arrivals(
        calls_per_hour=120, hours=1, numbers=NUMBERS, to_number="+390212345678"
    )
    again = SimulatorAdapter(start=T0, seed=42, sink=lambda event: None).arrivals(
        calls_per_hour=120, hours=1, numbers=NUMBERS, to_number="+390212345678"
    )
    other = SimulatorAdapter(start=T0, seed=43, sink=lambda event: None).arrivals(
        calls_per_hour=120, hours=1, numbers=NUMBERS, to_number="+390212345678"
    )
    assert first == again and first != other
    assert all(0 < offset < 3600 for offset, *_rest in first)
    assert [offset for offset, *_rest in first] == sorted(offset for offset, *_rest in first)
    assert 90 <= len(first) <= 150  # Poisson(120)


def test_outbound_behaviours_produce_the_provider_events_in_time_order() -> None:
    seen: list[CallEvent] = []
    sim = SimulatorAdapter(start=T0, sink=seen.append)
    answer = sim.originate(
        to_number="+39333",
        from_number="+3902",
        context={"behaviour": OutboundBehaviour(ring_seconds=5, talk_seconds=30)},
    )
    busy = sim.originate(
        to_number="+39334", from_number="+3902", context={"behaviour": OutboundBehaviour(result="busy")}
    )
    nobody = sim.originate(
        to_number="+39335",
        from_number="+3902",
        context={"behaviour": OutboundBehaviour(result="no-answer", ring_seconds=20)},
    )
    machine = sim.originate(
        to_number="+39336",
        from_number="+3902",
        context={"behaviour": OutboundBehaviour(machine=True, ring_seconds=3, talk_seconds=10)},
    )
    assert sim.advance(100) == 10
    timeline = [
        (
            e.call_ref,
            str(e.kind),
            (e.at - T0).total_seconds(),
            e.data.get("status") or e.data.get("answered_by"),
        )
        for e in seen
    ]
    assert timeline == [
        (answer, "call.ringing", 0.0, None),
        (busy, "call.ringing", 0.0, None),
        (nobody, "call.ringing", 0.0, None),
        (machine, "call.ringing", 0.0, None),
        (busy, "call.hangup", 1.0, "busy"),
        (machine, "call.answered", 3.0, "machine_start"),
        (answer, "call.answered", 5.0, "human"),
        (machine, "call.hangup", 13.0, "completed"),
        (nobody, "call.hangup", 20.0, "no-answer"),
        (answer, "call.hangup", 35.0, "completed"),
    ]
    assert len({e.event_id for e in seen}) == len(seen)
    with pytest.raises(ValueError):
        sim.advance(-1)
    with pytest.raises(LookupError):
        sim.hangup(answer)


@pytest.mark.django_db
def test_a_busy_hour_through_the_real_router(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path
    queue = QueueFactory(code="support", channels=["voice"], wrap_up_seconds=0)
    VoiceNumber.objects.create(number="+390212345678", provider="simulator", queue=queue)
    agents = []
    for index in range(4):
        agent = AgentFactory(extension=f"20{index}")
        agent.queues.add(queue)
        presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=T0)
        agents.append(agent)
    sim = SimulatorAdapter(start=T0, seed=11)
    plan = sim.arrivals(
        calls_per_hour=60,
        hours=1,
        numbers=NUMBERS,
        to_number="+390212345678",
        mean_talk_seconds=150,
        mean_patience_seconds=120,
    )
    with adapter_override("simulator", sim):
        report = run_scenario(
            sim, plan=plan, to_number="+390212345678", agents=agents, reaction_seconds=2, step_seconds=2
        )
    assert report.calls == len(plan) == Interaction.objects.count()
    assert report.still_open == 0
    assert report.handled + report.abandoned == report.calls
    assert report.accepted == report.handled
    assert report.handled > report.calls // 2
    # No agent ever had two calls at once: their connected intervals never overlap.
    intervals: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for call in Interaction.objects.filter(outcome=Outcome.HANDLED):
        assert call.agent_id is not None and call.agent_id in {agent.pk for agent in agents}
        assert call.answered_at is not None and call.ended_at is not None
        intervals[call.agent_id].append((call.answered_at, call.ended_at))
    for spans in intervals.values():
        spans.sort()
        for (_start, end), (next_start, _end) in itertools.pairwise(spans):
            assert next_start >= end
    # Every handled call's timeline has the call's own events in time order.
    for call in Interaction.objects.filter(outcome=Outcome.HANDLED)[:10]:
        times = list(
            InteractionEvent.objects.filter(interaction=call, kind__startswith="call.").values_list(
                "created_at", flat=True
            )
        )
        assert times == sorted(times)
    assert sim.now - T0 >= timedelta(seconds=plan[-1][0])


def test_voicemail_scenario_leaves_a_message() -> None:
    events: list[CallEvent] = []

    sim = SimulatorAdapter(start=T0, sink=events.append)
    ref = sim.incoming_call(from_number="+39333", to_number="+3902")
    sim.leave_voicemail(ref, box="support", audio=b"RIFF....WAVE", seconds=7)
    assert [str(e.kind) for e in events] == ["call.new", "voicemail.ready"]
    assert events[1].data["duration_seconds"] == 7 and events[1].data["box"] == "support"
    assert events[1].kind == CallEventKind.VOICEMAIL_READY


@pytest.mark.django_db
def test_a_dialer_call_created_first_is_found_by_its_interaction_id() -> None:
    from fedele.contact_center.services.interactions import interaction_create

    created = interaction_create(
        channel="voice",
        direction="outbound",
        from_address="+3902",
        to_address="+39333",
        provider="simulator",
        at=T0,
    )
    sim = SimulatorAdapter(start=T0)
    with adapter_override("simulator", sim):
        ref = sim.originate(
            to_number="+39333",
            from_number="+3902",
            context={
                "interaction_id": str(created.public_id),
                "behaviour": OutboundBehaviour(result="no-answer"),
            },
        )
        sim.advance(30)
    created.refresh_from_db()
    assert (created.provider_ref, created.outcome) == (ref, Outcome.NO_ANSWER)
    assert Interaction.objects.count() == 1

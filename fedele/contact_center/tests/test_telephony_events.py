"""Normalised call events → the interaction: creation, exact states/outcomes/durations, retries that
change nothing, out-of-order events, outbound results, adoption of a pre-created outbound call, and
durations that do not care about DST (all times UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fedele.contact_center.models import (
    AgentState,
    Interaction,
    InteractionEvent,
    InteractionState,
    Outcome,
)
from fedele.contact_center.services import presence
from fedele.contact_center.services.interactions import interaction_connect, interaction_enqueue
from fedele.contact_center.telephony.events import call_event_apply
from fedele.contact_center.telephony.port import CallEvent, CallEventKind
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(
    kind: CallEventKind,
    seconds: float,
    *,
    call: str = "CALL-1",
    event_id: str | None = None,
    direction: str = "inbound",
    **data: Any,
) -> CallEvent:
    return CallEvent(
        kind=kind,
        provider="simulator",
        call_ref=call,
        event_id=event_id if event_id is not None else f"{call}:{kind}:{seconds}",
        at=at(seconds),
        direction=direction,
        from_number="+393331234567" if direction == "inbound" else "+390212345678",
        to_number="+390212345678" if direction == "inbound" else "+393339876543",
        data=data,
    )


def kinds(interaction: Interaction) -> list[str]:
    return list(InteractionEvent.objects.filter(interaction=interaction).values_list("kind", flat=True))


def connected_call(*, wait: int = 30) -> tuple[Interaction, Any]:
    queue = QueueFactory(code="support", wrap_up_seconds=0)
    agent = AgentFactory()
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=T0)
    call = call_event_apply(event(CallEventKind.NEW, 0))
    interaction_enqueue(interaction=call, queue_code=queue.code, at=at(5))
    interaction_connect(interaction=call, agent=agent, at=at(5 + wait))
    return Interaction.objects.get(pk=call.pk), agent


def test_call_new_creates_one_voice_interaction_and_a_retry_changes_nothing() -> None:
    first = call_event_apply(event(CallEventKind.NEW, 0, event_id="evt-1"))
    assert (first.channel, first.direction, first.state) == ("voice", "inbound", InteractionState.IVR)
    assert (first.provider, first.provider_ref) == ("simulator", "CALL-1")
    assert (first.from_address, first.to_address, first.created_at) == ("+393331234567", "+390212345678", T0)
    assert kinds(first) == ["created", "call.new"]
    assert InteractionEvent.objects.get(kind="call.new").provider_event_id == "simulator:evt-1"
    again = call_event_apply(event(CallEventKind.NEW, 3, event_id="evt-1"))
    assert again.pk == first.pk
    assert Interaction.objects.count() == 1
    assert kinds(first) == ["created", "call.new"]


def test_same_event_id_of_another_provider_is_not_a_duplicate() -> None:
    call_event_apply(event(CallEventKind.NEW, 0, event_id="1"))
    other = CallEvent(
        kind=CallEventKind.NEW, provider="twilio", call_ref="CA1", event_id="1", at=T0, from_number="+39333"
    )
    call_event_apply(other)
    assert Interaction.objects.count() == 2


def test_answered_call_hung_up_by_the_caller_is_handled_with_exact_durations() -> None:
    call, _agent = connected_call(wait=30)
    call_event_apply(event(CallEventKind.HOLD, 60))
    call_event_apply(event(CallEventKind.UNHOLD, 80))
    call_event_apply(event(CallEventKind.HANGUP, 155, status="completed"))
    call.refresh_from_db()
    assert call.state == InteractionState.ENDED  # queue without wrap-up time
    assert call.outcome == Outcome.HANDLED
    assert (call.wait_seconds, call.hold_seconds, call.talk_seconds) == (30, 20, 100)
    assert call.ended_at == at(155)
    timeline = kinds(call)
    assert timeline.index("call.hangup") < timeline.index("ended")


def test_hold_event_retried_counts_once() -> None:
    call, _agent = connected_call()
    call_event_apply(event(CallEventKind.HOLD, 40, event_id="h1"))
    call_event_apply(event(CallEventKind.HOLD, 45, event_id="h1"))
    call_event_apply(event(CallEventKind.UNHOLD, 50, event_id="u1"))
    call_event_apply(event(CallEventKind.UNHOLD, 70, event_id="u1"))
    call.refresh_from_db()
    assert call.hold_seconds == 10
    assert kinds(call).count("call.hold") == 1


def test_hangup_while_queued_is_abandoned_with_the_wait() -> None:
    QueueFactory(code="sales")
    call = call_event_apply(event(CallEventKind.NEW, 0))
    interaction_enqueue(interaction=call, queue_code="sales", at=at(4))
    ended = call_event_apply(event(CallEventKind.HANGUP, 49))
    assert (ended.state, ended.outcome, ended.wait_seconds, ended.talk_seconds) == (
        InteractionState.ENDED,
        Outcome.ABANDONED,
        45,
        0,
    )


def test_events_after_the_hangup_only_land_on_the_timeline() -> None:
    QueueFactory(code="sales")
    call = call_event_apply(event(CallEventKind.NEW, 0))
    interaction_enqueue(interaction=call, queue_code="sales", at=at(1))
    call_event_apply(event(CallEventKind.HANGUP, 10))
    late = call_event_apply(event(CallEventKind.ANSWERED, 12, answered_by="agent"))
    call_event_apply(event(CallEventKind.HOLD, 13))
    assert (late.state, late.outcome, late.answered_at, late.hold_seconds) == (
        InteractionState.ENDED,
        Outcome.ABANDONED,
        None,
        0,
    )
    assert kinds(late)[-2:] == ["call.answered", "call.hold"]


def test_a_status_callback_for_an_unknown_call_creates_it_then_applies() -> None:
    ended = call_event_apply(event(CallEventKind.HANGUP, 20, call="LOST", status="completed"))
    assert Interaction.objects.count() == 1
    assert (ended.provider_ref, ended.state, ended.outcome) == (
        "LOST",
        InteractionState.ENDED,
        Outcome.ABANDONED,
    )


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("busy", Outcome.BUSY),
        ("no-answer", Outcome.NO_ANSWER),
        ("failed", Outcome.FAILED),
        ("canceled", Outcome.NO_ANSWER),
    ],
)
def test_outbound_call_nobody_answered_ends_with_the_providers_result(status: str, outcome: str) -> None:
    call_event_apply(event(CallEventKind.NEW, 0, call="OUT", direction="outbound"))
    call_event_apply(event(CallEventKind.RINGING, 1, call="OUT", direction="outbound"))
    ended = call_event_apply(event(CallEventKind.HANGUP, 25, call="OUT", direction="outbound", status=status))
    assert (ended.state, ended.outcome, ended.talk_seconds) == (InteractionState.ENDED, outcome, 0)


def test_outbound_answered_by_a_machine_is_machine() -> None:
    call_event_apply(event(CallEventKind.NEW, 0, call="OUT", direction="outbound"))
    call_event_apply(
        event(CallEventKind.ANSWERED, 9, call="OUT", direction="outbound", answered_by="machine_start")
    )
    ended = call_event_apply(event(CallEventKind.HANGUP, 30, call="OUT", direction="outbound"))
    assert ended.outcome == Outcome.MACHINE
    assert ended.attributes["answered_by"] == "machine_start"


def test_click_to_dial_call_connects_the_dialling_agent_when_answered() -> None:
    from fedele.contact_center.services.interactions import interaction_create

    agent = AgentFactory()
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=T0)
    created = interaction_create(
        channel="voice",
        direction="outbound",
        from_address="+390212345678",
        to_address="+393339876543",
        provider="simulator",
        attributes={"dialling_agent_id": agent.pk},
        at=T0,
    )
    first = call_event_apply(
        event(
            CallEventKind.RINGING, 1, call="OUT-9", direction="outbound", interaction=str(created.public_id)
        )
    )
    assert first.pk == created.pk
    assert first.provider_ref == "OUT-9"
    call_event_apply(
        event(CallEventKind.ANSWERED, 11, call="OUT-9", direction="outbound", answered_by="human")
    )
    ended = call_event_apply(event(CallEventKind.HANGUP, 71, call="OUT-9", direction="outbound"))
    assert (ended.agent_id, ended.answered_at, ended.talk_seconds, ended.outcome) == (
        agent.pk,
        at(11),
        60,
        Outcome.HANDLED,
    )
    assert Interaction.objects.count() == 1


def test_adoption_refuses_a_call_of_another_provider_or_a_bad_id() -> None:
    from fedele.contact_center.services.interactions import interaction_create

    created = interaction_create(
        channel="voice",
        direction="outbound",
        from_address="+39",
        to_address="+393339876543",
        provider="twilio",
    )
    stray = call_event_apply(
        event(CallEventKind.RINGING, 1, call="X", direction="outbound", interaction=str(created.public_id))
    )
    bad = call_event_apply(
        event(CallEventKind.RINGING, 1, call="Y", direction="outbound", interaction="not-a-uuid")
    )
    created.refresh_from_db()
    assert created.provider_ref == ""
    assert stray.pk != created.pk and bad.pk != created.pk


def test_durations_ignore_the_dst_change() -> None:
    """Europe/Rome goes from 02:00 to 03:00 on 2026-03-29 (01:00 UTC): a call from 00:30 to 01:30
    UTC lasted 3,600 s, though the local clock moved two hours."""
    start = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    QueueFactory(code="night", wrap_up_seconds=0)
    agent = AgentFactory()
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=start)
    new = CallEvent(
        kind=CallEventKind.NEW,
        provider="simulator",
        call_ref="DST",
        event_id="d1",
        at=start,
        from_number="+39333",
    )
    call = call_event_apply(new)
    interaction_enqueue(interaction=call, queue_code="night", at=start)
    interaction_connect(interaction=call, agent=agent, at=start)
    hangup = CallEvent(
        kind=CallEventKind.HANGUP,
        provider="simulator",
        call_ref="DST",
        event_id="d2",
        at=start + timedelta(hours=1),
    )
    ended = call_event_apply(hangup)
    assert ended.talk_seconds == 3600
    assert ended.outcome == Outcome.HANDLED


def test_dtmf_and_transfer_are_recorded() -> None:
    call, _agent = connected_call()
    call_event_apply(event(CallEventKind.DTMF, 40, digits="2"))
    call_event_apply(event(CallEventKind.TRANSFER, 41, target="+390299999999", warm=False))
    ended = call_event_apply(event(CallEventKind.HANGUP, 42))
    assert InteractionEvent.objects.get(interaction=call, kind="call.dtmf").data["digits"] == "2"
    assert ended.outcome == Outcome.TRANSFERRED

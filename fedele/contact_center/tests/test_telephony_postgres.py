"""Call events racing on PostgreSQL with real threads: Twilio sends the same callback twice at once,
several first events of one new call arrive together, holds and hang-ups of one call interleave."""

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
    Recording,
)
from fedele.contact_center.services import presence
from fedele.contact_center.services.interactions import interaction_connect, interaction_enqueue
from fedele.contact_center.telephony.events import call_event_apply
from fedele.contact_center.telephony.port import CallEvent, CallEventKind
from fedele.contact_center.telephony.simulator import silent_wav
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory
from fedele.shared.testing import in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
T0 = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path


def event(kind: CallEventKind, seconds: int, event_id: str, call: str = "CA-RACE", **data: Any) -> CallEvent:
    return CallEvent(
        kind=kind,
        provider="twilio",
        call_ref=call,
        event_id=event_id,
        at=T0 + timedelta(seconds=seconds),
        from_number="+393331234567",
        to_number="+390212345678",
        data=data,
    )


def test_eight_first_events_of_one_call_at_once_make_one_interaction() -> None:
    kinds = [CallEventKind.NEW, CallEventKind.RINGING] * 4

    def work(index: int) -> None:
        call_event_apply(event(kinds[index], index, f"first-{index}"))

    assert in_threads(work, 8) == []
    assert Interaction.objects.count() == 1
    call = Interaction.objects.get()
    assert (
        InteractionEvent.objects.filter(interaction=call, kind__in=["call.new", "call.ringing"]).count() == 8
    )


def test_the_same_callback_delivered_six_times_at_once_counts_once() -> None:
    queue = QueueFactory(code="race", wrap_up_seconds=0)
    agent = AgentFactory()
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=T0)
    call = call_event_apply(event(CallEventKind.NEW, 0, "new"))
    interaction_enqueue(interaction=call, queue_code=queue.code, at=T0)
    interaction_connect(interaction=call, agent=agent, at=T0 + timedelta(seconds=10))

    def hold(index: int) -> None:
        call_event_apply(event(CallEventKind.HOLD, 20, "hold-1"))

    assert in_threads(hold, 6) == []

    def unhold(index: int) -> None:
        call_event_apply(event(CallEventKind.UNHOLD, 50, "unhold-1"))

    assert in_threads(unhold, 6) == []

    def recording(index: int) -> None:
        call_event_apply(
            event(
                CallEventKind.RECORDING_READY, 55, "rec-1", recording_ref="RE1", audio=silent_wav(seconds=0)
            )
        )

    assert in_threads(recording, 6) == []

    def hangup(index: int) -> None:
        call_event_apply(event(CallEventKind.HANGUP, 110, "completed-3", status="completed"))

    assert in_threads(hangup, 6) == []
    call.refresh_from_db()
    assert (call.state, call.outcome) == (InteractionState.ENDED, Outcome.HANDLED)
    assert (call.hold_seconds, call.talk_seconds) == (30, 70)
    for kind in ("call.hold", "call.unhold", "call.hangup", "recording.ready"):
        assert InteractionEvent.objects.filter(interaction=call, kind=kind).count() == 1
    assert Recording.objects.count() == 1


def test_different_calls_in_parallel_stay_apart() -> None:
    def work(index: int) -> None:
        call_event_apply(event(CallEventKind.NEW, 0, f"new-{index}", call=f"CA-{index}"))
        call_event_apply(event(CallEventKind.HANGUP, 30, f"end-{index}", call=f"CA-{index}"))

    assert in_threads(work, 8) == []
    assert Interaction.objects.count() == 8
    assert set(Interaction.objects.values_list("outcome", flat=True)) == {Outcome.ABANDONED}

"""The simulator provider: an in-process telephone network on a virtual clock.

Used by the demo, by load tests and by the dialer's live mode in embedded installs. It speaks the
same ``TelephonyAdapter`` port as Twilio and SIP and reports what happens as normalised ``CallEvent``s
to ``telephony.events.call_event_apply`` (or another sink), so everything above it runs for real.

Time is virtual: nothing happens until ``advance(seconds)`` (or ``run_until``) moves the clock, which
fires the scheduled happenings in time order (ties in scheduling order). A seeded RNG makes a scenario
repeatable. What an outbound call does is decided when it is placed (``OutboundBehaviour``: answer
after N s, busy, no answer, answering machine); an inbound call's caller hangs up after a handle time
once connected, or gives up after a patience when nobody answers.
"""

from __future__ import annotations

import heapq
import io
import itertools
import random
import threading
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fedele.contact_center.telephony.port import CallEvent, CallEventKind, TelephonyAdapter
from fedele.shared import clock

PROVIDER = "simulator"

EventSink = Callable[[CallEvent], Any]


@dataclass(frozen=True, slots=True)
class OutboundBehaviour:
    """What the called party does: ``answer`` (after ``ring_seconds``; a person, or a machine when
    ``machine``), ``busy``, ``no-answer`` (rings ``ring_seconds`` then gives up), ``failed``."""

    result: str = "answer"
    ring_seconds: float = 8.0
    talk_seconds: float = 120.0
    machine: bool = False


@dataclass(slots=True)
class SimulatedCall:
    call_ref: str
    direction: str
    from_number: str
    to_number: str
    state: str = "ringing"  # ringing → answered → ended
    held: bool = False
    muted: bool = False
    recording_paused: bool = False
    agent_endpoint: str = ""
    recording: bool = False
    answered_at: datetime | None = None
    talk_seconds: float = 120.0
    patience_seconds: float = 60.0
    context: dict[str, Any] = field(default_factory=dict)


def _default_sink(event: CallEvent) -> Any:
    from fedele.contact_center.telephony.events import call_event_apply

    return call_event_apply(event)


class SimulatorAdapter(TelephonyAdapter):
    name = PROVIDER

    def __init__(
        self,
        *,
        start: datetime | None = None,
        seed: int = 0,
        sink: EventSink | None = None,
        answer_inbound: bool | None = None,
    ) -> None:
        self.now = start or clock.now()
        self.random = random.Random(seed)  # noqa: S311  (a repeatable simulation, not a secret)
        self.sink: EventSink = sink or _default_sink
        # With the real sink, new inbound calls are answered like a provider would (IVR or queue).
        self.answer_inbound = answer_inbound if answer_inbound is not None else sink is None
        self.calls: dict[str, SimulatedCall] = {}
        self.commands: list[tuple[str, str, dict[str, Any]]] = []
        self._queue: list[tuple[datetime, int, str, str, dict[str, Any]]] = []
        self._order = itertools.count()
        self._ids = itertools.count(1)
        self._events = itertools.count(1)
        self._lock = threading.RLock()

    # ------------------------------------------------------------------------------------- clock

    def _schedule(self, delay_seconds: float, call_ref: str, what: str, **data: Any) -> None:
        moment = self.now + timedelta(seconds=max(0.0, delay_seconds))
        heapq.heappush(self._queue, (moment, next(self._order), call_ref, what, data))

    def pending(self) -> int:
        return len(self._queue)

    def advance(self, seconds: float) -> int:
        """Move the clock ``seconds`` forward, firing what falls due; returns how many fired."""
        if seconds < 0:
            raise ValueError("The simulator's clock does not go back.")
        return self.run_until(self.now + timedelta(seconds=seconds))

    def run_until(self, moment: datetime) -> int:
        fired = 0
        with self._lock:
            while self._queue and self._queue[0][0] <= moment:
                at, _order, call_ref, what, data = heapq.heappop(self._queue)
                self.now = max(self.now, at)
                fired += self._fire(call_ref, what, data)
            self.now = max(self.now, moment)
        return fired

    # ------------------------------------------------------------------------------------- events

    def _emit(self, call: SimulatedCall, kind: CallEventKind, **data: Any) -> Any:
        event = CallEvent(
            kind=kind,
            provider=self.name,
            call_ref=call.call_ref,
            event_id=f"{call.call_ref}:{next(self._events)}",
            at=self.now,
            direction=call.direction,
            from_number=call.from_number,
            to_number=call.to_number,
            data=data,
        )
        return self.sink(event)

    def _fire(self, call_ref: str, what: str, data: dict[str, Any]) -> int:
        call = self.calls.get(call_ref)
        if call is None or call.state == "ended":
            return 0
        if what == "ringing":
            self._emit(call, CallEventKind.RINGING, **self._context(call))
        elif what == "answer":
            call.state = "answered"
            call.answered_at = self.now
            answered_by = "machine_start" if data.get("machine") else "human"
            self._emit(call, CallEventKind.ANSWERED, answered_by=answered_by, **self._context(call))
            self._schedule(call.talk_seconds, call_ref, "hangup", status="completed")
        elif what == "hangup":
            self._end(call, str(data.get("status") or "completed"))
        elif what == "give_up" and call.state == "ringing":
            self._end(call, "completed")
        else:
            return 0
        return 1

    def _context(self, call: SimulatedCall) -> dict[str, Any]:
        # The interaction's public id, under either name callers use ("interaction" or "interaction_id").
        interaction = call.context.get("interaction") or call.context.get("interaction_id")
        return {"interaction": interaction} if isinstance(interaction, str) and interaction else {}

    def _end(self, call: SimulatedCall, status: str) -> None:
        call.state = "ended"
        self._emit(call, CallEventKind.HANGUP, status=status, **self._context(call))
        if call.recording and call.answered_at is not None:
            seconds = int((self.now - call.answered_at).total_seconds())
            self._emit(
                call,
                CallEventKind.RECORDING_READY,
                recording_ref=f"{call.call_ref}-REC",
                audio=silent_wav(seconds=min(seconds, 2)),
                duration_seconds=seconds,
            )

    # ------------------------------------------------------------------------------------- scenarios

    def incoming_call(
        self,
        *,
        from_number: str,
        to_number: str,
        talk_seconds: float = 120.0,
        patience_seconds: float = 60.0,
        voicemail_audio: bytes | None = None,
        voicemail_seconds: int = 10,
    ) -> str:
        """A caller dials in now: ``call.new`` at once, then (``answer_inbound``) the inbound steps:
        queued, they hang up ``talk_seconds`` after an agent answers (``connect_agent``) or give up
        after ``patience_seconds`` unanswered; sent to voicemail, they leave ``voicemail_audio``."""
        with self._lock:
            call_ref = f"SIM-IN-{next(self._ids):06d}"
            call = SimulatedCall(
                call_ref,
                "inbound",
                from_number,
                to_number,
                talk_seconds=talk_seconds,
                patience_seconds=patience_seconds,
            )
            if voicemail_audio is not None:
                call.context.update(voicemail_audio=voicemail_audio, voicemail_seconds=voicemail_seconds)
            self.calls[call_ref] = call
            interaction = self._emit(call, CallEventKind.NEW)
            self._schedule(patience_seconds, call_ref, "give_up")
            if self.answer_inbound and interaction is not None:
                self._answer(call, interaction)
        return call_ref

    def _answer(self, call: SimulatedCall, interaction: Any) -> None:
        """Do what a provider does with a new call: play the inbound steps (IVR or queue); a hang-up
        step ends the call; a voicemail step leaves the scenario's message when it has one."""
        from fedele.contact_center.ivr.steps import StepKind
        from fedele.contact_center.telephony.inbound import inbound_steps

        steps = inbound_steps(interaction=interaction, at=self.now)
        call.context["steps"] = [str(step.kind) for step in steps]
        kinds = {step.kind for step in steps}
        if StepKind.VOICEMAIL in kinds and call.context.get("voicemail_audio"):
            box = next(str(step.params.get("box", "")) for step in steps if step.kind == StepKind.VOICEMAIL)
            self._emit(
                call,
                CallEventKind.VOICEMAIL_READY,
                box=box,
                audio=call.context["voicemail_audio"],
                duration_seconds=int(call.context.get("voicemail_seconds", 10)),
                recording_ref=f"{call.call_ref}-VM",
            )
            self._end(call, "completed")
        elif StepKind.HANGUP in kinds or StepKind.VOICEMAIL in kinds:
            self._end(call, "completed")

    def arrivals(
        self,
        *,
        calls_per_hour: float,
        hours: float,
        numbers: list[str],
        to_number: str,
        mean_talk_seconds: float = 180.0,
        mean_patience_seconds: float = 90.0,
    ) -> list[tuple[float, str, float, float]]:
        """A Poisson arrival plan (seeded): (offset seconds, caller, talk seconds, patience seconds).
        Play it with ``play_arrivals``; returned so load tests can assert it."""
        if calls_per_hour <= 0 or hours <= 0 or not numbers:
            return []
        plan: list[tuple[float, str, float, float]] = []
        offset = 0.0
        end = hours * 3600
        while True:
            offset += self.random.expovariate(calls_per_hour / 3600)
            if offset >= end:
                return plan
            plan.append(
                (
                    offset,
                    self.random.choice(numbers),
                    self.random.expovariate(1 / mean_talk_seconds),
                    self.random.expovariate(1 / mean_patience_seconds),
                )
            )

    def play_arrivals(self, plan: list[tuple[float, str, float, float]], *, to_number: str) -> list[str]:
        """Place every planned call at its offset from now, advancing the clock; returns the call ids."""
        start = self.now
        refs = []
        for offset, caller, talk, patience in plan:
            self.run_until(start + timedelta(seconds=offset))
            refs.append(
                self.incoming_call(
                    from_number=caller, to_number=to_number, talk_seconds=talk, patience_seconds=patience
                )
            )
        return refs

    # ------------------------------------------------------------------------------------- the port

    def _get(self, call_ref: str) -> SimulatedCall:
        call = self.calls.get(call_ref)
        if call is None or call.state == "ended":
            raise LookupError(f"No live simulated call {call_ref}")
        return call

    def originate(self, *, to_number: str, from_number: str, context: dict[str, Any]) -> str:
        behaviour = context.get("behaviour")
        plan = behaviour if isinstance(behaviour, OutboundBehaviour) else OutboundBehaviour()
        with self._lock:
            call_ref = f"SIM-OUT-{next(self._ids):06d}"
            call = SimulatedCall(
                call_ref,
                "outbound",
                from_number,
                to_number,
                talk_seconds=plan.talk_seconds,
                context={k: v for k, v in context.items() if k != "behaviour"},
            )
            self.calls[call_ref] = call
            self.commands.append(("originate", call_ref, {"to": to_number, "from": from_number}))
            self._schedule(0, call_ref, "ringing")
            if plan.result == "answer":
                self._schedule(plan.ring_seconds, call_ref, "answer", machine=plan.machine)
            elif plan.result == "busy":
                self._schedule(1, call_ref, "hangup", status="busy")
            elif plan.result == "failed":
                self._schedule(0, call_ref, "hangup", status="failed")
            else:
                self._schedule(plan.ring_seconds, call_ref, "hangup", status="no-answer")
        return call_ref

    def connect_agent(self, call_ref: str, *, agent_target: str) -> None:
        with self._lock:
            call = self._get(call_ref)
            self.commands.append(("connect_agent", call_ref, {"agent": agent_target}))
            call.agent_endpoint = agent_target
            if call.state == "ringing":
                call.state = "answered"
                call.answered_at = self.now
                self._emit(call, CallEventKind.ANSWERED, answered_by="agent", agent=agent_target)
                self._schedule(call.talk_seconds, call_ref, "hangup", status="completed")

    def hangup(self, call_ref: str) -> None:
        with self._lock:
            call = self._get(call_ref)
            self.commands.append(("hangup", call_ref, {}))
            self._end(call, "completed")

    def hold(self, call_ref: str, *, on: bool) -> None:
        with self._lock:
            self._get(call_ref).held = on
            self.commands.append(("hold", call_ref, {"on": on}))

    def mute(self, call_ref: str, *, on: bool) -> None:
        with self._lock:
            self._get(call_ref).muted = on
            self.commands.append(("mute", call_ref, {"on": on}))

    def transfer(self, call_ref: str, *, target: str, warm: bool) -> None:
        with self._lock:
            self._get(call_ref)
            self.commands.append(("transfer", call_ref, {"target": target, "warm": warm}))

    def conference(self, call_ref: str, *, target: str) -> None:
        with self._lock:
            self._get(call_ref)
            self.commands.append(("conference", call_ref, {"target": target}))

    def leave(self, call_ref: str) -> None:
        with self._lock:
            self._get(call_ref)
            self.commands.append(("leave", call_ref, {}))

    def send_dtmf(self, call_ref: str, digits: str) -> None:
        with self._lock:
            self._get(call_ref)
            self.commands.append(("send_dtmf", call_ref, {"count": len(digits)}))

    def recording_start(self, call_ref: str) -> None:
        with self._lock:
            call = self._get(call_ref)
            call.recording = True
            if call.answered_at is None:
                call.answered_at = self.now
            self.commands.append(("recording_start", call_ref, {}))

    def recording_pause(self, call_ref: str, *, paused: bool) -> None:
        with self._lock:
            self._get(call_ref).recording_paused = paused
            self.commands.append(("recording_pause", call_ref, {"paused": paused}))

    def caller_hangs_up(self, call_ref: str) -> None:
        """The caller hangs up now (abandoned while waiting, or done talking)."""
        with self._lock:
            self._end(self._get(call_ref), "completed")

    def press(self, call_ref: str, digits: str) -> None:
        """The caller presses keys (``call.dtmf`` with the digits)."""
        with self._lock:
            self._emit(self._get(call_ref), CallEventKind.DTMF, digits=digits)

    def leave_voicemail(self, call_ref: str, *, box: str, audio: bytes, seconds: int) -> None:
        with self._lock:
            call = self._get(call_ref)
            self._emit(
                call,
                CallEventKind.VOICEMAIL_READY,
                box=box,
                audio=audio,
                duration_seconds=seconds,
                recording_ref=f"{call_ref}-VM",
            )


def silent_wav(*, seconds: int) -> bytes:
    """A WAV of ``seconds`` of 8 kHz µ-law-rate silence (16-bit PCM), the simulator's "recording"."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(b"\x00\x00" * 8000 * max(seconds, 0))
    return buffer.getvalue()


_instance: SimulatorAdapter | None = None
_instance_lock = threading.Lock()


def simulator() -> SimulatorAdapter:
    """The process's one simulator (its calls and clock live in memory)."""
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = SimulatorAdapter()
        return _instance


def simulator_reset(**options: Any) -> SimulatorAdapter:
    """A fresh simulator for a demo run or a test (options as for ``SimulatorAdapter``)."""
    global _instance
    with _instance_lock:
        _instance = SimulatorAdapter(**options)
        return _instance

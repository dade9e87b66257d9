"""What fedele does with a SIP call: the IVR application behind the user agent.

For each call: report ``call.new`` / ``call.ringing`` / ``call.answered`` through
``telephony.events.call_event_apply`` (so the Interaction's lifecycle stays in one place), start the
IVR engine on the dialled number's flow and perform its steps over RTP (prompts, digit collection,
voicemail recording), report every key press as ``call.dtmf``, and, once queued, wait with a hold tone
until the router's offer is accepted. Then the call is **handed to the agent's phone with a blind
REFER** to the agent's extension on the PBX that sent the call (``FEDELE_SIP_AGENT_URI``, default
``sip:{extension}@{domain}``): the PBX bridges caller and agent, and the interaction stays connected
until the agent closes it on the desktop. A caller who hangs up first is ``call.hangup``.

Outbound calls (``TelephonyAdapter.originate``: click-to-dial, the dialer) go the same way once
answered: ``call.new`` when the INVITE leaves, ``call.ringing`` at the first 180/183,
``call.answered`` at the 200 OK, then the flow named in the context (``flow``) or, without one, the
same wait-then-REFER as an inbound call in queue (a click-to-dial agent is connected at the answer,
so the REFER to their extension follows at once; a dialer call waits for the agent the dialer
routes it to). A call nobody answered ends with ``call.hangup`` and the status the event path
knows from Twilio (``busy``, ``no-answer``, ``canceled``, ``failed``) plus the SIP status.

Django work (ORM, services) runs on one dedicated thread so the event loop never blocks and a call's
events are applied in order; the thread may share a connection given by the caller (tests run the
user agent beside pytest-django's live server on one in-memory SQLite database).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from fedele.contact_center.ivr.steps import IvrStep, StepKind
from fedele.contact_center.models import Agent, Interaction, InteractionState
from fedele.contact_center.telephony.port import CallEvent, CallEventKind
from fedele.contact_center.telephony.sip import audio
from fedele.contact_center.telephony.sip.call import CallEnded, CallState, HangupCause, SipCall
from fedele.contact_center.telephony.sip.message import SipMessage, parse_uri
from fedele.contact_center.telephony.sip.rtp import SAMPLE_RATE
from fedele.contact_center.telephony.sip.trunk import Trunk
from fedele.contact_center.telephony.sip.ua import DialOutcome
from fedele.shared.errors import ApplicationError

logger = logging.getLogger(__name__)

PROVIDER = "sip"
QUEUE_POLL_SECONDS = 0.5
DEFAULT_AGENT_URI = "sip:{extension}@{domain}"
_DISPLAY_NAME = re.compile(r'^\s*"?([^"<]*?)"?\s*<')

Result = TypeVar("Result")


class DatabaseThread:
    """Runs Django code on one thread, in submission order.

    With ``connections_override`` the thread uses connections another thread owns too (a test's
    in-memory SQLite connection). Two threads inside ``transaction.atomic`` on one connection would
    interleave their savepoints, so each job then holds :meth:`sharing`'s lock, and the other thread
    takes the same lock around its own database work while calls are live."""

    def __init__(self, *, connections_override: dict[str, Any] | None = None) -> None:
        self._override = connections_override or {}
        self._shared = threading.RLock()
        for connection in self._override.values():
            connection.inc_thread_sharing()
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="fedele-sip-db", initializer=self._init
        )

    def _init(self) -> None:
        for alias, connection in self._override.items():
            connections[alias] = connection

    def sharing(self) -> contextlib.AbstractContextManager[Any]:
        """Hold this while using a connection shared with the thread (a no-op without sharing)."""
        return self._shared if self._override else contextlib.nullcontext()

    def _call(self, function: Callable[..., Result], *args: Any, **kwargs: Any) -> Result:
        if not self._override:
            close_old_connections()
            return function(*args, **kwargs)
        with self._shared:
            return function(*args, **kwargs)

    async def run(self, function: Callable[..., Result], *args: Any, **kwargs: Any) -> Result:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(self._call, function, *args, **kwargs)
        )

    def shutdown(self) -> None:
        def close() -> None:
            if not self._override:
                connections.close_all()

        with contextlib.suppress(RuntimeError):
            self._executor.submit(close).result(timeout=5)
        self._executor.shutdown(wait=True)
        for connection in self._override.values():
            connection.dec_thread_sharing()
        self._override = {}


@dataclass(slots=True)
class CallRecord:
    """What the application knows about one live call."""

    call: SipCall
    interaction_id: int | None = None
    handed_to_agent: bool = False
    handoff_started: bool = False
    hangup_reported: bool = False
    event_numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # Outbound: what the originating side passed on (interaction public id, campaign, dial attempt)
    # and when the callee answered (the hang-up reports the call's duration from it).
    context: dict[str, str] = field(default_factory=dict)
    answered_at: datetime | None = None


def number_of(uri: str) -> str:
    """The user part of a SIP URI: the dialled or calling number (``sip:+390612345@pbx`` → ``+390612345``)."""
    try:
        return parse_uri(uri).user.split(";", 1)[0]
    except ValueError:
        return ""


def display_name_of(address: str) -> str:
    match = _DISPLAY_NAME.match(address)
    return match.group(1).strip() if match else ""


def agent_uri(*, agent: Agent, call: SipCall) -> str:
    """Where to REFER a call for ``agent``: their extension (or E.164 number) at the PBX's domain; an
    extension that already is a SIP URI is used as it is."""
    target = (agent.extension or agent.phone_number or "").strip()
    if not target:
        return ""
    if target.lower().startswith(("sip:", "sips:")):
        return target
    try:
        domain = parse_uri(call.from_uri).host
    except ValueError:
        domain = call.source[0]
    template = str(getattr(settings, "FEDELE_SIP_AGENT_URI", "") or DEFAULT_AGENT_URI)
    return template.format(extension=target, domain=domain, host=call.source[0], port=call.source[1])


class IvrApplication:
    """The call handler given to ``SipUserAgent``: one ``handle`` per call."""

    def __init__(
        self,
        *,
        prompts: audio.PromptLibrary,
        database: DatabaseThread,
        default_flow: str = "",
        answer_after_seconds: float = 0.0,
    ) -> None:
        self.prompts = prompts
        self.database = database
        self.default_flow = default_flow
        self.answer_after_seconds = answer_after_seconds
        self.calls: dict[str, CallRecord] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        # Milestones per call (``queued``, ``handed_to_agent``, ``voicemail``, ``ended``) for
        # whoever watches the server: the management command logs them, tests wait on them.
        self.milestones: list[tuple[str, str]] = []
        self.milestone_added = threading.Condition()
        self._queued: dict[str, asyncio.Future[Interaction | str]] = {}
        self._queue_watcher: asyncio.Task[None] | None = None

    # ---- milestones ----

    def milestone(self, call_ref: str, name: str) -> None:
        with self.milestone_added:
            self.milestones.append((call_ref, name))
            self.milestone_added.notify_all()
        logger.info("SIP call %s: %s", call_ref, name)

    def wait_for_milestone(
        self,
        name: str,
        *,
        call_ref: str | None = None,
        timeout: float = 30.0,
        give_up: Callable[[], bool] | None = None,
    ) -> str:
        """Block (from another thread) until a call reaches ``name``; returns its call ref. ``give_up``
        is asked every half second (e.g. "has the peer process exited?") to stop waiting early."""
        deadline = time.monotonic() + timeout
        while give_up is not None and time.monotonic() < deadline:
            try:
                return self.wait_for_milestone(name, call_ref=call_ref, timeout=0.5)
            except TimeoutError:
                if give_up():
                    break
        with self.milestone_added:
            found: list[str] = []

            def reached() -> bool:
                found[:] = [
                    ref for ref, milestone in self.milestones if milestone == name and call_ref in (None, ref)
                ]
                return bool(found)

            if not self.milestone_added.wait_for(reached, timeout=max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"no SIP call reached {name!r} within {timeout} s; saw {self.milestones}")
            return found[0]

    # ---- events ----

    async def report(
        self, record: CallRecord, kind: CallEventKind, *, at: datetime | None = None, **data: Any
    ) -> Interaction:
        from fedele.contact_center.telephony.events import call_event_apply

        call = record.call
        if record.context.get("interaction"):
            # The first event binds our Call-ID to the interaction the originator created.
            data = {"interaction": record.context["interaction"], **data}
        if kind == CallEventKind.NEW:
            data = {**{k: v for k, v in record.context.items() if k != "interaction"}, **data}
        event = CallEvent(
            kind=kind,
            provider=PROVIDER,
            call_ref=call.call_id,
            event_id=f"{call.call_id}:{next(record.event_numbers)}:{kind}",
            at=at or timezone.now(),
            direction="outbound" if call.outbound else "inbound",
            from_number=number_of(call.from_uri),
            to_number=number_of(call.to_uri),
            data=data,
        )
        interaction = await self.database.run(call_event_apply, event)
        record.interaction_id = interaction.pk
        return interaction

    async def report_hangup(self, record: CallRecord, *, status: str, cause: str) -> None:
        if record.hangup_reported or record.handed_to_agent:
            return
        record.hangup_reported = True
        at = timezone.now()
        extra: dict[str, Any] = {}
        if record.answered_at is not None:
            extra["call_duration"] = int((at - record.answered_at).total_seconds())
        try:
            await self.report(record, CallEventKind.HANGUP, at=at, status=status, cause=cause, **extra)
        except Exception:
            logger.exception("SIP call %s: hang-up could not be recorded", record.call.call_id)

    # ---- the call ----

    def _report_keys_and_hold(self, record: CallRecord, *, held_by: str) -> list[asyncio.Future[Interaction]]:
        """Report the call's key presses and the far end's hold/unhold as call events; returns the list
        the pending reports collect in, for the call's end to wait on."""
        pending: list[asyncio.Future[Interaction]] = []

        def on_digit(digit: str, method: str) -> None:
            pending.append(
                asyncio.ensure_future(self.report(record, CallEventKind.DTMF, digit=digit, method=method))
            )

        def on_remote_hold(on: bool) -> None:
            kind = CallEventKind.HOLD if on else CallEventKind.UNHOLD
            pending.append(asyncio.ensure_future(self.report(record, kind, by=held_by)))

        record.call.on_digit = on_digit
        record.call.on_remote_hold = on_remote_hold
        return pending

    async def handle(self, call: SipCall) -> None:
        self.loop = asyncio.get_running_loop()
        record = CallRecord(call=call)
        self.calls[call.call_id] = record
        pending_reports = self._report_keys_and_hold(record, held_by="caller")
        try:
            caller_name = display_name_of(call.invite.header("From"))
            interaction = await self.report(record, CallEventKind.NEW, caller_name=caller_name)
            if not await self.database.run(self._has_flow, number_of(call.to_uri)):
                logger.warning("SIP call %s: no published IVR flow for %s", call.call_id, call.to_uri)
                await call.reject(404)
                await self.report_hangup(record, status="failed", cause="no_flow")
                return
            await call.ring()
            await self.report(record, CallEventKind.RINGING)
            if self.answer_after_seconds > 0:
                with contextlib.suppress(TimeoutError):
                    await call._until_ended(asyncio.sleep(self.answer_after_seconds), timeout=None)
            await call.answer()
            interaction = await self.report(record, CallEventKind.ANSWERED, answered_by="ivr")
            steps = await self.database.run(self._start_ivr, interaction, number_of(call.to_uri))
            await self.perform(record, steps)
        except CallEnded:
            pass
        finally:
            if pending_reports:
                await asyncio.gather(*pending_reports, return_exceptions=True)
            if call.hangup_cause == HangupCause.CANCELLED:
                await self.report_hangup(record, status="canceled", cause="cancelled")
            elif call.hangup_cause == HangupCause.TRANSFERRED:
                pass
            else:
                if call.hangup_cause is None:
                    await call.hangup()
                await self.report_hangup(record, status="completed", cause=str(call.hangup_cause or ""))
            self.calls.pop(call.call_id, None)
            self.milestone(call.call_id, "ended")

    async def handle_outbound(self, call: SipCall, *, trunk: Trunk, context: dict[str, str]) -> None:
        """An outbound call from the INVITE to its end (see the module docstring)."""
        self.loop = asyncio.get_running_loop()
        record = CallRecord(call=call, context=context)
        self.calls[call.call_id] = record
        pending_reports = self._report_keys_and_hold(record, held_by="customer")
        rang: list[int] = []

        def on_provisional(response: SipMessage) -> None:
            if 180 <= response.status < 190 and not rang:
                rang.append(response.status)
                pending_reports.append(asyncio.ensure_future(self.report(record, CallEventKind.RINGING)))

        try:
            await self.report(record, CallEventKind.NEW)
            try:
                outcome = await call.agent.dial(call, trunk=trunk, on_provisional=on_provisional)
            except OSError:
                logger.exception("SIP call %s could not be placed", call.call_id)
                outcome = DialOutcome("failed", cause="local_error")
                call.finish(HangupCause.REJECTED)
            answered_at = timezone.now()
            if pending_reports:  # the ringing lands before the answer or the failure
                await asyncio.gather(*pending_reports, return_exceptions=True)
                pending_reports.clear()
            if outcome.status != "answered":
                record.hangup_reported = True
                if call.state != CallState.ENDED:
                    await call.hangup()  # a 2xx we could not keep: BYE
                call.finish(HangupCause.REJECTED)
                await self.report(
                    record,
                    CallEventKind.HANGUP,
                    status=outcome.status,
                    cause=outcome.cause,
                    sip=outcome.sip_status,
                )
                self.milestone(call.call_id, outcome.status)
                return
            record.answered_at = answered_at
            interaction = await self.report(record, CallEventKind.ANSWERED, at=answered_at, answered_by="")
            self.milestone(call.call_id, "answered")
            flow = str(context.get("flow") or "")
            if flow:
                steps = await self.database.run(self._start_flow, interaction, flow)
                await self.perform(record, steps)
            else:
                await self.wait_in_queue(record)
        except CallEnded:
            pass
        except Exception:
            logger.exception("SIP call %s failed", call.call_id)
        finally:
            if pending_reports:
                await asyncio.gather(*pending_reports, return_exceptions=True)
            if call.hangup_cause != HangupCause.TRANSFERRED:
                if call.hangup_cause is None:
                    with contextlib.suppress(Exception):
                        await call.hangup()
                    call.finish(HangupCause.REJECTED)  # still ringing (nobody dials it any more): ended
                await self.report_hangup(record, status="completed", cause=str(call.hangup_cause or ""))
            self.calls.pop(call.call_id, None)
            self.milestone(call.call_id, "ended")

    @staticmethod
    def _start_flow(interaction: Interaction, flow: str) -> list[IvrStep]:
        from fedele.contact_center.ivr.engine import ivr_start

        return ivr_start(interaction=interaction, flow_code=flow)

    def _has_flow(self, dialled: str) -> bool:
        from fedele.contact_center.ivr.engine import flow_version_for

        try:
            if self.default_flow:
                flow_version_for(flow_code=self.default_flow)
            else:
                flow_version_for(number=dialled)
        except ApplicationError:
            return False
        return True

    def _start_ivr(self, interaction: Interaction, dialled: str) -> list[IvrStep]:
        from fedele.contact_center.ivr.engine import ivr_start

        if self.default_flow:
            return ivr_start(interaction=interaction, flow_code=self.default_flow)
        return ivr_start(interaction=interaction, number=dialled)

    def _continue_ivr(self, interaction_id: int, digits: str, timed_out: bool) -> list[IvrStep]:
        from fedele.contact_center.ivr.engine import ivr_continue

        interaction = Interaction.objects.get(pk=interaction_id)
        return ivr_continue(interaction=interaction, digits=digits, timed_out=timed_out)

    async def perform(self, record: CallRecord, steps: list[IvrStep]) -> None:
        """Do the engine's steps until one hands the call on; feed collected digits back to it."""
        call = record.call
        while steps:
            following: list[IvrStep] = []
            for step in steps:
                if step.kind in (StepKind.SAY, StepKind.PLAY):
                    pcm = await asyncio.to_thread(
                        self.prompts.audio_for, audio=step.audio, text=step.text, language=step.language
                    )
                    await call.play(pcm, barge_in=bool(step.params.get("barge_in")))
                elif step.kind == StepKind.COLLECT:
                    digits, timed_out = await call.collect(
                        max_digits=int(step.params.get("max_digits", 1)),
                        finish_on=str(step.params.get("finish_on", "")),
                        timeout_seconds=float(step.params.get("timeout_seconds", 5)),
                    )
                    assert record.interaction_id is not None
                    try:
                        following = await self.database.run(
                            self._continue_ivr, record.interaction_id, digits, timed_out
                        )
                    except ApplicationError:
                        logger.exception("SIP call %s: the IVR refused the input", call.call_id)
                        following = []
                    break
                elif step.kind == StepKind.QUEUE:
                    self.milestone(call.call_id, "queued")
                    await self.wait_in_queue(record)
                    return
                elif step.kind == StepKind.VOICEMAIL:
                    await self.voicemail(record, step)
                    return
                elif step.kind == StepKind.TRANSFER:
                    await self.transfer_out(record, str(step.params.get("target") or ""))
                    return
                elif step.kind == StepKind.HANGUP:
                    await call.hangup()
                    return
            steps = following
        await call.hangup()  # the flow stopped without a hand-off: never leave a caller in silence

    # ---- queue and hand-off ----

    async def wait_in_queue(self, record: CallRecord) -> None:
        call = record.call
        assert record.interaction_id is not None
        loop = asyncio.get_running_loop()
        settled: asyncio.Future[Interaction | str] = loop.create_future()
        self._queued[call.call_id] = settled
        self._ensure_queue_watcher()
        hold = audio.hold_tone()
        try:
            while not settled.done():
                play: asyncio.Future[Any] = asyncio.ensure_future(call.play(hold))
                waiting: set[asyncio.Future[Any]] = {play, settled}
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if settled in done:
                    play.cancel()
                    with contextlib.suppress(asyncio.CancelledError, CallEnded):
                        await play
                else:
                    play.result()  # CallEnded propagates
        finally:
            self._queued.pop(call.call_id, None)
        record.handoff_started = True
        outcome = settled.result()
        if isinstance(outcome, str):  # the desktop asked for the call on a given endpoint
            interaction_id = record.interaction_id
            interaction = await self.database.run(
                lambda: Interaction.objects.select_related("agent").get(pk=interaction_id)
            )
            await self.hand_to_agent(record, interaction, target=outcome)
            return
        if outcome.state != InteractionState.CONNECTED or outcome.agent_id is None:
            await call.hangup()  # ended elsewhere (a supervisor closed it, the queue gave up)
            return
        await self.hand_to_agent(record, outcome)

    def connect(self, call_ref: str, endpoint: str) -> bool:
        """``TelephonyAdapter.connect_agent``: hand a queued call to ``endpoint`` now (on the loop).
        False when the call is not waiting in queue here (already handed on, or not ours)."""
        settled = self._queued.get(call_ref)
        record = self.calls.get(call_ref)
        if record is None:
            return False
        if record.handoff_started or (settled is not None and settled.done()):
            return True  # the router's acceptance already started the hand-off: one REFER only
        if settled is None:
            return False
        target = (
            endpoint
            if endpoint.lower().startswith(("sip:", "sips:"))
            else agent_uri(agent=Agent(extension=endpoint), call=record.call)
        )
        settled.set_result(target)
        return True

    def _ensure_queue_watcher(self) -> None:
        if self._queue_watcher is None or self._queue_watcher.done():
            self._queue_watcher = asyncio.get_running_loop().create_task(self._watch_queue())

    async def _watch_queue(self) -> None:
        """One query for every queued call, every half second: has an agent accepted it, or has it
        left the queue another way? (Accepting happens in a web process, on the router's side.)"""
        while self._queued:
            refs = list(self._queued)
            try:
                settled = await self.database.run(self._settled_interactions, refs)
            except Exception:
                logger.exception("SIP queue watcher could not read interactions")
                settled = {}
            for ref, interaction in settled.items():
                future = self._queued.get(ref)
                if future is not None and not future.done():
                    future.set_result(interaction)
            await asyncio.sleep(QUEUE_POLL_SECONDS)

    @staticmethod
    def _settled_interactions(refs: list[str]) -> dict[str, Interaction]:
        waiting = {InteractionState.IVR, InteractionState.QUEUED, InteractionState.OFFERED}
        rows = Interaction.objects.filter(provider=PROVIDER, provider_ref__in=refs).select_related("agent")
        return {row.provider_ref: row for row in rows if row.state not in waiting}

    async def hand_to_agent(self, record: CallRecord, interaction: Interaction, *, target: str = "") -> None:
        from fedele.contact_center.services.interactions import interaction_event_record

        call = record.call
        if not target and interaction.agent is not None:
            target = agent_uri(agent=interaction.agent, call=call)
        if not target:
            await self.database.run(
                interaction_event_record,
                interaction=interaction,
                kind="sip.handoff_failed",
                data={"reason": "agent has no extension or phone number"},
            )
            self.milestone(call.call_id, "handoff_failed")
            await self._hold_until_end(call)
            return
        record.handed_to_agent = True  # from here the PBX carries the call: our BYE is not the end
        transferred = await call.transfer(target)
        await self.database.run(
            interaction_event_record,
            interaction=interaction,
            kind="sip.handed_to_agent" if transferred else "sip.handoff_failed",
            data={"target": target, "agent": str(interaction.agent.public_id) if interaction.agent else ""},
        )
        if transferred:
            self.milestone(call.call_id, "handed_to_agent")
            return
        record.handed_to_agent = False
        self.milestone(call.call_id, "handoff_failed")
        await self._hold_until_end(call)

    async def _hold_until_end(self, call: SipCall) -> None:
        """Keep the caller hearing the hold tone: the agent can still transfer them from the desktop."""
        hold = audio.hold_tone()
        while True:
            await call.play(hold)

    async def transfer_out(self, record: CallRecord, target: str) -> None:
        call = record.call
        if not target.lower().startswith(("sip:", "sips:")):
            target = agent_uri(agent=Agent(extension=target), call=call)
        await self.report(record, CallEventKind.TRANSFER, target=target, warm=False)
        if not await call.transfer(target):
            await call.hangup()
            return
        record.handed_to_agent = False
        await self.report_hangup(record, status="completed", cause="transferred")

    # ---- voicemail ----

    async def voicemail(self, record: CallRecord, step: IvrStep) -> None:
        call = record.call
        max_seconds = max(1, min(int(step.params.get("max_seconds", 120)), 600))
        await call.play(audio.beep())
        pcm = await call.record(max_seconds=max_seconds, finish_on="#")
        duration = len(pcm) // (2 * SAMPLE_RATE)
        logger.info(
            "SIP call %s: voicemail of %s bytes (%s RTP packets received in all)",
            call.call_id,
            len(pcm),
            call.rtp.packets_received if call.rtp else 0,
        )
        await self.report(
            record,
            CallEventKind.VOICEMAIL_READY,
            box=str(step.params.get("box") or ""),
            audio=audio.wav_bytes(pcm),
            duration_seconds=duration,
            recording_ref=f"{call.call_id}:voicemail",
        )
        self.milestone(call.call_id, "voicemail")
        if call.hangup_cause is None:
            await call.hangup()

    # ---- call control from the desktop (the adapter calls these on the loop) ----

    def record_for(self, call_ref: str) -> CallRecord | None:
        return self.calls.get(call_ref)


def prompt_directory() -> Path:
    configured = getattr(settings, "FEDELE_SIP_PROMPTS_DIR", "")
    return Path(configured) if configured else Path(settings.MEDIA_ROOT) / "contact_center" / "sip_prompts"

"""Softphone call control for the agent desktop: answer, hold/unhold, mute, transfer (warm/cold),
conference, DTMF, hang up, PCI recording pause, and click-to-dial.

Each action checks the call (a voice interaction, with a provider and a call id) and the agent (the one
handling it), asks the call's adapter (``adapter_for(interaction.provider)``) to act, and then records
the result on the interaction through the routing area's lifecycle services. The provider is asked
first: when it refuses or cannot be reached (``TelephonyProviderError``, HTTP 502), nothing changes
here. A capability an adapter lacks is a ValidationFailed ``unsupported_call_action``.

Digits sent with DTMF are never stored (they are often card numbers): the timeline keeps their count.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from django.db import transaction
from django.utils.translation import gettext as _

from fedele.contact_center.models import (
    Agent,
    AgentState,
    Channel,
    Direction,
    Interaction,
    InteractionState,
    Outcome,
    QueueTelephonySettings,
    RecordingPause,
)
from fedele.contact_center.telephony.port import TelephonyAdapter
from fedele.contact_center.telephony.registry import adapter_for
from fedele.contact_center.telephony.twilio import telephony_setting
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed
from fedele.shared.sms import e164

T = TypeVar("T")
logger = logging.getLogger(__name__)

DTMF_DIGITS = re.compile(r"^[0-9*#A-Dw]{1,32}$")
# A transfer target: an E.164 number, a SIP URI or an internal extension.
SIP_URI = re.compile(r"^sips?:[^\s@<>\"]+@[A-Za-z0-9.\-]+(:[0-9]{1,5})?$")
EXTENSION = re.compile(r"^[0-9]{2,8}$")


def default_voice_provider() -> str:
    return telephony_setting("FEDELE_CC_VOICE_PROVIDER", "simulator")


def _call(
    interaction: Interaction, agent: Agent, *, states: tuple[str, ...]
) -> tuple[Interaction, TelephonyAdapter]:
    if interaction.channel != Channel.VOICE or not interaction.provider or not interaction.provider_ref:
        raise ValidationFailed(_("This contact is not a call."), code="not_a_call")
    fresh = Interaction.objects.get(pk=interaction.pk)
    if fresh.agent_id != agent.pk:
        raise PermissionDenied(_("This call is not yours."), code="not_your_call")
    if fresh.state not in states:
        raise Conflict(
            _("The call is %(state)s: this action is not possible now.")
            % {"state": fresh.get_state_display()},
            code="call_state_conflict",
        )
    return fresh, adapter_for(fresh.provider)


def _provider(action: Callable[[], T]) -> T:
    try:
        return action()
    except NotImplementedError as error:
        raise ValidationFailed(
            _("The telephony provider does not support this action."), code="unsupported_call_action"
        ) from error


def _record(
    interaction: Interaction, kind: str, agent: Agent, at: datetime, data: dict[str, Any] | None = None
) -> None:
    from fedele.contact_center.services.interactions import interaction_event_record

    interaction_event_record(
        interaction=interaction, kind=kind, data={"agent_id": agent.pk, **(data or {})}, at=at
    )


def _remember(interaction: Interaction, **values: Any) -> None:
    locked = Interaction.objects.select_for_update().get(pk=interaction.pk)
    locked.attributes = {**(locked.attributes or {}), **values}
    locked.save(update_fields=["attributes"])
    interaction.attributes = locked.attributes


def _target(target: str) -> str:
    value = (target or "").strip()
    if SIP_URI.match(value) or EXTENSION.match(value):
        return value
    return e164(value, field="target")


def call_answer(*, interaction: Interaction, agent: Agent, at: datetime | None = None) -> Interaction:
    """Bridge the caller to the agent's phone (``Agent.extension``, else ``phone_number``). The offer
    must have been accepted or be this agent's (the routing area's ``offer_accept`` connects it)."""
    moment = at or clock.now()
    call, adapter = _call(interaction, agent, states=(InteractionState.OFFERED, InteractionState.CONNECTED))
    endpoint = agent.extension or agent.phone_number
    if not endpoint:
        raise ValidationFailed(
            _("You have no extension or phone number to take the call on."), code="agent_without_endpoint"
        )
    _provider(lambda: adapter.connect_agent(call.provider_ref, agent_target=endpoint))
    recording = False
    if (
        call.queue_id is not None
        and QueueTelephonySettings.objects.filter(queue_id=call.queue_id, record_calls=True).exists()
    ):
        try:
            adapter.recording_start(call.provider_ref)
            recording = True
        except NotImplementedError:
            logger.warning("%s cannot record call %s", adapter.name, call.number)
    with transaction.atomic():
        _record(call, "call.agent_bridged", agent, moment, {"endpoint": endpoint, "recording": recording})
    return call


def call_hold(*, interaction: Interaction, agent: Agent, on: bool, at: datetime | None = None) -> Interaction:
    from fedele.contact_center.services.interactions import interaction_hold

    moment = at or clock.now()
    call, adapter = _call(interaction, agent, states=(InteractionState.CONNECTED,))
    held = bool((call.attributes or {}).get("hold_started_at"))
    if held == on:
        return call
    _provider(lambda: adapter.hold(call.provider_ref, on=on))
    return interaction_hold(interaction=call, on=on, at=moment)


def call_mute(*, interaction: Interaction, agent: Agent, on: bool, at: datetime | None = None) -> Interaction:
    moment = at or clock.now()
    call, adapter = _call(interaction, agent, states=(InteractionState.CONNECTED,))
    if bool((call.attributes or {}).get("muted")) == on:
        return call
    _provider(lambda: adapter.mute(call.provider_ref, on=on))
    with transaction.atomic():
        _remember(call, muted=on)
        _record(call, "call.mute" if on else "call.unmute", agent, moment)
    return call


def call_transfer(
    *, interaction: Interaction, agent: Agent, target: str, warm: bool, at: datetime | None = None
) -> Interaction:
    """Cold: the caller goes to ``target`` and the call ends for the agent (outcome ``transferred``,
    the agent goes to wrap-up). Warm: ``target`` joins the call first; the agent leaves later with
    ``call_leave``."""
    from fedele.contact_center.services.interactions import interaction_end

    moment = at or clock.now()
    destination = _target(target)
    call, adapter = _call(interaction, agent, states=(InteractionState.CONNECTED,))
    _provider(lambda: adapter.transfer(call.provider_ref, target=destination, warm=warm))
    with transaction.atomic():
        _remember(call, transferred_to=destination, transfer_warm=warm)
        _record(call, "call.transfer", agent, moment, {"target": destination, "warm": warm})
        if not warm:
            _close_pauses(call, moment)
            call = interaction_end(interaction=call, outcome=Outcome.TRANSFERRED, at=moment)
    return call


def call_leave(*, interaction: Interaction, agent: Agent, at: datetime | None = None) -> Interaction:
    """The agent hands over after a warm transfer (or leaves a conference): the others stay on the
    line; for us the call ends ``transferred``."""
    from fedele.contact_center.services.interactions import interaction_end

    moment = at or clock.now()
    call, adapter = _call(interaction, agent, states=(InteractionState.CONNECTED,))
    if not (call.attributes or {}).get("transferred_to") and not (call.attributes or {}).get("conference"):
        raise Conflict(_("Nobody else is on the call: hang up instead."), code="nobody_to_hand_over_to")
    _provider(lambda: adapter.leave(call.provider_ref))
    with transaction.atomic():
        _record(call, "call.agent_left", agent, moment)
        _close_pauses(call, moment)
        call = interaction_end(interaction=call, outcome=Outcome.TRANSFERRED, at=moment)
    return call


def call_conference(
    *, interaction: Interaction, agent: Agent, target: str, at: datetime | None = None
) -> Interaction:
    moment = at or clock.now()
    destination = _target(target)
    call, adapter = _call(interaction, agent, states=(InteractionState.CONNECTED,))
    _provider(lambda: adapter.conference(call.provider_ref, target=destination))
    with transaction.atomic():
        participants = [*(call.attributes or {}).get("conference", []), destination]
        _remember(call, conference=participants)
        _record(call, "call.conference", agent, moment, {"target": destination})
    return call


def call_send_dtmf(
    *, interaction: Interaction, agent: Agent, digits: str, at: datetime | None = None
) -> Interaction:
    moment = at or clock.now()
    value = (digits or "").strip()
    if not DTMF_DIGITS.match(value):
        raise ValidationFailed(
            _("Digits are 0-9, *, #, A-D (and w for a pause), at most 32."),
            code="invalid_dtmf",
            fields={"digits": _("Not valid DTMF.")},
        )
    call, adapter = _call(interaction, agent, states=(InteractionState.CONNECTED,))
    _provider(lambda: adapter.send_dtmf(call.provider_ref, value))
    with transaction.atomic():
        _record(call, "call.dtmf_sent", agent, moment, {"count": len(value)})
    return call


def call_hangup(*, interaction: Interaction, agent: Agent, at: datetime | None = None) -> Interaction:
    """The agent hangs up: the provider ends the call, the interaction ends ``handled`` (the agent goes
    to wrap-up); the provider's own hang-up report later changes nothing."""
    from fedele.contact_center.services.interactions import interaction_end

    moment = at or clock.now()
    call, adapter = _call(interaction, agent, states=(InteractionState.OFFERED, InteractionState.CONNECTED))
    _provider(lambda: adapter.hangup(call.provider_ref))
    with transaction.atomic():
        _record(call, "call.agent_hangup", agent, moment)
        _close_pauses(call, moment)
        outcome = Outcome.HANDLED if call.state == InteractionState.CONNECTED else Outcome.ABANDONED
        call = interaction_end(interaction=call, outcome=outcome, at=moment)
    return call


def call_recording_pause(
    *, interaction: Interaction, agent: Agent, paused: bool, at: datetime | None = None
) -> RecordingPause:
    """PCI pause/resume on the agent's command: the provider's recording is paused (a pause becomes
    silence skipped in the file) and the interval is kept to show in the interaction view."""
    from fedele.contact_center.services.recordings import recording_pause_set

    moment = at or clock.now()
    call, adapter = _call(interaction, agent, states=(InteractionState.CONNECTED,))
    open_pause = RecordingPause.objects.filter(interaction=call, resumed_at__isnull=True).exists()
    if paused and open_pause:
        raise Conflict(_("The recording is already paused."), code="recording_already_paused")
    if not paused and not open_pause:
        raise Conflict(_("The recording is not paused."), code="recording_not_paused")
    _provider(lambda: adapter.recording_pause(call.provider_ref, paused=paused))
    return recording_pause_set(interaction=call, agent=agent, paused=paused, at=moment)


def _close_pauses(interaction: Interaction, at: datetime) -> None:
    from fedele.contact_center.services.recordings import recording_pauses_close

    recording_pauses_close(interaction=interaction, at=at)


def call_dial(
    *, interaction: Interaction, agent: Agent, provider: str = "", at: datetime | None = None
) -> Interaction:
    """Place the call of an outbound contact the agent took from a queue (a callback task, e.g. for a
    voicemail): the provider dials ``to_address`` and the call id is bound to this same interaction.
    Dialling a contact that already has a call is a Conflict; nothing is dialled twice."""
    moment = at or clock.now()
    fresh = Interaction.objects.get(pk=interaction.pk)
    if fresh.channel != Channel.VOICE or fresh.direction != Direction.OUTBOUND:
        raise ValidationFailed(_("Only an outbound call can be dialled."), code="not_an_outbound_call")
    if fresh.agent_id != agent.pk:
        raise PermissionDenied(_("This call is not yours."), code="not_your_call")
    if fresh.state not in (InteractionState.OFFERED, InteractionState.CONNECTED):
        raise Conflict(_("This contact cannot be dialled now."), code="call_state_conflict")
    if fresh.provider_ref:
        raise Conflict(_("This contact has already been dialled."), code="already_dialled")
    number = e164(fresh.to_address, field="to_address")
    provider_name = fresh.provider or provider or default_voice_provider()
    adapter = adapter_for(provider_name)
    with transaction.atomic():
        locked = Interaction.objects.select_for_update().get(pk=fresh.pk)
        # ``dialled_at`` is set before the provider is asked (outside this transaction): a second
        # request meanwhile (a double click, another tab) finds it and dials nothing.
        if locked.provider_ref or (locked.attributes or {}).get("dialled_at"):
            raise Conflict(_("This contact has already been dialled."), code="already_dialled")
        locked.provider = provider_name
        locked.attributes = {**(locked.attributes or {}), "dialled_at": moment.isoformat()}
        locked.save(update_fields=["provider", "attributes"])
    caller_id = fresh.from_address or telephony_setting("FEDELE_CC_CALLER_ID")
    try:
        reference = _provider(
            lambda: adapter.originate(
                to_number=number,
                from_number=caller_id,
                context={"interaction": str(fresh.public_id), "agent_id": agent.pk},
            )
        )
    except Exception:
        # Nothing was dialled: the contact may be dialled again.
        with transaction.atomic():
            locked = Interaction.objects.select_for_update().get(pk=fresh.pk)
            if not locked.provider_ref:
                attributes = dict(locked.attributes or {})
                attributes.pop("dialled_at", None)
                locked.attributes = attributes
                locked.save(update_fields=["attributes"])
        raise
    with transaction.atomic():
        Interaction.objects.filter(pk=fresh.pk, provider_ref="").update(provider_ref=reference)
        _record(fresh, "call.dialled", agent, moment, {"to": number})
    fresh.refresh_from_db()
    return fresh


def call_originate(
    *,
    agent: Agent,
    to_number: str,
    from_number: str = "",
    provider: str = "",
    context: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> Interaction:
    """Click-to-dial: an outbound call from the agent to ``to_number`` (any written form, made E.164).

    The interaction is created first (so the provider's first callback finds it: its public id travels
    in the context), then the provider dials; the agent is connected when the customer answers. The
    agent must be signed in (not offline) and have no other call. A provider refusal leaves the
    interaction ended ``failed``."""
    from fedele.contact_center.services.interactions import interaction_create, interaction_end

    moment = at or clock.now()
    number = e164(to_number, field="to_number")
    provider_name = provider or default_voice_provider()
    adapter = adapter_for(provider_name)
    caller_id = from_number or telephony_setting("FEDELE_CC_CALLER_ID")
    with transaction.atomic():
        locked_agent = Agent.objects.select_for_update().get(pk=agent.pk)
        if not locked_agent.active or locked_agent.state == AgentState.OFFLINE:
            raise Conflict(_("Sign in (go available) before calling."), code="agent_offline")
        busy_calls = Interaction.objects.filter(
            agent=locked_agent,
            channel=Channel.VOICE,
            state__in=(InteractionState.OFFERED, InteractionState.CONNECTED),
        ).count()
        dialling = Interaction.objects.filter(
            channel=Channel.VOICE,
            direction=Direction.OUTBOUND,
            state=InteractionState.IVR,
            attributes__dialling_agent_id=locked_agent.pk,
        ).count()
        if busy_calls + dialling >= locked_agent.capacity_for(Channel.VOICE):
            raise Conflict(_("You are already on a call."), code="agent_on_call")
        interaction = interaction_create(
            channel=Channel.VOICE,
            direction=Direction.OUTBOUND,
            from_address=caller_id,
            to_address=number,
            provider=provider_name,
            attributes={"dialling_agent_id": locked_agent.pk, "click_to_dial": True},
            at=moment,
        )
        audit.record(
            action="contact_center.call_originated",
            object_type="contact_center.interaction",
            object_id=str(interaction.public_id),
            after={"to": number, "provider": provider_name, "agent": locked_agent.pk},
        )
    try:
        reference = adapter.originate(
            to_number=number,
            from_number=caller_id,
            context={**(context or {}), "interaction": str(interaction.public_id), "agent_id": agent.pk},
        )
    except Exception:
        interaction_end(interaction=interaction, outcome=Outcome.FAILED, at=clock.now())
        raise
    with transaction.atomic():
        updated = Interaction.objects.filter(pk=interaction.pk, provider_ref="").update(
            provider_ref=reference
        )
        interaction.refresh_from_db()
        if not updated and interaction.provider_ref != reference:  # pragma: no cover - defensive
            raise Conflict(_("The call was given another provider id."), code="provider_ref_conflict")
    return interaction

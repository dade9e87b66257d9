"""Normalised call events → the Interaction they belong to.

Every voice adapter (Twilio webhooks, the SIP user agent, the simulator) turns what its provider
reports into ``CallEvent``s and hands each one to ``call_event_apply``. This is the one place that
decides what a call event means for the interaction, so the lifecycle (states, talk/hold times,
outcome) stays in the routing area's services (``services/interactions.py``), reached from here only.

Rules:
- The interaction is the one with ``(provider, provider_ref == call_ref)``. ``call.new`` creates it;
  any other event for an unknown call creates it too (a status callback may overtake the voice
  webhook), then applies.
- A provider event id is recorded as ``<provider>:<event_id>`` on the timeline row; the same id again
  changes nothing (retries are common: Twilio retries a callback that timed out).
- Events that arrive after the call ended only land on the timeline (an ``answered`` after ``hangup``
  does not reopen it). A hang-up before anyone answered is ``abandoned`` for a caller waiting on us
  and ``no_answer`` / ``busy`` / ``failed`` for an outbound call, as the provider reports.
- Times are the provider's (UTC); durations never depend on a time zone or DST.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from fedele.contact_center.models import (
    Agent,
    Channel,
    Direction,
    Interaction,
    InteractionEvent,
    InteractionState,
    Outcome,
)
from fedele.contact_center.telephony.port import CallEvent, CallEventKind

logger = logging.getLogger(__name__)

# Provider call statuses (normalised to Twilio's words, which the other adapters also use) that end
# an outbound call nobody answered.
UNANSWERED_OUTCOMES = {
    "busy": Outcome.BUSY,
    "no-answer": Outcome.NO_ANSWER,
    "canceled": Outcome.NO_ANSWER,
    "failed": Outcome.FAILED,
}
MACHINE_ANSWERS = {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}
_ACTIVE_STATES = {
    InteractionState.IVR,
    InteractionState.QUEUED,
    InteractionState.OFFERED,
    InteractionState.CONNECTED,
}


def provider_event_key(event: CallEvent) -> str:
    """The timeline's dedupe key: provider ids are unique per provider only."""
    return f"{event.provider}:{event.event_id}"[:120] if event.event_id else ""


def call_event_apply(event: CallEvent) -> Interaction:
    """Apply one normalised call event; returns the interaction (unchanged for a retried event)."""
    from fedele.contact_center.services import interactions as lifecycle

    key = provider_event_key(event)
    with transaction.atomic():
        _serialise_call(event)
        interaction = (
            Interaction.objects.select_for_update()
            .filter(channel=Channel.VOICE, provider=event.provider, provider_ref=event.call_ref)
            .order_by("id")
            .first()
        )
        if key and InteractionEvent.objects.filter(provider_event_id=key).exists():
            if interaction is None:  # pragma: no cover - a recorded event always has its interaction
                interaction = InteractionEvent.objects.get(provider_event_id=key).interaction
            return interaction
        if interaction is None:
            interaction = _adopt(event)
        if interaction is None:
            interaction = lifecycle.interaction_create(
                channel=Channel.VOICE,
                direction=event.direction if event.direction in Direction.values else Direction.INBOUND,
                from_address=event.from_number,
                to_address=event.to_number,
                provider=event.provider,
                provider_ref=event.call_ref,
                attributes=_creation_attributes(event),
                at=event.at,
            )
            interaction = Interaction.objects.select_for_update().get(pk=interaction.pk)
        recorded = lifecycle.interaction_event_record(
            interaction=interaction,
            kind=str(event.kind),
            data=_timeline_data(event),
            provider_event_id=key,
            at=event.at,
        )
        if recorded is None:
            # The same event committed by a concurrent request between our check and our insert.
            return Interaction.objects.get(pk=interaction.pk)
        _APPLY[event.kind](interaction, event)
        if (interaction.attributes or {}).get("dial_attempt"):
            # A dialer call: the dialer must hear of a live answer at once (an agent has 2 s before
            # the answer counts as abandoned), not at its next tick.
            transaction.on_commit(lambda: _tell_dialer(event))
    interaction.refresh_from_db()
    return interaction


def _tell_dialer(event: CallEvent) -> None:
    from fedele.contact_center.services import dialer

    try:
        dialer.dialer_call_event(event)
    except Exception:
        # The dialer's next tick and its InteractionEnded handler catch up with this call.
        logger.exception("The dialer could not take call event %s of %s", event.kind, event.call_ref)


def _serialise_call(event: CallEvent) -> None:
    """Two callbacks for one new call must not both create it: on PostgreSQL they queue on an advisory
    lock keyed by the call (SQLite already runs one writer at a time)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"cc-call:{event.provider}:{event.call_ref}"]
        )


def _adopt(event: CallEvent) -> Interaction | None:
    """An outbound call we created before the provider gave it an id (click-to-dial, dialer): its
    public id travels in the event's ``interaction``; the first event binds the call id to it. The
    originator may bind the same id between our lookup by call id and this one (the SIP adapter
    reports its first event at once), so an interaction already bound to this call is taken too."""
    public_id = str(event.data.get("interaction") or "")
    if not public_id:
        return None
    try:
        interaction = (
            Interaction.objects.select_for_update()
            .filter(
                public_id=public_id,
                channel=Channel.VOICE,
                provider=event.provider,
                provider_ref__in=("", event.call_ref),
            )
            .first()
        )
    except (ValueError, ValidationError):
        return None
    if interaction is not None:
        interaction.provider_ref = event.call_ref
        interaction.save(update_fields=["provider_ref"])
    return interaction


def _creation_attributes(event: CallEvent) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for name in ("account", "caller_name", "forwarded_from", "campaign", "dial_attempt"):
        if event.data.get(name):
            attributes[name] = event.data[name]
    return attributes


def _timeline_data(event: CallEvent) -> dict[str, Any]:
    data: dict[str, Any] = {key: value for key, value in event.data.items() if _plain(value)}
    data["at"] = event.at.isoformat()
    return data


def _plain(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _remember(interaction: Interaction, **values: Any) -> None:
    attributes = dict(interaction.attributes or {})
    attributes.update(values)
    interaction.attributes = attributes
    Interaction.objects.filter(pk=interaction.pk).update(attributes=attributes)


# ------------------------------------------------------------------------------------------- per kind


def _on_new(interaction: Interaction, event: CallEvent) -> None:
    return None


def _on_ringing(interaction: Interaction, event: CallEvent) -> None:
    if interaction.state in _ACTIVE_STATES:
        _remember(interaction, ringing_at=event.at.isoformat())


def _on_answered(interaction: Interaction, event: CallEvent) -> None:
    from fedele.contact_center.services import interactions as lifecycle

    if interaction.state not in _ACTIVE_STATES:
        return  # late: the call already ended
    answered_by = str(event.data.get("answered_by") or "")
    _remember(interaction, provider_answered_at=event.at.isoformat(), answered_by=answered_by)
    if interaction.state == InteractionState.CONNECTED and (interaction.attributes or {}).get("dialled_at"):
        # A callback the agent accepted and then dialled: the talk starts when the customer answers,
        # not when the agent took the task (the ringing is not talk).
        Interaction.objects.filter(pk=interaction.pk).update(answered_at=event.at)
        return
    if answered_by in MACHINE_ANSWERS or interaction.state == InteractionState.CONNECTED:
        return
    # The agent is the one offered the call (inbound, the agent's leg answered) or the one who
    # dialled it (click-to-dial keeps them in attributes until the customer answers).
    agent = interaction.agent
    dialling_agent = (interaction.attributes or {}).get("dialling_agent_id")
    if agent is None and dialling_agent:
        agent = Agent.objects.filter(pk=dialling_agent).first()
    if agent is not None:
        lifecycle.interaction_connect(interaction=interaction, agent=agent, at=event.at)


def _on_hold(interaction: Interaction, event: CallEvent) -> None:
    from fedele.contact_center.services import interactions as lifecycle

    if interaction.state == InteractionState.CONNECTED:
        lifecycle.interaction_hold(interaction=interaction, on=True, at=event.at)


def _on_unhold(interaction: Interaction, event: CallEvent) -> None:
    from fedele.contact_center.services import interactions as lifecycle

    if interaction.state == InteractionState.CONNECTED:
        lifecycle.interaction_hold(interaction=interaction, on=False, at=event.at)


def _on_transfer(interaction: Interaction, event: CallEvent) -> None:
    if interaction.state in _ACTIVE_STATES:
        _remember(
            interaction,
            transferred_to=str(event.data.get("target") or ""),
            transfer_warm=bool(event.data.get("warm")),
        )


def hangup_outcome(interaction: Interaction, event: CallEvent) -> str:
    """How a call that just hung up ended (see the module docstring)."""
    attributes = interaction.attributes or {}
    status = str(event.data.get("status") or "completed")
    answered_by = str(event.data.get("answered_by") or attributes.get("answered_by") or "")
    if attributes.get("voicemail_left"):
        return Outcome.VOICEMAIL
    if answered_by in MACHINE_ANSWERS:
        return Outcome.MACHINE
    if interaction.state == InteractionState.CONNECTED:
        if attributes.get("transferred_to") and not attributes.get("transfer_warm"):
            return Outcome.TRANSFERRED
        return Outcome.HANDLED
    if interaction.direction == Direction.OUTBOUND:
        if status in UNANSWERED_OUTCOMES:
            return UNANSWERED_OUTCOMES[status]
        return Outcome.NO_ANSWER if not attributes.get("provider_answered_at") else Outcome.ABANDONED
    if interaction.state == InteractionState.IVR and attributes.get("self_service"):
        return Outcome.SELF_SERVICE
    if attributes.get("callback_requested"):
        return Outcome.CALLBACK
    return Outcome.ABANDONED


def _on_hangup(interaction: Interaction, event: CallEvent) -> None:
    from fedele.contact_center.services import interactions as lifecycle
    from fedele.contact_center.services.recordings import recording_pauses_close

    if interaction.state not in _ACTIVE_STATES:
        return  # already ended (e.g. the agent hung up first, then the provider's callback came)
    outcome = hangup_outcome(interaction, event)
    recording_pauses_close(interaction=interaction, at=event.at)
    lifecycle.interaction_end(interaction=interaction, outcome=outcome, at=event.at)


def _on_recording_ready(interaction: Interaction, event: CallEvent) -> None:
    from fedele.contact_center.services.recordings import recording_announce

    recording_announce(interaction=interaction, event=event)


def _on_voicemail_ready(interaction: Interaction, event: CallEvent) -> None:
    from fedele.contact_center.services.voicemail import voicemail_announce

    voicemail_announce(interaction=interaction, event=event)


def _on_dtmf(interaction: Interaction, event: CallEvent) -> None:
    return None  # the digits are on the timeline; the IVR engine acts on them itself


_APPLY = {
    CallEventKind.NEW: _on_new,
    CallEventKind.RINGING: _on_ringing,
    CallEventKind.ANSWERED: _on_answered,
    CallEventKind.HOLD: _on_hold,
    CallEventKind.UNHOLD: _on_unhold,
    CallEventKind.TRANSFER: _on_transfer,
    CallEventKind.HANGUP: _on_hangup,
    CallEventKind.RECORDING_READY: _on_recording_ready,
    CallEventKind.VOICEMAIL_READY: _on_voicemail_ready,
    CallEventKind.DTMF: _on_dtmf,
}

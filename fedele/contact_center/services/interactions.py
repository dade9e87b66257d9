"""The one lifecycle every channel's contact goes through:

create (customer identified) → enqueue (routing) → offered → connect → hold/unhold → end →
wrap-up (agent-held contacts) → ended. Durations are whole seconds computed from the recorded times.

Every function is one transaction, audited where a person acts, and writes the contact's timeline
(InteractionEvent). Provider events dedupe on their own ids: a retry changes nothing.
Lock order: Interaction → RoutingTask → Agent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from fedele.contact_center.events import InteractionEnded, InteractionWrappedUp
from fedele.contact_center.models import (
    Agent,
    Channel,
    Direction,
    Interaction,
    InteractionEvent,
    InteractionState,
    Outcome,
    WrapUpCode,
)
from fedele.shared import audit, clock, events, sequences
from fedele.shared.errors import Conflict, NotFound, ValidationFailed

__all__ = [
    "interaction_connect",
    "interaction_create",
    "interaction_end",
    "interaction_enqueue",
    "interaction_event_record",
    "interaction_hold",
    "interaction_link_ticket",
    "interaction_wrap_up_complete",
]

MAX_ADDRESS = 200
OPEN_STATES = (
    InteractionState.IVR,
    InteractionState.QUEUED,
    InteractionState.OFFERED,
    InteractionState.CONNECTED,
)
# Providers write addresses with a scheme ("whatsapp:+39…", "tel:+39…", "sip:+39…@pbx").
_SCHEMES = ("whatsapp:", "tel:", "sip:", "sips:", "sms:")
_PHONE_LIKE = re.compile(r"^\+?[0-9][0-9 ()./-]{5,24}$")
_EMAIL_LIKE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TICKET_CHANNEL = {
    Channel.VOICE: "phone",
    Channel.EMAIL: "email",
    Channel.CHAT: "chat",
    Channel.SMS: "sms",
    Channel.SOCIAL: "social",
}


def _now(at: datetime | None) -> datetime:
    return at or clock.now()


def _seconds(start: datetime | None, end: datetime) -> int:
    if start is None:
        return 0
    return max(0, int((end - start).total_seconds()))


def identify_customer(address: str) -> str:
    """The customers module's public id for a phone (any written form, matched on E.164), an e-mail
    or a provider address carrying one ("whatsapp:+39…"); a bare social handle stays unknown ("")."""
    from fedele.customers.facade import find_customer_by_email, find_customer_by_phone

    value = (address or "").strip()
    lowered = value.lower()
    for scheme in _SCHEMES:
        if lowered.startswith(scheme):
            value = value[len(scheme) :]
            if scheme.startswith("sip"):
                value = value.split("@", 1)[0]
            break
    if not value:
        return ""
    if _EMAIL_LIKE.match(value):
        found = find_customer_by_email(value)
    elif _PHONE_LIKE.match(value):
        found = find_customer_by_phone(value)
    else:
        return ""
    return str(found.public_id) if found else ""


def _event(interaction: Interaction, kind: str, at: datetime, data: Mapping[str, Any] | None = None) -> None:
    InteractionEvent.objects.create(
        interaction=interaction, kind=kind, data=audit.jsonable(dict(data or {})), created_at=at
    )


def interaction_create(
    *,
    channel: str,
    direction: str,
    from_address: str,
    to_address: str = "",
    subject: str = "",
    network: str = "",
    provider: str = "",
    provider_ref: str = "",
    language: str = "",
    attributes: Mapping[str, Any] | None = None,
    at: datetime | None = None,
    customer_public_id: str | None = None,
) -> Interaction:
    """A new contact, not yet queued (state ``ivr``: arrived, in self-service or about to be queued).

    The customer is identified from the caller's address (inbound) or the called address
    (outbound) unless ``customer_public_id`` is given (a callback, a dialer contact)."""
    at = _now(at)
    problems: dict[str, str] = {}
    if channel not in Channel.values:
        problems["channel"] = _("Unknown channel.")
    if direction not in Direction.values:
        problems["direction"] = _("Unknown direction.")
    for name, value, limit in (
        ("from_address", from_address, MAX_ADDRESS),
        ("to_address", to_address, MAX_ADDRESS),
        ("subject", subject, 200),
        ("network", network, 20),
        ("provider", provider, 20),
        ("provider_ref", provider_ref, 120),
        ("language", language, 8),
    ):
        if len(value or "") > limit:
            problems[name] = _("At most %(limit)d characters.") % {"limit": limit}
    if problems:
        raise ValidationFailed(
            _("The contact cannot be created."), code="invalid_interaction", fields=problems
        )
    counterpart = from_address if direction == Direction.INBOUND else to_address
    customer = customer_public_id if customer_public_id is not None else identify_customer(counterpart)
    with transaction.atomic():
        interaction = Interaction.objects.create(
            number=sequences.next_number("I", width=8),
            channel=channel,
            network=network,
            direction=direction,
            state=InteractionState.IVR,
            from_address=from_address or "",
            to_address=to_address or "",
            subject=subject or "",
            customer_public_id=customer,
            provider=provider,
            provider_ref=provider_ref,
            language=language,
            attributes=audit.jsonable(dict(attributes or {})),
            created_at=at,
        )
        _event(
            interaction,
            "created",
            at,
            {"channel": channel, "direction": direction, "customer_identified": bool(customer)},
        )
    return interaction


def _lock(interaction: Interaction) -> Interaction:
    try:
        return Interaction.objects.select_for_update().get(pk=interaction.pk)
    except Interaction.DoesNotExist:
        raise NotFound(_("This contact does not exist."), code="interaction_not_found") from None


def interaction_enqueue(
    *,
    interaction: Interaction,
    queue_code: str,
    required_skills: Mapping[str, int] | None = None,
    priority: int | None = None,
    at: datetime | None = None,
) -> Interaction:
    """Put a contact in a queue for an agent (IVR, chat, SMS, e-mail and the dialer call this).

    The queue's workflow (if any) chooses targets, skills, strategy and relaxation; priority is the
    queue's base + ``priority`` + the customer's loyalty boost. When the queue is closed (business
    calendar) the workflow's closed branch applies: ``overflow`` queues it elsewhere, ``voicemail``
    or ``callback`` leave it un-queued with ``attributes["closed_action"]`` set for the caller (the
    IVR / telephony) to play. Unknown queue, bad skills or a finished contact → ValidationFailed /
    Conflict, nothing written."""
    from fedele.contact_center.services.routing import enqueue

    return enqueue(
        interaction=interaction,
        queue_code=queue_code,
        required_skills=required_skills,
        priority=priority,
        at=at,
    )


def interaction_connect(
    *, interaction: Interaction, agent: Agent | None = None, at: datetime | None = None
) -> Interaction:
    """The contact is live (answered call, chat picked up). With an agent, the agent becomes busy.
    Connecting an already connected contact changes nothing."""
    from fedele.contact_center.services import presence, routing

    at = _now(at)
    with transaction.atomic():
        locked = _lock(interaction)
        if locked.state == InteractionState.CONNECTED and (agent is None or locked.agent_id == agent.pk):
            return locked
        if locked.state not in OPEN_STATES:
            raise Conflict(_("This contact has already ended."), code="interaction_ended")
        routing.close_open_task(interaction=locked, at=at, keep_agent_id=agent.pk if agent else None)
        locked.state = InteractionState.CONNECTED
        if locked.answered_at is None:
            locked.answered_at = at
            if locked.queued_at is not None:
                locked.wait_seconds = _seconds(locked.queued_at, at)
        update = ["state", "answered_at", "wait_seconds"]
        if agent is not None:
            locked.agent = agent
            update.append("agent")
        locked.save(update_fields=update)
        _event(locked, "connected", at, {"agent_id": agent.pk if agent else None})
        if agent is not None:
            locked_agent = Agent.objects.select_for_update().get(pk=agent.pk)
            presence.agent_after_load_change(agent=locked_agent, at=at)
    return locked


def interaction_hold(*, interaction: Interaction, on: bool, at: datetime | None = None) -> Interaction:
    """Hold or resume; hold time accumulates in ``hold_seconds`` (the open hold's start is kept in
    ``attributes["hold_started_at"]``). Holding a held contact changes nothing."""
    at = _now(at)
    with transaction.atomic():
        locked = _lock(interaction)
        if locked.state != InteractionState.CONNECTED:
            raise Conflict(_("Only a connected contact can be held."), code="interaction_not_connected")
        held_since = locked.attributes.get("hold_started_at")
        if on:
            if held_since:
                return locked
            locked.attributes = {**locked.attributes, "hold_started_at": at.isoformat()}
            locked.save(update_fields=["attributes"])
            _event(locked, "hold", at)
        else:
            if not held_since:
                return locked
            _close_hold(locked, at)
            locked.save(update_fields=["attributes", "hold_seconds"])
            _event(locked, "unhold", at)
    return locked


def _close_hold(interaction: Interaction, at: datetime) -> None:
    held_since = interaction.attributes.get("hold_started_at")
    if not held_since:
        return
    interaction.hold_seconds += _seconds(datetime.fromisoformat(held_since), at)
    attributes = dict(interaction.attributes)
    attributes.pop("hold_started_at", None)
    interaction.attributes = attributes


def interaction_end(
    *, interaction: Interaction, outcome: str, at: datetime | None = None, keep_routing: bool = False
) -> Interaction:
    """The contact is over (hang-up, chat closed). Talk time = answered → end minus hold time. A
    contact an agent held goes to wrap-up (the agent too, for the queue's wrap-up seconds); any other
    ends. A waiting contact leaves its queue (abandoned). Ending an ended contact changes nothing."""
    from fedele.contact_center.services import presence, routing

    at = _now(at)
    if outcome not in Outcome.values or outcome == Outcome.NONE:
        raise ValidationFailed(_("Unknown outcome."), code="invalid_outcome", fields={"outcome": outcome})
    with transaction.atomic():
        locked = _lock(interaction)
        if locked.state in (InteractionState.WRAP_UP, InteractionState.ENDED):
            return locked
        was_connected = locked.state == InteractionState.CONNECTED
        if not keep_routing:
            routing.close_open_task(interaction=locked, at=at, keep_agent_id=None, cancelled=True)
        _close_hold(locked, at)
        if was_connected and locked.answered_at is not None:
            locked.talk_seconds = max(0, _seconds(locked.answered_at, at) - locked.hold_seconds)
        elif locked.queued_at is not None and locked.answered_at is None:
            locked.wait_seconds = _seconds(locked.queued_at, at)
        locked.outcome = outcome
        locked.ended_at = at
        agent_held = was_connected and locked.agent_id is not None
        if not was_connected and locked.agent_id is not None:
            # An offer that was never accepted does not make the agent responsible for this contact.
            locked.agent = None
        locked.state = InteractionState.WRAP_UP if agent_held else InteractionState.ENDED
        locked.save()
        _event(locked, "ended", at, {"outcome": outcome, "talk_seconds": locked.talk_seconds})
        queue = locked.queue
        held_by = locked.agent
        if agent_held and held_by is not None:
            agent = Agent.objects.select_for_update().get(pk=held_by.pk)
            seconds = queue.wrap_up_seconds if queue is not None else 0
            if seconds > 0:
                presence.agent_wrap_up_start(agent=agent, seconds=seconds, at=at)
            else:
                wrap_up_finish_locked(interaction=locked, agent=agent, wrap_up_code=None, notes="", at=at)
                presence.agent_wrap_up_end(agent=agent, at=at)
            routing.route_soon()
        events.publish(
            InteractionEnded(
                interaction_id=str(locked.public_id),
                number=locked.number,
                channel=locked.channel,
                direction=locked.direction,
                outcome=outcome,
                queue_code=queue.code if queue is not None else None,
                agent_id=str(held_by.public_id) if held_by is not None else None,
                customer_id=locked.customer_public_id or None,
                provider=locked.provider,
                provider_ref=locked.provider_ref,
                wait_seconds=locked.wait_seconds,
                talk_seconds=locked.talk_seconds,
                hold_seconds=locked.hold_seconds,
                ended_at=at.isoformat(),
            ),
            aggregate_type="contact_center.interaction",
            aggregate_id=str(locked.public_id),
        )
    return locked


def _wrap_up_code(value: WrapUpCode | str | None) -> WrapUpCode | None:
    if value is None or value == "":
        return None
    if isinstance(value, WrapUpCode):
        return value
    code = WrapUpCode.objects.filter(code=value, active=True).first()
    if code is None:
        raise ValidationFailed(
            _("Unknown wrap-up code."), code="invalid_wrap_up_code", fields={"wrap_up_code": str(value)}
        )
    return code


def wrap_up_finish_locked(
    *, interaction: Interaction, agent: Agent, wrap_up_code: WrapUpCode | None, notes: str, at: datetime
) -> None:
    """Close the wrap-up of a locked contact (manual or automatic); the caller moves the agent on."""
    finished_at = max(at, interaction.ended_at or at)
    interaction.after_call_seconds = _seconds(interaction.ended_at, finished_at)
    interaction.wrap_up_ended_at = finished_at
    interaction.wrap_up_code = wrap_up_code
    interaction.wrap_up_notes = notes
    interaction.state = InteractionState.ENDED
    interaction.save(
        update_fields=["after_call_seconds", "wrap_up_ended_at", "wrap_up_code", "wrap_up_notes", "state"]
    )
    _event(
        interaction,
        "wrap_up",
        finished_at,
        {
            "code": wrap_up_code.code if wrap_up_code else None,
            "after_call_seconds": interaction.after_call_seconds,
        },
    )
    events.publish(
        InteractionWrappedUp(
            interaction_id=str(interaction.public_id),
            number=interaction.number,
            agent_id=str(agent.public_id),
            wrap_up_code=wrap_up_code.code if wrap_up_code else None,
            after_call_seconds=interaction.after_call_seconds,
            ticket_id=interaction.ticket_public_id or None,
            wrapped_up_at=finished_at.isoformat(),
        ),
        aggregate_type="contact_center.interaction",
        aggregate_id=str(interaction.public_id),
    )


def interaction_wrap_up_complete(
    *,
    interaction: Interaction,
    agent: Agent,
    wrap_up_code: WrapUpCode | str | None,
    notes: str = "",
    at: datetime | None = None,
) -> Interaction:
    """The agent finishes the after-call work: code and notes stored, after-call seconds = end →
    now, the contact ends and its capacity is freed (the agent goes back to available/busy)."""
    from fedele.contact_center.services import presence, routing

    at = _now(at)
    code = _wrap_up_code(wrap_up_code)
    notes = (notes or "").strip()
    if len(notes) > 4000:
        raise ValidationFailed(_("Notes are too long."), code="notes_too_long", fields={"notes": "4000"})
    with transaction.atomic():
        locked = _lock(interaction)
        if locked.agent_id != agent.pk:
            raise Conflict(_("This contact is not yours."), code="not_your_interaction")
        if locked.state != InteractionState.WRAP_UP:
            raise Conflict(_("This contact is not in wrap-up."), code="not_in_wrap_up")
        locked_agent = Agent.objects.select_for_update().get(pk=agent.pk)
        wrap_up_finish_locked(interaction=locked, agent=locked_agent, wrap_up_code=code, notes=notes, at=at)
        presence.agent_wrap_up_end(agent=locked_agent, at=at)
        audit.record(
            action="contact_center.interaction_wrapped_up",
            object_type="contact_center.interaction",
            object_id=str(locked.public_id),
            after={
                "wrap_up_code": code.code if code else None,
                "after_call_seconds": locked.after_call_seconds,
            },
        )
        routing.route_soon()
    return locked


def interaction_link_ticket(
    *, interaction: Interaction, create: bool, ticket_public_id: str | None = None, actor: Any = None
) -> Interaction:
    """Link the contact to a support ticket: a new one (idempotent per contact: linking twice
    returns the same ticket) or an existing one, which gets a note with the contact's summary."""
    from fedele.support.facade import add_note, create_ticket, ticket_summary

    author = getattr(actor, "display_name", "") or getattr(actor, "email", "") or _("Contact center")
    summary_text = _("Contact %(number)s (%(channel)s, %(direction)s) from %(from)s.") % {
        "number": interaction.number,
        "channel": interaction.channel,
        "direction": interaction.direction,
        "from": interaction.from_address or "-",
    }
    if interaction.wrap_up_notes:
        summary_text += "\n\n" + interaction.wrap_up_notes
    with transaction.atomic():
        locked = _lock(interaction)
        if create:
            if ticket_public_id:
                raise ValidationFailed(
                    _("Create a ticket or give one to attach, not both."), code="ticket_link_ambiguous"
                )
            ticket = create_ticket(
                subject=locked.subject or _("Contact %(number)s") % {"number": locked.number},
                body=summary_text,
                channel=_TICKET_CHANNEL.get(Channel(locked.channel), "internal"),
                customer_public_id=locked.customer_public_id or None,
                requester_email=locked.from_address if _EMAIL_LIKE.match(locked.from_address or "") else "",
                external_reference=f"cc:{locked.public_id}",
            )
        else:
            found = ticket_summary(str(ticket_public_id or ""))
            if found is None:
                raise NotFound(_("This ticket does not exist."), code="ticket_not_found")
            if str(found.public_id) == locked.ticket_public_id:
                return locked
            add_note(str(found.public_id), summary_text, author)
            ticket = found
        before = {"ticket_public_id": locked.ticket_public_id}
        locked.ticket_public_id = str(ticket.public_id)
        locked.save(update_fields=["ticket_public_id"])
        _event(locked, "ticket_linked", clock.now(), {"ticket": ticket.number, "created": create})
        audit.record(
            action="contact_center.interaction_ticket_linked",
            object_type="contact_center.interaction",
            object_id=str(locked.public_id),
            before=before,
            after={"ticket_public_id": locked.ticket_public_id},
            actor_id=getattr(actor, "user_id", None),
        )
    return locked


def interaction_event_record(
    *,
    interaction: Interaction,
    kind: str,
    data: Mapping[str, Any] | None = None,
    provider_event_id: str = "",
    at: datetime | None = None,
) -> InteractionEvent | None:
    """One entry on the contact's timeline. With ``provider_event_id``, a retry of the same provider
    event returns ``None`` and writes nothing (the first recording wins)."""
    at = _now(at)
    kind = (kind or "").strip()
    if not kind or len(kind) > 40:
        raise ValidationFailed(_("An event needs a kind of 1-40 characters."), code="invalid_event_kind")
    if len(provider_event_id) > 120:
        raise ValidationFailed(_("The provider event id is too long."), code="invalid_provider_event_id")
    if provider_event_id and InteractionEvent.objects.filter(provider_event_id=provider_event_id).exists():
        return None
    try:
        with transaction.atomic():
            return InteractionEvent.objects.create(
                interaction=interaction,
                kind=kind,
                data=audit.jsonable(dict(data or {})),
                provider_event_id=provider_event_id,
                created_at=at,
            )
    except IntegrityError:
        # Two deliveries of one provider event at once: the other one was recorded.
        if (
            provider_event_id
            and InteractionEvent.objects.filter(provider_event_id=provider_event_id).exists()
        ):
            return None
        raise

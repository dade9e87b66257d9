"""Agent presence: the states an agent is in (available, busy, wrap-up, break with a reason,
offline), the log of every stretch spent in one state (exact whole seconds, for WFM adherence) and
the agent's open load per channel, which the router must never push past capacity.

Lock order everywhere in the contact center: Interaction → RoutingTask → Agent (by pk). Presence
changes lock the agent row; an agent going to break or offline first locks the contacts offered to
them so the router (which locks contact, task, then agent) cannot deadlock with it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from fedele.contact_center import realtime as cc_realtime
from fedele.contact_center.models import (
    Agent,
    AgentState,
    AgentStateLog,
    Channel,
    Interaction,
    InteractionState,
)
from fedele.contact_center.models.core import DEFAULT_CAPACITY
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, ValidationFailed

# States the router offers contacts in: available (idle) and busy (has contacts, may take more).
ROUTABLE_STATES = (AgentState.AVAILABLE, AgentState.BUSY)
# Contacts that count against an agent's capacity: reserved by an offer, connected, or in wrap-up.
LOAD_STATES = (InteractionState.OFFERED, InteractionState.CONNECTED, InteractionState.WRAP_UP)
# Channel.values builds a new list on every access; the router reads it for every agent it looks at.
_CHANNELS = tuple(Channel.values)
DEFAULT_BREAK_REASONS = ("lunch", "coffee", "meeting", "training", "personal", "technical")
# The states an agent chooses; busy and wrap-up follow from their contacts.
SELECTABLE_STATES = (AgentState.AVAILABLE, AgentState.BREAK, AgentState.OFFLINE)


def break_reasons() -> tuple[str, ...]:
    return tuple(getattr(settings, "CONTACT_CENTER_BREAK_REASONS", DEFAULT_BREAK_REASONS))


def voice_blocks_other_channels() -> bool:
    """A call in progress keeps chats/e-mails away (configurable: some centres let agents chat on
    a call)."""
    return bool(getattr(settings, "CONTACT_CENTER_VOICE_BLOCKS_OTHER_CHANNELS", True))


def agent_group(agent_id: int) -> str:
    """The Channels group of an agent's desktop."""
    return f"cc.agent.{agent_id}"


def agent_load(agent_id: int) -> dict[str, int]:
    """Open contacts per channel, counted from the contacts themselves (the truth under a lock)."""
    rows = (
        Interaction.objects.filter(agent_id=agent_id, state__in=LOAD_STATES)
        .values_list("channel", flat=True)
        .order_by()
    )
    return dict(Counter(rows))


def has_room(*, capacity: dict[str, int], load: dict[str, int], channel: str) -> bool:
    """Whether one more contact of ``channel`` fits: the channel's capacity and the cross-channel
    rule (a call in progress blocks every other channel; a call needs no other call open)."""
    if capacity.get(channel, 0) <= load.get(channel, 0):
        return False
    return not (voice_blocks_other_channels() and channel != Channel.VOICE and load.get(Channel.VOICE, 0) > 0)


def capacity_of(agent: Agent) -> dict[str, int]:
    return capacity_from(agent.capacity)


def capacity_from(configured: Mapping[str, Any] | None) -> dict[str, int]:
    """Contacts at once per channel from an agent's ``capacity`` column (as ``Agent.capacity_for``:
    a channel left out, or null, gets the default)."""
    configured = configured or {}
    result = {}
    for channel in _CHANNELS:
        value = configured.get(channel)
        result[channel] = int(value) if value is not None else DEFAULT_CAPACITY.get(channel, 1)
    return result


def _transition(agent: Agent, state: str, *, reason: str = "", at: datetime) -> None:
    """Move a locked agent to ``state`` and keep the state log exact: close the open row with its
    duration in whole seconds, open the next one."""
    if agent.state == state and agent.break_reason == reason:
        return
    open_row = AgentStateLog.objects.filter(agent=agent, ended_at__isnull=True).first()
    if open_row is not None:
        ended_at = max(at, open_row.started_at)
        open_row.ended_at = ended_at
        open_row.duration_seconds = int((ended_at - open_row.started_at).total_seconds())
        open_row.save(update_fields=["ended_at", "duration_seconds"])
    AgentStateLog.objects.create(agent=agent, state=state, reason=reason, started_at=at)
    previous = agent.state
    agent.state = state
    agent.break_reason = reason
    agent.state_since = at
    update = ["state", "break_reason", "state_since"]
    if state == AgentState.AVAILABLE:
        agent.idle_since = at
        update.append("idle_since")
    if state != AgentState.WRAP_UP and agent.wrap_up_until is not None:
        agent.wrap_up_until = None
        update.append("wrap_up_until")
    agent.save(update_fields=update)
    cc_realtime.notify_group(
        agent_group(agent.pk),
        "cc.agent.state",
        {"agent_id": agent.pk, "state": state, "reason": reason, "previous": previous, "at": at.isoformat()},
    )


def _lock_agent(agent: Agent | int) -> Agent:
    agent_id = agent if isinstance(agent, int) else agent.pk
    return Agent.objects.select_for_update().get(pk=agent_id)


def agent_state_set(
    *, agent: Agent, state: str, reason: str = "", at: datetime | None = None, actor_id: int | None = None
) -> Agent:
    """The agent (or a supervisor) chooses available, break (with a reason) or offline.

    Available ends a running wrap-up at once (the agent is ready); with open contacts it means busy.
    Break or offline cancels offers not yet answered (they go back to the queue). Offline with a
    contact still connected is refused: the contact would be stranded."""
    at = at or clock.now()
    if state not in SELECTABLE_STATES:
        raise ValidationFailed(
            _("Choose available, break or offline."), code="invalid_agent_state", fields={"state": state}
        )
    reason = (reason or "").strip()
    if state == AgentState.BREAK:
        if reason not in break_reasons():
            raise ValidationFailed(
                _("Choose a break reason from the list."),
                code="invalid_break_reason",
                fields={"reason": _("Allowed: %(reasons)s") % {"reasons": ", ".join(break_reasons())}},
            )
    elif reason:
        raise ValidationFailed(
            _("Only a break has a reason."), code="reason_without_break", fields={"reason": reason}
        )
    from fedele.contact_center.services import routing

    with transaction.atomic():
        pending_offer_interactions = []
        if state != AgentState.AVAILABLE:
            pending_offer_interactions = routing.lock_pending_offers_of(agent.pk)
        # Contacts before the agent (the lock order): the wrap-ups this change may finish.
        list(
            Interaction.objects.select_for_update()
            .filter(agent_id=agent.pk, state=InteractionState.WRAP_UP)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        locked = _lock_agent(agent)
        if not locked.active:
            raise Conflict(_("This agent is deactivated."), code="agent_inactive")
        before = {"state": locked.state, "break_reason": locked.break_reason}
        if state == AgentState.OFFLINE:
            connected = Interaction.objects.filter(agent=locked, state=InteractionState.CONNECTED).count()
            if connected:
                raise Conflict(
                    _("End or transfer your %(count)d open contacts before going offline.")
                    % {"count": connected},
                    code="agent_has_open_contacts",
                )
        if state != AgentState.AVAILABLE:
            routing.cancel_offers(interaction_ids=pending_offer_interactions, agent_id=locked.pk, at=at)
        if state == AgentState.AVAILABLE:
            _finish_wrap_ups(locked, at=at)
            load = agent_load(locked.pk)
            _transition(locked, AgentState.BUSY if load else AgentState.AVAILABLE, at=at)
        else:
            if state == AgentState.BREAK or state == AgentState.OFFLINE:
                _finish_wrap_ups(locked, at=at)
            _transition(locked, state, reason=reason, at=at)
        after = {"state": locked.state, "break_reason": locked.break_reason}
        if after != before:
            audit.record(
                action="contact_center.agent_state_set",
                object_type="contact_center.agent",
                object_id=str(locked.public_id),
                before=before,
                after=after,
                actor_id=actor_id,
            )
        if locked.state in ROUTABLE_STATES:
            routing.route_soon()
    return locked


def _finish_wrap_ups(agent: Agent, *, at: datetime) -> None:
    from fedele.contact_center.services.interactions import wrap_up_finish_locked

    for interaction in Interaction.objects.select_for_update().filter(
        agent=agent, state=InteractionState.WRAP_UP
    ):
        wrap_up_finish_locked(interaction=interaction, agent=agent, wrap_up_code=None, notes="", at=at)


def agent_after_load_change(*, agent: Agent, at: datetime) -> None:
    """A locked agent's contacts changed (accepted, ended, wrapped up): busy with open contacts,
    available when none is left; break/offline/wrap-up stay as they are."""
    if agent.state not in ROUTABLE_STATES:
        return
    load = agent_load(agent.pk)
    connected_or_wrapping = {k: v for k, v in load.items() if v}
    _transition(agent, AgentState.BUSY if connected_or_wrapping else AgentState.AVAILABLE, at=at)


def agent_wrap_up_start(*, agent: Agent, seconds: int, at: datetime) -> None:
    """After a contact ends: wrap-up for the queue's wrap-up seconds (the scheduler's
    ``wrap_up_expire_due`` then completes it); zero seconds means no wrap-up state."""
    if agent.state in (AgentState.BREAK, AgentState.OFFLINE):
        return
    if seconds <= 0:
        return
    _transition(agent, AgentState.WRAP_UP, at=at)
    agent.wrap_up_until = at + timedelta(seconds=seconds)
    agent.save(update_fields=["wrap_up_until"])


def agent_wrap_up_end(*, agent: Agent, at: datetime) -> None:
    """The last wrap-up of a locked agent is done: back to available (or busy with other contacts)."""
    if agent.state != AgentState.WRAP_UP:
        agent_after_load_change(agent=agent, at=at)
        return
    if Interaction.objects.filter(agent=agent, state=InteractionState.WRAP_UP).exists():
        return
    load = agent_load(agent.pk)
    _transition(agent, AgentState.BUSY if load else AgentState.AVAILABLE, at=at)


def wrap_up_expire_due(*, at: datetime | None = None) -> int:
    """Complete automatic wrap-ups whose time is over; returns how many agents were freed."""
    at = at or clock.now()
    due = list(
        Agent.objects.filter(state=AgentState.WRAP_UP, wrap_up_until__lte=at)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    freed = 0
    for agent_id in due:
        freed += _expire_one(agent_id, at)
    return freed


def _expire_one(agent_id: int, at: datetime) -> int:
    from fedele.contact_center.services import routing
    from fedele.contact_center.services.interactions import wrap_up_finish_locked

    with transaction.atomic():
        interactions = list(
            Interaction.objects.select_for_update()
            .filter(agent_id=agent_id, state=InteractionState.WRAP_UP)
            .order_by("pk")
        )
        agent = _lock_agent(agent_id)
        if agent.state != AgentState.WRAP_UP or agent.wrap_up_until is None or agent.wrap_up_until > at:
            return 0
        moment = agent.wrap_up_until
        for interaction in interactions:
            wrap_up_finish_locked(
                interaction=interaction, agent=agent, wrap_up_code=None, notes="", at=moment
            )
        agent_wrap_up_end(agent=agent, at=moment)
        routing.route_soon()
        return 1


def state_durations(*, agent: Agent, start: datetime, end: datetime) -> dict[str, int]:
    """Whole seconds per state between ``start`` and ``end`` (open rows count up to ``end``)."""
    totals: dict[str, int] = {}
    rows: Iterable[AgentStateLog] = AgentStateLog.objects.filter(agent=agent, started_at__lt=end).exclude(
        ended_at__lte=start
    )
    for row in rows:
        began = max(row.started_at, start)
        finished = min(row.ended_at or end, end)
        if finished > began:
            key = f"{row.state}:{row.reason}" if row.reason else row.state
            totals[key] = totals.get(key, 0) + int((finished - began).total_seconds())
    return totals

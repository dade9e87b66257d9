"""Outbound campaigns: settings, start/pause, callbacks, and the live dialer.

``campaign_tick(campaign=…, at=…)`` is one pacing decision: under the campaign's row lock it reads the
agents of the campaign's queue and the lines already out, asks ``dialer.pacing.lines_to_dial`` how
many to add (1:1 progressive when the regulatory meter is near its cap), claims that many due contacts
(inside a calling window, not abandoned within 72 h, not on a do-not-call list — checked again right
here), marks them ``dialing`` and writes their DialAttempts; after commit it creates each outbound
Interaction and places the call through the campaign's telephony adapter.

Call results come back as CallEvents: the telephony area applies them to the Interaction, and
``dialer_call_event`` (called for every event of a dialer call) and the ``InteractionEnded`` handler
bring the DialAttempt up to date: a live answer is queued for an agent at once; an answering machine
(the provider's AMD) is hung up and never counts as live; the hang-up decides the outcome, the
abandoned flag (live but no agent within 2 s) and the contact's next attempt from the retry rules.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from fedele.accounts.facade import Actor
from fedele.contact_center.dialer import meter as dialer_meter
from fedele.contact_center.dialer.contacts import (
    ABANDON_REDIAL_GAP,
    Window,
    in_window,
    normalise_number,
    retry_at,
)
from fedele.contact_center.dialer.pacing import (
    DialMode as PacingMode,
)
from fedele.contact_center.dialer.pacing import (
    HandleTimeModel,
    LiveAnswerEstimator,
    PacingInput,
    lines_to_dial,
)
from fedele.contact_center.models import (
    AbandonRuleChoice,
    Agent,
    AgentState,
    AmdResult,
    Campaign,
    CampaignContact,
    CampaignState,
    CampaignWindow,
    Channel,
    ContactState,
    DialAttempt,
    DialAttemptState,
    DialMode,
    DialOutcome,
    Direction,
    Interaction,
    InteractionState,
    Outcome,
    Queue,
    RetryRule,
)
from fedele.contact_center.selectors.dialer import campaign_meter
from fedele.contact_center.services.dialer_lists import PERMISSION, block_reasons
from fedele.contact_center.telephony.port import CallEvent, CallEventKind
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

__all__ = [
    "DEFAULT_RETRY_RULES",
    "DEFAULT_WINDOWS",
    "TickResult",
    "attempt_sync",
    "callback_schedule",
    "campaign_create",
    "campaign_state_set",
    "campaign_tick",
    "campaign_tick_all",
    "campaign_windows_set",
    "dialer_call_event",
    "preview_dial",
]

logger = logging.getLogger(__name__)

# Monday–Friday 09:00–20:00, Saturday 10:00–14:00, contact's local time.
DEFAULT_WINDOWS: tuple[tuple[int, time, time], ...] = (
    *((weekday, time(9), time(20)) for weekday in range(5)),
    (5, time(10), time(14)),
)
# outcome → (delay in minutes, next day, max attempts for the outcome (0: the campaign's))
DEFAULT_RETRY_RULES: Mapping[str, tuple[int, bool, int]] = {
    DialOutcome.BUSY: (30, False, 0),
    DialOutcome.NO_ANSWER: (120, False, 0),
    DialOutcome.MACHINE: (0, True, 3),
    DialOutcome.ABANDONED: (0, False, 0),  # 72 h at least, always (dialer.contacts.ABANDON_REDIAL_GAP)
    DialOutcome.FAILED: (60, False, 2),
}
OPEN_ATTEMPT_STATES = (DialAttemptState.DIALING, DialAttemptState.ANSWERED)
ACTIVE_INTERACTION_STATES = (
    InteractionState.IVR,
    InteractionState.QUEUED,
    InteractionState.OFFERED,
    InteractionState.CONNECTED,
)
MACHINE_ANSWERS = {
    "machine",
    "machine_start",
    "machine_end_beep",
    "machine_end_silence",
    "machine_end_other",
    "fax",
}
DEFAULT_HANDLE_SECONDS = 180.0
# How many contacts to examine per claimed line before giving up for this tick (most are skipped only
# when out of their window).
_SCAN_FACTOR = 20
_CLAIM_CHUNK = 200


def _require(actor: Actor) -> None:
    if not actor.can(PERMISSION):
        raise PermissionDenied(_("You cannot run outbound campaigns."))


def _rate(value: Any, name: str, problems: dict[str, str], *, low: str, high: str) -> Decimal:
    try:
        rate = Decimal(str(value))
    except (InvalidOperation, ValueError):
        problems[name] = _("Not a number.")
        return Decimal(0)
    if not Decimal(low) <= rate <= Decimal(high):
        problems[name] = _("Between %(low)s and %(high)s.") % {"low": low, "high": high}
    return rate


def _validate_windows(windows: Sequence[tuple[int, time, time]]) -> dict[str, str]:
    problems: dict[str, str] = {}
    by_day: dict[int, list[tuple[time, time]]] = {}
    for index, (weekday, start, end) in enumerate(windows):
        if not 0 <= int(weekday) <= 6:
            problems[f"windows.{index}"] = _("The weekday is 0 (Monday) to 6 (Sunday).")
        elif not start < end:
            problems[f"windows.{index}"] = _("A window starts before it ends.")
        else:
            by_day.setdefault(int(weekday), []).append((start, end))
    for weekday, spans in by_day.items():
        spans.sort()
        for (_start_a, end_a), (start_b, _end_b) in itertools.pairwise(spans):
            if start_b < end_a:
                problems[f"windows.day{weekday}"] = _("Two windows of the same day overlap.")
    return problems


def campaign_create(
    *,
    actor: Actor,
    code: str,
    name: str,
    queue_code: str,
    mode: str = DialMode.PROGRESSIVE,
    provider: str = "simulator",
    caller_id: str = "",
    default_region: str = "IT",
    consent_purpose: str = "marketing",
    check_rpo: bool = True,
    target_abandon_rate: Decimal | str = "0.015",
    abandon_rule: str = AbandonRuleChoice.ROLLING_30_DAYS,
    max_attempts: int = 5,
    max_lines_per_agent: int = 4,
    prior_live_rate: Decimal | str = "0.25",
    windows: Sequence[tuple[int, time, time]] | None = None,
    at: datetime | None = None,
) -> Campaign:
    """A new campaign (draft) with calling windows (default Mon–Fri 09–20, Sat 10–14) and the default
    retry rules (busy 30 min, no answer 2 h, machine next day, abandoned ≥ 72 h)."""
    _require(actor)
    at = at or clock.now()
    problems: dict[str, str] = {}
    code = (code or "").strip().lower()
    if not code or len(code) > 40 or not all(ch.isalnum() or ch in "-_" for ch in code):
        problems["code"] = _("Letters, digits, - and _, at most 40.")
    elif Campaign.objects.filter(code=code).exists():
        problems["code"] = _("Another campaign has this code.")
    name = (name or "").strip()
    if not name or len(name) > 120:
        problems["name"] = _("Between 1 and 120 characters.")
    queue = Queue.objects.filter(code=queue_code, active=True).first()
    if queue is None:
        problems["queue"] = _("Unknown or inactive queue.")
    if mode not in DialMode.values:
        problems["mode"] = _("Preview, progressive or predictive.")
    if abandon_rule not in AbandonRuleChoice.values:
        problems["abandon_rule"] = _("Unknown rule.")
    if caller_id:
        try:
            caller_id = normalise_number(caller_id, default_region=default_region or "IT").e164
        except ValueError as error:
            problems["caller_id"] = str(error)
    if len(default_region or "") != 2 or not default_region.isalpha():
        problems["default_region"] = _("A two-letter country code.")
    if consent_purpose not in ("marketing", "service", "profiling", "third_party"):
        problems["consent_purpose"] = _("Unknown consent purpose.")
    target = _rate(target_abandon_rate, "target_abandon_rate", problems, low="0.0001", high="0.03")
    prior = _rate(prior_live_rate, "prior_live_rate", problems, low="0.01", high="0.99")
    if not 1 <= int(max_attempts) <= 50:
        problems["max_attempts"] = _("Between 1 and 50.")
    if not 1 <= int(max_lines_per_agent) <= 20:
        problems["max_lines_per_agent"] = _("Between 1 and 20.")
    window_rows = list(DEFAULT_WINDOWS if windows is None else windows)
    problems.update(_validate_windows(window_rows))
    if problems:
        raise ValidationFailed(_("The campaign cannot be saved."), code="invalid_campaign", fields=problems)
    assert queue is not None
    with transaction.atomic():
        campaign = Campaign.objects.create(
            code=code,
            name=name,
            mode=mode,
            queue=queue,
            provider=provider,
            caller_id=caller_id,
            default_region=default_region.upper(),
            consent_purpose=consent_purpose,
            check_rpo=check_rpo,
            target_abandon_rate=target.quantize(Decimal("0.0001")),
            abandon_rule=abandon_rule,
            max_attempts=int(max_attempts),
            max_lines_per_agent=int(max_lines_per_agent),
            prior_live_rate=prior.quantize(Decimal("0.001")),
            created_by_id=actor.user_id or None,
            created_at=at,
        )
        CampaignWindow.objects.bulk_create(
            [
                CampaignWindow(campaign=campaign, weekday=w, start_time=s, end_time=e)
                for w, s, e in window_rows
            ]
        )
        RetryRule.objects.bulk_create(
            [
                RetryRule(
                    campaign=campaign,
                    outcome=outcome,
                    delay_minutes=delay,
                    next_day=next_day,
                    max_attempts=cap,
                )
                for outcome, (delay, next_day, cap) in DEFAULT_RETRY_RULES.items()
            ]
        )
        audit.record(
            action="contact_center.campaign_created",
            object_type="contact_center.campaign",
            object_id=str(campaign.public_id),
            after={"code": code, "mode": mode, "queue": queue_code, "target_abandon_rate": target},
        )
    return campaign


def campaign_windows_set(
    *, actor: Actor, campaign: Campaign, windows: Sequence[tuple[int, time, time]]
) -> None:
    """Replace the campaign's calling windows (no windows: nobody is called)."""
    _require(actor)
    problems = _validate_windows(windows)
    if problems:
        raise ValidationFailed(_("The windows cannot be saved."), code="invalid_windows", fields=problems)
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        before = [str(w) for w in locked.windows.all()]
        locked.windows.all().delete()
        CampaignWindow.objects.bulk_create(
            [CampaignWindow(campaign=locked, weekday=w, start_time=s, end_time=e) for w, s, e in windows]
        )
        audit.record(
            action="contact_center.campaign_windows_set",
            object_type="contact_center.campaign",
            object_id=str(locked.public_id),
            before={"windows": before},
            after={"windows": [f"{w} {s:%H:%M}-{e:%H:%M}" for w, s, e in windows]},
        )


_TRANSITIONS = {
    CampaignState.DRAFT: {CampaignState.RUNNING, CampaignState.FINISHED},
    CampaignState.RUNNING: {CampaignState.PAUSED, CampaignState.FINISHED},
    CampaignState.PAUSED: {CampaignState.RUNNING, CampaignState.FINISHED},
    CampaignState.FINISHED: set(),
}


def campaign_state_set(
    *, actor: Actor, campaign: Campaign, state: str, at: datetime | None = None
) -> Campaign:
    """Start, pause, resume or finish a campaign. Starting needs at least one calling window."""
    _require(actor)
    at = at or clock.now()
    if state not in CampaignState.values:
        raise ValidationFailed(_("Unknown campaign state."), code="invalid_state", fields={"state": state})
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if state == locked.state:
            return locked
        if state not in _TRANSITIONS[CampaignState(locked.state)]:
            raise Conflict(
                _("A %(current)s campaign cannot become %(state)s.")
                % {"current": locked.state, "state": state},
                code="invalid_transition",
            )
        if state == CampaignState.RUNNING and not locked.windows.exists():
            raise ValidationFailed(
                _("The campaign has no calling window."),
                code="no_windows",
                fields={"windows": _("Add a window.")},
            )
        before = locked.state
        locked.state = state
        if state == CampaignState.RUNNING and locked.started_at is None:
            locked.started_at = at
        locked.save(update_fields=["state", "started_at"])
        if state == CampaignState.FINISHED:
            # Contacts an agent was previewing go back; nothing more will be dialled.
            locked.contacts.filter(state=ContactState.PREVIEW).update(state=ContactState.PENDING, agent=None)
        audit.record(
            action="contact_center.campaign_state_set",
            object_type="contact_center.campaign",
            object_id=str(locked.public_id),
            before={"state": before},
            after={"state": state},
        )
    return locked


def callback_schedule(
    *,
    actor: Actor,
    contact: CampaignContact,
    when: datetime,
    agent: Agent | None = None,
    at: datetime | None = None,
) -> CampaignContact:
    """An agent's callback: the contact is called at ``when`` (inside a window or not: the customer
    asked for it), before ordinary contacts; with ``agent`` the call goes to that agent, which also
    allows it within 72 h of an abandoned call (an agent is guaranteed on the line)."""
    if not (actor.can(PERMISSION) or actor.can("contact_center.handle_interactions")):
        raise PermissionDenied(_("You cannot schedule callbacks."))
    at = at or clock.now()
    if when <= at:
        raise ValidationFailed(
            _("A callback is in the future."), code="invalid_callback", fields={"when": _("In the past.")}
        )
    if when > at + timedelta(days=90):
        raise ValidationFailed(
            _("A callback is at most 90 days ahead."),
            code="invalid_callback",
            fields={"when": _("Too far ahead.")},
        )
    with transaction.atomic():
        locked = CampaignContact.objects.select_for_update().get(pk=contact.pk)
        if not actor.can(PERMISSION):
            # An agent (not a campaign supervisor) schedules callbacks only for a contact they have in
            # preview or spoke to, and only to themselves: a callback skips the calling windows and,
            # with an agent, the 72 h rule, so it is not theirs to set on any contact or for anyone.
            own = locked.agent is not None and locked.agent.user_id == actor.user_id
            own = (
                own
                or DialAttempt.objects.filter(contact=locked)
                .filter(Q(agent__user_id=actor.user_id) | Q(interaction__agent__user_id=actor.user_id))
                .exists()
            )
            if not actor.user_id or not own or (agent is not None and agent.user_id != actor.user_id):
                raise PermissionDenied(
                    _("You can schedule callbacks only for your own contacts, to yourself."),
                    code="not_your_contact",
                )
        if locked.state in (ContactState.BLOCKED, ContactState.DIALING):
            raise Conflict(_("This contact cannot be called back now."), code="contact_not_schedulable")
        before = {"state": locked.state, "next_attempt_at": locked.next_attempt_at}
        locked.state = ContactState.CALLBACK
        locked.next_attempt_at = when
        locked.agent = agent
        locked.save(update_fields=["state", "next_attempt_at", "agent"])
        audit.record(
            action="contact_center.callback_scheduled",
            object_type="contact_center.campaign_contact",
            object_id=str(locked.public_id),
            before=before,
            after={"state": locked.state, "next_attempt_at": when, "agent": agent.pk if agent else None},
        )
    return locked


# -- the live dialer -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TickResult:
    mode: str
    dialed: int
    previewed: int
    blocked: int
    free_agents: int
    lines_out: int
    live_probability: float
    meter_rate: float
    fell_back: bool


def _windows(campaign: Campaign) -> list[Window]:
    return [Window(w.weekday, w.start_time, w.end_time) for w in campaign.windows.all()]


def _handle_model(campaign: Campaign) -> HandleTimeModel:
    """Mean handle time of the campaign's last 200 connected calls (180 s until there are 20)."""
    rows = list(
        Interaction.objects.filter(
            dial_attempts__campaign=campaign, dial_attempts__outcome=DialOutcome.CONNECTED
        )
        .order_by("-id")
        .values_list("talk_seconds", "hold_seconds", "after_call_seconds")[:200]
    )
    if len(rows) < 20:
        return HandleTimeModel(DEFAULT_HANDLE_SECONDS, 0.5)
    values = [sum(row) for row in rows]
    mean = max(1.0, sum(values) / len(values))
    spread = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return HandleTimeModel(mean, max(0.1, min(3.0, spread / mean)))


def _estimator(campaign: Campaign) -> LiveAnswerEstimator:
    estimator = LiveAnswerEstimator(prior=float(campaign.prior_live_rate))
    rows = (
        DialAttempt.objects.filter(campaign=campaign, state=DialAttemptState.ENDED)
        .order_by("-ended_at", "-id")
        .values_list("answered_at", "amd_result")[:500]
    )
    for answered_at, amd in reversed(list(rows)):
        estimator.record(answered_at is not None and amd != AmdResult.MACHINE)
    return estimator


def _agents_snapshot(campaign: Campaign, at: datetime) -> tuple[list[Agent], list[float]]:
    """Free agents of the campaign's queue (available, no call open) and, for each agent on a call,
    how long the call has lasted."""
    agents = list(
        Agent.objects.filter(queues=campaign.queue_id, active=True)
        .exclude(state__in=[AgentState.OFFLINE, AgentState.BREAK])
        .order_by("state_since", "id")
    )
    open_calls = dict(
        Interaction.objects.filter(
            agent__in=[a.pk for a in agents],
            channel=Channel.VOICE,
            state__in=[InteractionState.OFFERED, InteractionState.CONNECTED, InteractionState.WRAP_UP],
        ).values_list("agent_id", "answered_at")
    )
    free = [a for a in agents if a.state == AgentState.AVAILABLE and a.pk not in open_calls]
    busy_elapsed = [
        max(0.0, (at - answered_at).total_seconds()) if answered_at else 0.0
        for agent_id, answered_at in open_calls.items()
    ]
    # An agent in wrap-up or busy with no call record (another channel) is still on the way back.
    busy_elapsed += [0.0 for a in agents if a.state != AgentState.AVAILABLE and a.pk not in open_calls]
    return free, busy_elapsed


def _may_call_now(contact: CampaignContact, at: datetime, *, windows: list[Window], mode: str) -> bool:
    """Inside the contact's calling window (agent-set callbacks: at their time) and not abandoned in
    the last 72 h (unless an agent is guaranteed: preview, or a callback with its agent)."""
    callback = contact.state == ContactState.CALLBACK
    if not callback and not in_window(
        at, time_zone=contact.time_zone, region=contact.region, windows=windows
    ):
        return False
    with_agent = mode == DialMode.PREVIEW or (callback and contact.agent_id is not None)
    return not (
        contact.abandoned_at is not None and at < contact.abandoned_at + ABANDON_REDIAL_GAP and not with_agent
    )


def _due_contacts(
    campaign: Campaign, at: datetime, *, need: int, windows: list[Window], mode: str
) -> tuple[list[CampaignContact], int]:
    """Claim up to ``need`` contacts to call now (row-locked, SKIP LOCKED on PostgreSQL); returns them
    and how many were found blocked on the way (marked blocked)."""
    chosen: list[CampaignContact] = []
    blocked = 0
    scanned = 0
    limit = max(need * _SCAN_FACTOR, _CLAIM_CHUNK)
    # Agent-set callbacks first (at their time, windows do not apply: the customer asked), then the list.
    for state in (ContactState.CALLBACK, ContactState.PENDING):
        due = CampaignContact.objects.filter(campaign=campaign, state=state).filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=at)
        )
        last_id = 0
        while len(chosen) < need and scanned < limit:
            chunk = list(
                due.filter(id__gt=last_id).order_by("id").select_for_update(skip_locked=True)[:_CLAIM_CHUNK]
            )
            if not chunk:
                break
            last_id = chunk[-1].id
            scanned += len(chunk)
            callable_now = [
                contact for contact in chunk if _may_call_now(contact, at, windows=windows, mode=mode)
            ]
            # Checked in slices of what is still needed: every contact chosen was looked up (a blocked
            # one makes room for the next, which is looked up in turn), and no more are looked up
            # than can be dialled (the consent check is one customers-facade call per number).
            while callable_now and len(chosen) < need:
                batch, callable_now = callable_now[: need - len(chosen)], callable_now[need - len(chosen) :]
                reasons = block_reasons(
                    [c.phone for c in batch], purpose=campaign.consent_purpose, check_rpo=campaign.check_rpo
                )
                for contact in batch:
                    if contact.phone in reasons:
                        contact.state = ContactState.BLOCKED
                        contact.blocked_reason = reasons[contact.phone]
                        contact.save(update_fields=["state", "blocked_reason"])
                        blocked += 1
                        continue
                    chosen.append(contact)
    return chosen, blocked


def campaign_tick(*, campaign: Campaign, at: datetime | None = None) -> TickResult:
    """One pacing decision for a running campaign (see the module docstring)."""
    at = at or clock.now()
    for attempt in DialAttempt.objects.filter(campaign=campaign, state__in=OPEN_ATTEMPT_STATES):
        # Answers and ends the hooks may have missed; live answers past the 2 s grace are dropped here.
        attempt_sync(attempt=attempt, at=at)
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(of=("self",)).select_related("queue").get(pk=campaign.pk)
        )
        if campaign.state != CampaignState.RUNNING:
            return TickResult(campaign.mode, 0, 0, 0, 0, 0, 0.0, 0.0, False)
        free, busy_elapsed = _agents_snapshot(campaign, at)
        lines_out = DialAttempt.objects.filter(campaign=campaign, state__in=OPEN_ATTEMPT_STATES).count()
        reading = campaign_meter(campaign, at=at)
        estimator = _estimator(campaign)
        mode = campaign.mode
        fell_back = mode == DialMode.PREDICTIVE and reading.near_cap
        if fell_back:
            mode = DialMode.PROGRESSIVE
        windows = _windows(campaign)
        if mode == DialMode.PREVIEW:
            previewing = set(
                campaign.contacts.filter(state=ContactState.PREVIEW).values_list("agent_id", flat=True)
            )
            waiting_agents = [a for a in free if a.pk not in previewing]
            contacts, blocked = _due_contacts(
                campaign, at, need=len(waiting_agents), windows=windows, mode=mode
            )
            for agent, contact in zip(waiting_agents, contacts, strict=False):
                contact.state = ContactState.PREVIEW
                contact.agent = agent
                contact.save(update_fields=["state", "agent"])
            campaign.last_tick_at = at
            campaign.save(update_fields=["last_tick_at"])
            return TickResult(
                mode,
                0,
                len(contacts),
                blocked,
                len(free),
                lines_out,
                estimator.probability,
                reading.rate,
                False,
            )
        handle_model = _handle_model(campaign)
        horizon = campaign.mean_ring_seconds + dialer_meter.CONNECT_GRACE.total_seconds()
        agents_total = len(free) + len(busy_elapsed)
        count = lines_to_dial(
            PacingInput(
                mode=PacingMode(mode),
                free_agents=len(free),
                busy_free_soon=tuple(
                    handle_model.free_within(elapsed_seconds=elapsed, horizon_seconds=horizon)
                    for elapsed in busy_elapsed
                ),
                lines_out=lines_out,
                live_probability=estimator.probability,
                target_abandon_rate=float(campaign.target_abandon_rate),
                max_lines=agents_total * campaign.max_lines_per_agent,
            )
        )
        contacts, blocked = (
            _due_contacts(campaign, at, need=count, windows=windows, mode=mode) if count else ([], 0)
        )
        attempts = []
        for contact in contacts:
            callback_agent = contact.agent if contact.state == ContactState.CALLBACK else None
            contact.state = ContactState.DIALING
            contact.attempts += 1
            contact.last_attempt_at = at
            contact.save(update_fields=["state", "attempts", "last_attempt_at"])
            attempts.append(
                DialAttempt.objects.create(
                    campaign=campaign,
                    contact=contact,
                    agent=callback_agent,
                    mode=mode,
                    provider=campaign.provider,
                    phone=contact.phone,
                    dialed_at=at,
                )
            )
        campaign.last_tick_at = at
        campaign.save(update_fields=["last_tick_at"])
    for attempt in attempts:
        _place_call(campaign, attempt, at)
    return TickResult(
        mode, len(attempts), 0, blocked, len(free), lines_out, estimator.probability, reading.rate, fell_back
    )


def _place_call(campaign: Campaign, attempt: DialAttempt, at: datetime) -> None:
    """Create the outbound Interaction and ask the provider to call (outside the claim transaction:
    the provider's API is a network call). A refused call ends the attempt as failed."""
    from fedele.contact_center.services.interactions import interaction_create, interaction_end
    from fedele.contact_center.telephony.registry import adapter_for

    interaction = interaction_create(
        channel=Channel.VOICE,
        direction=Direction.OUTBOUND,
        from_address=campaign.caller_id,
        to_address=attempt.phone,
        provider=campaign.provider,
        attributes={"campaign": campaign.code, "dial_attempt": str(attempt.public_id)},
        at=at,
        customer_public_id=attempt.contact.customer_public_id or None,
    )
    DialAttempt.objects.filter(pk=attempt.pk).update(interaction=interaction)
    attempt.interaction = interaction
    try:
        call_ref = adapter_for(campaign.provider).originate(
            to_number=attempt.phone,
            from_number=campaign.caller_id,
            context={
                "interaction_id": str(interaction.public_id),
                "campaign": campaign.code,
                "dial_attempt": str(attempt.public_id),
                "machine_detection": attempt.mode != DialMode.PREVIEW,
            },
        )
    except Exception:  # any provider failure ends this one attempt, never the tick
        logger.exception("The dialer could not place a call for campaign %s", campaign.code)
        interaction_end(interaction=interaction, outcome=Outcome.FAILED, at=at)
        _finish(attempt_id=attempt.pk, outcome=DialOutcome.FAILED, at=at)
        return
    with transaction.atomic():
        Interaction.objects.filter(pk=interaction.pk, provider_ref="").update(provider_ref=call_ref)
        DialAttempt.objects.filter(pk=attempt.pk).update(call_ref=call_ref)


def campaign_tick_all(*, at: datetime | None = None) -> int:
    """The scheduler job: one tick per running campaign; returns the calls placed."""
    placed = 0
    for campaign in Campaign.objects.filter(state=CampaignState.RUNNING).order_by("id"):
        try:
            placed += campaign_tick(campaign=campaign, at=at).dialed
        except Exception:  # one broken campaign must not stop the others
            logger.exception("Dialer tick failed for campaign %s", campaign.code)
    return placed


def preview_dial(*, actor: Actor, contact: CampaignContact, at: datetime | None = None) -> DialAttempt:
    """The previewing agent dials their contact: the call is connected to them when answered."""
    if not actor.can("contact_center.handle_interactions"):
        raise PermissionDenied(_("You cannot place calls."))
    at = at or clock.now()
    with transaction.atomic():
        locked = (
            CampaignContact.objects.select_for_update(of=("self",))
            .select_related("campaign", "agent")
            .get(pk=contact.pk)
        )
        if (
            locked.state != ContactState.PREVIEW
            or locked.agent is None
            or locked.agent.user_id != actor.user_id
        ):
            raise NotFound(_("This contact is not in your preview."), code="preview_not_found")
        if locked.campaign.state != CampaignState.RUNNING:
            raise Conflict(_("The campaign is not running."), code="campaign_not_running")
        # The preview may have waited on the desktop since it was reserved: the window is checked now.
        if not _may_call_now(locked, at, windows=_windows(locked.campaign), mode=DialMode.PREVIEW):
            raise Conflict(
                _("This contact may not be called at this time (outside the calling window)."),
                code="outside_calling_window",
            )
        reasons = block_reasons(
            [locked.phone], purpose=locked.campaign.consent_purpose, check_rpo=locked.campaign.check_rpo
        )
        if locked.phone in reasons:
            locked.state = ContactState.BLOCKED
            locked.blocked_reason = reasons[locked.phone]
            locked.save(update_fields=["state", "blocked_reason"])
            raise Conflict(_("This number may not be called (do-not-call)."), code="do_not_call")
        locked.state = ContactState.DIALING
        locked.attempts += 1
        locked.last_attempt_at = at
        locked.save(update_fields=["state", "attempts", "last_attempt_at"])
        attempt = DialAttempt.objects.create(
            campaign=locked.campaign,
            contact=locked,
            agent=locked.agent,
            mode=DialMode.PREVIEW,
            provider=locked.campaign.provider,
            phone=locked.phone,
            dialed_at=at,
        )
    _place_call(locked.campaign, attempt, at)
    attempt.refresh_from_db()
    return attempt


# -- call results ----------------------------------------------------------------------------------


def dialer_call_event(event: CallEvent) -> DialAttempt | None:
    """Bring the dialer up to date after the telephony area applied ``event`` to its Interaction.
    Not a dialer call: None. Safe to call twice for one event."""
    attempt = DialAttempt.objects.filter(provider=event.provider, call_ref=event.call_ref).first()
    if attempt is None:
        attempt = _attempt_by_interaction(str(event.data.get("interaction") or ""), event.provider)
        if attempt is None:
            return None
        # The provider's first callback overtook ``originate``'s answer: bind its call id now.
        DialAttempt.objects.filter(pk=attempt.pk, call_ref="").update(call_ref=event.call_ref)
    if event.kind == CallEventKind.ANSWERED:
        return _answered(attempt, str(event.data.get("answered_by") or ""), event.at, call_active=True)
    return attempt_sync(attempt=attempt, at=event.at)


def _attempt_by_interaction(public_id: str, provider: str) -> DialAttempt | None:
    try:
        key = uuid.UUID(public_id)
    except ValueError:
        return None
    return DialAttempt.objects.filter(interaction__public_id=key, provider=provider).first()


def _answered(attempt: DialAttempt, answered_by: str, at: datetime, *, call_active: bool) -> DialAttempt:
    """The provider says the call was picked up: a machine (AMD) is hung up and finished; a person (or
    an unknown answerer: counted as live, the careful reading) is queued for an agent at once. When the
    call already ended, only the answer is recorded (the meter needs it)."""
    machine = answered_by.lower() in MACHINE_ANSWERS
    with transaction.atomic():
        locked = DialAttempt.objects.select_for_update().get(pk=attempt.pk)
        if locked.state != DialAttemptState.DIALING:
            return locked
        locked.answered_at = at
        if machine:
            locked.amd_result = AmdResult.MACHINE
            locked.state = DialAttemptState.ENDED if call_active else locked.state
        else:
            locked.amd_result = AmdResult.HUMAN if answered_by.lower() == "human" else AmdResult.UNKNOWN
            locked.state = DialAttemptState.ANSWERED if call_active else locked.state
        locked.save(update_fields=["answered_at", "amd_result", "state"])
    if call_active and machine:
        _hang_up(locked)
        _finish(attempt_id=locked.pk, outcome=DialOutcome.MACHINE, at=at)
    elif call_active:
        _offer(locked, at)
    return DialAttempt.objects.get(pk=attempt.pk)


def _hang_up(attempt: DialAttempt) -> None:
    from fedele.contact_center.telephony.registry import adapter_for

    try:
        adapter_for(attempt.provider).hangup(attempt.call_ref)
    except Exception:  # the call may already be gone; the hang-up event will tell
        logger.warning("Hang-up of dialer call %s failed", attempt.call_ref, exc_info=True)


def _offer(attempt: DialAttempt, at: datetime) -> None:
    """A live answer goes to its agent (preview, agent callback) or is queued for the campaign's."""
    from fedele.contact_center.services.interactions import interaction_connect, interaction_enqueue

    interaction = attempt.interaction
    if interaction is None:
        return
    if attempt.agent_id is not None:
        interaction_connect(interaction=interaction, agent=attempt.agent, at=at)
        DialAttempt.objects.filter(pk=attempt.pk).update(connected_at=at, state=DialAttemptState.CONNECTED)
        return
    interaction_enqueue(interaction=interaction, queue_code=attempt.campaign.queue.code, at=at)


_OUTCOME_FROM_INTERACTION = {
    Outcome.BUSY: DialOutcome.BUSY,
    Outcome.NO_ANSWER: DialOutcome.NO_ANSWER,
    Outcome.MACHINE: DialOutcome.MACHINE,
    Outcome.FAILED: DialOutcome.FAILED,
}


def attempt_sync(*, attempt: DialAttempt, at: datetime) -> DialAttempt:
    """Read the attempt's Interaction: connected to an agent → ``connected_at``; ended → the outcome;
    a live answer still without an agent after the 2 s grace → abandoned (the call is dropped)."""
    from fedele.contact_center.services.interactions import interaction_end

    if attempt.state == DialAttemptState.ENDED:
        return attempt
    interaction = (
        Interaction.objects.filter(pk=attempt.interaction_id).first() if attempt.interaction_id else None
    )
    if interaction is None:
        return attempt
    provider_answered_at = (interaction.attributes or {}).get("provider_answered_at")
    if attempt.state == DialAttemptState.DIALING and provider_answered_at and attempt.answered_at is None:
        # The answer reached the interaction but not the dialer (no hook call): catch up now.
        attempt = _answered(
            attempt,
            str((interaction.attributes or {}).get("answered_by") or ""),
            datetime.fromisoformat(str(provider_answered_at)),
            call_active=interaction.state in ACTIVE_INTERACTION_STATES,
        )
        if attempt.state == DialAttemptState.ENDED:
            return attempt
        interaction.refresh_from_db()
    connected_at = interaction.answered_at if interaction.agent_id and interaction.answered_at else None
    if connected_at is not None and attempt.connected_at is None:
        DialAttempt.objects.filter(pk=attempt.pk, connected_at__isnull=True).update(
            connected_at=connected_at, state=DialAttemptState.CONNECTED
        )
        attempt.connected_at = connected_at
        attempt.state = DialAttemptState.CONNECTED
    if interaction.state in (InteractionState.WRAP_UP, InteractionState.ENDED):
        if attempt.connected_at is not None or interaction.outcome in (Outcome.HANDLED, Outcome.TRANSFERRED):
            outcome = DialOutcome.CONNECTED
        elif attempt.answered_at is not None and attempt.amd_result != AmdResult.MACHINE:
            outcome = DialOutcome.ABANDONED
        else:
            outcome = _OUTCOME_FROM_INTERACTION.get(Outcome(interaction.outcome), DialOutcome.NO_ANSWER)
        _finish(attempt_id=attempt.pk, outcome=outcome, at=interaction.ended_at or at)
    elif (
        attempt.state == DialAttemptState.ANSWERED
        and attempt.answered_at is not None
        and at - attempt.answered_at > dialer_meter.CONNECT_GRACE
    ):
        _hang_up(attempt)
        interaction_end(interaction=interaction, outcome=Outcome.ABANDONED, at=at)
        _finish(attempt_id=attempt.pk, outcome=DialOutcome.ABANDONED, at=at)
    return DialAttempt.objects.get(pk=attempt.pk)


def _finish(*, attempt_id: int, outcome: str, at: datetime) -> None:
    """End an attempt once: its outcome and abandoned flag, and the contact's next step."""
    with transaction.atomic():
        attempt = (
            DialAttempt.objects.select_for_update(of=("self",)).select_related("campaign").get(pk=attempt_id)
        )
        if attempt.outcome:
            return
        contact = CampaignContact.objects.select_for_update().get(pk=attempt.contact_id)
        live = attempt.answered_at is not None and attempt.amd_result != AmdResult.MACHINE
        if outcome == DialOutcome.CONNECTED and attempt.answered_at is None:
            attempt.answered_at = attempt.connected_at or at
            live = True
        attempt.abandoned = live and dialer_meter.is_abandoned(
            dialer_meter.AnsweredCall(answered_at=attempt.answered_at, connected_at=attempt.connected_at)  # type: ignore[arg-type]
        )
        if outcome == DialOutcome.CONNECTED and attempt.abandoned:
            outcome = DialOutcome.ABANDONED  # connected, but after the 2 s the regulation allows
        attempt.outcome = outcome
        attempt.state = DialAttemptState.ENDED
        attempt.ended_at = at
        attempt.save(update_fields=["answered_at", "abandoned", "outcome", "state", "ended_at"])
        _schedule_next(contact, attempt, at)


def _schedule_next(contact: CampaignContact, attempt: DialAttempt, at: datetime) -> None:
    campaign = attempt.campaign
    outcome = attempt.outcome
    counts = dict(contact.outcome_attempts or {})
    counts[outcome] = counts.get(outcome, 0) + 1
    contact.outcome_attempts = counts
    contact.last_outcome = outcome
    contact.agent = None
    if attempt.connected_at is not None:
        # Reached (even if later than the 2 s the meter allows: the customer spoke to an agent).
        contact.state = ContactState.COMPLETED
        contact.abandoned_at = None
        contact.next_attempt_at = None
    elif contact.state == ContactState.BLOCKED:
        pass
    else:
        if outcome == DialOutcome.ABANDONED:
            contact.abandoned_at = attempt.answered_at or at
        rule = RetryRule.objects.filter(campaign=campaign, outcome=outcome).first()
        cap = rule.max_attempts if rule and rule.max_attempts else campaign.max_attempts
        if contact.attempts >= campaign.max_attempts or counts[outcome] >= cap:
            contact.state = ContactState.EXHAUSTED
            contact.next_attempt_at = None
        else:
            next_at = retry_at(
                ended_at=at,
                delay=timedelta(minutes=rule.delay_minutes if rule else 60),
                next_day=bool(rule and rule.next_day),
                time_zone=contact.time_zone,
                region=contact.region,
                windows=_windows(campaign),
                abandoned_at=contact.abandoned_at,
            )
            contact.state = ContactState.PENDING if next_at else ContactState.EXHAUSTED
            contact.next_attempt_at = next_at
    contact.save(
        update_fields=[
            "outcome_attempts",
            "last_outcome",
            "agent",
            "state",
            "abandoned_at",
            "next_attempt_at",
        ]
    )

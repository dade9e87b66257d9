"""SLA clocks on tickets (owned by the SLA area). The ticket services call these hooks inside their
transaction, with the ticket row already locked and saved.

Clocks measure business time of the policy's calendar only. ``due_at`` is always
``started_at + (target + paused business seconds)`` in business time, so a pause of two business
hours moves the due time by exactly two business hours.

Reopening a solved ticket does not start a new resolution clock: the original one is un-fulfilled and
continues counting from where it stopped (Zendesk's behaviour) — the time the ticket spent solved is
treated like a pause.

``Ticket.*_due_at`` are the earliest due times of the *running* clocks per metric (a paused clock has
no meaningful due time; the queue shows none while the ticket waits for someone else).
``Ticket.sla_breached`` becomes true once any clock breached and stays true.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F, Q
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _

from fedele.customers.contracts import CustomerSummary
from fedele.shared import audit, clock, events, realtime
from fedele.shared.notifications import notification_create
from fedele.support.calendars import BusinessClock, CalendarNeverOpen, clock_for
from fedele.support.events import SlaBreached
from fedele.support.models import (
    PRIORITY_RANK,
    EscalationRule,
    SlaClock,
    SlaPolicy,
    StatusKind,
    TeamSettings,
    Ticket,
    TicketEvent,
    TicketMessage,
)
from fedele.support.selectors.sla import facts_for, facts_for_ticket, policy_matching, target_for
from fedele.support.services import config_cache

if TYPE_CHECKING:
    from fedele.support.models import SlaTarget, TicketStatus

logger = logging.getLogger(__name__)

OPEN_CLOCK_STATUSES = (SlaClock.Status.RUNNING, SlaClock.Status.PAUSED)
FINISHED_KINDS = (StatusKind.SOLVED, StatusKind.CLOSED)
# How far ahead (calendar time) the warning scan looks: a warning threshold can fall days before the
# due time when the calendar is closed in between (weekends, Christmas closures).
WARNING_LOOKAHEAD = timedelta(days=16)
METRIC_FIELDS = {
    SlaClock.Metric.FIRST_RESPONSE: "first_response_minutes",
    SlaClock.Metric.NEXT_RESPONSE: "next_response_minutes",
    SlaClock.Metric.RESOLUTION: "resolution_minutes",
}
DUE_FIELDS = {
    SlaClock.Metric.FIRST_RESPONSE: "first_response_due_at",
    SlaClock.Metric.NEXT_RESPONSE: "next_response_due_at",
    SlaClock.Metric.RESOLUTION: "resolution_due_at",
}


# -- helpers ---------------------------------------------------------------------------------------


def _clock_of(policy: SlaPolicy | None) -> BusinessClock | None:
    return clock_for(policy.calendar) if policy is not None else None


def _target_minutes(target: SlaTarget | None, metric: str) -> int | None:
    if target is None:
        return None
    value: int | None = getattr(target, METRIC_FIELDS[SlaClock.Metric(metric)])
    return value


def _recompute_due(sla_clock: SlaClock, business: BusinessClock) -> None:
    sla_clock.due_at = business.add_business_seconds(
        sla_clock.started_at, sla_clock.target_minutes * 60 + sla_clock.paused_business_seconds
    )


def _policy_with_calendar(policy_id: int | None) -> SlaPolicy | None:
    if policy_id is None:
        return None
    return (
        SlaPolicy.objects.select_related("calendar").prefetch_related("targets").filter(pk=policy_id).first()
    )


def _business_for(sla_clock: SlaClock, cache: dict[int | None, BusinessClock | None]) -> BusinessClock | None:
    if sla_clock.policy_id not in cache:
        cache[sla_clock.policy_id] = _clock_of(_policy_with_calendar(sla_clock.policy_id))
    return cache[sla_clock.policy_id]


def _end_pause(sla_clock: SlaClock, business: BusinessClock, at: datetime) -> None:
    """Account the pause up to ``at`` and let the clock run again (due time recomputed)."""
    if sla_clock.paused_at is not None:
        paused = max(0, business.business_seconds_between(sla_clock.paused_at, at))
        sla_clock.paused_business_seconds += paused
        sla_clock.paused_at = None
    sla_clock.status = SlaClock.Status.RUNNING
    _recompute_due(sla_clock, business)


def _fulfil(sla_clock: SlaClock, ticket: Ticket, business: BusinessClock | None, at: datetime) -> None:
    if sla_clock.status == SlaClock.Status.PAUSED and business is not None:
        _end_pause(sla_clock, business, at)
    sla_clock.status = SlaClock.Status.FULFILLED
    sla_clock.fulfilled_at = at
    sla_clock.team_id_at_stop = ticket.team_id
    sla_clock.assignee_id_at_stop = ticket.assignee_id
    sla_clock.save()


def _start_clock(
    ticket: Ticket, policy: SlaPolicy, business: BusinessClock, metric: str, minutes: int, at: datetime
) -> SlaClock:
    paused = ticket.status.pauses_sla
    sla_clock = SlaClock(
        ticket=ticket,
        policy=policy,
        metric=metric,
        status=SlaClock.Status.PAUSED if paused else SlaClock.Status.RUNNING,
        target_minutes=minutes,
        started_at=at,
        paused_at=at if paused else None,
    )
    _recompute_due(sla_clock, business)
    sla_clock.save()
    return sla_clock


def refresh_ticket_due(ticket: Ticket) -> None:
    """Denormalise the earliest running due time per metric and the breached flag onto the ticket."""
    earliest: dict[str, datetime | None] = dict.fromkeys(DUE_FIELDS.values())
    breached = ticket.sla_breached
    for metric, due_at, breached_at, status in SlaClock.objects.filter(ticket=ticket).values_list(
        "metric", "due_at", "breached_at", "status"
    ):
        if breached_at is not None:
            breached = True
        if status != SlaClock.Status.RUNNING:
            continue
        field = DUE_FIELDS[SlaClock.Metric(metric)]
        current = earliest[field]
        if current is None or due_at < current:
            earliest[field] = due_at
    for field, value in earliest.items():
        setattr(ticket, field, value)
    ticket.sla_breached = breached
    ticket.save(update_fields=[*DUE_FIELDS.values(), "sla_breached", "sla_policy"])


def _open_clocks(ticket: Ticket, *metrics: str) -> list[SlaClock]:
    query = SlaClock.objects.select_for_update().filter(ticket=ticket, status__in=OPEN_CLOCK_STATUSES)
    if metrics:
        query = query.filter(metric__in=metrics)
    return list(query.order_by("id"))


# -- hooks -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class SlaPlan:
    """The SLA of a ticket about to be created: its policy and its clocks (not saved yet).

    Worked out before the ticket's transaction (policies and calendars are configuration), so the
    transaction only writes: the due fields go into the ticket's INSERT and the clocks into one more."""

    policy: SlaPolicy | None
    clocks: list[SlaClock]


def sla_plan(
    ticket: Ticket, *, at: datetime, customer_public_id: str | None, customer: CustomerSummary | None = None
) -> SlaPlan:
    """Pick the policy for an unsaved ticket and compute its first-response and resolution clocks.
    A ticket created already solved or closed (an import) gets no clocks. ``customer``: the caller's
    summary of the ticket's customer, if it has one."""
    policy = policy_matching(
        facts_for(
            priority=ticket.priority,
            customer_public_id=customer_public_id,
            ticket_type=ticket.ticket_type.code if ticket.ticket_type is not None else None,
            category=ticket.category.code if ticket.category is not None else None,
            channel=ticket.channel,
            customer=customer,
        ),
        config_cache.active_policies(),
    )
    clocks: list[SlaClock] = []
    if policy is not None and ticket.status_kind not in FINISHED_KINDS:
        business = clock_for(policy.calendar)
        target = target_for(policy, ticket.priority)
        paused = ticket.status.pauses_sla
        try:
            for metric in (SlaClock.Metric.FIRST_RESPONSE, SlaClock.Metric.RESOLUTION):
                minutes = _target_minutes(target, metric)
                if minutes is None:
                    continue
                sla_clock = SlaClock(
                    policy=policy,
                    metric=metric,
                    status=SlaClock.Status.PAUSED if paused else SlaClock.Status.RUNNING,
                    target_minutes=minutes,
                    started_at=at,
                    paused_at=at if paused else None,
                )
                _recompute_due(sla_clock, business)
                clocks.append(sla_clock)
        except CalendarNeverOpen:
            # A broken calendar must not stop customers from reaching us: the ticket opens unclocked.
            logger.error(
                "SLA policy %s uses a calendar that is never open; no clocks on %s", policy.pk, ticket.number
            )
            clocks = []
    return SlaPlan(policy=policy, clocks=clocks)


def sla_apply_plan(ticket: Ticket, plan: SlaPlan) -> None:
    """Set the policy and the due fields of the unsaved ticket from its plan (a new ticket has no
    breach yet: each due field is its running clock's due time)."""
    ticket.sla_policy = plan.policy
    for field in DUE_FIELDS.values():
        setattr(ticket, field, None)
    for sla_clock in plan.clocks:
        if sla_clock.status == SlaClock.Status.RUNNING:
            setattr(ticket, DUE_FIELDS[SlaClock.Metric(sla_clock.metric)], sla_clock.due_at)


def sla_start(ticket: Ticket, plan: SlaPlan) -> None:
    """Save the planned clocks of a ticket just inserted with ``sla_apply_plan``'s fields."""
    if not plan.clocks:
        return
    for sla_clock in plan.clocks:
        sla_clock.ticket = ticket
    SlaClock.objects.bulk_create(plan.clocks)


def sla_on_status_change(
    ticket: Ticket, *, old_status: TicketStatus, new_status: TicketStatus, at: datetime
) -> None:
    """Pause on a pausing status, resume on leaving it, fulfil resolution on solved/closed; on reopen
    the resolution clock continues from where it stopped (the solved time counts as a pause)."""
    if old_status.pk == new_status.pk:
        return
    cache: dict[int | None, BusinessClock | None] = {}
    was_finished = old_status.kind in FINISHED_KINDS
    is_finished = new_status.kind in FINISHED_KINDS
    if is_finished and not was_finished:
        _on_solved(ticket, cache, at)
    elif was_finished and not is_finished:
        _on_reopened(ticket, new_status, cache, at)
    elif not is_finished:
        for sla_clock in _open_clocks(ticket):
            business = _business_for(sla_clock, cache)
            if business is None:
                continue
            if new_status.pauses_sla and sla_clock.status == SlaClock.Status.RUNNING:
                sla_clock.status = SlaClock.Status.PAUSED
                sla_clock.paused_at = at
                sla_clock.save()
            elif not new_status.pauses_sla and sla_clock.status == SlaClock.Status.PAUSED:
                _end_pause(sla_clock, business, at)
                sla_clock.save()
    refresh_ticket_due(ticket)


def _on_solved(ticket: Ticket, cache: dict[int | None, BusinessClock | None], at: datetime) -> None:
    replies = list(
        TicketMessage.objects.filter(ticket=ticket, kind=TicketMessage.Kind.REPLY)
        .order_by("created_at", "id")
        .values_list("created_at", flat=True)
    )
    for sla_clock in _open_clocks(ticket):
        business = _business_for(sla_clock, cache)
        if sla_clock.metric == SlaClock.Metric.RESOLUTION:
            _fulfil(sla_clock, ticket, business, at)
            continue
        # A response clock is answered by a public reply sent after it started (the solving reply
        # itself may be saved before or after this hook runs); without one it is cancelled.
        answer = next((moment for moment in replies if moment >= sla_clock.started_at), None)
        if answer is not None:
            _fulfil(sla_clock, ticket, business, answer)
        else:
            sla_clock.status = SlaClock.Status.CANCELLED
            sla_clock.paused_at = None
            sla_clock.save()


def _on_reopened(
    ticket: Ticket, new_status: TicketStatus, cache: dict[int | None, BusinessClock | None], at: datetime
) -> None:
    resolution = (
        SlaClock.objects.select_for_update()
        .filter(ticket=ticket, metric=SlaClock.Metric.RESOLUTION, status=SlaClock.Status.FULFILLED)
        .order_by("-id")
        .first()
    )
    if resolution is not None and resolution.fulfilled_at is not None:
        business = _business_for(resolution, cache)
        if business is not None:
            resolution.paused_at = resolution.fulfilled_at
            resolution.fulfilled_at = None
            resolution.team_id_at_stop = None
            resolution.assignee_id_at_stop = None
            _end_pause(resolution, business, at)
            if new_status.pauses_sla:
                resolution.status = SlaClock.Status.PAUSED
                resolution.paused_at = at
            resolution.save()


def sla_on_message(ticket: Ticket, message: TicketMessage, *, at: datetime) -> None:
    """An agent's public reply fulfils first/next response; a customer message after an agent reply
    starts next_response (only one running at a time)."""
    if message.kind == TicketMessage.Kind.REPLY:
        cache: dict[int | None, BusinessClock | None] = {}
        for sla_clock in _open_clocks(ticket, SlaClock.Metric.FIRST_RESPONSE, SlaClock.Metric.NEXT_RESPONSE):
            _fulfil(sla_clock, ticket, _business_for(sla_clock, cache), at)
        if ticket.first_responded_at is None:
            ticket.first_responded_at = at
            ticket.save(update_fields=["first_responded_at"])
        refresh_ticket_due(ticket)
        return
    # A customer writing on a solved ticket reopens it (the status hook runs next), so the wait for
    # an answer starts now; a closed ticket is final (the message opens a follow-up ticket instead).
    if message.kind != TicketMessage.Kind.CUSTOMER or ticket.status_kind == StatusKind.CLOSED:
        return
    if ticket.sla_policy_id is None:
        return
    answered_before = (
        TicketMessage.objects.filter(ticket=ticket, kind=TicketMessage.Kind.REPLY)
        .exclude(pk=message.pk)
        .exists()
    )
    if not answered_before or _open_clocks(ticket, SlaClock.Metric.NEXT_RESPONSE):
        return
    policy = _policy_with_calendar(ticket.sla_policy_id)
    if policy is None:
        return
    minutes = _target_minutes(target_for(policy, ticket.priority), SlaClock.Metric.NEXT_RESPONSE)
    if minutes is None:
        return
    _start_clock(ticket, policy, clock_for(policy.calendar), SlaClock.Metric.NEXT_RESPONSE, minutes, at)
    refresh_ticket_due(ticket)


def sla_reapply(ticket: Ticket, *, at: datetime) -> None:
    """Priority, type, category or customer changed: re-pick the policy and retarget running clocks
    (keeping their start and pauses). A metric the new policy has no target for is cancelled; a
    first-response/resolution target the old policy lacked starts counting from the ticket's creation."""
    policy = policy_matching(facts_for_ticket(ticket), config_cache.active_policies())
    old_policy_id = ticket.sla_policy_id
    ticket.sla_policy = policy
    if policy is None:
        for sla_clock in _open_clocks(ticket):
            sla_clock.status = SlaClock.Status.CANCELLED
            sla_clock.save()
    else:
        business = clock_for(policy.calendar)
        target = target_for(policy, ticket.priority)
        for sla_clock in _open_clocks(ticket):
            minutes = _target_minutes(target, sla_clock.metric)
            if minutes is None:
                sla_clock.status = SlaClock.Status.CANCELLED
            else:
                sla_clock.policy = policy
                sla_clock.target_minutes = minutes
                _recompute_due(sla_clock, business)
            sla_clock.save()
        if ticket.status_kind not in FINISHED_KINDS:
            existing = set(SlaClock.objects.filter(ticket=ticket).values_list("metric", flat=True))
            for metric in (SlaClock.Metric.FIRST_RESPONSE, SlaClock.Metric.RESOLUTION):
                minutes = _target_minutes(target, metric)
                if metric in existing or minutes is None:
                    continue
                if metric == SlaClock.Metric.FIRST_RESPONSE and ticket.first_responded_at is not None:
                    continue
                _start_clock(ticket, policy, business, metric, minutes, ticket.created_at)
    if old_policy_id != ticket.sla_policy_id:
        TicketEvent.objects.create(
            ticket=ticket,
            kind="sla_policy",
            field="sla_policy",
            old_value=str(old_policy_id or ""),
            new_value=policy.name if policy is not None else "",
            created_at=at,
        )
    refresh_ticket_due(ticket)


# -- the scheduler job -----------------------------------------------------------------------------


def _skip_locked() -> bool:
    return bool(connection.features.has_select_for_update_skip_locked)


def sla_run_due(now: datetime | None = None) -> dict[str, int]:
    """Warn and breach due clocks, run the escalation rules and the sla triggers. Idempotent: each
    clock warns once and breaches once (row locks with SKIP LOCKED keep two schedulers apart)."""
    now = now or clock.now()
    counts = {"warnings": 0, "breaches": 0, "escalations": 0}
    breach_candidates = list(
        SlaClock.objects.filter(breached_at__isnull=True, policy__isnull=False)
        .filter(
            Q(status=SlaClock.Status.RUNNING, due_at__lte=now)
            | Q(status=SlaClock.Status.PAUSED, due_at__lte=F("paused_at"))
        )
        .order_by("due_at", "id")
        .values_list("pk", "ticket_id")
    )
    for clock_pk, ticket_pk in breach_candidates:
        counts["escalations"] += _breach_one(clock_pk, ticket_pk, now, counts)
    warn_candidates = list(
        SlaClock.objects.filter(
            status=SlaClock.Status.RUNNING,
            warned_at__isnull=True,
            breached_at__isnull=True,
            policy__isnull=False,
            due_at__gt=now,
            due_at__lte=now + WARNING_LOOKAHEAD,
        )
        .order_by("due_at", "id")
        .values_list("pk", "ticket_id")
    )
    cache: dict[int | None, BusinessClock | None] = {}
    for clock_pk, ticket_pk in warn_candidates:
        counts["escalations"] += _warn_one(clock_pk, ticket_pk, now, counts, cache)
    return counts


def _lock(clock_pk: int, ticket_pk: int) -> tuple[Ticket, SlaClock] | None:
    ticket = (
        Ticket.objects.select_for_update(skip_locked=_skip_locked(), of=("self",))
        .select_related("status", "team", "customer")
        .filter(pk=ticket_pk)
        .first()
    )
    if ticket is None:
        return None
    sla_clock = (
        SlaClock.objects.select_for_update(of=("self",)).select_related("policy").filter(pk=clock_pk).first()
    )
    if sla_clock is None:
        return None
    return ticket, sla_clock


def _warn_one(
    clock_pk: int,
    ticket_pk: int,
    now: datetime,
    counts: dict[str, int],
    cache: dict[int | None, BusinessClock | None],
) -> int:
    with transaction.atomic():
        locked = _lock(clock_pk, ticket_pk)
        if locked is None:
            return 0
        ticket, sla_clock = locked
        if (
            sla_clock.status != SlaClock.Status.RUNNING
            or sla_clock.warned_at is not None
            or sla_clock.breached_at is not None
            or sla_clock.policy is None
        ):
            return 0
        business = _business_for(sla_clock, cache)
        if business is None:
            return 0
        remaining = business.business_seconds_between(now, sla_clock.due_at)
        if remaining > sla_clock.policy.warn_before_minutes * 60:
            return 0
        sla_clock.warned_at = now
        sla_clock.save(update_fields=["warned_at"])
        TicketEvent.objects.create(
            ticket=ticket,
            kind="sla_warning",
            field=sla_clock.metric,
            new_value=sla_clock.due_at.isoformat(),
            data={"metric": sla_clock.metric, "due_at": sla_clock.due_at.isoformat()},
            created_at=now,
        )
        counts["warnings"] += 1
        escalated = _escalate(ticket, sla_clock, EscalationRule.When.WARNING, now)
        _run_sla_triggers(ticket, "sla_warning")
        _push(ticket)
        return escalated


def _breach_one(clock_pk: int, ticket_pk: int, now: datetime, counts: dict[str, int]) -> int:
    with transaction.atomic():
        locked = _lock(clock_pk, ticket_pk)
        if locked is None:
            return 0
        ticket, sla_clock = locked
        if sla_clock.breached_at is not None or sla_clock.status not in OPEN_CLOCK_STATUSES:
            return 0
        limit = sla_clock.paused_at if sla_clock.status == SlaClock.Status.PAUSED else now
        if limit is None or sla_clock.due_at > limit:
            return 0
        sla_clock.breached_at = now
        if sla_clock.warned_at is None:
            sla_clock.warned_at = now  # no late warning after the breach
        sla_clock.save(update_fields=["breached_at", "warned_at"])
        ticket.sla_breached = True
        ticket.save(update_fields=["sla_breached"])
        TicketEvent.objects.create(
            ticket=ticket,
            kind="sla_breached",
            field=sla_clock.metric,
            new_value=sla_clock.due_at.isoformat(),
            data={"metric": sla_clock.metric, "due_at": sla_clock.due_at.isoformat()},
            created_at=now,
        )
        events.publish(
            SlaBreached(
                ticket_id=str(ticket.public_id),
                number=ticket.number,
                customer_id=str(ticket.customer.public_id) if ticket.customer is not None else None,
                metric=sla_clock.metric,
                due_at=sla_clock.due_at.isoformat(),
                breached_at=now.isoformat(),
            ),
            aggregate_type="support.ticket",
            aggregate_id=str(ticket.public_id),
        )
        counts["breaches"] += 1
        escalated = _escalate(ticket, sla_clock, EscalationRule.When.BREACH, now)
        _run_sla_triggers(ticket, "sla_breached")
        _push(ticket)
        return escalated


def _run_sla_triggers(ticket: Ticket, event: str) -> None:
    from fedele.support.services.automations import run_triggers

    run_triggers(ticket, event=event, actor=None)


def _push(ticket: Ticket) -> None:
    public_id = str(ticket.public_id)
    realtime.notify_group(
        f"support.ticket.{public_id}", "ticket.changed", {"ticket": public_id, "what": "sla", "by": ""}
    )
    realtime.notify_group("support.queue", "queue.changed", {"ticket": public_id})


# -- escalations -----------------------------------------------------------------------------------


def _ticket_link(ticket: Ticket) -> str:
    try:
        return reverse("support:ticket_detail", args=[ticket.public_id])
    except NoReverseMatch:
        return ""


def _supervisor_ids(ticket: Ticket) -> list[int]:
    if ticket.team_id is not None:
        team_settings = TeamSettings.objects.filter(team_id=ticket.team_id).first()
        if team_settings is not None:
            ids = sorted(team_settings.supervisors.filter(is_active=True).values_list("pk", flat=True))
            if ids:
                return ids
    return sorted(
        get_user_model()
        .objects.filter(groups__name="supervisor", is_active=True)
        .values_list("pk", flat=True)
    )


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def _user_id(public_id: str) -> int | None:
    key = _uuid(public_id)
    if key is None:
        return None
    value: int | None = (
        get_user_model().objects.filter(public_id=key, is_active=True).values_list("pk", flat=True).first()
    )
    return value


def _team_id(public_id: str) -> int | None:
    key = _uuid(public_id)
    if key is None:
        return None
    team_model: Any = Ticket._meta.get_field("team").related_model
    value: int | None = team_model.objects.filter(public_id=key).values_list("pk", flat=True).first()
    return value


def _escalate(ticket: Ticket, sla_clock: SlaClock, when: str, now: datetime) -> int:
    """Apply the policy's escalation rules for this metric and moment; returns how many actions ran."""
    if sla_clock.policy_id is None:
        return 0
    rules = EscalationRule.objects.filter(policy_id=sla_clock.policy_id, when=when).filter(
        Q(metric="") | Q(metric=sla_clock.metric)
    )
    applied = 0
    for rule in rules:
        for action in rule.actions or []:
            if _escalation_action(ticket, sla_clock, dict(action), when, now):
                applied += 1
    return applied


def _escalation_action(
    ticket: Ticket, sla_clock: SlaClock, action: dict[str, Any], when: str, now: datetime
) -> bool:
    kind = str(action.get("type", ""))
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    if kind == "assign_team":
        team_id = _team_id(str(action.get("team", "")))
        if team_id is None or team_id == ticket.team_id:
            return False
        before, after = {"team_id": ticket.team_id}, {"team_id": team_id}
        ticket.team_id = team_id
        ticket.save(update_fields=["team"])
    elif kind == "assign_user":
        user_id = _user_id(str(action.get("user", "")))
        if user_id is None or user_id == ticket.assignee_id:
            return False
        before, after = {"assignee_id": ticket.assignee_id}, {"assignee_id": user_id}
        ticket.assignee_id = user_id
        ticket.save(update_fields=["assignee"])
    elif kind == "raise_priority":
        order = sorted(PRIORITY_RANK, key=PRIORITY_RANK.__getitem__)
        rank = PRIORITY_RANK.get(ticket.priority, 0)
        if rank >= len(order) - 1:
            return False
        new_priority = order[rank + 1]
        before, after = {"priority": ticket.priority}, {"priority": new_priority}
        ticket.priority = new_priority
        ticket.save(update_fields=["priority"])
        sla_reapply(ticket, at=now)
    elif kind in ("notify_supervisors", "notify_user"):
        recipients = (
            _supervisor_ids(ticket)
            if kind == "notify_supervisors"
            else [uid for uid in [_user_id(str(action.get("user", "")))] if uid is not None]
        )
        if not recipients:
            return False
        title = (
            _("SLA breached on %(number)s")
            if when == EscalationRule.When.BREACH
            else _("SLA at risk on %(number)s")
        ) % {"number": ticket.number}
        body = _("%(metric)s due %(due)s: %(subject)s") % {
            "metric": SlaClock.Metric(sla_clock.metric).label,
            "due": sla_clock.due_at.isoformat(timespec="minutes"),
            "subject": ticket.subject,
        }
        level = "error" if when == EscalationRule.When.BREACH else "warning"
        for recipient_id in recipients:
            notification_create(
                recipient_id=recipient_id, title=title, body=body, link=_ticket_link(ticket), level=level
            )
        after = {"notified": recipients}
    else:
        logger.warning("Unknown escalation action %r on policy %s", kind, sla_clock.policy_id)
        return False
    TicketEvent.objects.create(
        ticket=ticket,
        kind="escalated",
        field=kind,
        old_value=_short(before),
        new_value=_short(after),
        data={"action": kind, "metric": sla_clock.metric, "when": when, "before": before, "after": after},
        created_at=now,
    )
    audit.record(
        action=f"support.sla_escalation.{kind}",
        object_type="support.ticket",
        object_id=str(ticket.public_id),
        before=before or None,
        after=after,
    )
    return True


def _short(values: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in values.items())[:250]


def running_clocks(ticket: Ticket) -> Sequence[SlaClock]:
    return list(SlaClock.objects.filter(ticket=ticket, status=SlaClock.Status.RUNNING).order_by("due_at"))

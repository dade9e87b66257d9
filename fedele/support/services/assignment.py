"""Automatic assignment inside a team: round robin or least loaded, among the agents who can take
one more ticket right now (available, not absent today, under their capacity).

The team's TeamSettings row is locked for the whole choice, so two tickets assigned at the same time
in one team are chosen one after the other and nobody goes above capacity; the chosen agent's
profile is locked too and their load recounted, for agents who belong to several teams.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Q

from fedele.shared import clock
from fedele.support.models import AgentAbsence, AgentProfile, StatusKind, TeamSettings, Ticket

DEFAULT_CAPACITY = 25
OPEN_KINDS = (StatusKind.NEW, StatusKind.OPEN, StatusKind.PENDING)
WORK_PERMISSION_CODENAME = "work_tickets"
CALENDAR_TIMEZONE = "Europe/Rome"
_NEVER = datetime.min.replace(tzinfo=UTC)


def support_agents_query() -> Q:
    """Active users who may work tickets (directly, through a role group, or as superusers)."""
    through_group = Q(
        groups__permissions__codename=WORK_PERMISSION_CODENAME,
        groups__permissions__content_type__app_label="support",
    )
    direct = Q(
        user_permissions__codename=WORK_PERMISSION_CODENAME,
        user_permissions__content_type__app_label="support",
    )
    return Q(is_active=True) & (Q(is_superuser=True) | through_group | direct)


def open_ticket_counts(user_ids: list[int]) -> dict[int, int]:
    rows = (
        Ticket.objects.filter(assignee_id__in=user_ids, status_kind__in=OPEN_KINDS)
        .values("assignee_id")
        .annotate(total=Count("id"))
    )
    return {int(row["assignee_id"]): int(row["total"]) for row in rows}


def eligible_agents(team_id: int) -> list[tuple[int, int, datetime | None]]:
    """(user id, capacity left, last assigned at) of the team's agents who can take a ticket now."""
    user_model = get_user_model()
    member_ids = sorted(
        set(user_model.objects.filter(support_agents_query(), teams__id=team_id).values_list("pk", flat=True))
    )
    if not member_ids:
        return []
    today = clock.today(CALENDAR_TIMEZONE)
    absent = set(
        AgentAbsence.objects.filter(
            user_id__in=member_ids, starts_on__lte=today, ends_on__gte=today
        ).values_list("user_id", flat=True)
    )
    profiles = {profile.user_id: profile for profile in AgentProfile.objects.filter(user_id__in=member_ids)}
    counts = open_ticket_counts(member_ids)
    result: list[tuple[int, int, datetime | None]] = []
    for user_id in member_ids:
        if user_id in absent:
            continue
        profile = profiles.get(user_id)
        if profile is not None and not profile.available:
            continue
        capacity = profile.capacity if profile is not None else DEFAULT_CAPACITY
        left = capacity - counts.get(user_id, 0)
        if left > 0:
            result.append((user_id, left, profile.last_assigned_at if profile else None))
    return result


def _order(
    settings_row: TeamSettings, candidates: list[tuple[int, int, datetime | None]]
) -> list[tuple[int, int, datetime | None]]:
    if settings_row.assignment == TeamSettings.Assignment.ROUND_ROBIN:
        ordered = sorted(candidates, key=lambda c: c[0])
        cursor = settings_row.round_robin_cursor
        after = [c for c in ordered if c[0] > cursor]
        before = [c for c in ordered if c[0] <= cursor]
        return after + before
    # Least loaded: most capacity left is not the rule; fewest open tickets is. Ties → least recently
    # assigned, then the lowest id (stable).
    counts = open_ticket_counts([c[0] for c in candidates])
    return sorted(
        candidates,
        key=lambda c: (
            counts.get(c[0], 0),
            (c[2] or _NEVER),
            c[0],
        ),
    )


def assign_automatically(ticket: Ticket) -> int | None:
    """Assign ``ticket`` (already saved, unassigned) to an agent of its team per the team's settings.

    Returns the chosen user id, or None (manual team, no settings, nobody eligible). Writes the
    ticket's assignee; the caller records the history row."""
    if ticket.team_id is None or ticket.assignee_id is not None:
        return None
    with transaction.atomic():
        settings_row = TeamSettings.objects.select_for_update().filter(team_id=ticket.team_id).first()
        if settings_row is None or settings_row.assignment == TeamSettings.Assignment.MANUAL:
            return None
        for user_id, _left, _last in _order(settings_row, eligible_agents(ticket.team_id)):
            profile, _created = AgentProfile.objects.get_or_create(user_id=user_id)
            profile = AgentProfile.objects.select_for_update().get(pk=profile.pk)
            if not profile.available:
                continue
            # Recount under the profile lock: another team may have just given this agent a ticket.
            if open_ticket_counts([user_id]).get(user_id, 0) >= profile.capacity:
                continue
            now = clock.now()
            ticket.assignee_id = user_id
            ticket.save(update_fields=["assignee"])
            profile.last_assigned_at = now
            profile.save(update_fields=["last_assigned_at"])
            if settings_row.assignment == TeamSettings.Assignment.ROUND_ROBIN:
                settings_row.round_robin_cursor = user_id
                settings_row.save(update_fields=["round_robin_cursor"])
            return user_id
    return None

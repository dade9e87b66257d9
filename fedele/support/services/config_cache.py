"""Support configuration (statuses, ticket types, categories, SLA policies with their targets and
calendars, triggers) cached per process under one version (``fedele.shared.versioned_cache``).

Every save or delete of these rows bumps the version in the same transaction (the receivers at the
end of this module: settings pages, the admin, imports and factories all go through ``save()``; the
SLA settings replace targets, hours and holidays in bulk right after saving their policy or calendar,
in the same transaction). Code that changes them with ``update()`` or raw SQL must call
``config_changed()`` in its transaction. Each process then sees a change on its next request.

The cached rows are shared by every request of the process: callers must not change them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch
from django.db.models.signals import post_delete, post_save

from fedele.shared import versioned_cache
from fedele.support.models import (
    BusinessCalendar,
    CalendarHoliday,
    CalendarHours,
    Category,
    EscalationRule,
    SlaPolicy,
    SlaTarget,
    TicketStatus,
    TicketType,
    Trigger,
)

NAMESPACE = "support.config"
CONFIG_MODELS: tuple[type[Any], ...] = (
    TicketStatus,
    TicketType,
    Category,
    SlaPolicy,
    SlaTarget,
    EscalationRule,
    BusinessCalendar,
    CalendarHours,
    CalendarHoliday,
    Trigger,
)


@dataclass(frozen=True, slots=True)
class StatusTable:
    by_code: dict[str, TicketStatus]  # active statuses
    default_by_kind: dict[str, TicketStatus]  # the default (or first) status of each kind


def _load_statuses() -> StatusTable:
    rows = list(TicketStatus.objects.order_by("position", "id"))
    default_by_kind: dict[str, TicketStatus] = {}
    for row in rows:
        if row.is_default_for_kind and row.kind not in default_by_kind:
            default_by_kind[row.kind] = row
    for row in rows:
        default_by_kind.setdefault(row.kind, row)
    return StatusTable(by_code={row.code: row for row in rows if row.active}, default_by_kind=default_by_kind)


def _load_ticket_types() -> dict[str, TicketType]:
    return {row.code: row for row in TicketType.objects.filter(active=True)}


def _load_categories() -> dict[str, Category]:
    return {row.code: row for row in Category.objects.filter(active=True)}


def _load_policies() -> list[SlaPolicy]:
    return list(
        SlaPolicy.objects.filter(active=True)
        .select_related("calendar")
        .prefetch_related(Prefetch("targets", queryset=SlaTarget.objects.all()))
        .order_by("position", "id")
    )


def _load_triggers() -> dict[str, list[Trigger]]:
    by_event: dict[str, list[Trigger]] = {}
    for trigger in Trigger.objects.filter(active=True).order_by("position", "id"):
        by_event.setdefault(trigger.event, []).append(trigger)
    return by_event


_statuses = versioned_cache.VersionedValue(NAMESPACE, _load_statuses)
_ticket_types = versioned_cache.VersionedValue(NAMESPACE, _load_ticket_types)
_categories = versioned_cache.VersionedValue(NAMESPACE, _load_categories)
_policies = versioned_cache.VersionedValue(NAMESPACE, _load_policies)
_triggers = versioned_cache.VersionedValue(NAMESPACE, _load_triggers)


def active_status(code: str) -> TicketStatus | None:
    return _statuses.get().by_code.get(code)


def default_status(kind: str) -> TicketStatus | None:
    """The kind's default status, else its first by position (active or not, as before)."""
    return _statuses.get().default_by_kind.get(kind)


def active_ticket_type(code: str) -> TicketType | None:
    return _ticket_types.get().get(code)


def active_category(code: str) -> Category | None:
    return _categories.get().get(code)


def active_policies() -> list[SlaPolicy]:
    """Active SLA policies by position, with their calendar and targets loaded."""
    return _policies.get()


def active_triggers(event: str) -> list[Trigger]:
    return _triggers.get().get(event, [])


def config_changed() -> None:
    """Bump the version (inside the caller's transaction) after bulk writes that send no signals."""
    versioned_cache.bump(NAMESPACE)


def _on_config_saved(**_kwargs: object) -> None:
    config_changed()


# Deleting a team empties the default team of ticket types with an UPDATE (on_delete=SET_NULL), which
# sends no signal for the types: the team's own deletion bumps the version instead.
TEAM_MODEL: type[Any] = TicketType._meta.get_field("default_team").related_model


def connect(models: Iterable[type[Any]] = CONFIG_MODELS) -> None:
    for model in models:
        label = model._meta.label
        post_save.connect(_on_config_saved, sender=model, dispatch_uid=f"{NAMESPACE}.save.{label}")
        post_delete.connect(_on_config_saved, sender=model, dispatch_uid=f"{NAMESPACE}.delete.{label}")
    post_delete.connect(_on_config_saved, sender=TEAM_MODEL, dispatch_uid=f"{NAMESPACE}.delete.team")


connect()

"""The configurable workflow's starting point: statuses, ticket types, the default business calendar
(Mon–Fri 09:00–18:00 Europe/Rome, Italian public holidays) and a standard SLA policy. Everything here
can be changed in the settings pages; nothing is re-created once deleted (the migration runs once)."""

from __future__ import annotations

from datetime import time
from typing import Any

from django.db import migrations
from django.utils import timezone

STATUSES = [
    # code, Italian, English, kind, pauses SLA, default for kind
    ("new", "Nuovo", "New", "new", False, True),
    ("open", "Aperto", "Open", "open", False, True),
    ("pending_customer", "In attesa del cliente", "Pending customer", "pending", True, True),
    ("pending_third_party", "In attesa di terzi", "Pending third party", "pending", True, False),
    ("solved", "Risolto", "Solved", "solved", False, True),
    ("closed", "Chiuso", "Closed", "closed", False, True),
]

TYPES = [
    ("question", "Domanda", "Question", "normal", True),
    ("incident", "Guasto", "Incident", "high", True),
    ("request", "Richiesta", "Request", "normal", True),
    ("complaint", "Reclamo", "Complaint", "normal", True),
    ("collections", "Recupero crediti", "Collections", "high", False),
]

# Business minutes (09:00–18:00 = 540 per day): first response, next response, resolution.
TARGETS = {
    "urgent": (60, 120, 540),
    "high": (120, 240, 1080),
    "normal": (240, 480, 2700),
    "low": (480, 960, 5400),
}


def seed(apps: Any, schema_editor: Any) -> None:
    status_model = apps.get_model("support", "TicketStatus")
    type_model = apps.get_model("support", "TicketType")
    calendar_model = apps.get_model("support", "BusinessCalendar")
    hours_model = apps.get_model("support", "CalendarHours")
    policy_model = apps.get_model("support", "SlaPolicy")
    target_model = apps.get_model("support", "SlaTarget")
    now = timezone.now()
    for position, (code, name_it, name_en, kind, pauses, default) in enumerate(STATUSES):
        status_model.objects.get_or_create(
            code=code,
            defaults={
                "name_it": name_it,
                "name_en": name_en,
                "kind": kind,
                "pauses_sla": pauses,
                "is_default_for_kind": default,
                "position": position,
            },
        )
    for position, (code, name_it, name_en, priority, portal) in enumerate(TYPES):
        type_model.objects.get_or_create(
            code=code,
            defaults={
                "name_it": name_it,
                "name_en": name_en,
                "default_priority": priority,
                "portal_visible": portal,
                "position": position,
            },
        )
    if calendar_model.objects.exists():
        return
    calendar = calendar_model.objects.create(
        name="Italia 9-18", timezone="Europe/Rome", holiday_country="IT", is_default=True, created_at=now
    )
    for weekday in range(5):
        hours_model.objects.create(calendar=calendar, weekday=weekday, starts_at=time(9), ends_at=time(18))
    policy = policy_model.objects.create(
        name="Standard", position=100, calendar=calendar, warn_before_minutes=30, created_at=now
    )
    for priority, (first, following, resolution) in TARGETS.items():
        target_model.objects.create(
            policy=policy,
            priority=priority,
            first_response_minutes=first,
            next_response_minutes=following,
            resolution_minutes=resolution,
        )


class Migration(migrations.Migration):
    dependencies = [("support", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

"""Settings pages (calendars, SLA policies, triggers, time rules, macros) and the SLA report page."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from fedele.accounts.tests.factories import user_with_roles
from fedele.shared.models import AuditLog
from fedele.support.models import (
    BusinessCalendar,
    CalendarHoliday,
    CalendarHours,
    EscalationRule,
    Macro,
    SlaPolicy,
    SlaTarget,
    TimeRule,
    Trigger,
)

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(user_with_roles("admin"))
    return client


LIST_PAGES = ("calendar_list", "sla_policy_list", "trigger_list", "time_rule_list", "macro_list")
NEW_PAGES = ("calendar_new", "sla_policy_new", "trigger_new", "time_rule_new", "macro_new")


@pytest.mark.parametrize("name", LIST_PAGES + NEW_PAGES)
def test_settings_pages_render_for_admins_and_refuse_agents(client: Client, name: str) -> None:
    client.force_login(user_with_roles("admin"))
    assert client.get(reverse(f"support:{name}")).status_code == 200
    client.force_login(user_with_roles("agent"))
    assert client.get(reverse(f"support:{name}")).status_code == 403
    client.force_login(user_with_roles("supervisor"))
    assert client.get(reverse(f"support:{name}")).status_code == 403


def test_report_page_permissions(client: Client) -> None:
    client.force_login(user_with_roles("agent"))
    assert client.get(reverse("support:sla_report")).status_code == 403
    assert client.get(reverse("support:sla_report_csv")).status_code == 403
    client.force_login(user_with_roles("supervisor"))
    response = client.get(reverse("support:sla_report"), {"start": "2026-01-01", "end": "2026-01-31"})
    assert response.status_code == 200
    assert b'id="sla-table"' in response.content
    csv_response = client.get(reverse("support:sla_report_csv"), {"start": "2026-01-01", "end": "2026-01-31"})
    assert csv_response.status_code == 200
    assert csv_response["Content-Type"].startswith("text/csv")
    assert (
        client.get(reverse("support:sla_report"), {"start": "2026-02-01", "end": "2026-01-01"}).status_code
        == 422
    )


def test_calendar_create_with_hours_holidays_and_preview(admin_client: Client) -> None:
    with time_machine.travel(NOW, tick=False):
        response = admin_client.post(
            reverse("support:calendar_new"),
            {
                "name": "Roma",
                "timezone": "Europe/Rome",
                "holiday_country": "it",
                "holiday_subdivision": "",
                "weekday": ["0", "0", "4"],
                "starts_at": ["09:00", "14:00", "09:00"],
                "ends_at": ["13:00", "18:00", "13:00"],
                "holiday_name": ["Santi Pietro e Paolo", ""],
                "holiday_day": ["2020-06-29", ""],
                "holiday_recurring": ["yes", "no"],
            },
        )
        assert response.status_code == 302
        calendar = BusinessCalendar.objects.get(name="Roma")
        assert calendar.holiday_country == "IT"
        assert list(calendar.hours.values_list("weekday", "starts_at", "ends_at")) == [
            (0, time(9), time(13)),
            (0, time(14), time(18)),
            (4, time(9), time(13)),
        ]
        assert list(calendar.holidays.values_list("name", "recurring")) == [("Santi Pietro e Paolo", True)]
        page = admin_client.get(response["Location"])
    assert page.status_code == 200
    assert b'id="closed-days"' in page.content
    assert b"29 Jun 2026" in page.content  # the recurring patron day (a Monday) in the preview
    assert AuditLog.objects.filter(action="support.calendar_saved").count() == 1


def test_calendar_without_hours_is_refused_and_nothing_is_written(admin_client: Client) -> None:
    calendars = BusinessCalendar.objects.count()
    response = admin_client.post(
        reverse("support:calendar_new"),
        {"name": "Vuoto", "timezone": "Europe/Rome", "holiday_country": "IT", "weekday": [], "starts_at": []},
    )
    assert response.status_code == 422
    assert b"calendar" in response.content.lower()
    assert BusinessCalendar.objects.count() == calendars
    assert CalendarHours.objects.filter(calendar__name="Vuoto").count() == 0
    bad_zone = admin_client.post(
        reverse("support:calendar_new"),
        {
            "name": "Zona",
            "timezone": "Mars/Olympus",
            "weekday": ["0"],
            "starts_at": ["09:00"],
            "ends_at": ["18:00"],
        },
    )
    assert bad_zone.status_code == 422
    assert BusinessCalendar.objects.count() == calendars
    assert CalendarHoliday.objects.count() == 0


def test_policy_edit_saves_targets_conditions_and_escalations(admin_client: Client) -> None:
    calendar = BusinessCalendar.objects.get(is_default=True)
    response = admin_client.post(
        reverse("support:sla_policy_new"),
        {
            "name": "VIP",
            "calendar": str(calendar.public_id),
            "position": "1",
            "active": "on",
            "warn_before_minutes": "15",
            "cond_tiers": "gold, platinum",
            "cond_priorities": "",
            "target_urgent_first_response": "30",
            "target_urgent_resolution": "240",
            "target_low_first_response": "",
            "esc_metric": ["", "first_response"],
            "esc_when": ["breach", "warning"],
            "esc_action": ["notify_supervisors", ""],
            "esc_target": ["", ""],
        },
    )
    assert response.status_code == 302
    policy = SlaPolicy.objects.get(name="VIP")
    assert policy.conditions == {"tiers": ["gold", "platinum"]}
    assert policy.warn_before_minutes == 15
    urgent = SlaTarget.objects.get(policy=policy, priority="urgent")
    assert (urgent.first_response_minutes, urgent.next_response_minutes, urgent.resolution_minutes) == (
        30,
        None,
        240,
    )
    assert SlaTarget.objects.get(policy=policy, priority="low").first_response_minutes is None
    assert list(EscalationRule.objects.filter(policy=policy).values_list("metric", "when", "actions")) == [
        ("", "breach", [{"type": "notify_supervisors"}])
    ]
    assert admin_client.get(response["Location"]).status_code == 200
    refused = admin_client.post(
        reverse("support:sla_policy_edit", args=[policy.public_id]),
        {"name": "VIP", "calendar": str(calendar.public_id), "target_urgent_first_response": "-5"},
    )
    assert refused.status_code == 422
    assert SlaTarget.objects.get(policy=policy, priority="urgent").first_response_minutes == 30


def test_trigger_time_rule_and_macro_forms(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("support:trigger_new"),
        {
            "name": "VIP",
            "event": "created",
            "position": "0",
            "active": "on",
            "cond_field": ["loyalty_tier", ""],
            "cond_operator": ["in", "is"],
            "cond_value": ["gold, platinum", ""],
            "action_type": ["set_priority", "send_template", ""],
            "action_value": ["high", "", ""],
            "action_field": ["", "", ""],
            "action_to": ["requester", "requester", "requester"],
            "action_subject_it": ["", "Ciao {{ customer.first_name }}", ""],
            "action_subject_en": ["", "Hello", ""],
            "action_body_it": ["", "Testo", ""],
            "action_body_en": ["", "Text", ""],
        },
    )
    assert response.status_code == 302
    trigger = Trigger.objects.get(name="VIP")
    assert trigger.conditions == [{"field": "loyalty_tier", "operator": "in", "value": "gold, platinum"}]
    assert trigger.actions[0] == {"type": "set_priority", "value": "high"}
    assert trigger.actions[1]["subject_it"] == "Ciao {{ customer.first_name }}"
    assert admin_client.get(response["Location"]).status_code == 200
    bad = admin_client.post(
        reverse("support:trigger_new"),
        {"name": "X", "event": "never", "action_type": ["add_tag"], "action_value": ["a"]},
    )
    assert bad.status_code == 422
    assert Trigger.objects.count() == 1

    suggested = admin_client.post(reverse("support:time_rule_list"), {"suggestion": "0"})
    assert suggested.status_code == 302
    rule = TimeRule.objects.get()
    assert (rule.status_kind, rule.since_field, rule.hours) == ("solved", "solved_at", 72)
    assert rule.actions == [{"type": "set_status", "value": "closed"}]
    assert admin_client.get(reverse("support:time_rule_edit", args=[rule.public_id])).status_code == 200

    macro_response = admin_client.post(
        reverse("support:macro_new"),
        {
            "name": "Seriale",
            "reply_it": "Ci serve il seriale",
            "active": "on",
            "action_type": [""],
            "action_value": [""],
        },
    )
    assert macro_response.status_code == 302
    macro = Macro.objects.get(name="Seriale")
    assert macro.actions == []
    assert admin_client.get(macro_response["Location"]).status_code == 200
    deleted = admin_client.post(reverse("support:automation_delete", args=["macro", macro.public_id]))
    assert deleted.status_code == 302
    assert not Macro.objects.exists()


def test_agent_cannot_post_settings(client: Client) -> None:
    client.force_login(user_with_roles("agent"))
    response = client.post(reverse("support:time_rule_list"), {"suggestion": "0"})
    assert response.status_code == 403
    assert not TimeRule.objects.exists()
    assert date(2026, 1, 1)  # keep the import honest

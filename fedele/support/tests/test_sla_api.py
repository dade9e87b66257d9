"""API: calendars (with the due calculator), SLA policies, triggers, time rules, macros, SLA report."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.support.models import BusinessCalendar, Macro, SlaPolicy, TimeRule, Trigger

pytestmark = pytest.mark.django_db
API = "/api/v1/support"


def post(client: Client, url: str, data: Any, headers: dict[str, str]) -> Any:
    return client.post(url, data=json.dumps(data), content_type="application/json", **headers)


def put(client: Client, url: str, data: Any, headers: dict[str, str]) -> Any:
    return client.put(url, data=json.dumps(data), content_type="application/json", **headers)


WEEK = [{"weekday": day, "starts_at": "09:00", "ends_at": "18:00"} for day in range(5)]


def test_calendar_crud_and_due_calculator(client: Client) -> None:
    admin = auth_header(user_with_roles("admin"))
    created = post(
        client,
        f"{API}/calendars",
        {
            "name": "Roma",
            "holiday_country": "IT",
            "hours": WEEK,
            "holidays": [{"name": "Santi Pietro e Paolo", "day": "2020-06-29", "recurring": True}],
        },
        admin,
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["hours"][0] == {"weekday": 0, "starts_at": "09:00:00", "ends_at": "18:00:00"}
    calendar_id = body["id"]
    due = client.get(
        f"{API}/calendars/{calendar_id}/due", {"start": "2026-11-20T17:30:00+01:00", "minutes": 240}, **admin
    )
    assert due.status_code == 200, due.content
    assert due.json()["due_at_local"].startswith("2026-11-23T12:30:00")
    patron = client.get(
        f"{API}/calendars/{calendar_id}/due", {"start": "2026-06-26T17:00:00+02:00", "minutes": 120}, **admin
    )
    assert patron.json()["due_at_local"].startswith("2026-06-30T10:00:00")
    naive = client.get(
        f"{API}/calendars/{calendar_id}/due", {"start": "2026-11-20T17:30:00", "minutes": 1}, **admin
    )
    assert naive.status_code == 422
    negative = client.get(
        f"{API}/calendars/{calendar_id}/due", {"start": "2026-11-20T17:30:00+01:00", "minutes": -1}, **admin
    )
    assert negative.status_code == 422
    agent = auth_header(user_with_roles("agent"))
    assert (
        client.get(
            f"{API}/calendars/{calendar_id}/due", {"start": "2026-11-20T17:30:00Z", "minutes": 1}, **agent
        ).status_code
        == 200
    )
    assert client.get(f"{API}/calendars", **agent).status_code == 403
    replaced = put(client, f"{API}/calendars/{calendar_id}", {"name": "Roma", "hours": WEEK[:1]}, admin)
    assert replaced.status_code == 200
    assert replaced.json()["holidays"] == []
    refused = put(client, f"{API}/calendars/{calendar_id}", {"name": "Roma", "hours": []}, admin)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "calendar_without_hours"
    assert BusinessCalendar.objects.get(public_id=calendar_id).hours.count() == 1
    assert client.delete(f"{API}/calendars/{calendar_id}", **admin).status_code == 204
    default = BusinessCalendar.objects.get(is_default=True)
    assert client.delete(f"{API}/calendars/{default.public_id}", **admin).status_code == 409


def test_list_queries_are_bounded(client: Client, django_assert_max_num_queries: Any) -> None:
    admin = auth_header(user_with_roles("admin"))
    for number in range(5):
        post(client, f"{API}/calendars", {"name": f"C{number}", "hours": WEEK}, admin)
    with django_assert_max_num_queries(12):
        response = client.get(f"{API}/calendars", **admin)
    assert len(response.json()) == 6
    with django_assert_max_num_queries(12):
        assert len(client.get(f"{API}/sla-policies", **admin).json()) == 1


def test_policy_trigger_time_rule_macro_round_trip(client: Client) -> None:
    admin = auth_header(user_with_roles("admin"))
    calendar = BusinessCalendar.objects.get(is_default=True)
    policy = post(
        client,
        f"{API}/sla-policies",
        {
            "name": "Gold",
            "calendar_id": str(calendar.public_id),
            "position": 1,
            "conditions": {"tiers": ["gold"]},
            "targets": {"urgent": {"first_response_minutes": 30, "resolution_minutes": 240}},
            "escalations": [{"when": "breach", "actions": [{"type": "notify_supervisors"}]}],
        },
        admin,
    )
    assert policy.status_code == 201, policy.content
    assert policy.json()["targets"] == {
        "urgent": {"first_response_minutes": 30, "next_response_minutes": None, "resolution_minutes": 240}
    }
    bad_policy = post(
        client,
        f"{API}/sla-policies",
        {"name": "X", "calendar_id": str(calendar.public_id), "targets": {"cosmic": {}}},
        admin,
    )
    assert bad_policy.status_code == 422
    assert SlaPolicy.objects.count() == 2
    trigger = post(
        client,
        f"{API}/triggers",
        {"name": "Tag", "event": "created", "actions": [{"type": "add_tag", "value": "new"}]},
        admin,
    )
    assert trigger.status_code == 201
    bad_trigger = post(
        client,
        f"{API}/triggers",
        {"name": "Bad", "event": "created", "actions": [{"type": "explode"}]},
        admin,
    )
    assert bad_trigger.status_code == 422
    assert Trigger.objects.count() == 1
    rule = post(
        client,
        f"{API}/time-rules",
        {
            "name": "Chiudi",
            "status_kind": "solved",
            "since_field": "solved_at",
            "hours": 72,
            "actions": [{"type": "set_status", "value": "closed"}],
        },
        admin,
    )
    assert rule.status_code == 201
    assert TimeRule.objects.get().hours == 72
    macro = post(
        client, f"{API}/macros", {"name": "Ciao", "reply_it": "Ciao {{ customer.first_name }}"}, admin
    )
    assert macro.status_code == 201
    macro_id = macro.json()["id"]
    changed = put(client, f"{API}/macros/{macro_id}", {"name": "Ciao!", "reply_en": "Hi"}, admin)
    assert changed.json()["name"] == "Ciao!" and changed.json()["reply_it"] == ""
    assert client.delete(f"{API}/macros/{macro_id}", **admin).status_code == 204
    assert not Macro.objects.exists()
    agent = auth_header(user_with_roles("agent"))
    assert post(client, f"{API}/macros", {"name": "x", "reply_it": "y"}, agent).status_code == 403
    reader = auth_header(user_with_roles("admin"), scopes=("read",))
    assert post(client, f"{API}/macros", {"name": "x", "reply_it": "y"}, reader).status_code == 403


def test_report_endpoint(client: Client) -> None:
    supervisor = auth_header(user_with_roles("supervisor"))
    response = client.get(
        f"{API}/sla/report", {"start": "2026-01-01", "end": "2026-01-31", "group_by": "team"}, **supervisor
    )
    assert response.status_code == 200, response.content
    assert response.json()["total"]["metrics"]["first_response"] == {
        "fulfilled": 0,
        "on_time": 0,
        "attainment_percent": None,
        "breaches": 0,
    }
    agent = auth_header(user_with_roles("agent"))
    assert (
        client.get(f"{API}/sla/report", {"start": "2026-01-01", "end": "2026-01-31"}, **agent).status_code
        == 403
    )
    assert (
        client.get(
            f"{API}/sla/report", {"start": "2026-02-01", "end": "2026-01-31"}, **supervisor
        ).status_code
        == 422
    )


@pytest.mark.parametrize(
    ("starts_at", "ends_at"),
    [("11:04:22Z", "21:50:10.8340+00:23"), ("09:00+01:00", "18:00"), ("09:00", "18:00+02:00")],
)
def test_opening_hours_with_a_time_zone_offset_are_refused_and_nothing_is_saved(
    client: Client, starts_at: str, ends_at: str
) -> None:
    admin = auth_header(user_with_roles("admin"))
    before = BusinessCalendar.objects.count()
    refused = post(
        client,
        f"{API}/calendars",
        {"name": "Con fuso", "hours": [{"weekday": 3, "starts_at": starts_at, "ends_at": ends_at}]},
        admin,
    )
    assert refused.status_code == 422, refused.content
    assert refused.json()["error"]["code"] == "validation_error"
    assert BusinessCalendar.objects.count() == before


def test_the_service_refuses_opening_hours_with_an_offset() -> None:
    from datetime import UTC, time

    from fedele.shared.errors import ValidationFailed
    from fedele.support.calendars import validate_hours

    with pytest.raises(ValidationFailed) as refused:
        validate_hours([(0, time(9, tzinfo=UTC), time(18, tzinfo=UTC))])
    assert refused.value.code == "time_with_offset"

"""The desktop area's API: screen pop from real facades, canned replies filled in, click-to-dial,
wallboard and interval statistics; scoping, permissions and bad input (error envelope, nothing written)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fedele.accounts.contracts import Role
from fedele.accounts.tests.factories import UserFactory, auth_header
from fedele.contact_center.models import AgentState, Interaction, InteractionState
from fedele.contact_center.services import presence
from fedele.contact_center.services.desktop import canned_reply_save
from fedele.contact_center.tests.desktop_support import known_customer, make_desk
from fedele.contact_center.tests.factories import AgentFactory, InteractionFactory
from fedele.contact_center.tests.test_reports import answered

pytestmark = pytest.mark.django_db
API = "/api/v1/contact-center"


def test_screen_pop_of_my_contact_and_not_of_others(client) -> None:
    desk = make_desk()
    customer = known_customer()
    mine = InteractionFactory(
        agent=desk.agent,
        queue=desk.queue,
        state=InteractionState.CONNECTED,
        customer_public_id=str(customer.public_id),
    )
    response = client.get(f"{API}/desktop/interactions/{mine.public_id}/screen-pop", **auth_header(desk.user))
    assert response.status_code == 200
    body = response.json()
    assert body["customer"]["display_name"] == "Mario Rossi"
    assert [t["subject"] for t in body["open_tickets"]] == ["Modem lampeggia"]
    assert body["balance"]["overdue_amount"] == "122.00"
    assert body["tier"] == "gold"
    assert body["memberships"][0]["tier_name"] == "Gold"
    assert body["sections"] == []
    theirs = InteractionFactory(agent=AgentFactory(), queue=desk.queue, state=InteractionState.CONNECTED)
    refused = client.get(
        f"{API}/desktop/interactions/{theirs.public_id}/screen-pop", **auth_header(desk.user)
    )
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "interaction_not_found"
    supervisor = UserFactory(roles=[Role.SUPERVISOR])
    seen = client.get(f"{API}/desktop/interactions/{theirs.public_id}/screen-pop", **auth_header(supervisor))
    assert seen.status_code == 200 and seen.json()["customer"] is None


def test_canned_replies_filled_in_for_a_contact(client) -> None:
    desk = make_desk()
    customer = known_customer()
    canned_reply_save(
        shortcut="ciao",
        title="Hi",
        body_it="Ciao {{customer.first_name}}",
        body_en="Hi {{customer.first_name}}",
    )
    mine = InteractionFactory(agent=desk.agent, queue=desk.queue, customer_public_id=str(customer.public_id))
    plain = client.get(f"{API}/desktop/canned-replies", **auth_header(desk.user)).json()
    assert plain == [{"shortcut": "ciao", "title": "Hi", "text": "Hi "}]
    filled = client.get(
        f"{API}/desktop/canned-replies?interaction_id={mine.public_id}", **auth_header(desk.user)
    )
    assert filled.json() == [{"shortcut": "ciao", "title": "Hi", "text": "Ciao Mario"}]


def test_click_to_dial_api(client) -> None:
    desk = make_desk()
    headers = auth_header(desk.user)
    offline = client.post(
        f"{API}/desktop/click-to-dial", {"number": "0612345678"}, content_type="application/json", **headers
    )
    assert offline.status_code == 409
    assert not Interaction.objects.exists()
    presence.agent_state_set(agent=desk.agent, state=AgentState.AVAILABLE)
    bad = client.post(
        f"{API}/desktop/click-to-dial", {"number": "12"}, content_type="application/json", **headers
    )
    assert bad.status_code == 422
    unknown_field = client.post(
        f"{API}/desktop/click-to-dial",
        {"number": "0612345678", "x": 1},
        content_type="application/json",
        **headers,
    )
    assert unknown_field.status_code == 422
    assert not Interaction.objects.exists()
    placed = client.post(
        f"{API}/desktop/click-to-dial", {"number": "06 1234 5678"}, content_type="application/json", **headers
    )
    assert placed.status_code == 201
    assert placed.json()["to"] == "+390612345678"
    assert Interaction.objects.get().direction == "outbound"
    read_only = client.post(
        f"{API}/desktop/click-to-dial",
        {"number": "0612345678"},
        content_type="application/json",
        **auth_header(desk.user, scopes=("read",)),
    )
    assert read_only.status_code == 403


def test_wallboard_and_intervals_for_supervisors_only(client) -> None:
    desk = make_desk()
    answered(desk.queue, datetime(2026, 6, 10, 7, 0, tzinfo=UTC), 5)
    supervisor = auth_header(UserFactory(roles=[Role.SUPERVISOR]))
    assert client.get(f"{API}/wallboard", **auth_header(desk.user)).status_code == 403
    board = client.get(f"{API}/wallboard?queue=care", **supervisor)
    assert board.status_code == 200
    assert [q["code"] for q in board.json()["queues"]] == ["care"]
    assert [row["channel"] for row in board.json()["queues"][0]["channels"]] == ["voice", "chat", "sms"]
    stats = client.get(
        f"{API}/reports/intervals",
        {
            "start": "2026-06-10T07:00:00Z",
            "end": "2026-06-10T08:00:00Z",
            "interval_minutes": 60,
            "queue": "care",
        },
        **supervisor,
    )
    assert stats.status_code == 200
    assert stats.json() == [
        {
            "queue_code": "care",
            "channel": "voice",
            "interval_start": "2026-06-10T07:00:00Z",
            "interval_minutes": 60,
            "offered": 1,
            "answered": 1,
            "abandoned": 0,
            "answered_within_threshold": 1,
            "average_speed_of_answer_seconds": 5.0,
            "average_handle_seconds": 120.0,
            "service_level_percent": 100.0,
        }
    ]
    bad = client.get(
        f"{API}/reports/intervals",
        {"start": "2026-06-10T07:00:00Z", "end": "2026-06-10T08:00:00Z", "interval_minutes": 7},
        **supervisor,
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_interval"

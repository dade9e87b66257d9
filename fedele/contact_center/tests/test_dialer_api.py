"""The dialer's API: permissions, the error envelope, imports with line numbers, the meter, the
simulator, do-not-call and RPO, callbacks."""

from __future__ import annotations

import base64
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from openpyxl import Workbook

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.contact_center.models import Campaign, CampaignContact, DoNotCallEntry, RpoImportBatch
from fedele.contact_center.tests.factories import QueueFactory
from fedele.shared import clock

pytestmark = pytest.mark.django_db
API = "/api/v1/contact-center/dialer"


def post(client: Client, url: str, data: dict[str, Any], headers: dict[str, str]) -> Any:
    return client.post(url, data=json.dumps(data), content_type="application/json", **headers)


@pytest.fixture
def supervisor() -> dict[str, str]:
    QueueFactory(code="outbound")
    return auth_header(user_with_roles("supervisor"))


def _create(client: Client, headers: dict[str, str], **extra: Any) -> Any:
    return post(
        client,
        f"{API}/campaigns",
        {"code": "spring", "name": "Spring", "queue": "outbound", **extra},
        headers,
    )


def test_create_read_and_start_a_campaign(client: Client, supervisor: dict[str, str]) -> None:
    response = _create(
        client, supervisor, mode="predictive", windows=[{"weekday": 0, "start": "09:00", "end": "13:00"}]
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["code"], body["mode"], body["state"], body["queue"]) == (
        "spring",
        "predictive",
        "draft",
        "outbound",
    )
    assert body["windows"] == [{"weekday": 0, "start": "09:00", "end": "13:00"}]
    assert body["meter"]["live_answers"] == 0 and body["meter"]["rule"] == "rolling_30_days"
    started = post(client, f"{API}/campaigns/spring/state", {"state": "running"}, supervisor)
    assert (started.status_code, started.json()["state"]) == (200, "running")
    listed = client.get(f"{API}/campaigns", **supervisor).json()["items"]
    assert [c["code"] for c in listed] == ["spring"]
    assert client.get(f"{API}/campaigns/nope", **supervisor).status_code == 404


def test_bad_input_gets_the_envelope_and_writes_nothing(client: Client, supervisor: dict[str, str]) -> None:
    response = _create(client, supervisor, target_abandon_rate="0.05")
    assert response.status_code == 422
    assert "target_abandon_rate" in response.json()["error"]["fields"]
    response = _create(client, supervisor, queue="missing")
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_campaign")
    response = _create(client, supervisor, surprise=1)
    assert response.status_code == 422
    assert Campaign.objects.count() == 0


def test_agents_and_read_tokens_cannot_run_campaigns(client: Client, supervisor: dict[str, str]) -> None:
    agent = auth_header(user_with_roles("agent"))
    assert _create(client, agent).status_code == 403
    assert client.get(f"{API}/campaigns", **agent).status_code == 403
    read_only = auth_header(user_with_roles("supervisor"), scopes=("read",))
    assert _create(client, read_only).status_code == 403
    assert Campaign.objects.count() == 0


def test_import_reports_lines_then_imports_good_rows(client: Client, supervisor: dict[str, str]) -> None:
    _create(client, supervisor)
    content = "phone,name\n3331234567,Anna\nabc,Bruno\n3331234568,Carla\n3331234567,Anna bis\n"
    response = post(client, f"{API}/campaigns/spring/contacts/import", {"content": content}, supervisor)
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"line 3": ["'abc' is not a phone number."]}
    assert CampaignContact.objects.count() == 0
    response = post(
        client,
        f"{API}/campaigns/spring/contacts/import",
        {"content": content, "mode": "good_rows"},
        supervisor,
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["rows"], body["imported"], body["duplicates"], body["errors"]) == (
        4,
        2,
        1,
        [{"line": 3, "message": "'abc' is not a phone number."}],
    )
    page = client.get(f"{API}/campaigns/spring/contacts?limit=1", **supervisor).json()
    assert [c["phone"] for c in page["items"]] == ["+393331234567"]
    rest = client.get(f"{API}/campaigns/spring/contacts?cursor={page['next_cursor']}", **supervisor).json()
    assert [c["phone"] for c in rest["items"]] == ["+393331234568"]


def test_xlsx_import_as_base64(client: Client, supervisor: dict[str, str]) -> None:
    _create(client, supervisor)
    book = Workbook()
    book.active.append(["telefono"])
    book.active.append(["+39 333 1234567"])
    buffer = io.BytesIO()
    book.save(buffer)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    response = post(
        client, f"{API}/campaigns/spring/contacts/import", {"content": encoded, "format": "xlsx"}, supervisor
    )
    assert (response.status_code, response.json()["imported"]) == (201, 1)
    bad = post(
        client, f"{API}/campaigns/spring/contacts/import", {"content": "%%%", "format": "xlsx"}, supervisor
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_base64")


def test_contacts_list_query_count_is_constant(
    client: Client, supervisor: dict[str, str], django_assert_max_num_queries: Any
) -> None:
    _create(client, supervisor)
    content = "phone\n" + "".join(f"33312340{i:02d}\n" for i in range(30))
    post(client, f"{API}/campaigns/spring/contacts/import", {"content": content}, supervisor)
    with django_assert_max_num_queries(8):
        response = client.get(f"{API}/campaigns/spring/contacts?limit=30", **supervisor)
    assert len(response.json()["items"]) == 30


def test_simulator_endpoint(client: Client, supervisor: dict[str, str]) -> None:
    response = post(client, f"{API}/simulate", {"agents": 5, "hours": 1, "seeds": 2}, supervisor)
    assert response.status_code == 200
    body = response.json()
    assert body["runs"] == 2
    assert body["abandon_rate"]["max"] <= 0.03
    assert len(body["first_run"]["slots"]) == 2
    bad = post(client, f"{API}/simulate", {"live_answer_rate": 0.7, "machine_rate": 0.5}, supervisor)
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_simulation")
    assert post(client, f"{API}/simulate", {"seeds": 101}, supervisor).status_code == 422
    # A spread too small to model (1/cv² overflows) is refused, not a server error (found by schemathesis).
    for cv in (5e-324, 0.009):
        assert post(client, f"{API}/simulate", {"handle_cv": cv}, supervisor).status_code == 422
    # 100 runs of 500 agents for 24 h would take minutes: refused before any simulation.
    huge = post(client, f"{API}/simulate", {"agents": 500, "hours": 24, "seeds": 100}, supervisor)
    assert (huge.status_code, huge.json()["error"]["code"]) == (422, "simulation_too_large")


def test_simulator_request_cost_is_bounded_at_the_default_request(
    client: Client, supervisor: dict[str, str]
) -> None:
    """Predictive pacing work (dials × agents + agents³ / 3) is at most 2,002,667: 10 runs of the default
    settings (20 agents, 8 h: 2,002,666.67) is the largest allowed; a hair more is refused with no run.
    The default request is 2 runs of a 1-hour day."""
    from fedele.contact_center.dialer.simulator import (
        MAX_PACING_WORK,
        SimulationSettings,
        expected_dials,
        pacing_work,
    )

    default = SimulationSettings()
    assert (expected_dials(default, runs=10), round(pacing_work(default, runs=10), 2)) == (
        100000.0,
        2002666.67,
    )
    assert MAX_PACING_WORK == 2_002_667
    default_request = post(client, f"{API}/simulate", {}, supervisor)
    assert (default_request.status_code, default_request.json()["runs"]) == (200, 2)
    assert len(default_request.json()["first_run"]["slots"]) == 2  # a 1-hour day: two half hours
    at_limit = post(client, f"{API}/simulate", {"seeds": 10, "hours": 8}, supervisor)
    assert (at_limit.status_code, at_limit.json()["runs"]) == (200, 10)
    # 8.0001 h: 100,001.25 expected dials (under the 120,000 dial bound) but 2,002,691.67 of work.
    above = post(client, f"{API}/simulate", {"hours": 8.0001, "seeds": 10}, supervisor)
    assert above.status_code == 422
    assert above.json()["error"]["code"] == "simulation_too_large"
    assert above.json()["error"]["message"] == (
        "This simulation is too large for one request: use fewer runs, agents or hours."
    )
    # Many agents: the agents³ term. 180 agents for 72 s (0.02 h): 40,500 + 1,944,000 work: allowed;
    # 181 agents: 40,951.25 + 1,976,580.33: refused.
    many = {"seeds": 1, "hours": 0.02}
    allowed = post(client, f"{API}/simulate", {**many, "agents": 180}, supervisor)
    assert (allowed.status_code, allowed.json()["runs"]) == (200, 1)
    refused = post(client, f"{API}/simulate", {**many, "agents": 181}, supervisor)
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "simulation_too_large")
    # Progressive pacing does no such work: 181 agents are fine there, as are 500 for an hour.
    for agents, hours in ((181, 0.02), (500, 1)):
        progressive = {**many, "agents": agents, "hours": hours, "mode": "progressive"}
        assert post(client, f"{API}/simulate", progressive, supervisor).status_code == 200
    # The dial bound still holds for progressive runs: 120,000 dials at most (500 agents, 3.84 h is
    # exactly 120,000; 3.85 h is 120,312.5).
    for hours, status in ((3.84, 200), (3.85, 422)):
        request = {**many, "agents": 500, "hours": hours, "mode": "progressive"}
        assert post(client, f"{API}/simulate", request, supervisor).status_code == status


def test_do_not_call_and_rpo(client: Client, supervisor: dict[str, str]) -> None:
    added = post(client, f"{API}/do-not-call", {"phone": "333 123 4567", "reason": "asked"}, supervisor)
    assert (added.status_code, added.json()["phone"]) == (201, "+393331234567")
    assert [e["phone"] for e in client.get(f"{API}/do-not-call", **supervisor).json()] == ["+393331234567"]
    assert client.delete(f"{API}/do-not-call/+393331234567", **supervisor).status_code == 204
    assert client.delete(f"{API}/do-not-call/+393331234567", **supervisor).status_code == 404
    assert DoNotCallEntry.objects.count() == 0
    today = clock.today().isoformat()
    response = post(
        client,
        f"{API}/rpo-imports",
        {"checked_on": today, "content": "3331234567\nxx\n", "mode": "good_rows"},
        supervisor,
    )
    assert response.status_code == 201
    assert (response.json()["registered"], response.json()["errors"]) == (
        1,
        [{"line": 2, "message": "'xx' is not a phone number."}],
    )
    future = (clock.today() + timedelta(days=2)).isoformat()
    assert (
        post(
            client, f"{API}/rpo-imports", {"checked_on": future, "content": "3331234567"}, supervisor
        ).status_code
        == 422
    )
    assert RpoImportBatch.objects.count() == 1


def test_callback_through_the_api(client: Client, supervisor: dict[str, str]) -> None:
    _create(client, supervisor)
    post(client, f"{API}/campaigns/spring/contacts/import", {"content": "phone\n3331234567\n"}, supervisor)
    contact = CampaignContact.objects.get()
    when = (clock.now() + timedelta(hours=2)).isoformat()
    # An agent who never had this contact may not set its callback (review R1: it skips the windows).
    agent = auth_header(user_with_roles("agent"))
    refused = post(client, f"{API}/contacts/{contact.public_id}/callback", {"when": when}, agent)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "not_your_contact")
    assert CampaignContact.objects.get().state == "pending"
    response = post(client, f"{API}/contacts/{contact.public_id}/callback", {"when": when}, supervisor)
    assert (response.status_code, response.json()["state"]) == (200, "callback")
    past = (clock.now() - timedelta(hours=2)).isoformat()
    assert (
        post(client, f"{API}/contacts/{contact.public_id}/callback", {"when": past}, supervisor).status_code
        == 422
    )
    viewer = auth_header(user_with_roles("analyst"))
    assert (
        post(client, f"{API}/contacts/{contact.public_id}/callback", {"when": when}, viewer).status_code
        == 403
    )

"""Routing API: agent state, offers accept/reject, live queue counts, scoped interactions, enqueue;
error envelope, nothing written on bad input, Idempotency-Key replay."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.contact_center.models import AgentStateLog, Interaction, Offer, OfferState, RoutingTask
from fedele.contact_center.services import routing
from fedele.contact_center.services.interactions import interaction_create, interaction_enqueue
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory

pytestmark = pytest.mark.django_db
API = "/api/v1/contact-center"


def post(client: Client, url: str, data: Any, headers: dict[str, str]) -> Any:
    return client.post(url, data=json.dumps(data), content_type="application/json", **headers)


def _agent_user(role: str = "agent") -> tuple[Any, dict[str, str]]:
    user = user_with_roles(role)
    agent = AgentFactory(user=user)
    return agent, auth_header(user)


def test_state_get_and_set_with_reasons(client: Client) -> None:
    _agent, headers = _agent_user()
    response = client.get(f"{API}/agents/me/state", **headers)
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "offline"
    assert response.json()["capacity"] == {"voice": 1, "email": 5, "chat": 3, "sms": 3, "social": 3}
    response = post(client, f"{API}/agents/me/state", {"state": "break", "reason": "nap"}, headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_break_reason"
    assert AgentStateLog.objects.count() == 0
    response = post(client, f"{API}/agents/me/state", {"state": "break", "reason": "lunch"}, headers)
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["break_reason"]) == ("break", "lunch")
    response = post(client, f"{API}/agents/me/state", {"state": "busy"}, headers)
    assert response.status_code == 422


def test_non_agent_and_viewer_are_refused(client: Client) -> None:
    viewer = auth_header(user_with_roles("analyst"))
    assert client.get(f"{API}/agents/me/state", **viewer).status_code == 403
    agent_without_profile = auth_header(user_with_roles("agent"))
    response = client.get(f"{API}/agents/me/state", **agent_without_profile)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_an_agent"


def test_offer_accept_and_reject_through_the_api(client: Client) -> None:
    queue = QueueFactory(code="care")
    agent, headers = _agent_user()
    other, other_headers = _agent_user()
    for a in (agent, other):
        a.queues.add(queue)
    post(client, f"{API}/agents/me/state", {"state": "available"}, headers)
    call = interaction_enqueue(
        interaction=interaction_create(channel="voice", direction="inbound", from_address="+390612345678"),
        queue_code="care",
    )
    routing.route_pending(limit=5)
    offers = client.get(f"{API}/offers", **headers).json()
    assert [o["number"] for o in offers] == [call.number]
    offer_id = offers[0]["id"]
    assert post(client, f"{API}/offers/{offer_id}/accept", {}, other_headers).status_code == 404
    rejected = post(client, f"{API}/offers/{offer_id}/reject", {}, headers)
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    again = post(client, f"{API}/offers/{offer_id}/accept", {}, headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "offer_not_pending"
    post(client, f"{API}/agents/me/state", {"state": "available"}, other_headers)
    routing.route_pending(limit=5)
    second = Offer.objects.get(state=OfferState.PENDING)
    accepted = post(client, f"{API}/offers/{second.public_id}/accept", {}, other_headers)
    assert accepted.status_code == 200, accepted.content
    assert (accepted.json()["state"], accepted.json()["agent_id"]) == ("connected", str(other.public_id))


def test_queues_with_live_counts(client: Client) -> None:
    QueueFactory(code="care")
    QueueFactory(code="sales")
    for _ in range(2):
        interaction_enqueue(
            interaction=interaction_create(channel="chat", direction="inbound", from_address="x@example.it"),
            queue_code="care",
        )
    _agent, headers = _agent_user()
    response = client.get(f"{API}/queues", **headers)
    assert response.status_code == 200
    rows = {row["code"]: row for row in response.json()}
    assert (rows["care"]["waiting"], rows["sales"]["waiting"], rows["care"]["offered"]) == (2, 0, 0)


def test_interactions_are_scoped_and_enqueue_validates(client: Client) -> None:
    QueueFactory(code="care")
    agent, headers = _agent_user()
    supervisor = auth_header(user_with_roles("supervisor"))
    mine = interaction_create(channel="voice", direction="inbound", from_address="+390612345678")
    theirs = interaction_create(channel="voice", direction="inbound", from_address="+390612345679")
    Interaction.objects.filter(pk=mine.pk).update(agent=agent)
    listed = client.get(f"{API}/interactions", **headers).json()["items"]
    assert [row["number"] for row in listed] == [mine.number]
    assert client.get(f"{API}/interactions/{theirs.public_id}", **headers).status_code == 404
    with CaptureQueriesContext(connection) as queries:
        every = client.get(f"{API}/interactions", **supervisor)
    assert every.status_code == 200
    assert len(every.json()["items"]) == 2
    assert len(queries) <= 12
    bad = post(client, f"{API}/interactions/{mine.public_id}/enqueue", {"queue": "nope"}, headers)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "unknown_queue"
    assert RoutingTask.objects.count() == 0
    keyed = {**headers, "HTTP_IDEMPOTENCY_KEY": "enqueue-1"}
    first = post(
        client, f"{API}/interactions/{mine.public_id}/enqueue", {"queue": "care", "priority": 3}, keyed
    )
    replay = post(
        client, f"{API}/interactions/{mine.public_id}/enqueue", {"queue": "care", "priority": 3}, keyed
    )
    assert first.status_code == replay.status_code == 200
    assert first.json() == replay.json()
    assert first.json()["state"] == "queued" and first.json()["priority"] == 3
    assert RoutingTask.objects.count() == 1

"""Routing settings pages: queues, workflow editor (every problem listed, nothing saved), skills,
agents (proficiency 1–5, capacity, queues); administrators only."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from fedele.accounts.tests.factories import user_with_roles
from fedele.contact_center.models import AgentSkill, Queue, RoutingWorkflow, Skill
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory, SkillFactory
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db
BASE = "/contact-center/settings/routing"


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(user_with_roles("admin"))
    return client


def test_only_administrators_see_the_settings(client: Client) -> None:
    client.force_login(user_with_roles("agent"))
    assert client.get(f"{BASE}/").status_code == 403


def test_overview_lists_queues_and_agents(admin_client: Client) -> None:
    queue = QueueFactory(code="care")
    agent = AgentFactory(display_name="Giulia Bianchi")
    agent.queues.add(queue)
    response = admin_client.get(f"{BASE}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/contact-center/settings/routing/queues/care/"' in html
    assert "Giulia Bianchi" in html


def test_queue_create_refuses_bad_values_then_saves(admin_client: Client) -> None:
    data = {
        "code": "Bad Code",
        "name_it": "",
        "name_en": "Care",
        "wrap_up_seconds": "-1",
        "max_wait_seconds": "60",
    }
    response = admin_client.post(f"{BASE}/queues/new/", data)
    assert response.status_code == 422
    html = response.content.decode()
    assert "Choose at least one known channel." in html
    assert "A maximum wait needs a queue to overflow to." in html
    assert Queue.objects.count() == 0
    good = {
        "code": "care",
        "name_it": "Assistenza",
        "name_en": "Care",
        "channels": ["voice", "chat"],
        "active": "on",
        "service_level_seconds": "30",
        "wrap_up_seconds": "45",
    }
    response = admin_client.post(f"{BASE}/queues/new/", good)
    assert response.status_code == 302
    queue = Queue.objects.get()
    assert (queue.code, queue.channels, queue.service_level_seconds, queue.wrap_up_seconds) == (
        "care",
        ["voice", "chat"],
        30,
        45,
    )
    assert AuditLog.objects.filter(action="contact_center.queue_saved").count() == 1


def test_workflow_editor_lists_problems_and_saves_a_valid_definition(admin_client: Client) -> None:
    QueueFactory(code="care")
    url = f"{BASE}/queues/care/workflow/"
    response = admin_client.post(url, {"definition": "{not json"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert "Not valid JSON: Expecting property name enclosed in double quotes (line 1, column 2)." in (
        response.content.decode()
    )
    bad = {"filters": [{"expression": "billing >>", "targets": [{"queue": "care"}]}]}
    response = admin_client.post(url, {"definition": json.dumps(bad)}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert "filters[0].expression: Unexpected &gt; at position 10." in response.content.decode()
    assert RoutingWorkflow.objects.count() == 0
    good = {
        "strategy": "round_robin",
        "filters": [{"expression": "channel == 'chat'", "targets": [{"queue": "care"}]}],
    }
    response = admin_client.post(url, {"definition": json.dumps(good), "code": "care-flow", "name": "Care"})
    assert response.status_code == 200
    assert "Workflow saved (version 1)." in response.content.decode()
    assert RoutingWorkflow.objects.get().definition == good


def test_skills_add_with_htmx_and_duplicate_refused(admin_client: Client) -> None:
    response = admin_client.post(
        f"{BASE}/skills/",
        {"code": "billing", "name_it": "Fatture", "name_en": "Billing"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert 'id="skills-panel"' in response.content.decode()
    response = admin_client.post(
        f"{BASE}/skills/", {"code": "billing", "name_it": "X", "name_en": "X"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    assert "Another skill has this code." in response.content.decode()
    assert list(Skill.objects.values_list("code", "name_it")) == [("billing", "Fatture")]


def test_agent_profile_refuses_proficiency_six_and_saves_nothing(admin_client: Client) -> None:
    SkillFactory(code="billing")
    SkillFactory(code="sales")
    QueueFactory(code="care")
    agent = AgentFactory()
    url = f"{BASE}/agents/{agent.public_id}/"
    response = admin_client.post(url, {"skill_billing": "6", "capacity_chat": "2", "queues": ["care"]})
    assert response.status_code == 422
    assert "billing: the proficiency must be from 1 to 5." in response.content.decode()
    agent.refresh_from_db()
    assert (AgentSkill.objects.count(), agent.capacity, agent.queues.count()) == (0, {}, 0)
    response = admin_client.post(
        url,
        {
            "skill_billing": "4",
            "skill_sales": "2",
            "capacity_chat": "2",
            "capacity_voice": "",
            "queues": ["care"],
        },
    )
    assert response.status_code == 302
    agent.refresh_from_db()
    assert dict(agent.skills.values_list("skill__code", "proficiency")) == {"billing": 4, "sales": 2}
    assert agent.capacity == {"chat": 2}
    assert agent.capacity_for("chat") == 2 and agent.capacity_for("voice") == 1
    assert list(agent.queues.values_list("code", flat=True)) == ["care"]

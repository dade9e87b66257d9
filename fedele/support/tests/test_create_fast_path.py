"""The API ticket create with the per-process configuration caches: few statements, an answer built
from the objects in hand that equals what the ticket reads back, and configuration changes (made
through the services, by the admin, by another process) seen by the very next create."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared.models import AuditLog, OutboxEvent
from fedele.support.models import SlaClock, SlaPolicy, Ticket, TicketEvent, TicketType
from fedele.support.services import config_cache, sla_config
from fedele.support.tests.factories import default_calendar

pytestmark = pytest.mark.django_db
URL = "/api/v1/support/tickets"
TEAM_MODEL: Any = Ticket._meta.get_field("team").related_model
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday, 10:00 in Rome


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def agent() -> dict[str, str]:
    return auth_header(user_with_roles("agent"))


def _body(index: int, **extra: Any) -> dict[str, Any]:
    return {
        "subject": f"Nuovo problema n. {index}",
        "body": "Buongiorno, da ieri ho un problema. Potete aiutarmi?",
        "channel": "api",
        "requester_email": f"nuovo{index}@example.it",
        "requester_name": f"Nuovo Cliente {index}",
        "priority": "normal",
        **extra,
    }


def _create(client: Client, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(URL, data=json.dumps(body), content_type="application/json", **headers)
    assert response.status_code == 201, response.content
    data: dict[str, Any] = response.json()
    return data


def _set_normal_first_response(minutes: int) -> None:
    manager = actor_for(user_with_roles("admin"))
    policy = SlaPolicy.objects.get(name="Standard")
    sla_config.policy_save(
        actor=manager,
        policy=policy,
        name="Standard",
        calendar_public_id=str(default_calendar().public_id),
        position=policy.position,
        warn_before_minutes=policy.warn_before_minutes,
        targets={
            "normal": {
                "first_response_minutes": minutes,
                "next_response_minutes": 480,
                "resolution_minutes": 2700,
            }
        },
    )


def test_a_create_with_warm_caches_takes_ten_statements(client: Client, agent: dict[str, str]) -> None:
    _create(client, agent, _body(1))
    with CaptureQueriesContext(connection) as queries:
        data = _create(client, agent, _body(2))
    sql = [q["sql"] for q in queries.captured_queries]
    # version; customer by e-mail (customer, contact); number; ticket; message; history; audit; outbox;
    # SLA clocks; and the transaction's own BEGIN/COMMIT (a savepoint inside the test's transaction)
    statements = [s for s in sql if not s.startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert len(statements) == 10, sql
    assert "cache-version:" in statements[0]
    assert not [s for s in sql if "support_ticketstatus" in s or "support_tickettype" in s]
    assert not [s for s in sql if "support_slapolicy" in s or "support_trigger" in s]
    assert not [s for s in sql if "accounts_apitoken" in s or "auth_permission" in s]
    assert data["number"] == "T-000002"
    assert (Ticket.objects.count(), SlaClock.objects.count()) == (2, 4)


def test_the_answer_is_what_the_ticket_reads_back(client: Client, agent: dict[str, str]) -> None:
    customer = CustomerFactory(email="cliente@example.it")
    created = _create(
        client, agent, _body(3, requester_email="Cliente@Example.it", tags=["Modem", "vip", "modem"])
    )
    assert created["customer_id"] == str(customer.public_id)
    assert created["tags"] == ["modem", "vip"]
    assert (created["status"], created["status_kind"], created["ticket_type"]) == ("new", "new", "question")
    assert created["first_response_due_at"] == "2026-11-23T13:00:00Z"  # 10:00 Rome + 240 business min
    assert created["resolution_due_at"] == "2026-11-30T09:00:00Z"  # + 45 business hours
    assert [m["kind"] for m in created["messages"]] == ["customer"]
    assert created["messages"][0]["attachments"] == []
    read_back = client.get(f"{URL}/{created['id']}", **agent).json()
    assert created == read_back


def test_a_policy_change_through_the_service_is_seen_by_the_next_create(
    client: Client, agent: dict[str, str]
) -> None:
    before = _create(client, agent, _body(4))
    assert before["first_response_due_at"] == "2026-11-23T13:00:00Z"
    _set_normal_first_response(60)
    after = _create(client, agent, _body(5))
    assert after["first_response_due_at"] == "2026-11-23T10:00:00Z"  # 10:00 Rome + 60 business min
    clock = SlaClock.objects.get(ticket__public_id=after["id"], metric="first_response")
    assert clock.target_minutes == 60


def test_a_ticket_type_changed_in_the_admin_is_seen_by_the_next_create(
    client: Client, agent: dict[str, str]
) -> None:
    body = {key: value for key, value in _body(6).items() if key != "priority"}
    assert _create(client, agent, body)["priority"] == "normal"
    question = TicketType.objects.get(code="question")
    question.default_priority = "high"
    question.save()  # as the admin site saves it
    assert _create(client, agent, body)["priority"] == "high"
    question.active = False
    question.save()
    refused = client.post(URL, data=json.dumps(body), content_type="application/json", **agent)
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "unknown_ticket_type")


def test_a_new_trigger_runs_on_the_next_create_and_the_answer_shows_its_changes(
    client: Client, agent: dict[str, str]
) -> None:
    assert _create(client, agent, _body(7))["tags"] == []
    sla_config.trigger_save(
        actor=actor_for(user_with_roles("admin")),
        name="Urgenti",
        event="created",
        conditions=[{"field": "subject", "operator": "contains", "value": "problema"}],
        actions=[{"type": "set_priority", "value": "urgent"}, {"type": "add_tag", "value": "smistato"}],
    )
    created = _create(client, agent, _body(8))
    assert (created["priority"], created["tags"]) == ("urgent", ["smistato"])
    assert created["first_response_due_at"] == "2026-11-23T10:00:00Z"  # urgent: 60 business minutes
    assert created == client.get(f"{URL}/{created['id']}", **agent).json()
    assert TicketEvent.objects.filter(ticket__public_id=created["id"], kind="automation").count() == 1


def test_a_change_by_another_process_is_seen_once_it_bumps_the_version(
    client: Client, agent: dict[str, str]
) -> None:
    assert _create(client, agent, _body(9))["first_response_due_at"] == "2026-11-23T13:00:00Z"
    # Another process changes the targets with a bulk statement (no signal reaches this process).
    policy = SlaPolicy.objects.get(name="Standard")
    policy.targets.filter(priority="normal").update(first_response_minutes=30)
    # This process still answers from its cache: the rows changed, the version did not.
    assert _create(client, agent, _body(10))["first_response_due_at"] == "2026-11-23T13:00:00Z"
    config_cache.config_changed()  # what the other process's change does in its transaction
    assert _create(client, agent, _body(11))["first_response_due_at"] == "2026-11-23T09:30:00Z"


def test_a_rolled_back_configuration_change_is_never_seen(client: Client, agent: dict[str, str]) -> None:
    assert _create(client, agent, _body(12))["first_response_due_at"] == "2026-11-23T13:00:00Z"
    with pytest.raises(RuntimeError), transaction.atomic():
        _set_normal_first_response(60)
        raise RuntimeError("the change failed after saving")
    assert _create(client, agent, _body(13))["first_response_due_at"] == "2026-11-23T13:00:00Z"


def test_a_refused_create_leaves_nothing(client: Client, agent: dict[str, str]) -> None:
    _create(client, agent, _body(14))
    counts = (Ticket.objects.count(), AuditLog.objects.count(), OutboxEvent.objects.count())
    refused = client.post(
        URL, data=json.dumps(_body(15, category="nessuna")), content_type="application/json", **agent
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "unknown_category")
    assert (Ticket.objects.count(), AuditLog.objects.count(), OutboxEvent.objects.count()) == counts


def test_a_known_customer_is_read_once(client: Client, agent: dict[str, str]) -> None:
    customer = CustomerFactory(email="noto@example.it", segment="small_business")
    _create(client, agent, _body(16))
    with CaptureQueriesContext(connection) as queries:
        data = _create(client, agent, _body(17, requester_email="noto@example.it"))
    assert data["customer_id"] == str(customer.public_id)
    customer_reads = [q["sql"] for q in queries.captured_queries if 'FROM "customers_customer"' in q["sql"]]
    assert len(customer_reads) == 1, customer_reads
    assert Ticket.objects.get(public_id=data["id"]).customer_id == customer.pk


def test_deleting_a_types_default_team_is_seen_by_the_next_create(
    client: Client, agent: dict[str, str]
) -> None:
    team = TEAM_MODEL.objects.create(name="Secondo livello")
    question = TicketType.objects.get(code="question")
    question.default_team = team
    question.save()
    assert _create(client, agent, _body(18))["team_id"] == str(team.public_id)
    team.delete()  # the type's default team becomes empty with an UPDATE (SET_NULL), no signal for the type
    created = _create(client, agent, _body(19))
    assert created["team_id"] is None
    assert Ticket.objects.get(public_id=created["id"]).team_id is None

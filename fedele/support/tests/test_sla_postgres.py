"""The SLA scheduler on PostgreSQL: two schedulers at once warn, breach and escalate exactly once."""

from __future__ import annotations

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection

from fedele.accounts.tests.factories import user_with_roles
from fedele.shared.models import Notification, OutboxEvent
from fedele.support.models import EscalationRule, SlaPolicy, TicketEvent
from fedele.support.services.sla import sla_run_due
from fedele.support.services.tickets import ticket_create
from fedele.support.tests.factories import ticket_kwargs

pytestmark = [pytest.mark.postgres]
ROME = ZoneInfo("Europe/Rome")


@pytest.mark.django_db(transaction=True)
def test_concurrent_schedulers_breach_and_escalate_once() -> None:
    supervisor = user_with_roles("supervisor")
    EscalationRule.objects.create(
        policy=SlaPolicy.objects.get(name="Standard"), when="breach", actions=[{"type": "notify_supervisors"}]
    )
    tickets = []
    with time_machine.travel(datetime(2026, 11, 23, 9, 0, tzinfo=ROME), tick=False):
        for _number in range(6):
            tickets.append(ticket_create(actor=None, **ticket_kwargs(priority="urgent")))
    now = datetime(2026, 11, 23, 10, 30, tzinfo=ROME)  # every first response (due 10:00) breached
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            barrier.wait()
            results.append(sla_run_due(now))
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # Clocks skipped under SKIP LOCKED by one scheduler are done by another, or by the next run.
    results.append(sla_run_due(now))
    assert sum(result["breaches"] for result in results) == 6
    assert sum(result["escalations"] for result in results) == 6
    assert OutboxEvent.objects.filter(event_type="support.sla_breached").count() == 6
    assert Notification.objects.filter(recipient=supervisor).count() == 6
    assert TicketEvent.objects.filter(kind="sla_breached").count() == 6

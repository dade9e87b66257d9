"""The support demo loads through the real services, fast, and only once."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings
from faker import Faker

from fedele.shared.demo import DemoContext, loaders
from fedele.support import demo
from fedele.support.models import AgentProfile, Mailbox, Ticket, TicketMessage

pytestmark = pytest.mark.django_db


def _context() -> DemoContext:
    faker = Faker("it_IT")
    faker.seed_instance(7)
    return DemoContext(faker=faker, seed=7, options={"customers": 30})


@override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend")
def test_demo_loads_a_realistic_support_history_once() -> None:
    context = _context()
    registered = dict(loaders())
    registered["accounts"](context)
    registered["customers"](context)

    started = time.monotonic()
    demo.load(context)
    seconds = time.monotonic() - started

    assert seconds < 60  # about 10 s on an idle 2-core machine; generous for a busy CI runner
    tickets = Ticket.objects.all()
    assert tickets.count() >= 60
    kinds = set(tickets.values_list("status_kind", flat=True))
    assert {"solved", "pending", "open"} <= kinds
    assert tickets.filter(team__name="Supporto").count() >= 60
    assert TicketMessage.objects.filter(kind="reply").count() > 30
    assert Mailbox.objects.filter(address="support@fedele.example").count() == 1
    assert AgentProfile.objects.count() == 3
    assert sorted(AgentProfile.objects.values_list("capacity", flat=True)) == [15, 20, 25]
    assert context.counts["support tickets"] == tickets.count()

    before = (Ticket.objects.count(), TicketMessage.objects.count())
    demo.load(context)
    assert (Ticket.objects.count(), TicketMessage.objects.count()) == before

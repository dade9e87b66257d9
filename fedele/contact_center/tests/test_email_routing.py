"""E-mail tickets are routed like any other contact: support's ticket-created event (channel e-mail)
opens a queued e-mail interaction linked to the ticket, once."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from fedele.contact_center.models import Interaction, InteractionState
from fedele.contact_center.services.email_routing import on_ticket_created, route_ticket_email
from fedele.contact_center.tests.factories import QueueFactory
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared import clock
from fedele.shared.events import EventEnvelope
from fedele.support.facade import create_ticket

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_router(settings: Any) -> None:
    settings.CONTACT_CENTER_ROUTE_ON_COMMIT = False


def _ticket(channel: str, django_capture_on_commit_callbacks: Any, **extra: Any) -> Any:
    with django_capture_on_commit_callbacks(execute=True):
        return create_ticket(
            subject="Bolletta doppia", body="Mi avete addebitato due volte.", channel=channel, **extra
        )


def test_an_email_ticket_becomes_a_queued_email_interaction(django_capture_on_commit_callbacks):
    QueueFactory(code="a-voice", channels=["voice"])
    QueueFactory(code="b-mail", channels=["email"])
    customer = CustomerFactory(email="giulia@example.it")
    ticket = _ticket("email", django_capture_on_commit_callbacks, requester_email="giulia@example.it")
    interaction = Interaction.objects.get()
    assert (interaction.channel, interaction.direction, interaction.state, interaction.queue.code) == (
        "email",
        "inbound",
        InteractionState.QUEUED,
        "b-mail",
    )
    assert (interaction.ticket_public_id, interaction.subject, interaction.from_address) == (
        str(ticket.public_id),
        "Bolletta doppia",
        "giulia@example.it",
    )
    assert interaction.customer_public_id == str(customer.public_id)
    assert interaction.attributes == {"ticket_number": ticket.number}


def test_tickets_from_other_channels_are_not_routed(django_capture_on_commit_callbacks):
    QueueFactory(code="mail", channels=["email"])
    _ticket("portal", django_capture_on_commit_callbacks, requester_email="a@example.it")
    _ticket("phone", django_capture_on_commit_callbacks, requester_email="a@example.it")
    assert Interaction.objects.count() == 0


def test_a_redelivered_event_routes_the_ticket_once(django_capture_on_commit_callbacks):
    QueueFactory(code="mail", channels=["email"])
    ticket = _ticket("email", django_capture_on_commit_callbacks, requester_email="a@example.it")
    envelope = EventEnvelope(
        event_id=uuid.uuid4(),  # even under another event id (a replay), the ticket is routed once
        event_type="support.ticket_created",
        aggregate_type="support.ticket",
        aggregate_id=str(ticket.public_id),
        occurred_at=clock.now(),
        payload={"ticket_id": str(ticket.public_id), "channel": "email", "subject": "x", "customer_id": None},
    )
    on_ticket_created(envelope)
    assert Interaction.objects.count() == 1


def test_without_an_email_queue_the_ticket_stays_with_support(django_capture_on_commit_callbacks, caplog):
    QueueFactory(code="voice-only", channels=["voice"])
    QueueFactory(code="closed-mail", channels=["email"], active=False)
    with caplog.at_level(logging.INFO, logger="fedele.contact_center.services.email_routing"):
        ticket = _ticket("email", django_capture_on_commit_callbacks, requester_email="a@example.it")
    assert Interaction.objects.count() == 0
    assert f"ticket {ticket.public_id} stays with support" in caplog.text


def test_the_configured_queue_wins(settings, django_capture_on_commit_callbacks):
    QueueFactory(code="a-mail", channels=["email"])
    QueueFactory(code="escalations", channels=["voice", "email"])
    QueueFactory(code="phones", channels=["voice"])
    settings.FEDELE_CC_EMAIL_QUEUE = "escalations"
    _ticket("email", django_capture_on_commit_callbacks, requester_email="a@example.it")
    assert Interaction.objects.get().queue.code == "escalations"
    settings.FEDELE_CC_EMAIL_QUEUE = "phones"  # a queue that does not take e-mails is not used
    _ticket("email", django_capture_on_commit_callbacks, requester_email="b@example.it")
    assert Interaction.objects.count() == 1


def test_route_ticket_email_for_an_unknown_ticket_still_opens_the_interaction_without_a_requester():
    QueueFactory(code="mail", channels=["email"])
    ticket_id = str(uuid.uuid4())
    interaction = route_ticket_email(ticket_public_id=ticket_id, subject="Ciao", customer_public_id="")
    assert interaction is not None
    assert (interaction.from_address, interaction.ticket_public_id, interaction.attributes) == (
        "",
        ticket_id,
        {"ticket_number": ""},
    )
    assert route_ticket_email(ticket_public_id=ticket_id, subject="Ciao", customer_public_id="") is None

"""Shared set-up of the desktop tests: an agent who can sign in, a queue, a customer with a real
position in billing, support and loyalty (through those modules' own factories)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from fedele.accounts.contracts import Role
from fedele.accounts.tests.factories import UserFactory
from fedele.billing.tests.factories import BillingAccountFactory, InvoiceFactory
from fedele.contact_center.models import Agent, Interaction, Offer, OfferState, Queue
from fedele.contact_center.services import routing
from fedele.contact_center.services.interactions import interaction_create, interaction_enqueue
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory
from fedele.customers.tests.factories import CustomerFactory
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory, standard_tiers
from fedele.support.tests.factories import TicketFactory


@dataclass
class Desk:
    user: Any
    agent: Agent
    queue: Queue


def make_desk(*, extension: str = "", role: str = Role.AGENT, email: str | None = None) -> Desk:
    queue = QueueFactory(code="care", channels=["voice", "chat", "sms"], wrap_up_seconds=30)
    extra = {"email": email} if email else {}
    user = UserFactory(roles=[role], first_name="Giulia", last_name="Verdi", **extra)
    agent = AgentFactory(user=user, display_name="Giulia Verdi", extension=extension)
    agent.queues.add(queue)
    return Desk(user=user, agent=agent, queue=queue)


def known_customer() -> Any:
    """Mario Rossi: +390612345678, one open ticket, one overdue invoice of 122.00, Gold member."""
    customer = CustomerFactory(
        first_name="Mario", last_name="Rossi", display_name="Mario Rossi", phone="+390612345678"
    )
    account = BillingAccountFactory(customer=customer)
    InvoiceFactory(
        account=account,
        total=Decimal("122.00"),
        issue_date=date(2026, 1, 1),
        due_date=date(2026, 1, 31),
    )
    TicketFactory(customer=customer, subject="Modem lampeggia")
    programme = ProgrammeFactory()
    tiers = standard_tiers(programme)
    MemberFactory(programme=programme, customer=customer, tier=tiers[2])
    return customer


def offered_call(
    desk: Desk, *, phone: str = "+390612345678", channel: str = "voice", **create: Any
) -> tuple[Interaction, Offer]:
    interaction = interaction_create(channel=channel, direction="inbound", from_address=phone, **create)
    interaction_enqueue(interaction=interaction, queue_code=desk.queue.code)
    assert routing.route_pending(limit=10) >= 1
    offer = Offer.objects.get(interaction=interaction, state=OfferState.PENDING)
    assert offer.agent_id == desk.agent.pk
    interaction.refresh_from_db()
    return interaction, offer

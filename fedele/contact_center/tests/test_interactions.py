"""The interaction lifecycle: create (customer identified), enqueue, offer, accept, hold, end,
wrap-up; exact durations; provider event dedupe; ticket linking; bad input changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fedele.contact_center.models import (
    AgentState,
    AgentStateLog,
    Interaction,
    InteractionEvent,
    InteractionState,
    Offer,
    OfferState,
    RoutingTask,
    RoutingTaskState,
)
from fedele.contact_center.services import presence, routing
from fedele.contact_center.services.interactions import (
    interaction_connect,
    interaction_create,
    interaction_end,
    interaction_enqueue,
    interaction_event_record,
    interaction_hold,
    interaction_link_ticket,
    interaction_wrap_up_complete,
)
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory, WrapUpCodeFactory
from fedele.shared.errors import Conflict, ValidationFailed
from fedele.shared.models import OutboxEvent

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _customer(phone: str = "+393331234567", email: str = "mario@example.it") -> str:
    from fedele.customers.tests.factories import CustomerFactory

    return str(CustomerFactory(phone=phone, email=email).public_id)


def test_create_identifies_the_customer_by_phone_email_and_provider_address() -> None:
    customer = _customer()
    call = interaction_create(channel="voice", direction="inbound", from_address="+39 333 123 4567", at=T0)
    assert call.customer_public_id == customer
    assert call.number == "I-00000001"
    assert call.state == InteractionState.IVR
    assert call.created_at == T0
    mail = interaction_create(channel="email", direction="inbound", from_address="Mario@Example.it")
    assert mail.customer_public_id == customer
    whatsapp = interaction_create(
        channel="social", network="whatsapp", direction="inbound", from_address="whatsapp:+393331234567"
    )
    assert whatsapp.customer_public_id == customer
    outbound = interaction_create(
        channel="voice", direction="outbound", from_address="+390212345678", to_address="+393331234567"
    )
    assert outbound.customer_public_id == customer
    handle = interaction_create(
        channel="social", network="telegram", direction="inbound", from_address="@mario"
    )
    assert handle.customer_public_id == ""
    assert list(InteractionEvent.objects.filter(interaction=call).values_list("kind", flat=True)) == [
        "created"
    ]


def test_create_refuses_bad_input_and_writes_nothing() -> None:
    with pytest.raises(ValidationFailed) as error:
        interaction_create(channel="fax", direction="sideways", from_address="x" * 201)
    assert set(error.value.fields) == {"channel", "direction", "from_address"}
    assert Interaction.objects.count() == 0


def test_full_call_lifecycle_with_exact_durations() -> None:
    queue = QueueFactory(code="sales", wrap_up_seconds=30)
    agent = AgentFactory()
    agent.queues.add(queue)
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=at(0))
    call = interaction_create(channel="voice", direction="inbound", from_address="+390612345678", at=at(0))
    interaction_enqueue(interaction=call, queue_code="sales", at=at(5))
    assert routing.route_pending(limit=10, at=at(8)) == 1
    offer = Offer.objects.get()
    assert (offer.agent_id, offer.state, offer.expires_at) == (agent.pk, OfferState.PENDING, at(23))
    call.refresh_from_db()
    assert (call.state, call.agent_id) == (InteractionState.OFFERED, agent.pk)
    routing.offer_accept(offer=offer, agent=agent, at=at(12))
    call.refresh_from_db()
    agent.refresh_from_db()
    assert (call.state, call.wait_seconds, call.answered_at) == (InteractionState.CONNECTED, 7, at(12))
    assert agent.state == AgentState.BUSY
    interaction_hold(interaction=call, on=True, at=at(40))
    interaction_hold(interaction=call, on=True, at=at(45))  # already held: nothing changes
    interaction_hold(interaction=call, on=False, at=at(70))
    interaction_end(interaction=call, outcome="handled", at=at(112))
    call.refresh_from_db()
    agent.refresh_from_db()
    assert (call.state, call.talk_seconds, call.hold_seconds) == (InteractionState.WRAP_UP, 70, 30)
    assert (agent.state, agent.wrap_up_until) == (AgentState.WRAP_UP, at(142))
    code = WrapUpCodeFactory(code="sale")
    interaction_wrap_up_complete(interaction=call, agent=agent, wrap_up_code="sale", notes=" ok ", at=at(130))
    call.refresh_from_db()
    agent.refresh_from_db()
    assert (call.state, call.after_call_seconds, call.wrap_up_code, call.wrap_up_notes) == (
        InteractionState.ENDED,
        18,
        code,
        "ok",
    )
    assert call.handle_seconds == 70 + 30 + 18
    assert (agent.state, agent.idle_since) == (AgentState.AVAILABLE, at(130))
    assert OutboxEvent.objects.filter(event_type="contact_center.interaction_ended").count() == 1
    kinds = list(InteractionEvent.objects.filter(interaction=call).values_list("kind", flat=True))
    assert kinds == ["created", "queued", "offered", "accepted", "hold", "unhold", "ended", "wrap_up"]
    log = list(AgentStateLog.objects.filter(agent=agent).values_list("state", "duration_seconds"))
    assert log == [("available", 12), ("busy", 100), ("wrap_up", 18), ("available", None)]


def test_hold_open_at_hang_up_counts_until_the_end() -> None:
    call = interaction_create(channel="voice", direction="inbound", from_address="+390612345678", at=at(0))
    interaction_connect(interaction=call, at=at(10))
    interaction_hold(interaction=call, on=True, at=at(20))
    interaction_end(interaction=call, outcome="handled", at=at(50))
    call.refresh_from_db()
    assert (call.state, call.talk_seconds, call.hold_seconds) == (InteractionState.ENDED, 10, 30)


def test_ending_a_waiting_contact_abandons_it_and_ending_twice_changes_nothing() -> None:
    QueueFactory(code="care")
    call = interaction_create(channel="voice", direction="inbound", from_address="+390612345678", at=at(0))
    interaction_enqueue(interaction=call, queue_code="care", at=at(2))
    interaction_end(interaction=call, outcome="abandoned", at=at(47))
    interaction_end(interaction=call, outcome="handled", at=at(90))
    call.refresh_from_db()
    assert (call.state, call.outcome, call.wait_seconds) == (InteractionState.ENDED, "abandoned", 45)
    assert RoutingTask.objects.get().state == RoutingTaskState.CANCELLED
    assert OutboxEvent.objects.filter(event_type="contact_center.interaction_ended").count() == 1


def test_enqueue_refuses_unknown_queue_bad_skills_and_changes_nothing() -> None:
    QueueFactory(code="care", channels=["chat"])
    call = interaction_create(channel="voice", direction="inbound", from_address="+390612345678", at=at(0))
    with pytest.raises(ValidationFailed) as error:
        interaction_enqueue(interaction=call, queue_code="nope")
    assert error.value.code == "unknown_queue"
    with pytest.raises(ValidationFailed) as error:
        interaction_enqueue(interaction=call, queue_code="care")
    assert error.value.code == "channel_not_served"
    QueueFactory(code="all")
    with pytest.raises(ValidationFailed) as error:
        interaction_enqueue(interaction=call, queue_code="all", required_skills={"billing": 6})
    assert error.value.code == "invalid_required_skills"
    with pytest.raises(ValidationFailed):
        interaction_enqueue(interaction=call, queue_code="all", priority=5000)
    call.refresh_from_db()
    assert call.state == InteractionState.IVR
    assert RoutingTask.objects.count() == 0


def test_provider_event_retry_changes_nothing() -> None:
    call = interaction_create(channel="voice", direction="inbound", from_address="+390612345678")
    first = interaction_event_record(interaction=call, kind="ringing", provider_event_id="CA1:ringing")
    again = interaction_event_record(interaction=call, kind="ringing", provider_event_id="CA1:ringing")
    assert first is not None and again is None
    assert InteractionEvent.objects.filter(kind="ringing").count() == 1
    with pytest.raises(ValidationFailed):
        interaction_event_record(interaction=call, kind="")


def test_link_ticket_create_is_idempotent_and_attach_adds_a_note() -> None:
    from fedele.support.facade import create_ticket, ticket_summary
    from fedele.support.tests.factories import TicketMessageFactory

    TicketMessage = TicketMessageFactory._meta.model  # noqa: N806

    customer = _customer()
    call = interaction_create(channel="voice", direction="inbound", from_address="+393331234567")
    linked = interaction_link_ticket(interaction=call, create=True)
    again = interaction_link_ticket(interaction=call, create=True)
    assert linked.ticket_public_id == again.ticket_public_id
    summary = ticket_summary(linked.ticket_public_id)
    assert summary is not None and summary.channel == "phone" and str(summary.customer_public_id) == customer
    other = create_ticket(subject="Older", body="x", channel="email", customer_public_id=customer)
    notes_before = TicketMessage.objects.filter(ticket__public_id=other.public_id).count()
    interaction_link_ticket(interaction=call, create=False, ticket_public_id=str(other.public_id))
    call.refresh_from_db()
    assert call.ticket_public_id == str(other.public_id)
    assert TicketMessage.objects.filter(ticket__public_id=other.public_id).count() == notes_before + 1


def test_wrap_up_complete_refuses_someone_else_and_unknown_code() -> None:
    queue = QueueFactory(code="care", wrap_up_seconds=60)
    agent, other = AgentFactory(), AgentFactory()
    call = interaction_create(channel="voice", direction="inbound", from_address="+390612345678", at=at(0))
    interaction_enqueue(interaction=call, queue_code=queue.code, at=at(0))
    interaction_connect(interaction=call, agent=agent, at=at(1))
    interaction_end(interaction=call, outcome="handled", at=at(10))
    with pytest.raises(Conflict):
        interaction_wrap_up_complete(interaction=call, agent=other, wrap_up_code=None, at=at(20))
    with pytest.raises(ValidationFailed):
        interaction_wrap_up_complete(interaction=call, agent=agent, wrap_up_code="nope", at=at(20))
    call.refresh_from_db()
    assert call.state == InteractionState.WRAP_UP

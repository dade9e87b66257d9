"""The router: strategies, priorities (queue + contact + loyalty), skill relaxation rings, workflow
targets with timeouts, capacity and the cross-channel rule, offers (reject, time-out, re-offer),
overflow, callback-in-queue, business hours across DST. Exact choices and values."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from fedele.contact_center.models import (
    Agent,
    AgentState,
    CallbackRequest,
    Interaction,
    InteractionState,
    Offer,
    OfferState,
    Queue,
    RoutingTask,
    RoutingTaskState,
)
from fedele.contact_center.services import presence, routing
from fedele.contact_center.services.interactions import (
    interaction_create,
    interaction_end,
    interaction_enqueue,
)
from fedele.contact_center.services.routing_workflows import workflow_save
from fedele.contact_center.tests.factories import AgentFactory, AgentSkillFactory, QueueFactory, SkillFactory
from fedele.shared.errors import Conflict, NotFound, ValidationFailed

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def agent_in(
    queue: Queue, *, skills: dict[str, int] | None = None, available_at: float = 0, **fields: Any
) -> Agent:
    agent = AgentFactory(**fields)
    agent.queues.add(queue)
    for code, level in (skills or {}).items():
        AgentSkillFactory(agent=agent, skill=SkillFactory(code=code), proficiency=level)
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=at(available_at))
    return agent


def contact(
    queue: str,
    *,
    when: float = 0,
    channel: str = "voice",
    skills: dict[str, int] | None = None,
    priority: int | None = None,
    phone: str = "+390612345678",
) -> Interaction:
    interaction = interaction_create(channel=channel, direction="inbound", from_address=phone, at=at(when))
    return interaction_enqueue(
        interaction=interaction, queue_code=queue, required_skills=skills, priority=priority, at=at(when)
    )


def offered_to(interaction: Interaction) -> int | None:
    offer = Offer.objects.filter(interaction=interaction, state=OfferState.PENDING).first()
    return offer.agent_id if offer else None


def test_longest_idle_agent_gets_the_contact() -> None:
    queue = QueueFactory(code="care")
    late = agent_in(queue, available_at=50)
    early = agent_in(queue, available_at=10)
    agent_in(queue, available_at=30)
    call = contact("care", when=60)
    assert routing.route_pending(limit=1, at=at(61)) == 1
    assert offered_to(call) == early.pk
    assert late.pk != early.pk


def test_round_robin_least_occupied_and_best_skill() -> None:
    queue = QueueFactory(code="chat", channels=["chat"])
    workflow_save(queue=queue, code="chat-rr", name="RR", definition={"strategy": "round_robin"})
    first = agent_in(queue, available_at=0)
    second = agent_in(queue, available_at=0)
    Agent.objects.filter(pk=first.pk).update(last_offered_at=at(5))
    Agent.objects.filter(pk=second.pk).update(last_offered_at=at(3))
    chat = contact("chat", channel="chat", when=10)
    routing.route_pending(limit=1, at=at(10))
    assert offered_to(chat) == second.pk

    busy_queue = QueueFactory(code="mail", channels=["email"])
    workflow_save(queue=busy_queue, code="mail-lo", name="LO", definition={"strategy": "least_occupied"})
    loaded = agent_in(busy_queue, available_at=0)  # idle longest, but already has two e-mails
    light = agent_in(busy_queue, available_at=5)
    for moment in (20, 21):
        mail = contact("mail", channel="email", when=moment)
        Interaction.objects.filter(pk=mail.pk).update(agent=loaded, state=InteractionState.CONNECTED)
        RoutingTask.objects.filter(interaction=mail).update(state=RoutingTaskState.ASSIGNED)
    mail = contact("mail", channel="email", when=22)
    routing.route_pending(limit=1, at=at(22))
    assert offered_to(mail) == light.pk

    skilled_queue = QueueFactory(code="tech")
    workflow_save(queue=skilled_queue, code="tech-best", name="Best", definition={"strategy": "best_skill"})
    agent_in(skilled_queue, skills={"network": 2}, available_at=0)
    expert = agent_in(skilled_queue, skills={"network": 5}, available_at=9)
    call = contact("tech", skills={"network": 2}, when=24)
    routing.route_pending(limit=1, at=at(24))
    assert offered_to(call) == expert.pk


def test_preferred_agent_is_the_customers_last_agent_within_the_window() -> None:
    from fedele.customers.tests.factories import CustomerFactory

    CustomerFactory(phone="+393470000001")
    queue = QueueFactory(code="care", wrap_up_seconds=0)
    workflow_save(
        queue=queue,
        code="care-pref",
        name="Pref",
        definition={"strategy": "preferred", "preferred_agent_days": 7},
    )
    agent_in(queue, available_at=0)
    favourite = agent_in(queue, available_at=5)
    old = contact("care", when=10, phone="+393470000001")
    from fedele.contact_center.services.interactions import interaction_connect

    interaction_connect(interaction=old, agent=favourite, at=at(11))
    interaction_end(interaction=old, outcome="handled", at=at(20))
    call = contact("care", when=100, phone="+393470000001")
    routing.route_pending(limit=1, at=at(100))
    assert offered_to(call) == favourite.pk


def test_priority_queue_base_plus_contact_plus_loyalty_then_longest_waiting() -> None:
    from fedele.customers.tests.factories import CustomerFactory
    from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory, TierFactory

    programme = ProgrammeFactory()
    gold = TierFactory(programme=programme, code="gold", rank=2, support_priority=2)
    vip_customer = CustomerFactory(phone="+393470000009")
    MemberFactory(programme=programme, customer=vip_customer, tier=gold)
    normal = QueueFactory(code="normal", priority=0)
    urgent = QueueFactory(code="urgent", priority=5)
    first = contact("normal", when=0)
    high = contact("normal", when=1, priority=7)
    vip = contact("normal", when=2, phone="+393470000009")
    urgent_call = contact("urgent", when=3)
    same_as_first = contact("normal", when=4)
    tasks = {t.interaction_id: t.effective_priority for t in RoutingTask.objects.all()}
    assert tasks == {first.pk: 0, high.pk: 7, vip.pk: 20, urgent_call.pk: 5, same_as_first.pk: 0}
    agents = [
        agent_in(q, available_at=10 + i) for i, q in enumerate([normal, normal, normal, normal, normal])
    ]
    for a in agents:
        a.queues.add(urgent)
    order = []
    for step in range(5):
        routing.route_pending(limit=1, at=at(20 + step))
        newest = Offer.objects.order_by("-id").first()
        assert newest is not None
        order.append(newest.interaction_id)
    assert order == [vip.pk, high.pk, urgent_call.pk, first.pk, same_as_first.pk]


def test_skill_relaxation_rings_widen_over_waiting_time() -> None:
    queue = QueueFactory(code="billing")
    workflow_save(
        queue=queue,
        code="billing-rings",
        name="Rings",
        definition={
            "relaxation": [
                {"after_seconds": 30, "lower_by": 1},
                {"after_seconds": 60, "lower_by": 2},
                {"after_seconds": 120, "drop_skills": True},
            ]
        },
    )
    junior = agent_in(queue, skills={"billing": 2}, available_at=0)
    call = contact("billing", skills={"billing": 4}, when=0)
    assert routing.route_pending(limit=5, at=at(29)) == 0
    assert routing.route_pending(limit=5, at=at(59)) == 0  # needs 3 now
    assert routing.route_pending(limit=5, at=at(60)) == 1  # needs 2 now
    assert offered_to(call) == junior.pk
    routing.offer_accept(offer=Offer.objects.get(interaction=call), agent=junior, at=at(61))
    newcomer = agent_in(queue, available_at=0)  # no skill at all
    late = contact("billing", skills={"billing": 5}, when=100)
    assert routing.route_pending(limit=5, at=at(219)) == 0
    assert routing.route_pending(limit=5, at=at(220)) == 1
    assert offered_to(late) == newcomer.pk


def test_workflow_filter_targets_with_timeout_and_agent_expression() -> None:
    vip_queue = QueueFactory(code="vip")
    general = QueueFactory(code="general")
    entry = QueueFactory(code="entry")
    workflow_save(
        queue=entry,
        code="entry-flow",
        name="Entry",
        definition={
            "filters": [
                {
                    "name": "Italian voice",
                    "expression": "channel == 'voice' and priority >= 3",
                    "targets": [
                        {"queue": "vip", "expression": "italian >= 4", "priority": 10, "timeout": 30},
                        {"queue": "general"},
                    ],
                }
            ],
            "default_targets": [{"queue": "general"}],
        },
    )
    agent_in(vip_queue, skills={"italian": 3}, available_at=0)
    call = contact("entry", when=0, priority=3)
    task = RoutingTask.objects.get(interaction=call)
    assert (task.queue_id, task.effective_priority, task.target_deadline) == (vip_queue.pk, 13, at(30))
    assert routing.route_pending(limit=5, at=at(10)) == 0  # the vip agent's italian is 3, not 4
    generalist = agent_in(general, available_at=0)
    assert routing.route_pending(limit=5, at=at(29)) == 0
    assert routing.route_pending(limit=5, at=at(30)) == 1
    assert offered_to(call) == generalist.pk
    task.refresh_from_db()
    assert (task.target_index, task.queue_id, task.effective_priority) == (1, general.pk, 3)
    other = contact("entry", when=40, priority=1)
    assert RoutingTask.objects.get(interaction=other).queue_id == general.pk


def test_capacity_per_channel_and_a_call_blocks_other_channels() -> None:
    queue = QueueFactory(code="omni")
    agent = agent_in(queue, available_at=0)
    chats = [contact("omni", channel="chat", when=i) for i in range(4)]
    assert routing.route_pending(limit=10, at=at(10)) == 3
    assert [offered_to(c) for c in chats] == [agent.pk, agent.pk, agent.pk, None]
    assert presence.agent_load(agent.pk) == {"chat": 3}
    second = agent_in(queue, available_at=20)
    call = contact("omni", channel="voice", when=21)
    routing.route_pending(limit=10, at=at(22))
    assert offered_to(call) in (agent.pk, second.pk)
    holder = offered_to(call)
    assert holder == agent.pk  # idle longest, and a chat does not block a call
    # The fourth chat cannot go to the agent on a call (voice blocks chat), but goes to the second.
    assert offered_to(chats[3]) == second.pk


def test_reject_re_offers_to_someone_else_and_timeout_does_the_same() -> None:
    queue = QueueFactory(code="care")
    first = agent_in(queue, available_at=0)
    second = agent_in(queue, available_at=5)
    call = contact("care", when=10)
    routing.route_pending(limit=1, at=at(10))
    offer = Offer.objects.get(interaction=call)
    assert offer.agent_id == first.pk
    routing.offer_reject(offer=offer, agent=first, at=at(12))
    routing.route_pending(limit=1, at=at(13))
    assert offered_to(call) == second.pk
    second_offer = Offer.objects.get(interaction=call, state=OfferState.PENDING)
    assert second_offer.expires_at == at(28)
    assert routing.route_pending(limit=1, at=at(28)) == 0  # timed out; the first agent is still excluded
    second_offer.refresh_from_db()
    assert second_offer.state == OfferState.TIMED_OUT
    assert RoutingTask.objects.get(interaction=call).state == RoutingTaskState.WAITING
    assert routing.route_pending(limit=1, at=at(72)) == 1  # 60 s after the reject: first again
    assert offered_to(call) == first.pk
    with pytest.raises(Conflict):
        routing.offer_accept(offer=second_offer, agent=second, at=at(73))
    late = Offer.objects.get(interaction=call, state=OfferState.PENDING)
    with pytest.raises(Conflict) as error:
        routing.offer_accept(offer=late, agent=first, at=at(90))
    assert error.value.code == "offer_expired"
    with pytest.raises(NotFound):
        routing.offer_accept(offer=late, agent=second, at=at(73))
    late.refresh_from_db()
    assert late.state == OfferState.PENDING


def test_overflow_after_max_wait_keeps_the_place_in_line() -> None:
    backup = QueueFactory(code="backup", priority=1)
    QueueFactory(code="front", max_wait_seconds=60, overflow_queue=backup)
    call = contact("front", when=0)
    assert routing.overflow_due(at=at(59)) == 0
    assert routing.overflow_due(at=at(60)) == 1
    task = RoutingTask.objects.get(interaction=call)
    call.refresh_from_db()
    assert (task.queue_id, call.queue_id, task.enqueued_at, task.effective_priority) == (
        backup.pk,
        backup.pk,
        at(0),
        1,
    )
    helper = agent_in(backup, available_at=0)
    routing.route_pending(limit=1, at=at(61))
    assert offered_to(call) == helper.pk


def test_callback_in_queue_keeps_the_place_and_creates_the_outbound_call_at_the_head() -> None:
    queue = QueueFactory(code="care")
    waiting_first = contact("care", when=0, phone="+390611111111")
    contact("care", when=5, phone="+390622222222")
    request = routing.interaction_callback_request(interaction=waiting_first, phone="06 3333 3333", at=at(30))
    waiting_first.refresh_from_db()
    assert (waiting_first.state, waiting_first.outcome, waiting_first.wait_seconds) == (
        "ended",
        "callback",
        30,
    )
    assert request.phone == "+390633333333"
    agent = agent_in(queue, available_at=40)
    routing.route_pending(limit=1, at=at(50))
    request.refresh_from_db()
    outbound = request.callback_interaction
    assert outbound is not None
    assert (outbound.direction, outbound.to_address, outbound.state) == (
        "outbound",
        "+390633333333",
        "offered",
    )
    assert request.state == CallbackRequest.State.DIALLING
    assert offered_to(outbound) == agent.pk
    assert (
        routing.offer_payload(
            Offer.objects.get(interaction=outbound), outbound, RoutingTask.objects.get(interaction=outbound)
        )["callback"]
        is True
    )
    assert outbound.attributes["callback_of"] == waiting_first.number
    with pytest.raises(Conflict):
        routing.interaction_callback_request(interaction=waiting_first, at=at(60))


def _calendar() -> str:
    from django.apps import apps

    # Support's calendar tables, set up as support's own calendar page would (no import of its models).
    BusinessCalendar = apps.get_model("support", "BusinessCalendar")
    CalendarHours = apps.get_model("support", "CalendarHours")
    calendar = BusinessCalendar.objects.create(
        name="rome-office", timezone="Europe/Rome", holiday_country="IT", created_at=T0
    )
    for weekday in range(5):
        CalendarHours.objects.create(calendar=calendar, weekday=weekday, starts_at=time(9), ends_at=time(18))
    return calendar.name


def test_business_hours_across_dst_and_the_closed_branch() -> None:
    calendar = _calendar()
    QueueFactory(code="after-hours")
    queue = QueueFactory(code="office", calendar_code=calendar)
    workflow_save(
        queue=queue,
        code="office-flow",
        name="Office",
        definition={"closed": {"action": "overflow", "queue": "after-hours"}},
    )
    # Friday 27 March 2026 (CET, UTC+1): 07:30 UTC is 08:30 in Rome (closed), 08:30 UTC is 09:30.
    assert routing.queue_is_open(queue, datetime(2026, 3, 27, 7, 30, tzinfo=UTC)) is False
    assert routing.queue_is_open(queue, datetime(2026, 3, 27, 8, 30, tzinfo=UTC)) is True
    # Monday 30 March 2026 (CEST, UTC+2 after the Sunday change): 07:30 UTC is already 09:30.
    assert routing.queue_is_open(queue, datetime(2026, 3, 30, 6, 30, tzinfo=UTC)) is False
    assert routing.queue_is_open(queue, datetime(2026, 3, 30, 7, 30, tzinfo=UTC)) is True
    # Easter Monday 6 April 2026 is an Italian public holiday.
    assert routing.queue_is_open(queue, datetime(2026, 4, 6, 9, 0, tzinfo=UTC)) is False
    early = interaction_create(channel="voice", direction="inbound", from_address="+390612345678")
    interaction_enqueue(interaction=early, queue_code="office", at=datetime(2026, 3, 30, 6, 30, tzinfo=UTC))
    early.refresh_from_db()
    assert early.queue.code == "after-hours"
    voicemail_queue = QueueFactory(code="office-vm", calendar_code=calendar)
    call = interaction_create(channel="voice", direction="inbound", from_address="+390612345678")
    interaction_enqueue(
        interaction=call, queue_code=voicemail_queue.code, at=datetime(2026, 3, 28, 10, tzinfo=UTC)
    )
    call.refresh_from_db()
    assert (call.state, call.attributes["closed_action"]) == ("ivr", "voicemail")
    assert not RoutingTask.objects.filter(interaction=call).exists()


def test_workflow_validation_lists_every_problem_and_saves_nothing() -> None:
    queue = QueueFactory(code="care")
    with pytest.raises(ValidationFailed) as error:
        workflow_save(
            queue=queue,
            code="bad",
            name="Bad",
            definition={
                "filters": [{"expression": "channel ==", "targets": [{"queue": "nope", "timeout": 0}]}],
                "strategy": "random",
                "relaxation": [{"after_seconds": 60}, {"after_seconds": 30, "lower_by": 9}],
                "closed": {"action": "overflow"},
                "extra": 1,
            },
        )
    problems = error.value.fields["definition"]
    assert problems == [
        "extra: unknown key.",
        "filters[0].expression: The expression ends too early.",
        "filters[0].targets[0].queue: unknown queue nope.",
        "filters[0].targets[0].timeout: seconds from 1 to 86400.",
        "strategy: one of longest_idle, least_occupied, round_robin, preferred, best_skill.",
        "relaxation[1].after_seconds: rings must widen over time (increasing).",
        "relaxation[1].lower_by: a whole number from 0 to 4.",
        "closed.queue: an overflow needs an existing queue.",
    ]
    from fedele.contact_center.models import RoutingWorkflow

    assert RoutingWorkflow.objects.count() == 0


def test_break_cancels_pending_offers_and_the_contact_goes_to_the_next_agent() -> None:
    queue = QueueFactory(code="care")
    first = agent_in(queue, available_at=0)
    second = agent_in(queue, available_at=1)
    call = contact("care", when=2)
    routing.route_pending(limit=1, at=at(3))
    assert offered_to(call) == first.pk
    presence.agent_state_set(agent=first, state=AgentState.BREAK, reason="lunch", at=at(5))
    assert Offer.objects.get(interaction=call).state == OfferState.CANCELLED
    routing.route_pending(limit=1, at=at(6))
    assert offered_to(call) == second.pk


def test_router_runs_once_after_the_commit_that_queued_contacts(
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.db import transaction

    queue = QueueFactory(code="care")
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        agent = agent_in(queue, available_at=0)
        first = contact("care", channel="chat", when=1)
        second = contact("care", channel="chat", when=2)
    assert [c for c in callbacks if c is routing._route_after_commit] == [routing._route_after_commit]
    assert (offered_to(first), offered_to(second)) == (agent.pk, agent.pk)


def test_queue_position_follows_the_routers_order() -> None:
    from fedele.contact_center.selectors.routing import queue_position

    QueueFactory(code="care")
    QueueFactory(code="other")
    first = contact("care", when=0)
    urgent = contact("care", when=5, priority=3)
    last = contact("care", when=6)
    contact("other", when=1)
    assert [queue_position(c.pk) for c in (urgent, first, last)] == [1, 2, 3]
    interaction_end(interaction=urgent, outcome="abandoned", at=at(9))
    assert [queue_position(c.pk) for c in (urgent, first, last)] == [None, 1, 2]

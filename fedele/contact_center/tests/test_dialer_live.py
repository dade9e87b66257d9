"""The live dialer end to end on the simulator provider: ticks place calls through the telephony
port, answered calls reach agents through routing, results update attempts, the meter and the
contacts' next attempts; windows, the 72 h rule, do-not-call right before the dial, fall-back near
the cap, callbacks, preview."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from fedele.contact_center.models import (
    CampaignContact,
    DialAttempt,
    Interaction,
    Offer,
)
from fedele.contact_center.selectors.dialer import campaign_meter
from fedele.contact_center.services import dialer as services
from fedele.contact_center.services import dialer_lists
from fedele.contact_center.services.routing import offer_accept, route_pending
from fedele.contact_center.telephony.port import CallEvent, CallEventKind
from fedele.contact_center.telephony.simulator import OutboundBehaviour
from fedele.contact_center.tests.dialer_support import (
    TUESDAY_NOON,
    campaign,
    import_numbers,
    queue_with_agents,
    simulated_network,
    supervisor,
)

pytestmark = pytest.mark.django_db

A, B, C, D = "+393330000001", "+393330000002", "+393330000003", "+393330000004"


def _running(agents: int, numbers: list[str], **options: object):  # type: ignore[no-untyped-def]
    actor = supervisor()
    queue, agent_rows = queue_with_agents(agents)
    target = campaign(actor, queue, **options)
    import_numbers(actor, target, numbers)
    services.campaign_state_set(actor=actor, campaign=target, state="running", at=TUESDAY_NOON)
    return actor, target, agent_rows


def _accept_offers(at: datetime) -> int:
    route_pending(at=at)
    accepted = 0
    for offer in Offer.objects.filter(state="pending").select_related("agent"):
        offer_accept(offer=offer, agent=offer.agent, at=at)
        accepted += 1
    return accepted


def test_progressive_tick_dials_one_line_per_free_agent_and_a_connected_call_completes_the_contact() -> None:
    _actor, target, _agents = _running(2, [A, B, C])
    with simulated_network() as network:
        result = services.campaign_tick(campaign=target, at=TUESDAY_NOON)
        assert (result.mode, result.dialed, result.free_agents, result.lines_out) == ("progressive", 2, 2, 0)
        assert network.placed() == [A, B]
        attempts = list(DialAttempt.objects.order_by("id"))
        assert [(a.phone, a.state, a.call_ref) for a in attempts] == [
            (A, "dialing", "SIM-OUT-000001"),
            (B, "dialing", "SIM-OUT-000002"),
        ]
        interaction = Interaction.objects.get(provider_ref="SIM-OUT-000001")
        assert (interaction.direction, interaction.to_address, interaction.attributes["campaign"]) == (
            "outbound",
            A,
            "spring",
        )
        # A second tick while both lines ring dials nothing more (both agents are covered).
        assert services.campaign_tick(campaign=target, at=TUESDAY_NOON + timedelta(seconds=1)).dialed == 0

        network.advance(8)  # both answer (people): queued for the campaign's queue
        answered = TUESDAY_NOON + timedelta(seconds=8)
        assert sorted(DialAttempt.objects.values_list("state", flat=True)) == ["answered", "answered"]
        assert _accept_offers(answered + timedelta(seconds=1)) == 2
        network.advance(60)  # the called people hang up after 60 s of talk
    attempt = DialAttempt.objects.get(phone=A)
    assert (attempt.outcome, attempt.abandoned, attempt.amd_result) == ("connected", False, "human")
    assert attempt.answered_at == answered
    assert attempt.connected_at == answered + timedelta(seconds=1)
    contact = CampaignContact.objects.get(phone=A)
    assert (contact.state, contact.attempts, contact.last_outcome, contact.next_attempt_at) == (
        "completed",
        1,
        "connected",
        None,
    )
    reading = campaign_meter(target, at=answered + timedelta(minutes=5))
    assert (reading.live_answers, reading.abandoned) == (2, 0)


def test_a_live_answer_without_an_agent_within_2_s_is_abandoned_and_not_redialled_for_72_hours() -> None:
    _actor, target, _agents = _running(1, [A])
    with simulated_network() as network:
        services.campaign_tick(campaign=target, at=TUESDAY_NOON)
        network.advance(8)
        answered = TUESDAY_NOON + timedelta(seconds=8)
        # Nobody accepts; the next tick, 3 s after the answer, drops the call.
        services.campaign_tick(campaign=target, at=answered + timedelta(seconds=3))
        assert network.hung_up() == ["SIM-OUT-000001"]
    attempt = DialAttempt.objects.get()
    assert (attempt.outcome, attempt.abandoned, attempt.state) == ("abandoned", True, "ended")
    contact = CampaignContact.objects.get()
    assert contact.abandoned_at == answered
    assert (contact.state, contact.next_attempt_at) == ("pending", answered + timedelta(hours=72))
    reading = campaign_meter(target, at=answered + timedelta(minutes=1))
    assert (reading.live_answers, reading.abandoned, reading.rate) == (1, 1, 1.0)
    assert Interaction.objects.get().outcome == "abandoned"
    # Even with the retry time forced earlier, the predictive/progressive dialer leaves it alone.
    CampaignContact.objects.update(next_attempt_at=None)
    with simulated_network(answered + timedelta(hours=71), first_id=100):
        assert services.campaign_tick(campaign=target, at=answered + timedelta(hours=71)).dialed == 0
    with simulated_network(answered + timedelta(hours=72), first_id=200) as network:
        assert services.campaign_tick(campaign=target, at=answered + timedelta(hours=72)).dialed == 1
        assert network.placed() == [A]


def test_machine_busy_and_no_answer_follow_the_retry_rules() -> None:
    behaviours = {
        A: OutboundBehaviour(ring_seconds=5, machine=True),
        B: OutboundBehaviour(result="busy"),
        C: OutboundBehaviour(result="no-answer", ring_seconds=30),
    }
    _actor, target, _agents = _running(3, [A, B, C])
    with simulated_network(behaviours=behaviours) as network:
        assert services.campaign_tick(campaign=target, at=TUESDAY_NOON).dialed == 3
        network.advance(30)
        assert network.hung_up() == ["SIM-OUT-000001"]  # the dialer drops the machine
    outcomes = {a.phone: (a.outcome, a.amd_result, a.abandoned) for a in DialAttempt.objects.all()}
    assert outcomes == {A: ("machine", "machine", False), B: ("busy", "", False), C: ("no_answer", "", False)}
    contacts = {c.phone: (c.state, c.next_attempt_at) for c in CampaignContact.objects.all()}
    assert contacts == {
        A: ("pending", datetime(2026, 4, 1, 7, 0, tzinfo=TUESDAY_NOON.tzinfo)),  # next day, 09:00 Rome
        B: ("pending", TUESDAY_NOON + timedelta(seconds=1, minutes=30)),
        C: ("pending", TUESDAY_NOON + timedelta(seconds=30, hours=2)),
    }
    # Machines are not live answers.
    assert campaign_meter(target, at=TUESDAY_NOON + timedelta(minutes=1)).live_answers == 0


def test_max_attempts_exhausts_the_contact() -> None:
    _actor, target, _agents = _running(1, [B], max_attempts=2)
    busy = {B: OutboundBehaviour(result="busy")}
    at = TUESDAY_NOON
    for round_number in range(2):
        with simulated_network(at, behaviours=busy, first_id=100 * round_number + 1) as network:
            assert services.campaign_tick(campaign=target, at=at).dialed == 1
            network.advance(2)
        at = CampaignContact.objects.get().next_attempt_at or at
    contact = CampaignContact.objects.get()
    assert (contact.state, contact.attempts, contact.outcome_attempts, contact.next_attempt_at) == (
        "exhausted",
        2,
        {"busy": 2},
        None,
    )
    with simulated_network(at, first_id=500):
        assert services.campaign_tick(campaign=target, at=at + timedelta(hours=1)).dialed == 0


def test_outside_the_window_and_paused_nothing_is_dialled() -> None:
    actor, target, _agents = _running(2, [A, B])
    sunday = datetime(2026, 3, 29, 10, 0, tzinfo=TUESDAY_NOON.tzinfo)
    with simulated_network(sunday) as network:
        result = services.campaign_tick(campaign=target, at=sunday)
        assert (result.dialed, network.placed()) == (0, [])
        services.campaign_state_set(actor=actor, campaign=target, state="paused")
        assert services.campaign_tick(campaign=target, at=TUESDAY_NOON).dialed == 0
    assert DialAttempt.objects.count() == 0
    assert set(CampaignContact.objects.values_list("state", flat=True)) == {"pending"}


def test_do_not_call_is_checked_again_right_before_the_dial() -> None:
    actor, target, _agents = _running(2, [A, B])
    # Registered in the RPO after the list was imported.
    dialer_lists.rpo_import(
        actor=actor, name="rpo.txt", content=A.encode() + b"\n", checked_on=TUESDAY_NOON.date()
    )
    with simulated_network() as network:
        result = services.campaign_tick(campaign=target, at=TUESDAY_NOON)
        assert (result.dialed, result.blocked, network.placed()) == (1, 1, [B])
    assert CampaignContact.objects.get(phone=A).blocked_reason == "rpo_registered"


def test_predictive_falls_back_to_one_to_one_near_the_cap() -> None:
    numbers = [f"+39333000{index:04d}" for index in range(60)]
    _actor, target, agents = _running(4, numbers, mode="predictive", code="pred")
    with simulated_network():
        free_run = services.campaign_tick(campaign=target, at=TUESDAY_NOON)
        assert free_run.fell_back is False
        assert free_run.dialed > 4  # predictive over-dials for 4 free agents at a 25 % live rate
    DialAttempt.objects.all().delete()
    CampaignContact.objects.update(state="pending", attempts=0)
    # 100 live answers in the window, 3 abandoned: 3 % ≥ 80 % of the 3 % cap → 1:1.
    contact = CampaignContact.objects.first()
    assert contact is not None
    for index in range(100):
        answered = TUESDAY_NOON - timedelta(days=1, minutes=index)
        DialAttempt.objects.create(
            campaign=target,
            contact=contact,
            mode="predictive",
            provider="simulator",
            phone=contact.phone,
            state="ended",
            outcome="abandoned" if index < 3 else "connected",
            abandoned=index < 3,
            dialed_at=answered - timedelta(seconds=10),
            answered_at=answered,
            connected_at=None if index < 3 else answered + timedelta(seconds=1),
            ended_at=answered + timedelta(minutes=2),
        )
    with simulated_network(first_id=500):
        fallen = services.campaign_tick(campaign=target, at=TUESDAY_NOON)
    assert (fallen.fell_back, fallen.mode, fallen.dialed, fallen.meter_rate) == (True, "progressive", 4, 0.03)
    assert len(agents) == 4


def test_agent_callback_is_dialled_first_at_its_time_even_outside_the_window() -> None:
    actor, target, agents = _running(1, [A, B])
    evening = datetime(2026, 3, 31, 19, 0, tzinfo=TUESDAY_NOON.tzinfo)  # 21:00 in Rome: no window
    contact = CampaignContact.objects.get(phone=B)
    services.callback_schedule(actor=actor, contact=contact, when=evening, agent=agents[0], at=TUESDAY_NOON)
    with simulated_network(evening) as network:
        assert services.campaign_tick(campaign=target, at=evening - timedelta(minutes=1)).dialed == 0
        assert services.campaign_tick(campaign=target, at=evening).dialed == 1
        assert network.placed() == [B]
        network.advance(8)
    # Answered → connected straight to the agent who set the callback.
    attempt = DialAttempt.objects.get()
    assert (attempt.agent_id, attempt.state, attempt.connected_at) == (
        agents[0].pk,
        "connected",
        evening + timedelta(seconds=8),
    )
    assert Interaction.objects.get().agent_id == agents[0].pk


def test_preview_reserves_a_contact_per_free_agent_and_the_agent_dials() -> None:
    _actor, target, agents = _running(2, [A, B, C], mode="preview", code="prev")
    with simulated_network() as network:
        result = services.campaign_tick(campaign=target, at=TUESDAY_NOON)
        assert (result.dialed, result.previewed, network.placed()) == (0, 2, [])
        # Ticking again gives nobody a second preview.
        assert services.campaign_tick(campaign=target, at=TUESDAY_NOON).previewed == 0
        previews = {c.agent_id: c for c in CampaignContact.objects.filter(state="preview")}
        assert set(previews) == {agents[0].pk, agents[1].pk}
        from fedele.accounts.facade import actor_for

        first = previews[agents[0].pk]
        attempt = services.preview_dial(actor=actor_for(agents[0].user), contact=first, at=TUESDAY_NOON)
        assert (attempt.mode, attempt.agent_id, network.placed()) == ("preview", agents[0].pk, [first.phone])
        from fedele.shared.errors import NotFound

        with pytest.raises(NotFound):  # someone else's preview
            services.preview_dial(actor=actor_for(agents[1].user), contact=first, at=TUESDAY_NOON)


def test_a_provider_failure_ends_only_that_attempt() -> None:
    _actor, target, _agents = _running(1, [A])

    class Refusing(Exception):
        pass

    with simulated_network() as network:

        def refuse(**_kwargs: object) -> str:
            raise Refusing("trunk down")

        network.originate = refuse  # type: ignore[method-assign,assignment]
        result = services.campaign_tick(campaign=target, at=TUESDAY_NOON)
    assert result.dialed == 1
    attempt = DialAttempt.objects.get()
    assert (attempt.outcome, attempt.state) == ("failed", "ended")
    contact = CampaignContact.objects.get()
    assert (contact.state, contact.next_attempt_at) == ("pending", TUESDAY_NOON + timedelta(hours=1))
    assert Interaction.objects.get().outcome == "failed"


def test_without_the_telephony_hook_the_tick_and_the_ended_event_keep_attempts_right(
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The dialer missed the answer (its hook runs after commit; here it never ran): the next tick
    catches the answer up and queues it, and the InteractionEnded handler finishes the attempt."""
    from fedele.contact_center.telephony.events import call_event_apply
    from fedele.contact_center.telephony.registry import adapter_override
    from fedele.contact_center.tests.dialer_support import ScriptedNetwork

    _actor, target, _agents = _running(1, [A])
    network = ScriptedNetwork(start=TUESDAY_NOON)
    network.sink = call_event_apply
    with adapter_override("simulator", network):
        services.campaign_tick(campaign=target, at=TUESDAY_NOON)
        network.advance(8)
        assert DialAttempt.objects.get().state == "dialing"  # nobody told the dialer yet
        answered = TUESDAY_NOON + timedelta(seconds=8)
        services.campaign_tick(campaign=target, at=answered + timedelta(seconds=1))
        attempt = DialAttempt.objects.get()
        assert (attempt.state, attempt.answered_at, attempt.amd_result) == ("answered", answered, "human")
        assert _accept_offers(answered + timedelta(seconds=1, milliseconds=500)) == 1
        with django_capture_on_commit_callbacks(execute=True):
            network.advance(60)
    attempt = DialAttempt.objects.get()
    assert (attempt.outcome, attempt.abandoned, attempt.connected_at) == (
        "connected",
        False,
        answered + timedelta(seconds=1, milliseconds=500),
    )
    assert CampaignContact.objects.get().state == "completed"


def test_the_telephony_hook_queues_a_live_answer_at_once(django_capture_on_commit_callbacks: Any) -> None:
    """call_event_apply tells the dialer after its commit: the answer is queued for an agent without
    waiting for the next tick, and the agent's accept within 2 s makes the call connected."""
    from fedele.contact_center.telephony.events import call_event_apply
    from fedele.contact_center.telephony.registry import adapter_override
    from fedele.contact_center.tests.dialer_support import ScriptedNetwork

    _actor, target, _agents = _running(1, [A])
    network = ScriptedNetwork(start=TUESDAY_NOON)
    network.sink = call_event_apply
    with adapter_override("simulator", network):
        services.campaign_tick(campaign=target, at=TUESDAY_NOON)
        with django_capture_on_commit_callbacks(execute=True):
            network.advance(8)
        answered = TUESDAY_NOON + timedelta(seconds=8)
        attempt = DialAttempt.objects.get()
        assert (attempt.state, attempt.answered_at, attempt.amd_result) == ("answered", answered, "human")
        assert _accept_offers(answered + timedelta(seconds=1)) == 1
        with django_capture_on_commit_callbacks(execute=True):
            network.advance(60)
    attempt = DialAttempt.objects.get()
    assert (attempt.outcome, attempt.abandoned, attempt.connected_at) == (
        "connected",
        False,
        answered + timedelta(seconds=1),
    )


def test_campaign_meter_follows_the_campaigns_rule() -> None:
    """30 days or 24 hours, machines excluded, exact counts from the attempts."""
    _actor, target, _agents = _running(0, [A], abandon_rule="rolling_24_hours", code="daily")
    contact = CampaignContact.objects.get()

    def attempt(hours_ago: float, *, abandoned: bool, machine: bool = False) -> None:
        answered = TUESDAY_NOON - timedelta(hours=hours_ago)
        DialAttempt.objects.create(
            campaign=target,
            contact=contact,
            mode="predictive",
            provider="simulator",
            phone=A,
            state="ended",
            outcome="machine" if machine else ("abandoned" if abandoned else "connected"),
            amd_result="machine" if machine else "human",
            abandoned=abandoned,
            dialed_at=answered,
            answered_at=answered,
            ended_at=answered,
        )

    for hours in (1, 2, 3, 23):
        attempt(hours, abandoned=False)
    attempt(5, abandoned=True)
    attempt(6, abandoned=False, machine=True)
    attempt(25, abandoned=True)  # outside the 24 h window
    attempt(24 * 29, abandoned=False)
    daily = campaign_meter(target, at=TUESDAY_NOON)
    assert (daily.rule, daily.live_answers, daily.abandoned, daily.rate) == ("rolling_24_hours", 5, 1, 0.2)
    target.abandon_rule = "rolling_30_days"
    monthly = campaign_meter(target, at=TUESDAY_NOON)
    assert (monthly.live_answers, monthly.abandoned) == (7, 2)


def test_a_callback_that_overtakes_originate_finds_its_attempt_by_interaction() -> None:
    """The provider's first callback can arrive before ``originate`` returned the call id: the event's
    interaction id finds the attempt, which takes the call id."""
    _actor, target, _agents = _running(1, [A])
    with simulated_network() as network:
        services.campaign_tick(campaign=target, at=TUESDAY_NOON)
        DialAttempt.objects.update(call_ref="")  # as if originate had not answered yet
        network.advance(8)
        attempt = DialAttempt.objects.get()
        assert (attempt.call_ref, attempt.state, attempt.answered_at) == (
            "SIM-OUT-000001",
            "answered",
            TUESDAY_NOON + timedelta(seconds=8),
        )
    assert (
        services.dialer_call_event(
            CallEvent(
                kind=CallEventKind.ANSWERED,
                provider="simulator",
                call_ref="OTHER",
                event_id="x",
                at=TUESDAY_NOON,
                data={"interaction": "not-a-uuid"},
            )
        )
        is None
    )

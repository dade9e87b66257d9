"""Review R1 — dialer: every contact dialled was checked against the do-not-call lists right before the
dial; a preview is dialled only while the campaign runs and inside the contact's calling window."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from fedele.accounts.facade import actor_for
from fedele.contact_center.models import CampaignContact, DialAttempt, Interaction
from fedele.contact_center.services import dialer as services
from fedele.contact_center.services import dialer_lists
from fedele.contact_center.tests.dialer_support import (
    TUESDAY_NOON,
    campaign,
    import_numbers,
    queue_with_agents,
    simulated_network,
    supervisor,
)
from fedele.shared.errors import Conflict

pytestmark = pytest.mark.django_db

A, B, C = "+393330000001", "+393330000002", "+393330000003"


def _running(agents: int, numbers: list[str], **options: object):  # type: ignore[no-untyped-def]
    actor = supervisor()
    queue, agent_rows = queue_with_agents(agents)
    target = campaign(actor, queue, **options)
    import_numbers(actor, target, numbers)
    services.campaign_state_set(actor=actor, campaign=target, state="running", at=TUESDAY_NOON)
    return actor, target, agent_rows


def test_a_contact_after_a_blocked_one_is_checked_before_it_is_dialled() -> None:
    actor, target, _agents = _running(1, [A, B, C])
    # A and B registered in the RPO after the import; one free agent: one line to dial.
    dialer_lists.rpo_import(
        actor=actor, name="rpo.txt", content=f"{A}\n{B}\n".encode(), checked_on=TUESDAY_NOON.date()
    )
    with simulated_network() as network:
        result = services.campaign_tick(campaign=target, at=TUESDAY_NOON)
        assert (result.dialed, result.blocked, network.placed()) == (1, 2, [C])
    states = dict(CampaignContact.objects.values_list("phone", "state"))
    assert states == {A: "blocked", B: "blocked", C: "dialing"}
    assert list(DialAttempt.objects.values_list("phone", flat=True)) == [C]


def _previewing():  # type: ignore[no-untyped-def]
    actor, target, agents = _running(1, [A], mode="preview", code="prev")
    with simulated_network():
        assert services.campaign_tick(campaign=target, at=TUESDAY_NOON).previewed == 1
    return actor, target, agents, CampaignContact.objects.get(phone=A)


def test_a_preview_is_not_dialled_outside_the_contacts_calling_window() -> None:
    _actor, _target, agents, contact = _previewing()
    evening = datetime(2026, 3, 31, 19, 30, tzinfo=TUESDAY_NOON.tzinfo)  # 21:30 in Rome: no window
    with simulated_network(evening) as network:
        with pytest.raises(Conflict) as refused:
            services.preview_dial(actor=actor_for(agents[0].user), contact=contact, at=evening)
        assert network.placed() == []
    assert refused.value.code == "outside_calling_window"
    contact.refresh_from_db()
    assert (contact.state, contact.attempts, contact.agent_id) == ("preview", 0, agents[0].pk)
    assert (DialAttempt.objects.count(), Interaction.objects.count()) == (0, 0)
    # Back inside the window the same preview is dialled.
    with simulated_network(TUESDAY_NOON + timedelta(hours=1)) as network:
        attempt = services.preview_dial(
            actor=actor_for(agents[0].user), contact=contact, at=TUESDAY_NOON + timedelta(hours=1)
        )
        assert (attempt.phone, network.placed()) == (A, [A])


def test_a_preview_of_a_paused_campaign_is_not_dialled() -> None:
    actor, target, agents, contact = _previewing()
    services.campaign_state_set(actor=actor, campaign=target, state="paused", at=TUESDAY_NOON)
    with simulated_network() as network:
        with pytest.raises(Conflict) as refused:
            services.preview_dial(actor=actor_for(agents[0].user), contact=contact, at=TUESDAY_NOON)
        assert network.placed() == []
    assert refused.value.code == "campaign_not_running"
    contact.refresh_from_db()
    assert (contact.state, contact.attempts) == ("preview", 0)
    assert (DialAttempt.objects.count(), Interaction.objects.count()) == (0, 0)


def test_an_agent_schedules_callbacks_only_for_their_own_contacts_and_to_themselves() -> None:
    from fedele.contact_center.tests.dialer_support import agent_actor
    from fedele.shared.errors import PermissionDenied

    _actor, _target, agents, contact = _previewing()
    later = TUESDAY_NOON + timedelta(days=1)
    # Another agent, who never had this contact: refused, nothing changes.
    with pytest.raises(PermissionDenied):
        services.callback_schedule(actor=agent_actor(), contact=contact, when=later, at=TUESDAY_NOON)
    owner = actor_for(agents[0].user)
    other_agent = queue_with_agents(1, code="other")[1][0]
    # The agent who has it may not hand it to someone else (a callback with an agent skips the 72 h rule).
    with pytest.raises(PermissionDenied):
        services.callback_schedule(
            actor=owner, contact=contact, when=later, agent=other_agent, at=TUESDAY_NOON
        )
    contact.refresh_from_db()
    assert (contact.state, contact.next_attempt_at, contact.agent_id) == ("preview", None, agents[0].pk)
    scheduled = services.callback_schedule(
        actor=owner, contact=contact, when=later, agent=agents[0], at=TUESDAY_NOON
    )
    assert (scheduled.state, scheduled.next_attempt_at, scheduled.agent_id) == (
        "callback",
        later,
        agents[0].pk,
    )

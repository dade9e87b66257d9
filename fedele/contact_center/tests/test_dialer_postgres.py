"""Concurrency on PostgreSQL: ticks of one campaign at the same moment never dial a contact twice
(the campaign row lock serialises the decision, SKIP LOCKED the claim), and two deliveries of one
call's end finish its attempt once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from fedele.contact_center.models import CampaignContact, DialAttempt
from fedele.contact_center.services import dialer as services
from fedele.contact_center.tests.dialer_support import (
    TUESDAY_NOON,
    campaign,
    import_numbers,
    queue_with_agents,
    simulated_network,
    supervisor,
)
from fedele.shared.testing import in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _running(agents: int, contacts: int, **options: object):  # type: ignore[no-untyped-def]
    actor = supervisor()
    queue, _agent_rows = queue_with_agents(agents)
    target = campaign(actor, queue, **options)
    import_numbers(actor, target, [f"+39333100{index:04d}" for index in range(contacts)])
    services.campaign_state_set(actor=actor, campaign=target, state="running", at=TUESDAY_NOON)
    return target


@pytest.mark.parametrize("mode", ["progressive", "predictive"])
def test_simultaneous_ticks_never_dial_a_contact_twice(mode: str) -> None:
    target = _running(5, 200, mode=mode, code=f"race-{mode}")
    dialed: list[int] = []
    with simulated_network() as network:

        def tick(_index: int) -> None:
            dialed.append(services.campaign_tick(campaign=target, at=TUESDAY_NOON).dialed)

        assert in_threads(tick, 4) == []
    per_contact = Counter(DialAttempt.objects.values_list("contact_id", flat=True))
    assert per_contact and max(per_contact.values()) == 1
    # One tick made the decision; the others saw its lines out and added none.
    assert sorted(dialed)[:3] == [0, 0, 0]
    assert (
        sum(dialed) == DialAttempt.objects.count() == CampaignContact.objects.filter(state="dialing").count()
    )
    assert len(network.placed()) == sum(dialed) == len(set(network.placed()))
    if mode == "progressive":
        assert sum(dialed) == 5
    else:
        assert sum(dialed) > 5


def test_two_deliveries_of_one_end_finish_the_attempt_once() -> None:
    target = _running(1, 1, code="ends")
    with simulated_network() as network:
        services.campaign_tick(campaign=target, at=TUESDAY_NOON)
        network.advance(8)
    attempt = DialAttempt.objects.get()
    later = TUESDAY_NOON + timedelta(seconds=20)

    def sync(_index: int) -> None:
        services.attempt_sync(attempt=DialAttempt.objects.get(pk=attempt.pk), at=later)

    with simulated_network(later, first_id=100):
        assert in_threads(sync, 4) == []
    attempt.refresh_from_db()
    contact = CampaignContact.objects.get()
    assert (attempt.outcome, attempt.abandoned) == ("abandoned", True)
    assert contact.outcome_attempts == {"abandoned": 1}
    assert attempt.answered_at == TUESDAY_NOON + timedelta(seconds=8)
    assert contact.next_attempt_at == TUESDAY_NOON + timedelta(seconds=8, hours=72)

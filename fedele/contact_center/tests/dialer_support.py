"""Shared set-up for the dialer's database tests: a supervisor, a queue with available agents, a
campaign, and the simulator provider wired so each call event reaches the telephony area and then
the dialer (as the telephony area's hook does in production)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from fedele.accounts.contracts import Role
from fedele.accounts.facade import Actor, actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.contact_center.models import Agent, AgentState, Campaign, Queue
from fedele.contact_center.services import dialer as services
from fedele.contact_center.services import dialer_lists
from fedele.contact_center.telephony.port import CallEvent
from fedele.contact_center.telephony.registry import adapter_override
from fedele.contact_center.telephony.simulator import OutboundBehaviour, SimulatorAdapter
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory

# Tuesday 31 March 2026, 12:00 in Rome (CEST): inside the default windows.
TUESDAY_NOON = datetime(2026, 3, 31, 10, 0, tzinfo=UTC)


def supervisor() -> Actor:
    return actor_for(user_with_roles(Role.SUPERVISOR.value))


def agent_actor() -> Actor:
    return actor_for(user_with_roles(Role.AGENT.value))


def queue_with_agents(
    count: int, *, code: str = "outbound", at: datetime = TUESDAY_NOON
) -> tuple[Queue, list[Agent]]:
    queue = QueueFactory(code=code, wrap_up_seconds=0)
    agents = []
    for _index in range(count):
        agent = AgentFactory(state=AgentState.AVAILABLE, state_since=at)
        agent.queues.add(queue)
        agents.append(agent)
    return queue, agents


def campaign(actor: Actor, queue: Queue, **options: Any) -> Campaign:
    values: dict[str, Any] = {
        "code": "spring",
        "name": "Spring offers",
        "queue_code": queue.code,
        "at": TUESDAY_NOON,
    }
    values.update(options)
    return services.campaign_create(actor=actor, **values)


def import_numbers(actor: Actor, target: Campaign, numbers: list[str]) -> dialer_lists.ImportReport:
    text = "phone,name\n" + "".join(f"{number},Contact {index}\n" for index, number in enumerate(numbers))
    return dialer_lists.contact_list_import(
        actor=actor, campaign=target, name="list.csv", content=text.encode(), at=TUESDAY_NOON
    )


def apply_and_dial(event: CallEvent) -> None:
    from fedele.contact_center.telephony.events import call_event_apply

    call_event_apply(event)
    services.dialer_call_event(event)


class ScriptedNetwork(SimulatorAdapter):
    """The simulator, with what each called number does set by the test (default: a person answers
    after 8 s)."""

    def __init__(
        self, *, start: datetime, behaviours: dict[str, OutboundBehaviour] | None = None, first_id: int = 1
    ) -> None:
        super().__init__(start=start, sink=apply_and_dial)
        self.behaviours = dict(behaviours or {})
        # Call ids stay unique across the networks one test starts (as a provider's are).
        self._ids = itertools.count(first_id)

    def originate(self, *, to_number: str, from_number: str, context: dict[str, Any]) -> str:
        behaviour = self.behaviours.get(to_number, OutboundBehaviour(ring_seconds=8, talk_seconds=60))
        return super().originate(
            to_number=to_number, from_number=from_number, context={**context, "behaviour": behaviour}
        )

    def placed(self) -> list[str]:
        return [data["to"] for command, _ref, data in self.commands if command == "originate"]

    def hung_up(self) -> list[str]:
        return [ref for command, ref, _data in self.commands if command == "hangup"]


@contextmanager
def simulated_network(
    at: datetime = TUESDAY_NOON, *, behaviours: dict[str, OutboundBehaviour] | None = None, first_id: int = 1
) -> Iterator[ScriptedNetwork]:
    adapter = ScriptedNetwork(start=at, behaviours=behaviours, first_id=first_id)
    with adapter_override("simulator", adapter):
        yield adapter

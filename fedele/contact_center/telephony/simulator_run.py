"""Run the contact center against the simulator: callers arrive on a seeded plan, the real router
offers their calls, "robot" agents accept after a reaction time and answer through the softphone
service, callers hang up after their talk time or give up after their patience. Everything in
between is the production code; only the people are simulated.

Used by the demo (a few minutes of realistic traffic) and by load tests. The clock is the
simulator's: each step advances it, runs the router at that instant and lets the agents react.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from fedele.contact_center.models import Agent, Interaction, InteractionState, Offer, OfferState
from fedele.contact_center.telephony.simulator import SimulatorAdapter


@dataclass(slots=True)
class ScenarioReport:
    calls: int = 0
    offers: int = 0
    accepted: int = 0
    handled: int = 0
    abandoned: int = 0
    still_open: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


def run_scenario(
    simulator: SimulatorAdapter,
    *,
    plan: list[tuple[float, str, float, float]],
    to_number: str,
    agents: list[Agent],
    reaction_seconds: float = 2.0,
    step_seconds: float = 1.0,
    drain_seconds: float = 3600.0,
) -> ScenarioReport:
    """Play ``plan`` (from ``simulator.arrivals``) with ``agents`` answering offers after
    ``reaction_seconds``; keep going after the last arrival until every call ended (or
    ``drain_seconds`` passed)."""
    from fedele.contact_center.services.calls import call_answer
    from fedele.contact_center.services.routing import offer_accept, route_pending

    if step_seconds <= 0:
        raise ValueError("step_seconds must be positive")
    report = ScenarioReport()
    start = simulator.now
    pending = sorted(plan)
    agent_ids = {agent.pk for agent in agents}
    end_of_plan = start + timedelta(seconds=(pending[-1][0] if pending else 0))
    deadline = end_of_plan + timedelta(seconds=drain_seconds)
    refs: list[str] = []
    while simulator.now < deadline:
        moment = simulator.now + timedelta(seconds=step_seconds)
        while pending and start + timedelta(seconds=pending[0][0]) <= moment:
            offset, caller, talk, patience = pending.pop(0)
            simulator.run_until(start + timedelta(seconds=offset))
            refs.append(
                simulator.incoming_call(
                    from_number=caller, to_number=to_number, talk_seconds=talk, patience_seconds=patience
                )
            )
        simulator.run_until(moment)
        report.offers += route_pending(limit=500, at=simulator.now)
        ready_before = simulator.now - timedelta(seconds=reaction_seconds)
        due = Offer.objects.filter(
            state=OfferState.PENDING,
            agent_id__in=agent_ids,
            offered_at__lte=ready_before,
            expires_at__gt=simulator.now,
        ).select_related("agent")
        for offer in due:
            interaction = offer_accept(offer=offer, agent=offer.agent, at=simulator.now)
            report.accepted += 1
            call_answer(interaction=interaction, agent=offer.agent, at=simulator.now)
        if not pending and all(simulator.calls[ref].state == "ended" for ref in refs):
            break
    report.calls = len(refs)
    calls = Interaction.objects.filter(provider=simulator.name, provider_ref__in=refs)
    for interaction in calls:
        report.outcomes[interaction.outcome or "open"] = (
            report.outcomes.get(interaction.outcome or "open", 0) + 1
        )
        if interaction.state not in (InteractionState.ENDED, InteractionState.WRAP_UP):
            report.still_open += 1
    report.handled = report.outcomes.get("handled", 0)
    report.abandoned = report.outcomes.get("abandoned", 0)
    return report

"""A seeded discrete-event simulator of an outbound campaign, run with the live dialer's own pacing
(``dialer.pacing.lines_to_dial``) and meter rule (fall back to 1:1 near the cap). No real time passes:
events sit in a heap keyed by simulated seconds.

Each dial ends in one of: a live answer (after a lognormal ring time), an answering machine (the
provider's AMD reports it a few seconds after pick-up; not live, never connected), busy (a short tone)
or no answer (ring timeout). A live answer takes a free agent at once; with none free it waits up to the
2 s grace for an agent to come free, then is abandoned (the customer hears the regulatory message).
An agent's handle time (talk + after-call work) is drawn from a lognormal or gamma with the given mean.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from fedele.contact_center.dialer.pacing import (
    MIN_HANDLE_CV,
    DialMode,
    HandleTimeModel,
    LiveAnswerEstimator,
    PacingInput,
    lines_to_dial,
)

__all__ = [
    "SimulationResult",
    "SimulationSettings",
    "expected_dials",
    "pacing_work",
    "simulate",
    "simulate_many",
    "too_large_for_one_request",
]

_LIVE, _MACHINE, _BUSY, _NO_ANSWER, _AGENT_FREE, _GRACE_OVER = range(6)
_SLOT_SECONDS = 1800  # the chart shows half-hour slots


@dataclass(frozen=True, slots=True)
class SimulationSettings:
    agents: int = 20
    live_answer_rate: float = 0.30
    machine_rate: float = 0.15
    busy_rate: float = 0.10
    mean_handle_seconds: float = 180.0
    handle_cv: float = 0.5
    handle_distribution: str = "lognormal"
    mean_ring_seconds: float = 12.0
    ring_cv: float = 0.5
    no_answer_timeout_seconds: float = 30.0
    busy_seconds: float = 4.0
    machine_detect_seconds: float = 3.0
    day_seconds: float = 8 * 3600.0
    mode: str = DialMode.PREDICTIVE
    target_abandon_rate: float = 0.015
    abandon_cap_rate: float = 0.03
    near_cap_ratio: float = 0.8
    connect_grace_seconds: float = 2.0
    max_lines_per_agent: int = 6
    prior_live_rate: float = 0.25
    contacts: int = 0  # 0: an endless list

    def validate(self) -> dict[str, str]:
        """Field → problem, empty when the settings make sense."""
        problems: dict[str, str] = {}
        if not 1 <= self.agents <= 1000:
            problems["agents"] = "between 1 and 1000"
        for name in ("live_answer_rate", "machine_rate", "busy_rate"):
            if not 0 <= getattr(self, name) <= 1:
                problems[name] = "between 0 and 1"
        if self.live_answer_rate + self.machine_rate + self.busy_rate > 1:
            problems["live_answer_rate"] = "live, machine and busy rates add up to more than 1"
        if self.live_answer_rate <= 0:
            problems["live_answer_rate"] = "must be above 0"
        if not 1 <= self.mean_handle_seconds <= 7200:
            problems["mean_handle_seconds"] = "between 1 and 7200"
        if not MIN_HANDLE_CV <= self.handle_cv <= 3:
            problems["handle_cv"] = f"between {MIN_HANDLE_CV} and 3"
        if self.handle_distribution not in ("lognormal", "gamma"):
            problems["handle_distribution"] = "lognormal or gamma"
        if not 1 <= self.mean_ring_seconds <= 120:
            problems["mean_ring_seconds"] = "between 1 and 120"
        if not 60 <= self.day_seconds <= 24 * 3600:
            problems["day_seconds"] = "between 60 and 86400"
        if self.mode not in tuple(DialMode):
            problems["mode"] = "preview, progressive or predictive"
        if not 0 < self.target_abandon_rate <= self.abandon_cap_rate <= 1:
            problems["target_abandon_rate"] = "above 0 and at most the cap"
        if not 1 <= self.max_lines_per_agent <= 20:
            problems["max_lines_per_agent"] = "between 1 and 20"
        if self.contacts < 0:
            problems["contacts"] = "zero (endless) or more"
        return problems


@dataclass(slots=True)
class SimulationResult:
    seed: int
    dials: int = 0
    live_answers: int = 0
    connected: int = 0
    abandoned: int = 0
    machines: int = 0
    busy: int = 0
    no_answer: int = 0
    abandon_rate: float = 0.0
    occupancy: float = 0.0
    calls_per_hour: float = 0.0
    mean_wait_between_calls_seconds: float = 0.0
    fallback_seconds: float = 0.0
    slots: list[dict[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def expected_dials(settings: SimulationSettings, *, runs: int) -> float:
    """About how many dials ``runs`` runs make: every agent busy, one live answer per handle + ring time."""
    return (
        runs
        * settings.agents
        * settings.day_seconds
        / (settings.mean_handle_seconds + settings.mean_ring_seconds)
        / settings.live_answer_rate
    )


def pacing_work(settings: SimulationSettings, *, runs: int) -> float:
    """A measure of the CPU time of ``runs`` predictive runs beyond the dials themselves.

    Measured (``time.process_time``, cold pacing cache): at every event the predictive pacing weighs each
    busy agent, so a run costs about 0.9 µs × dials × agents, plus about 0.3 µs × agents³ once per process
    while ``lines_to_dial``'s cache fills (200 agents: 2.5 s before the first half hour is over; 500
    agents: 30 s). The measure is ``dials × agents + agents³ / 3``, in units of about 0.9 µs. Progressive
    and preview runs cost about 8 µs per dial whatever the agents: 0."""
    if settings.mode != DialMode.PREDICTIVE:
        return 0.0
    return expected_dials(settings, runs=runs) * settings.agents + settings.agents**3 / 3


# The API's default request: 2 runs of a 1-hour day (20 agents, predictive), about 0.07 s of CPU (it was
# 10 runs of 8 h: about 1.3 s, 1.7 s on a busy machine). More runs and hours are allowed up to the
# bound below; the page keeps its own defaults.
DEFAULT_API_RUNS = 2
DEFAULT_API_HOURS = 1.0

# One simulate request (API or page) must stay short, well under 2 s of CPU: 10 runs of 20 agents for
# 8 h, predictive, is the largest allowed. Dials: it makes about 100,000 (~8 µs each);
# predictive pacing work (dials × agents + agents³ / 3, ~0.9 µs a unit): its 2,002,667. Both bounds were
# measured with time.process_time on a cold pacing cache; a larger study (100 runs, hundreds of agents)
# belongs in bench/.
MAX_SIMULATED_DIALS = 120_000
MAX_PACING_WORK = 2_002_667


def too_large_for_one_request(settings: SimulationSettings, *, runs: int) -> bool:
    return (
        expected_dials(settings, runs=runs) > MAX_SIMULATED_DIALS
        or pacing_work(settings, runs=runs) > MAX_PACING_WORK
    )


def _lognormal_parameters(mean: float, cv: float) -> tuple[float, float]:
    sigma = math.sqrt(math.log1p(cv * cv))
    return math.log(mean) - sigma * sigma / 2, sigma


def simulate(settings: SimulationSettings, *, seed: int) -> SimulationResult:
    problems = settings.validate()
    if problems:
        raise ValueError(f"Invalid simulation settings: {problems}")
    rng = np.random.default_rng(seed)
    result = SimulationResult(seed=seed)
    day = settings.day_seconds
    grace = settings.connect_grace_seconds
    handle_model = HandleTimeModel(settings.mean_handle_seconds, settings.handle_cv)
    estimator = LiveAnswerEstimator(prior=settings.prior_live_rate)
    ring_mu, ring_sigma = _lognormal_parameters(settings.mean_ring_seconds, settings.ring_cv)
    handle_mu, handle_sigma = _lognormal_parameters(settings.mean_handle_seconds, settings.handle_cv)
    gamma_shape = 1 / settings.handle_cv**2
    gamma_scale = settings.mean_handle_seconds / gamma_shape
    live_cut = settings.live_answer_rate
    machine_cut = live_cut + settings.machine_rate
    busy_cut = machine_cut + settings.busy_rate
    horizon = settings.mean_ring_seconds + grace
    max_lines = settings.agents * settings.max_lines_per_agent
    free_soon_table = handle_model.free_within_table(
        horizon_seconds=horizon, upto_seconds=settings.mean_handle_seconds * 20
    )
    table_end = len(free_soon_table) - 1
    mode = DialMode(settings.mode)

    # Random numbers in blocks: one numpy call per few thousand draws keeps the loop lean.
    block = 4096
    uniforms = rng.random(block)
    rings = rng.lognormal(ring_mu, ring_sigma, block)
    handles = (
        rng.lognormal(handle_mu, handle_sigma, block)
        if settings.handle_distribution == "lognormal"
        else rng.gamma(gamma_shape, gamma_scale, block)
    )
    cursor = {"u": 0, "r": 0, "h": 0}

    def draw(kind: str) -> float:
        nonlocal uniforms, rings, handles
        index = cursor[kind]
        if index == block:
            if kind == "u":
                uniforms = rng.random(block)
            elif kind == "r":
                rings = rng.lognormal(ring_mu, ring_sigma, block)
            else:
                handles = (
                    rng.lognormal(handle_mu, handle_sigma, block)
                    if settings.handle_distribution == "lognormal"
                    else rng.gamma(gamma_shape, gamma_scale, block)
                )
            index = 0
        cursor[kind] = index + 1
        source = uniforms if kind == "u" else rings if kind == "r" else handles
        return float(source[index])

    events: list[tuple[float, int, int, int]] = []
    sequence = 0
    free_agents: deque[int] = deque(range(settings.agents))
    free_since = [0.0] * settings.agents
    busy_started: dict[int, float] = {}
    waiting: deque[tuple[int, float]] = deque()  # (call id, answered at)
    lines_out = 0
    call_ids = 0
    busy_seconds = 0.0
    waits: list[float] = []
    live_answers_metered = 0
    abandoned_metered = 0
    fallback_since: float | None = None
    slot_count = math.ceil(day / _SLOT_SECONDS)
    slot_busy = [0.0] * slot_count
    slot_dials = [0] * slot_count
    slot_live = [0] * slot_count
    slot_abandoned = [0] * slot_count
    contacts_left = settings.contacts if settings.contacts else -1

    def push(at: float, kind: int, subject: int) -> None:
        nonlocal sequence
        sequence += 1
        heapq.heappush(events, (at, sequence, kind, subject))

    def add_busy(start: float, end: float) -> None:
        nonlocal busy_seconds
        end = min(end, day)
        if end <= start:
            return
        busy_seconds += end - start
        slot = int(start // _SLOT_SECONDS)
        while start < end:
            slot_end = min(end, (slot + 1) * _SLOT_SECONDS)
            slot_busy[slot] += slot_end - start
            start = slot_end
            slot += 1

    def connect(agent: int, now: float) -> None:
        if now < day:
            waits.append(now - free_since[agent])
        busy_started[agent] = now
        push(now + draw("h"), _AGENT_FREE, agent)

    def near_cap() -> bool:
        if not abandoned_metered:
            return False
        return abandoned_metered / live_answers_metered >= settings.abandon_cap_rate * settings.near_cap_ratio

    def dial(now: float) -> None:
        nonlocal lines_out, call_ids, fallback_since, contacts_left
        if now >= day or mode == DialMode.PREVIEW or contacts_left == 0:
            return
        effective = mode
        if mode == DialMode.PREDICTIVE and near_cap():
            effective = DialMode.PROGRESSIVE
            if fallback_since is None:
                fallback_since = now
        elif fallback_since is not None:
            result.fallback_seconds += now - fallback_since
            fallback_since = None
        free_soon: tuple[float, ...] = ()
        if effective == DialMode.PREDICTIVE and busy_started:
            free_soon = tuple(
                free_soon_table[min(table_end, int(now - started))] for started in busy_started.values()
            )
        count = lines_to_dial(
            PacingInput(
                mode=effective,
                free_agents=len(free_agents),
                busy_free_soon=free_soon,
                # A live answer waiting out its grace needs an agent just like a line still ringing.
                lines_out=lines_out + len(waiting),
                live_probability=estimator.probability,
                target_abandon_rate=settings.target_abandon_rate,
                max_lines=max_lines,
            )
        )
        if contacts_left > 0:
            count = min(count, contacts_left)
            contacts_left -= count
        slot = int(now // _SLOT_SECONDS)
        for _ in range(count):
            call_ids += 1
            lines_out += 1
            result.dials += 1
            slot_dials[slot] += 1
            roll = draw("u")
            if roll < live_cut:
                push(now + draw("r"), _LIVE, call_ids)
            elif roll < machine_cut:
                push(now + draw("r") + settings.machine_detect_seconds, _MACHINE, call_ids)
            elif roll < busy_cut:
                push(now + settings.busy_seconds, _BUSY, call_ids)
            else:
                push(now + settings.no_answer_timeout_seconds, _NO_ANSWER, call_ids)

    dial(0.0)
    while events:
        now, _, kind, subject = heapq.heappop(events)
        if kind == _AGENT_FREE:
            add_busy(busy_started.pop(subject), now)
            if waiting:
                waiting.popleft()
                free_since[subject] = now
                result.connected += 1
                connect(subject, now)
            else:
                free_since[subject] = now
                free_agents.append(subject)
        elif kind == _GRACE_OVER:
            if waiting and waiting[0][0] == subject:
                waiting.popleft()
                result.abandoned += 1
                abandoned_metered += 1
                slot_abandoned[min(slot_count - 1, int(now // _SLOT_SECONDS))] += 1
            else:
                continue  # connected within the grace: nothing changed
        else:
            lines_out -= 1
            estimator.record(kind == _LIVE)
            if kind == _LIVE:
                result.live_answers += 1
                live_answers_metered += 1
                slot_live[min(slot_count - 1, int(now // _SLOT_SECONDS))] += 1
                if free_agents:
                    result.connected += 1
                    connect(free_agents.popleft(), now)
                else:
                    waiting.append((subject, now))
                    push(now + grace, _GRACE_OVER, subject)
            elif kind == _MACHINE:
                result.machines += 1
            elif kind == _BUSY:
                result.busy += 1
            else:
                result.no_answer += 1
        dial(now)
    if fallback_since is not None:
        result.fallback_seconds += max(0.0, day - fallback_since)

    result.abandon_rate = result.abandoned / result.live_answers if result.live_answers else 0.0
    result.occupancy = busy_seconds / (settings.agents * day)
    result.calls_per_hour = result.dials / (day / 3600)
    result.mean_wait_between_calls_seconds = sum(waits) / len(waits) if waits else 0.0
    result.slots = [
        {
            "start_seconds": index * _SLOT_SECONDS,
            "occupancy": slot_busy[index]
            / (settings.agents * min(_SLOT_SECONDS, day - index * _SLOT_SECONDS)),
            "dials": slot_dials[index],
            "live_answers": slot_live[index],
            "abandoned": slot_abandoned[index],
        }
        for index in range(slot_count)
    ]
    return result


def simulate_many(settings: SimulationSettings, *, seeds: range | list[int]) -> dict[str, Any]:
    """Runs every seed; the distribution of abandon rate and occupancy (min / median / max)."""
    runs = [simulate(settings, seed=seed) for seed in seeds]
    if not runs:
        raise ValueError("At least one seed is needed.")
    abandon = sorted(run.abandon_rate for run in runs)
    occupancy = sorted(run.occupancy for run in runs)
    calls = sorted(run.calls_per_hour for run in runs)

    def spread(values: list[float]) -> dict[str, float]:
        return {"min": values[0], "median": float(np.median(values)), "max": values[-1]}

    return {
        "runs": len(runs),
        "abandon_rate": spread(abandon),
        "occupancy": spread(occupancy),
        "calls_per_hour": spread(calls),
        "runs_over_cap": sum(1 for value in abandon if value > settings.abandon_cap_rate),
        "results": runs,
    }

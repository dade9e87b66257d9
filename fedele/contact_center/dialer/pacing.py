"""Predictive pacing: how many more lines to dial now so that the expected abandon rate stays under
the campaign's target. The live dialer (``services.dialer.campaign_tick``) and the discrete-event
simulator (``dialer.simulator``) both call ``lines_to_dial``, so what the simulator shows is what the
campaign does.

The model, at the moment of the decision:

- ``A``, the agents able to take a live answer: the free agents plus, for each agent still on a call,
  the chance that the call ends within the connect horizon (the time a dialled number takes to answer
  plus the 2 s the regulation allows). The busy agents are summed as a binomial with their mean chance
  (a binomial has at least the variance of the exact Poisson-binomial sum, so this errs on the careful
  side).
- ``L``, the live answers among all lines out: ``Binomial(lines, p)`` with ``p`` the estimated
  live-answer probability (``LiveAnswerEstimator``: a rolling window with a prior, so a new campaign
  starts from a sensible rate).
- expected abandon rate of ``lines`` lines = ``E[(L - A)+] / E[L]``: the share of live answers that
  would find no agent. The dialer keeps the largest number of lines whose rate is at most the target.

Progressive mode (also the automatic fall-back when the regulatory meter nears its cap) dials one
line per free agent not already covered by a line out, so a live answer always finds an agent.
Preview mode never dials on its own: an agent looks at the contact and dials.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

__all__ = [
    "DialMode",
    "HandleTimeModel",
    "LiveAnswerEstimator",
    "PacingInput",
    "expected_abandon_rate",
    "lines_to_dial",
]

# Probabilities are rounded to these steps before the (cached) search: the estimate is not better
# than that, and the cache then answers almost every decision of a busy campaign.
# Below this the handle-time spread underflows (1/cv² in the gamma shape, σ → 0 in the lognormal).
MIN_HANDLE_CV = 0.01
_LIVE_STEP = 0.005
_FREE_SOON_STEP = 0.02


class DialMode(StrEnum):
    PREVIEW = "preview"
    PROGRESSIVE = "progressive"
    PREDICTIVE = "predictive"


@dataclass(frozen=True)
class HandleTimeModel:
    """Agent handle time (talk + after-call work) as a lognormal with this mean and coefficient of
    variation; the live dialer fits it from the campaign's recent calls."""

    mean_seconds: float
    coefficient_of_variation: float = 0.5
    _mu: float = field(init=False, repr=False, compare=False, default=0.0)
    _sigma_root2: float = field(init=False, repr=False, compare=False, default=1.0)

    def __post_init__(self) -> None:
        if not self.mean_seconds > 0:
            raise ValueError("The mean handle time must be positive.")
        if not self.coefficient_of_variation >= MIN_HANDLE_CV:
            raise ValueError(f"The coefficient of variation must be at least {MIN_HANDLE_CV}.")
        sigma = math.sqrt(math.log1p(self.coefficient_of_variation**2))
        object.__setattr__(self, "_sigma_root2", sigma * math.sqrt(2))
        object.__setattr__(self, "_mu", math.log(self.mean_seconds) - sigma**2 / 2)

    def cdf(self, seconds: float) -> float:
        if seconds <= 0:
            return 0.0
        return 0.5 * (1 + math.erf((math.log(seconds) - self._mu) / self._sigma_root2))

    def free_within(self, *, elapsed_seconds: float, horizon_seconds: float) -> float:
        """P(the call ends within ``horizon`` | it has lasted ``elapsed`` so far)."""
        survived = 1.0 - self.cdf(elapsed_seconds)
        if survived <= 1e-12:
            return 1.0
        ended = self.cdf(elapsed_seconds + horizon_seconds) - self.cdf(elapsed_seconds)
        return min(1.0, max(0.0, ended / survived))

    def free_within_table(self, *, horizon_seconds: float, upto_seconds: float) -> list[float]:
        """``free_within`` for every whole second of elapsed time up to ``upto`` (the simulator looks
        it up instead of computing it for every busy agent at every decision)."""
        return [
            self.free_within(elapsed_seconds=float(second), horizon_seconds=horizon_seconds)
            for second in range(int(upto_seconds) + 1)
        ]


class LiveAnswerEstimator:
    """Rolling live-answer probability with a Beta-style prior: ``(live + prior * weight) /
    (dials + weight)`` over the last ``window`` finished dials. Answering machines are not live."""

    def __init__(self, *, prior: float = 0.25, prior_weight: float = 50.0, window: int = 500) -> None:
        if not 0 < prior < 1:
            raise ValueError("The prior live-answer rate must be between 0 and 1.")
        if prior_weight < 0 or window < 1:
            raise ValueError("The prior weight must be ≥ 0 and the window ≥ 1.")
        self.prior = prior
        self.prior_weight = prior_weight
        self._results: deque[bool] = deque(maxlen=window)
        self._live = 0

    def record(self, live: bool) -> None:
        if len(self._results) == self._results.maxlen and self._results[0]:
            self._live -= 1
        self._results.append(live)
        self._live += int(live)

    @property
    def dials(self) -> int:
        return len(self._results)

    @property
    def live(self) -> int:
        return self._live

    @property
    def probability(self) -> float:
        return (self._live + self.prior * self.prior_weight) / (len(self._results) + self.prior_weight)


@dataclass(frozen=True, slots=True)
class PacingInput:
    mode: DialMode
    free_agents: int
    busy_free_soon: tuple[float, ...]
    lines_out: int
    live_probability: float
    target_abandon_rate: float
    max_lines: int


def _binomial_pmf(n: int, p: float, upto: int) -> list[float]:
    """P(X = 0..upto) for X ~ Binomial(n, p), upto ≤ n."""
    if p <= 0:
        return [1.0] + [0.0] * upto
    if p >= 1:
        return [1.0 if k == n else 0.0 for k in range(upto + 1)]
    q = 1 - p
    values = [q**n]
    ratio = p / q
    for k in range(1, upto + 1):
        values.append(values[-1] * ratio * (n - k + 1) / k)
    return values


def expected_abandon_rate(
    *, lines: int, live_probability: float, agents_pmf: list[float], agents_base: int
) -> float:
    """E[(L - A)+] / E[L] for L ~ Binomial(lines, p), A = agents_base + X with P(X = i) = agents_pmf[i].

    Uses E[(L - a)+] = E[L] - a + E[(a - L)+], so only the few probabilities below ``a`` are needed."""
    if lines <= 0 or live_probability <= 0:
        return 0.0
    mean_live = lines * live_probability
    top = agents_base + len(agents_pmf) - 1
    below = _binomial_pmf(lines, live_probability, min(lines, top))
    expected_excess = 0.0
    for extra, weight in enumerate(agents_pmf):
        if weight <= 0:
            continue
        available = agents_base + extra
        shortfall = sum((available - live) * below[live] for live in range(min(available, lines + 1)))
        expected_excess += weight * max(0.0, mean_live - available + shortfall)
    return expected_excess / mean_live


@lru_cache(maxsize=65_536)
def _max_lines(
    free_agents: int, busy: int, free_soon: float, live_probability: float, target: float, max_lines: int
) -> int:
    agents_pmf = _binomial_pmf(busy, free_soon, busy)
    lines = free_agents
    while lines < max_lines:
        rate = expected_abandon_rate(
            lines=lines + 1, live_probability=live_probability, agents_pmf=agents_pmf, agents_base=free_agents
        )
        if rate > target:
            break
        lines += 1
    return min(lines, max_lines)


def lines_to_dial(pacing: PacingInput) -> int:
    """How many new lines to dial now (never negative)."""
    if pacing.mode == DialMode.PREVIEW:
        return 0
    if pacing.mode == DialMode.PROGRESSIVE:
        return max(0, min(pacing.free_agents, pacing.max_lines) - pacing.lines_out)
    busy = len(pacing.busy_free_soon)
    free_soon = sum(pacing.busy_free_soon) / busy if busy else 0.0
    total = _max_lines(
        pacing.free_agents,
        busy,
        round(round(free_soon / _FREE_SOON_STEP) * _FREE_SOON_STEP, 4),
        round(round(pacing.live_probability / _LIVE_STEP) * _LIVE_STEP, 4),
        round(pacing.target_abandon_rate, 5),
        pacing.max_lines,
    )
    # Nobody free and nobody about to be: a line now could only be abandoned.
    if pacing.free_agents == 0 and free_soon <= 0:
        return 0
    return max(0, total - pacing.lines_out)

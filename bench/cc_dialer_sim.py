"""The dialer simulator's acceptance figures: 20 agents, 30 % live answers, AHT 180 s, an 8 h day,
100 seeded runs of the live dialer's own pacing → min / median / max abandon rate (cap 3 %) and agent
occupancy (target ≥ 80 %), calls per hour and the wall time. Pure computation (no database).

    python bench/run.py cc_dialer_sim [--runs 100] [--agents 20] [--live 0.30] [--aht 180] [--hours 8]
    python bench/cc_dialer_sim.py          (same, standalone)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="cc_dialer_sim")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--live", type=float, default=0.30)
    parser.add_argument("--aht", type=float, default=180.0)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--distribution", choices=["lognormal", "gamma"], default="lognormal")
    options = parser.parse_args(argv)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from fedele.contact_center.dialer.simulator import SimulationSettings, simulate_many

    settings = replace(
        SimulationSettings(),
        agents=options.agents,
        live_answer_rate=options.live,
        mean_handle_seconds=options.aht,
        day_seconds=options.hours * 3600,
        handle_distribution=options.distribution,
    )
    started = time.perf_counter()
    summary = simulate_many(settings, seeds=range(options.runs))
    elapsed = time.perf_counter() - started
    results = summary["results"]
    return {
        "benchmark": "cc_dialer_sim",
        "settings": {
            "agents": settings.agents,
            "live_answer_rate": settings.live_answer_rate,
            "machine_rate": settings.machine_rate,
            "busy_rate": settings.busy_rate,
            "mean_handle_seconds": settings.mean_handle_seconds,
            "handle_distribution": settings.handle_distribution,
            "hours": options.hours,
            "mode": str(settings.mode),
            "target_abandon_rate": settings.target_abandon_rate,
            "abandon_cap_rate": settings.abandon_cap_rate,
        },
        "runs": summary["runs"],
        "abandon_rate": {k: round(v, 5) for k, v in summary["abandon_rate"].items()},
        "occupancy": {k: round(v, 4) for k, v in summary["occupancy"].items()},
        "calls_per_hour": {k: round(v, 1) for k, v in summary["calls_per_hour"].items()},
        "runs_over_cap": summary["runs_over_cap"],
        "runs_under_80_percent_occupancy": sum(1 for r in results if r.occupancy < 0.80),
        "contacts_reached_median": statistics.median(r.connected for r in results),
        "mean_wait_between_calls_seconds_median": round(
            statistics.median(r.mean_wait_between_calls_seconds for r in results), 1
        ),
        "fallback_seconds_median": round(statistics.median(r.fallback_seconds for r in results), 1),
        "wall_seconds": round(elapsed, 2),
        "seconds_per_run": round(elapsed / max(1, options.runs), 3),
    }


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1:])))

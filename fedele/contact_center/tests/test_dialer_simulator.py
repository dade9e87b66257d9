"""The campaign simulator: the issue's acceptance (20 agents, 30 % live answers, AHT 180 s, 8 h →
abandon rate ≤ 3 % in every one of 100 seeded runs, occupancy ≥ 80 %), determinism, and the modes."""

from __future__ import annotations

import dataclasses

import pytest

from fedele.contact_center.dialer.simulator import SimulationSettings, simulate, simulate_many

ACCEPTANCE = SimulationSettings(
    agents=20, live_answer_rate=0.30, mean_handle_seconds=180, day_seconds=8 * 3600
)


def test_acceptance_100_seeded_runs_stay_under_3_percent_with_80_percent_occupancy() -> None:
    summary = simulate_many(ACCEPTANCE, seeds=range(100))
    assert summary["runs"] == 100
    assert summary["runs_over_cap"] == 0
    for run in summary["results"]:
        assert run.abandon_rate <= 0.03, run.seed
        assert run.occupancy >= 0.80, run.seed
        # The books balance: every live answer was connected or abandoned.
        assert run.connected + run.abandoned == run.live_answers
        assert run.dials == run.live_answers + run.machines + run.busy + run.no_answer
        assert run.abandon_rate == run.abandoned / run.live_answers
    assert summary["abandon_rate"]["max"] <= 0.03
    assert summary["occupancy"]["min"] >= 0.80


def test_same_seed_same_result_other_seed_other_result() -> None:
    first = simulate(ACCEPTANCE, seed=7).as_dict()
    again = simulate(ACCEPTANCE, seed=7).as_dict()
    other = simulate(ACCEPTANCE, seed=8).as_dict()
    assert first == again
    assert first["dials"] != other["dials"] or first["abandoned"] != other["abandoned"]


def test_progressive_never_abandons_and_preview_never_dials() -> None:
    progressive = simulate(dataclasses.replace(ACCEPTANCE, mode="progressive", day_seconds=3600), seed=1)
    assert progressive.abandoned == 0
    assert progressive.live_answers == progressive.connected > 0
    predictive = simulate(dataclasses.replace(ACCEPTANCE, day_seconds=3600), seed=1)
    assert predictive.occupancy > progressive.occupancy  # what predictive dialling is for
    preview = simulate(dataclasses.replace(ACCEPTANCE, mode="preview", day_seconds=3600), seed=1)
    assert (preview.dials, preview.occupancy) == (0, 0.0)


def test_a_finite_list_stops_and_gamma_handle_times_work() -> None:
    small = simulate(dataclasses.replace(ACCEPTANCE, contacts=50, handle_distribution="gamma"), seed=3)
    assert small.dials == 50
    assert small.live_answers + small.machines + small.busy + small.no_answer == 50


def test_slots_cover_the_day() -> None:
    result = simulate(dataclasses.replace(ACCEPTANCE, day_seconds=5400), seed=2)
    assert [slot["start_seconds"] for slot in result.slots] == [0, 1800, 3600]
    assert sum(slot["dials"] for slot in result.slots) == result.dials
    assert sum(slot["abandoned"] for slot in result.slots) == result.abandoned
    assert all(0 <= slot["occupancy"] <= 1 for slot in result.slots)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"agents": 0}, "agents"),
        ({"live_answer_rate": 0.0}, "live_answer_rate"),
        ({"live_answer_rate": 0.6, "machine_rate": 0.3, "busy_rate": 0.2}, "live_answer_rate"),
        ({"mean_handle_seconds": -5}, "mean_handle_seconds"),
        ({"handle_distribution": "weibull"}, "handle_distribution"),
        ({"mode": "turbo"}, "mode"),
        ({"target_abandon_rate": 0.05}, "target_abandon_rate"),
        ({"contacts": -1}, "contacts"),
    ],
)
def test_bad_settings_are_refused(change: dict[str, object], field: str) -> None:
    settings = dataclasses.replace(ACCEPTANCE, **change)  # type: ignore[arg-type]
    assert field in settings.validate()
    with pytest.raises(ValueError, match=field):
        simulate(settings, seed=1)

"""SLA report figures on a small fixture, exactly."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fedele.accounts.tests.factories import user_with_roles
from fedele.shared.errors import ValidationFailed
from fedele.support.models import SlaClock, SlaPolicy, Ticket
from fedele.support.selectors.reports import sla_report, sla_report_csv
from fedele.support.tests.factories import CategoryFactory, TicketFactory

pytestmark = pytest.mark.django_db
ROME = ZoneInfo("Europe/Rome")


def rome(*args: int) -> datetime:
    return datetime(*args, tzinfo=ROME)  # type: ignore[misc]


@pytest.fixture
def fixture() -> dict[str, Any]:
    policy = SlaPolicy.objects.get(name="Standard")
    team_model: Any = Ticket._meta.get_field("team").related_model
    team = team_model.objects.create(name="Rete")
    agent = user_with_roles("agent", first_name="Anna", last_name="Neri")
    network = CategoryFactory(code="network")
    first = TicketFactory(priority="high", category=network, team=team, assignee=agent)
    second = TicketFactory(priority="normal")
    third = TicketFactory(priority="normal")

    def clock(ticket: Ticket, metric: str, **values: Any) -> SlaClock:
        return SlaClock.objects.create(
            ticket=ticket, policy=policy, metric=metric, status="fulfilled", target_minutes=120, **values
        )

    clock(
        first,
        "first_response",
        started_at=rome(2026, 11, 23, 9),
        due_at=rome(2026, 11, 23, 11),
        fulfilled_at=rome(2026, 11, 23, 10),
        team_id_at_stop=team.pk,
        assignee_id_at_stop=agent.pk,
    )
    clock(
        first,
        "resolution",
        started_at=rome(2026, 11, 23, 9),
        due_at=rome(2026, 11, 24, 18),
        fulfilled_at=rome(2026, 11, 24, 12),
        team_id_at_stop=team.pk,
        assignee_id_at_stop=agent.pk,
    )
    clock(
        second,
        "first_response",
        started_at=rome(2026, 11, 23, 9),
        due_at=rome(2026, 11, 23, 13),
        fulfilled_at=rome(2026, 11, 23, 14, 30),
        breached_at=rome(2026, 11, 23, 13),
    )
    clock(
        third,
        "first_response",
        started_at=rome(2026, 11, 20, 17),
        due_at=rome(2026, 11, 23, 12),
        fulfilled_at=rome(2026, 11, 23, 10),
        paused_business_seconds=1800,
    )
    # Outside the period: ignored.
    clock(
        third,
        "resolution",
        started_at=rome(2026, 10, 1, 9),
        due_at=rome(2026, 10, 1, 10),
        fulfilled_at=rome(2026, 10, 1, 11),
        breached_at=rome(2026, 10, 1, 10),
    )
    return {"team": team, "agent": agent}


def test_overall_figures(fixture: dict[str, Any], django_assert_max_num_queries: Any) -> None:
    with django_assert_max_num_queries(8):
        report = sla_report(start=date(2026, 11, 1), end=date(2026, 11, 30))
    total = report.total
    assert [row.label for row in report.rows] == ["All tickets"]
    first = total.metrics["first_response"]
    assert (first.fulfilled, first.on_time, first.attainment, first.breaches) == (3, 2, Decimal("66.7"), 1)
    resolution = total.metrics["resolution"]
    assert (resolution.fulfilled, resolution.on_time, resolution.attainment, resolution.breaches) == (
        1,
        1,
        Decimal("100.0"),
        0,
    )
    assert total.metrics["next_response"].attainment is None
    # 60 + 330 + (120 - 30 paused) business minutes over three first responses.
    assert total.average_first_response_minutes == Decimal("160.0")
    assert total.breaches == 1


def test_by_team_and_agent_and_priority(fixture: dict[str, Any]) -> None:
    by_team = sla_report(start=date(2026, 11, 1), end=date(2026, 11, 30), group_by="team")
    rows = {row.label: row for row in by_team.rows}
    assert list(rows) == ["Rete", "(none)"]
    assert rows["Rete"].metrics["first_response"].attainment == Decimal("100.0")
    assert rows["(none)"].metrics["first_response"].attainment == Decimal("50.0")
    assert rows["(none)"].metrics["first_response"].breaches == 1
    assert rows["(none)"].average_first_response_minutes == Decimal("210.0")
    by_agent = sla_report(start=date(2026, 11, 1), end=date(2026, 11, 30), group_by="agent")
    assert [row.label for row in by_agent.rows] == ["Anna Neri", "(none)"]
    by_priority = sla_report(start=date(2026, 11, 1), end=date(2026, 11, 30), group_by="priority")
    assert {row.key: row.metrics["first_response"].fulfilled for row in by_priority.rows} == {
        "high": 1,
        "normal": 2,
    }
    by_category = sla_report(start=date(2026, 11, 1), end=date(2026, 11, 30), group_by="category")
    assert {row.key: row.metrics["first_response"].fulfilled for row in by_category.rows} == {
        "network": 1,
        "": 2,
    }


def test_period_bounds_are_local_days(fixture: dict[str, Any]) -> None:
    only_monday = sla_report(start=date(2026, 11, 23), end=date(2026, 11, 23))
    assert only_monday.total.metrics["first_response"].fulfilled == 3
    assert only_monday.total.metrics["resolution"].fulfilled == 0
    october = sla_report(start=date(2026, 10, 1), end=date(2026, 10, 31))
    assert october.total.metrics["resolution"].attainment == Decimal("0.0")
    assert october.total.breaches == 1
    empty = sla_report(start=date(2025, 1, 1), end=date(2025, 1, 31))
    assert empty.rows == []
    assert empty.total.average_first_response_minutes is None


def test_csv_export(fixture: dict[str, Any]) -> None:
    text = sla_report_csv(sla_report(start=date(2026, 11, 1), end=date(2026, 11, 30), group_by="team"))
    lines = text.strip().splitlines()
    assert lines[0].startswith(
        "group,first_response_fulfilled,first_response_on_time,first_response_attainment_percent"
    )
    assert lines[1] == "Rete,1,1,100.0,0,0,0,,0,1,1,100.0,0,60.0"
    assert lines[2] == "(none),2,1,50.0,1,0,0,,0,0,0,,0,210.0"
    assert lines[3] == "Total,3,2,66.7,1,0,0,,0,1,1,100.0,0,160.0"


def test_bad_grouping_and_period_are_refused() -> None:
    with pytest.raises(ValidationFailed):
        sla_report(start=date(2026, 1, 1), end=date(2026, 1, 31), group_by="moon")
    with pytest.raises(ValidationFailed):
        sla_report(start=date(2026, 2, 1), end=date(2026, 1, 1))
    with pytest.raises(ValidationFailed):
        sla_report(start=date(2020, 1, 1), end=date(2026, 1, 1))

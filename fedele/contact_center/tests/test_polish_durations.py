"""Durations on the wallboard and the interval report read as a clock: m:ss under an hour, h:mm:ss
from an hour on, a dash when empty (one filter, ``duration``, everywhere)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.template import Context, Template

from fedele.contact_center.models import Channel, InteractionState
from fedele.contact_center.selectors.wallboard import wallboard
from fedele.contact_center.templatetags.contact_center_durations import format_duration
from fedele.contact_center.tests.factories import InteractionFactory, QueueFactory
from fedele.contact_center.tests.test_reports import answered
from fedele.contact_center.web.desktop_wallboard import render_board


@pytest.mark.parametrize(
    ("seconds", "written"),
    [
        (0, "0:00"),
        (59, "0:59"),
        (60, "1:00"),
        (3599, "59:59"),
        (3600, "1:00:00"),
        (11562, "3:12:42"),
        (90061, "25:01:01"),
        (None, "–"),
        ("", "–"),
        (12.4, "0:12"),
        (12.5, "0:13"),
        (Decimal("59.5"), "1:00"),
        (3599.5, "1:00:00"),
        (-5, "-0:05"),
        ("not a number", "–"),
        (float("nan"), "–"),
    ],
)
def test_format_duration(seconds: object, written: str) -> None:
    assert format_duration(seconds) == written  # type: ignore[arg-type]


def test_the_template_filter_is_the_same_function() -> None:
    template = Template(
        "{% load contact_center_durations %}[{{ a|duration }}|{{ b|duration }}|{{ c|duration }}]"
    )
    assert template.render(Context({"a": 11562, "b": 59, "c": None})) == "[3:12:42|0:59|–]"


NOW = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_wallboard_shows_long_waits_and_asa_as_clock_durations() -> None:
    queue = QueueFactory(code="billing", service_level_seconds=20, channels=["voice", "chat"])
    answered(queue, datetime(2026, 6, 10, 6, 0, tzinfo=UTC), 65)
    InteractionFactory(
        queue=queue,
        channel=Channel.VOICE,
        state=InteractionState.QUEUED,
        queued_at=NOW - timedelta(seconds=11562),
        created_at=NOW,
    )
    html = render_board(wallboard())
    voice = html.split('data-testid="wallboard-row-billing-voice"')[1].split("</tr>")[0]
    chat = html.split('data-testid="wallboard-row-billing-chat"')[1].split("</tr>")[0]
    assert 'data-metric="longest_wait_seconds" data-level="danger">3:12:42</td>' in voice
    assert 'data-metric="average_speed_of_answer_seconds" data-level="danger">1:05</td>' in voice
    assert "11562" not in html and " s<" not in voice
    assert 'data-metric="longest_wait_seconds" data-level="">–</td>' in chat
    assert 'data-metric="average_speed_of_answer_seconds" data-level="">–</td>' in chat

"""Wallboards: exact live and day-so-far figures per queue and channel, threshold colours, the page and
its TV mode, and the websocket consumer (auth, first push, push on change)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.urls import reverse

from fedele.accounts.contracts import Role
from fedele.accounts.tests.factories import UserFactory
from fedele.contact_center.consumers.desktop import WALLBOARD_GROUP, urlpatterns
from fedele.contact_center.models import (
    AgentState,
    Channel,
    InteractionState,
    WallboardMetric,
    WallboardThreshold,
)
from fedele.contact_center.selectors.wallboard import Threshold, wallboard
from fedele.contact_center.tests.factories import AgentFactory, InteractionFactory, QueueFactory
from fedele.contact_center.tests.test_reports import abandoned, answered

NOW = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)  # 10:00 in Rome
application = URLRouter(urlpatterns)


def seed() -> None:
    billing = QueueFactory(
        code="billing", service_level_seconds=20, service_level_target=80, channels=["voice", "chat"]
    )
    QueueFactory(code="sales", channels=["voice"])
    answered(billing, datetime(2026, 6, 10, 7, 0, tzinfo=UTC), 5)
    answered(billing, datetime(2026, 6, 10, 7, 10, tzinfo=UTC), 60)
    abandoned(billing, datetime(2026, 6, 10, 7, 20, tzinfo=UTC), 40)
    answered(billing, datetime(2026, 6, 9, 21, 0, tzinfo=UTC), 1)  # yesterday in Rome (23:00): not today
    InteractionFactory(
        queue=billing,
        channel=Channel.VOICE,
        state=InteractionState.QUEUED,
        queued_at=NOW - timedelta(seconds=95),
        created_at=NOW,
    )
    InteractionFactory(
        queue=billing,
        channel=Channel.VOICE,
        state=InteractionState.OFFERED,
        queued_at=NOW - timedelta(seconds=12),
        created_at=NOW,
    )
    InteractionFactory(
        queue=billing,
        channel=Channel.CHAT,
        state=InteractionState.QUEUED,
        queued_at=NOW - timedelta(seconds=3),
        created_at=NOW,
    )
    for state in (AgentState.AVAILABLE, AgentState.AVAILABLE, AgentState.BUSY, AgentState.BREAK):
        AgentFactory(state=state).queues.add(billing)
    AgentFactory(state=AgentState.OFFLINE)


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_wallboard_figures_per_queue_and_channel() -> None:
    seed()
    board = wallboard()
    assert [queue.code for queue in board.queues] == ["billing", "sales"]
    billing = board.queues[0]
    voice, chat = billing.rows
    assert (voice.channel, voice.waiting.value, voice.longest_wait_seconds.value) == ("voice", 2, 95)
    assert (voice.offered, voice.answered, voice.abandoned) == (5, 2, 1)
    assert voice.service_level_percent.value == 33.3  # 1 within 20 s / (2 answered + 1 abandoned late)
    assert voice.average_speed_of_answer_seconds.value == 32.5
    assert voice.abandon_rate_percent.value == 20.0  # 1 / 5 offered (the two waiting count as offered)
    assert (chat.waiting.value, chat.longest_wait_seconds.value, chat.service_level_percent.value) == (
        1,
        3,
        None,
    )
    assert chat.average_speed_of_answer_seconds.value is None
    assert billing.agents_by_state == {"available": 2, "busy": 1, "wrap_up": 0, "break": 1, "offline": 0}
    assert board.agents_by_state == {"available": 2, "busy": 1, "wrap_up": 0, "break": 1, "offline": 1}
    # Default thresholds: longest wait amber at 20 s, red at 40 s; SL red under 70 %; abandon red from 10 %.
    assert voice.longest_wait_seconds.level == "danger"
    assert voice.service_level_percent.level == "danger"
    assert voice.abandon_rate_percent.level == "danger"
    assert voice.waiting.level == ""
    assert chat.longest_wait_seconds.level == ""
    assert [row.channel for row in board.queues[1].rows] == ["voice"]
    assert board.queues[1].rows[0].waiting.value == 0


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_configured_thresholds_win_over_defaults_queue_row_over_global_row() -> None:
    seed()
    WallboardThreshold.objects.create(metric=WallboardMetric.WAITING, warning_at=1, alert_at=3)
    billing = QueueFactory(code="billing")
    WallboardThreshold.objects.create(
        queue=billing, metric=WallboardMetric.LONGEST_WAIT, warning_at=60, alert_at=120
    )
    voice, chat = wallboard().queues[0].rows
    assert voice.waiting.level == "warning"
    assert chat.waiting.level == "warning"
    assert voice.longest_wait_seconds.level == "warning"  # 95 s: amber from 60, red from 120


def test_threshold_levels_at_the_edges() -> None:
    higher_worse = Threshold(5, 10)
    assert [higher_worse.level(v) for v in (None, 0, 4.9, 5, 9.9, 10, 10_000)] == [
        "",
        "",
        "",
        "warning",
        "warning",
        "danger",
        "danger",
    ]
    lower_worse = Threshold(80, 70, lower_is_worse=True)
    assert [lower_worse.level(v) for v in (None, 100, 80.1, 80, 70.1, 70, 0)] == [
        "",
        "",
        "",
        "warning",
        "warning",
        "danger",
        "danger",
    ]


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_wallboard_page_tv_mode_and_partial(client) -> None:
    seed()
    client.force_login(UserFactory(roles=[Role.SUPERVISOR]))
    page = client.get(reverse("contact_center:wallboard"))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="wallboard-row-billing-voice"' in html
    assert 'data-wallboard-socket="/ws/contact-center/wallboard/"' in html
    assert 'id="sidebar"' in html
    tv = client.get(reverse("contact_center:wallboard"), {"tv": "1", "queue": "billing"})
    tv_html = tv.content.decode()
    assert 'class="cc-tv p-3"' in tv_html and 'id="sidebar"' not in tv_html
    assert 'data-testid="wallboard-queue-sales"' not in tv_html
    assert "/ws/contact-center/wallboard/?queue=billing" in tv_html
    partial = client.get(reverse("contact_center:wallboard_board"), {"queue": "sales"})
    assert partial.status_code == 200
    assert "<html" not in partial.content.decode()
    assert 'data-testid="wallboard-queue-sales"' in partial.content.decode()


@pytest.mark.django_db
def test_wallboard_needs_the_permission(client) -> None:
    client.force_login(UserFactory(roles=[Role.AGENT]))
    assert client.get(reverse("contact_center:wallboard")).status_code == 403
    assert client.get(reverse("contact_center:wallboard_board")).status_code == 403


async def _connect(path: str, user: object) -> tuple[WebsocketCommunicator, bool, object]:
    communicator = WebsocketCommunicator(application, path)
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


@pytest.mark.django_db(transaction=True)
def test_wallboard_socket_refuses_anonymous_and_agents() -> None:
    agent_user = UserFactory(roles=[Role.AGENT])

    async def scenario() -> list[tuple[bool, object]]:
        results = []
        for user in (AnonymousUser(), agent_user):
            communicator, connected, code = await _connect("/ws/contact-center/wallboard/", user)
            results.append((connected, code))
            await communicator.disconnect()
        return results

    assert async_to_sync(scenario)() == [(False, 4403), (False, 4403)]


@pytest.mark.django_db(transaction=True)
def test_wallboard_socket_pushes_the_board_then_again_on_change(settings) -> None:
    settings.FEDELE_CC_WALLBOARD_TICK_SECONDS = 30  # the change push is what this test sees, not the tick
    cache.clear()
    queue = QueueFactory(code="billing", channels=["voice"])
    supervisor = UserFactory(roles=[Role.SUPERVISOR])

    async def scenario() -> tuple[dict, dict, object]:
        communicator, connected, _code = await _connect(
            "/ws/contact-center/wallboard/?queue=billing", supervisor
        )
        assert connected
        first = await communicator.receive_json_from(timeout=5)
        await sync_to_async(InteractionFactory)(
            queue=queue, channel=Channel.VOICE, state=InteractionState.QUEUED, queued_at=datetime.now(UTC)
        )
        await get_channel_layer().group_send(WALLBOARD_GROUP, {"type": "cc.wallboard.changed", "data": {}})
        second = await communicator.receive_json_from(timeout=5)
        members = len(get_channel_layer().groups.get(WALLBOARD_GROUP, {}))
        await communicator.disconnect()
        return first, second, members

    first, second, members = async_to_sync(scenario)()
    assert first["type"] == "wallboard"
    assert 'data-testid="wallboard-row-billing-voice"' in first["html"]
    assert 'data-metric="waiting" data-level="">0<' in first["html"]
    assert 'data-metric="waiting" data-level="">1<' in second["html"]
    assert members == 1
    assert get_channel_layer().groups.get(WALLBOARD_GROUP, {}) == {}


def test_ended_and_wrapped_up_contacts_push_the_wallboard() -> None:
    import uuid

    from fedele.shared.events import EventEnvelope, subscriptions_for

    layer = get_channel_layer()

    async def scenario() -> dict:
        channel = await layer.new_channel()
        await layer.group_add(WALLBOARD_GROUP, channel)
        handlers = [
            s.function for s in subscriptions_for("contact_center.interaction_ended") if "wallboard" in s.name
        ]
        assert len(handlers) == 1
        envelope = EventEnvelope(
            event_id=uuid.uuid4(),
            event_type="contact_center.interaction_ended",
            aggregate_type="contact_center.interaction",
            aggregate_id="x",
            occurred_at=NOW,
            payload={},
        )
        await sync_to_async(handlers[0])(envelope)
        message = await layer.receive(channel)
        await layer.group_discard(WALLBOARD_GROUP, channel)
        return message

    assert async_to_sync(scenario)() == {
        "type": "cc.wallboard.changed",
        "data": {"event": "contact_center.interaction_ended"},
    }
    assert any("wallboard" in s.name for s in subscriptions_for("contact_center.interaction_wrapped_up"))


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_wallboard_query_count_does_not_grow_with_queues_agents_or_contacts(
    django_assert_num_queries,
) -> None:
    seed()
    with django_assert_num_queries(6):
        small = wallboard()
    for index in range(8):
        queue = QueueFactory(code=f"extra-{index}", channels=["voice", "chat", "email"])
        for _ in range(3):
            AgentFactory(state=AgentState.AVAILABLE).queues.add(queue)
        answered(queue, datetime(2026, 6, 10, 7, index, tzinfo=UTC), index)
    with django_assert_num_queries(6):
        large = wallboard()
    assert len(small.queues) == 2 and len(large.queues) == 10
    assert large.agents_by_state["available"] == 2 + 24


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_a_queues_agent_states_are_shown_in_words_not_codes(client) -> None:
    seed()
    client.force_login(UserFactory(roles=[Role.SUPERVISOR]))
    partial = client.get(reverse("contact_center:wallboard_board"), {"queue": "billing"})
    html = " ".join(partial.content.decode().split())
    footer = html[html.index('class="card-footer') :]
    assert 'data-state="available">Available 2</span>' in footer
    assert 'data-state="busy">Busy 1</span>' in footer
    assert 'data-state="break">On break 1</span>' in footer

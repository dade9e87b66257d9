"""The agent desktop's websocket: only agents with a profile get in, each joins exactly their own group,
every cc.* push reaches the browser (an offer from the real router included), other groups' pushes don't."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from fedele.accounts.contracts import Role
from fedele.accounts.tests.factories import UserFactory
from fedele.contact_center.consumers.desktop import agent_group, urlpatterns
from fedele.contact_center.models import AgentState
from fedele.contact_center.services import presence
from fedele.contact_center.tests.desktop_support import make_desk, offered_call
from fedele.contact_center.tests.factories import AgentFactory

application = URLRouter(urlpatterns)
PATH = "/ws/contact-center/desktop/"


@pytest.mark.django_db(transaction=True)
def test_refused_without_login_permission_or_agent_profile() -> None:
    no_profile = UserFactory(roles=[Role.AGENT])
    analyst = UserFactory(roles=[Role.ANALYST])
    AgentFactory(user=analyst)  # a profile without the permission is not enough
    inactive = UserFactory(roles=[Role.AGENT])
    AgentFactory(user=inactive, active=False)

    async def scenario() -> list[tuple[bool, object]]:
        results = []
        for user in (AnonymousUser(), no_profile, analyst, inactive):
            communicator = WebsocketCommunicator(application, PATH)
            communicator.scope["user"] = user
            results.append(await communicator.connect())
            await communicator.disconnect()
        return results

    assert async_to_sync(scenario)() == [(False, 4403)] * 4


@pytest.mark.django_db(transaction=True)
def test_agent_joins_own_group_and_receives_cc_pushes_only(settings) -> None:
    settings.CONTACT_CENTER_ROUTE_ON_COMMIT = False
    desk = make_desk()
    other = AgentFactory()
    presence.agent_state_set(agent=desk.agent, state=AgentState.AVAILABLE)

    async def scenario() -> tuple[list[dict], bool, int]:
        layer = get_channel_layer()
        communicator = WebsocketCommunicator(application, PATH)
        communicator.scope["user"] = desk.user
        connected, _code = await communicator.connect()
        assert connected
        hello = await communicator.receive_json_from(timeout=5)
        members = len(layer.groups.get(agent_group(desk.agent.pk), {}))
        # Another agent's push and a non-cc message never arrive; an unknown cc.* type does.
        await layer.group_send(agent_group(other.pk), {"type": "cc.offer", "data": {"offer_id": "x"}})
        await layer.group_send(agent_group(desk.agent.pk), {"type": "cc.something.new", "data": {"a": 1}})
        received = [hello, await communicator.receive_json_from(timeout=5)]
        interaction, offer = await sync_to_async(offered_call)(desk)
        received.append(await communicator.receive_json_from(timeout=5))
        await communicator.send_json_to({"type": "ping"})
        received.append(await communicator.receive_json_from(timeout=5))
        nothing_else = await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()
        received.append({"offer": str(offer.public_id), "interaction": str(interaction.public_id)})
        return received, nothing_else, members

    received, nothing_else, members = async_to_sync(scenario)()
    hello, unknown, pushed_offer, pong, ids = received
    assert hello == {"type": "cc.hello", "agent_id": desk.agent.pk}
    assert unknown == {"type": "cc.something.new", "a": 1}
    assert pushed_offer["type"] == "cc.offer"
    assert pushed_offer["offer_id"] == ids["offer"]
    assert pushed_offer["interaction_id"] == ids["interaction"]
    assert pushed_offer["channel"] == "voice" and pushed_offer["queue"] == "care"
    assert pong == {"type": "pong"}
    assert nothing_else is True
    assert members == 1
    assert get_channel_layer().groups.get(agent_group(desk.agent.pk), {}) == {}

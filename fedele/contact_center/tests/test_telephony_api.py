"""The call-control API: agents act on their own calls only (someone else's is 404), the error
envelope for bad input and provider failures (nothing changes), click-to-dial with an
Idempotency-Key replay that does not dial twice, a call's recordings and pauses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.contact_center.models import (
    AgentState,
    Interaction,
    InteractionState,
    Offer,
    QueueTelephonySettings,
    VoiceNumber,
)
from fedele.contact_center.services import presence, routing
from fedele.contact_center.telephony.registry import adapter_override
from fedele.contact_center.telephony.simulator import SimulatorAdapter
from fedele.contact_center.telephony.twilio import TelephonyProviderError
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)
API = "/api/v1/contact-center"


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def sim() -> Any:
    simulator = SimulatorAdapter(start=T0)
    with adapter_override("simulator", simulator):
        yield simulator


@pytest.fixture
def desk(sim: SimulatorAdapter) -> Any:
    queue = QueueFactory(code="support", channels=["voice"], wrap_up_seconds=0)
    VoiceNumber.objects.create(number="+390212345678", provider="simulator", queue=queue)
    QueueTelephonySettings.objects.create(queue=queue, record_calls=True, announce_recording=False)
    user = user_with_roles("agent")
    agent = AgentFactory(user=user, extension="201")
    agent.queues.add(queue)
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=T0)
    sim.incoming_call(
        from_number="+393331234567", to_number="+390212345678", talk_seconds=900, patience_seconds=900
    )
    routing.route_pending(limit=5, at=sim.now)
    interaction = routing.offer_accept(offer=Offer.objects.get(agent=agent), agent=agent, at=sim.now)
    return {"agent": agent, "headers": auth_header(user), "call": interaction}


def post(path: str, body: dict[str, Any] | None, headers: dict[str, str]) -> Any:
    return Client().post(f"{API}{path}", json.dumps(body or {}), content_type="application/json", **headers)


def test_answer_hold_mute_and_hangup_through_the_api(sim: SimulatorAdapter, desk: dict[str, Any]) -> None:
    call_id = desk["call"].public_id
    headers = desk["headers"]
    answered = post(f"/calls/{call_id}/answer", None, headers)
    assert answered.status_code == 200
    assert answered.json()["state"] == "connected"
    held = post(f"/calls/{call_id}/hold", {"on": True}, headers).json()
    assert (held["held"], held["muted"]) == (True, False)
    assert post(f"/calls/{call_id}/mute", {"on": True}, headers).json()["muted"] is True
    assert post(f"/calls/{call_id}/hold", {"on": False}, headers).json()["held"] is False
    paused = post(f"/calls/{call_id}/recording-pause", {"paused": True}, headers)
    assert paused.status_code == 200 and paused.json()["resumed_at"] is None
    assert post(f"/calls/{call_id}/dtmf", {"digits": "12#"}, headers).status_code == 200
    ended = post(f"/calls/{call_id}/hangup", None, headers).json()
    assert (ended["state"], ended["outcome"]) == ("ended", "handled")
    listing = Client().get(f"{API}/calls/{call_id}/recordings", **headers).json()
    assert len(listing["recordings"]) == 1 and listing["recordings"][0]["state"] == "stored"
    assert listing["recordings"][0]["audio_url"].endswith("/audio/")
    assert len(listing["pauses"]) == 1 and listing["pauses"][0]["resumed_at"] is not None


def test_someone_elses_call_is_not_found(desk: dict[str, Any]) -> None:
    other = user_with_roles("agent")
    AgentFactory(user=other)
    response = post(f"/calls/{desk['call'].public_id}/hold", {"on": True}, auth_header(other))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "call_not_found"
    assert (
        Client().get(f"{API}/calls/{desk['call'].public_id}/recordings", **auth_header(other)).status_code
        == 404
    )
    supervisor = user_with_roles("supervisor")
    assert (
        Client()
        .get(f"{API}/calls/{desk['call'].public_id}/recordings", **auth_header(supervisor))
        .status_code
        == 200
    )


def test_a_user_who_is_not_an_agent_is_refused(desk: dict[str, Any]) -> None:
    analyst = user_with_roles("analyst")
    response = post(f"/calls/{desk['call'].public_id}/hold", {"on": True}, auth_header(analyst))
    assert response.status_code == 403
    supervisor = user_with_roles("supervisor")
    refused = post(f"/calls/{desk['call'].public_id}/hold", {"on": True}, auth_header(supervisor))
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "not_an_agent")
    read_only = post(
        f"/calls/{desk['call'].public_id}/hold", {"on": True}, auth_header(desk["agent"].user, ("read",))
    )
    assert read_only.status_code == 403


def test_bad_input_gets_the_envelope_and_changes_nothing(sim: SimulatorAdapter, desk: dict[str, Any]) -> None:
    call_id = desk["call"].public_id
    commands = list(sim.commands)
    bad_digits = post(f"/calls/{call_id}/dtmf", {"digits": "12x"}, desk["headers"])
    assert (bad_digits.status_code, bad_digits.json()["error"]["code"]) == (422, "invalid_dtmf")
    unknown_field = post(f"/calls/{call_id}/hold", {"on": True, "forever": True}, desk["headers"])
    assert unknown_field.status_code == 422
    bad_target = post(f"/calls/{call_id}/transfer", {"target": "nowhere", "warm": False}, desk["headers"])
    assert bad_target.status_code == 422
    assert sim.commands == commands
    assert Interaction.objects.get(pk=desk["call"].pk).state == InteractionState.CONNECTED


def test_a_provider_failure_is_a_502_envelope(sim: SimulatorAdapter, desk: dict[str, Any]) -> None:
    def refuse(call_ref: str, *, on: bool) -> None:
        raise TelephonyProviderError("Twilio refused the request (HTTP 400): nope")

    sim.hold = refuse  # type: ignore[method-assign]
    response = post(f"/calls/{desk['call'].public_id}/hold", {"on": True}, desk["headers"])
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "telephony_provider_error"
    assert "hold_started_at" not in Interaction.objects.get(pk=desk["call"].pk).attributes


def test_click_to_dial_replayed_with_the_same_key_dials_once(sim: SimulatorAdapter) -> None:
    user = user_with_roles("agent")
    agent = AgentFactory(user=user)
    presence.agent_state_set(agent=agent, state=AgentState.AVAILABLE, at=T0)
    headers = {**auth_header(user), "HTTP_IDEMPOTENCY_KEY": "dial-1"}
    first = post("/calls", {"to_number": "+39 333 987 6543", "provider": "simulator"}, headers)
    assert first.status_code == 201
    body = first.json()
    assert (body["direction"], body["state"], body["call_ref"]) == ("outbound", "ivr", "SIM-OUT-000001")
    again = post("/calls", {"to_number": "+39 333 987 6543", "provider": "simulator"}, headers)
    assert again.status_code == 201 and again.json()["id"] == body["id"]
    assert [name for name, _r, _d in sim.commands] == ["originate"]
    refused = post("/calls", {"to_number": "not a phone", "provider": "simulator"}, auth_header(user))
    assert refused.status_code == 422
    assert Interaction.objects.count() == 1

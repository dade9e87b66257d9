"""The SIP ``TelephonyAdapter`` (what the desktop's softphone calls) acting on a live call held by the
user agent, seen from the caller's side on the wire: DTMF as RFC 4733 events on RTP, hold as a
re-INVITE with a=sendonly, transfer as REFER, hang-up as BYE, connect_agent as a REFER to the agent's
extension; and the clear refusals for what a SIP call cannot do here (conference, warm transfer,
an outbound call without a trunk)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from fedele.contact_center.models import Interaction, InteractionEvent
from fedele.contact_center.telephony.registry import adapter_for
from fedele.contact_center.telephony.sip.adapter import SipAdapter
from fedele.contact_center.telephony.sip.message import SipMessage, response_to
from fedele.contact_center.telephony.sip.rtp import DtmfDetector, RtpError, parse_rtp
from fedele.contact_center.telephony.sip.sdp import parse_offer
from fedele.contact_center.telephony.sip.server import SipServer
from fedele.contact_center.tests.sip_fixtures import Peer, menu_flow, running_sip_server
from fedele.shared.errors import Conflict

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sip_server(tmp_path: Path) -> Iterator[SipServer]:
    yield from running_sip_server(tmp_path)


@pytest.fixture
def caller(sip_server: SipServer) -> Iterator[Peer]:
    """A caller in the IVR's menu (it waits 20 s for a key)."""
    menu_flow()
    phone = Peer(sip_server.port)
    phone.request("INVITE", body=phone.offer(types="0 101"))
    answer = phone.receive(status=200)
    phone.remote_tag = answer.to_tag
    phone.ack()
    yield phone
    phone.close()


def _reply(peer: Peer, request: SipMessage, status: int, body: bytes = b"", content_type: str = "") -> None:
    response = response_to(request, status)
    if body:
        response.add_header("Content-Type", content_type)
        response.body = body
    peer.socket.sendto(response.to_bytes(), peer.server)


def _digits_on(media: socket.socket, *, expected: int, timeout: float = 15) -> str:
    detector = DtmfDetector()
    digits = ""
    media.settimeout(0.5)
    deadline = time.monotonic() + timeout
    while len(digits) < expected and time.monotonic() < deadline:
        try:
            packet = parse_rtp(media.recv(2_048))
        except (TimeoutError, RtpError):
            continue
        if packet.payload_type == 101:
            digits += "".join(detector.feed(packet))
    return digits


def test_the_sip_adapter_is_registered() -> None:
    assert isinstance(adapter_for("sip"), SipAdapter)


def test_dtmf_hold_mute_and_a_cold_transfer_reach_the_caller(sip_server: SipServer, caller: Peer) -> None:
    adapter = adapter_for("sip")
    call_ref = caller.call_id

    adapter.send_dtmf(call_ref, "12#")
    assert _digits_on(caller.media, expected=3) == "12#"

    with ThreadPoolExecutor(max_workers=1) as background:
        holding = background.submit(adapter.hold, call_ref, on=True)
        reinvite = caller.receive(method="INVITE")
        assert reinvite.to_tag == caller.tag  # in our dialog, from the server's side
        assert parse_offer(reinvite.body).direction == "sendonly"
        _reply(
            caller,
            reinvite,
            200,
            caller.offer(types="0 101", direction="recvonly").encode(),
            "application/sdp",
        )
        holding.result(timeout=15)
        assert caller.receive(method="ACK").cseq[1] == "ACK"

    adapter.mute(call_ref, on=True)
    live = sip_server.live_call(call_ref)
    assert live is not None and live.rtp is not None and live.rtp.sending_paused

    with ThreadPoolExecutor(max_workers=1) as background:
        transferring = background.submit(adapter.transfer, call_ref, target="sip:300@127.0.0.1", warm=False)
        refer = caller.receive(method="REFER")
        assert refer.header("Refer-To") == "<sip:300@127.0.0.1>"
        _reply(caller, refer, 202)
        notify = (
            "NOTIFY sip:fedele@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{caller.port};branch=z9hG4bKn1\r\n"
            f"From: <sip:+390612345678@127.0.0.1>;tag={caller.tag}\r\n"
            f"To: <sip:x@127.0.0.1>;tag={caller.remote_tag}\r\nCall-ID: {call_ref}\r\nCSeq: 9 NOTIFY\r\n"
            "Event: refer\r\nSubscription-State: terminated;reason=noresource\r\n"
            "Content-Type: message/sipfrag;version=2.0\r\nContent-Length: 16\r\n\r\nSIP/2.0 200 OK\r\n"
        )
        caller.socket.sendto(notify.encode(), caller.server)
        assert caller.receive(status=200).cseq == (9, "NOTIFY")
        bye = caller.receive(method="BYE")
        _reply(caller, bye, 200)
        transferring.result(timeout=15)
    sip_server.application.wait_for_milestone("ended", call_ref=call_ref, timeout=30)

    interaction = Interaction.objects.get(provider_ref=call_ref)
    transfers = InteractionEvent.objects.filter(interaction=interaction, kind="call.transfer")
    assert [(event.data["target"], event.data["warm"]) for event in transfers] == [
        ("sip:300@127.0.0.1", False)
    ]
    assert InteractionEvent.objects.filter(interaction=interaction, kind="call.hangup").count() == 1
    assert (interaction.attributes or {}).get("transferred_to") == "sip:300@127.0.0.1"

    adapter.hangup(call_ref)  # already gone: nothing to do, no error
    with pytest.raises(Conflict) as refused:
        adapter.hold(call_ref, on=False)
    assert refused.value.code == "call_on_phone"


def test_hangup_sends_bye_and_ends_the_call(sip_server: SipServer, caller: Peer) -> None:
    adapter_for("sip").hangup(caller.call_id)
    bye = caller.receive(method="BYE")
    assert bye.call_id == caller.call_id
    _reply(caller, bye, 200)
    sip_server.application.wait_for_milestone("ended", call_ref=caller.call_id, timeout=30)
    interaction = Interaction.objects.get(provider_ref=caller.call_id)
    assert interaction.state == "ended"
    assert InteractionEvent.objects.filter(interaction=interaction, kind="call.hangup").count() == 1


def test_connect_agent_refers_a_queued_caller_to_the_agents_extension(
    sip_server: SipServer, caller: Peer
) -> None:
    adapter = adapter_for("sip")
    with pytest.raises(Conflict) as not_queued:
        adapter.connect_agent(caller.call_id, agent_target="202")  # still in the menu
    assert not_queued.value.code == "call_not_queued"

    caller.socket.sendto(
        (
            "INFO sip:fedele@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{caller.port};branch=z9hG4bKi1\r\n"
            f"From: <sip:+390612345678@127.0.0.1>;tag={caller.tag}\r\n"
            f"To: <sip:x@127.0.0.1>;tag={caller.remote_tag}\r\nCall-ID: {caller.call_id}\r\nCSeq: 5 INFO\r\n"
            "Content-Type: application/dtmf\r\nContent-Length: 1\r\n\r\n1"
        ).encode(),
        caller.server,
    )
    sip_server.application.wait_for_milestone("queued", call_ref=caller.call_id, timeout=30)
    adapter.connect_agent(caller.call_id, agent_target="202")
    refer = caller.receive(method="REFER")
    assert refer.header("Refer-To") == "<sip:202@127.0.0.1>"
    _reply(caller, refer, 403)  # the PBX refuses: the caller stays with us, hearing the hold tone
    sip_server.application.wait_for_milestone("handoff_failed", call_ref=caller.call_id, timeout=30)
    interaction = Interaction.objects.get(provider_ref=caller.call_id)
    failed = InteractionEvent.objects.get(interaction=interaction, kind="sip.handoff_failed")
    assert failed.data["target"] == "sip:202@127.0.0.1"
    assert sip_server.live_call(caller.call_id) is not None


def test_what_a_sip_call_cannot_do_here_is_refused_clearly(settings: Any) -> None:
    adapter = SipAdapter()
    # Conferences and warm transfers are done on the agent's phone once the PBX carries the call.
    with pytest.raises(NotImplementedError):
        adapter.conference("any", target="sip:1@x")
    with pytest.raises(NotImplementedError):
        adapter.transfer("any", target="sip:1@x", warm=True)
    # Outbound calls need a trunk (see test_sip_originate.py for calls placed through one).
    settings.FEDELE_SIP_OUTBOUND_PROXY = ""
    with pytest.raises(Conflict) as refused:
        adapter.originate(to_number="+390612345678", from_number="+390600000001", context={})
    assert refused.value.code == "sip_trunk_not_configured"

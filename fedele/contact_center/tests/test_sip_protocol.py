"""The SIP user agent on the wire (a raw UDP peer on 127.0.0.1): the right answer to each kind of
request (200/405/501/481/400/420/488/487), retransmissions answered once, hold by re-INVITE, DTMF by
SIP INFO, and a fuzzed stream of garbage that never takes the server down."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedele.contact_center.models import Interaction, InteractionEvent, Outcome
from fedele.contact_center.telephony.sip.message import new_branch
from fedele.contact_center.telephony.sip.rtp import parse_rtp
from fedele.contact_center.telephony.sip.sdp import parse_offer
from fedele.contact_center.telephony.sip.server import SipServer
from fedele.contact_center.tests.sip_fixtures import IVR_NUMBER, Peer, menu_flow, running_sip_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sip_server(tmp_path: Path) -> Iterator[SipServer]:
    yield from running_sip_server(tmp_path)


@pytest.fixture
def peer(sip_server: SipServer) -> Iterator[Peer]:
    phone = Peer(sip_server.port)
    yield phone
    phone.close()


def test_options_is_answered_with_what_we_allow(peer: Peer) -> None:
    _, branch = peer.request("OPTIONS")
    response = peer.receive(status=200)
    assert response.top_branch == branch
    assert response.call_id == peer.call_id
    assert response.cseq == (1, "OPTIONS")
    assert response.header("Allow") == "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY"
    assert response.header("Accept") == "application/sdp"


def test_methods_we_do_not_serve_get_405_and_unknown_ones_501(peer: Peer) -> None:
    peer.request("REGISTER")
    refused = peer.receive(status=405)
    assert refused.header("Allow").startswith("INVITE, ACK, BYE")
    peer.request("FROBNICATE")
    unknown = peer.receive(status=501)
    assert unknown.cseq == (1, "FROBNICATE")


def test_requests_for_a_dialog_we_do_not_have_get_481(peer: Peer) -> None:
    peer.remote_tag = "nosuchtag"
    for method in ("BYE", "INFO", "NOTIFY", "INVITE"):
        peer.request(method, in_dialog=True, body=peer.offer() if method == "INVITE" else "")
        assert peer.receive(status=481).cseq == (1, method)
    peer.request("CANCEL")  # no INVITE transaction with this branch
    assert peer.receive(status=481).cseq == (1, "CANCEL")
    assert Interaction.objects.count() == 0


def test_an_offer_without_g711_gets_488_and_writes_nothing(peer: Peer) -> None:
    peer.request("INVITE", body=peer.offer(types="18"))
    response = peer.receive(status=488)
    assert "no common codec" in response.header("Warning")
    assert Interaction.objects.count() == 0


def test_a_required_extension_we_lack_gets_420(peer: Peer) -> None:
    peer.request("INVITE", body=peer.offer(), headers={"Require": "100rel"})
    response = peer.receive(status=420)
    assert response.header("Unsupported") == "100rel"
    assert Interaction.objects.count() == 0


def test_malformed_requests_get_400_when_addressable_and_silence_otherwise(
    peer: Peer, sip_server: SipServer
) -> None:
    data, _ = peer.request("OPTIONS")
    peer.receive(status=200)
    without_cseq = b"\r\n".join(line for line in data.split(b"\r\n") if not line.startswith(b"CSeq"))
    peer.socket.sendto(without_cseq, peer.server)
    bad_request = peer.socket.recv(65_535)
    assert bad_request.startswith(b"SIP/2.0 400 Bad Request\r\n")
    assert f"Call-ID: {peer.call_id}\r\n".encode() in bad_request
    short_body = data.replace(b"Content-Length: 0", b"Content-Length: 50")
    peer.socket.sendto(short_body, peer.server)
    assert peer.receive(status=400).call_id == peer.call_id
    peer.socket.sendto(b"\xff\xfe not SIP at all \x00\x01", peer.server)
    peer.socket.sendto(b"SIP/2.0 200 OK\r\n\r\n", peer.server)  # a stray response: ignored
    assert peer.nothing_within(0.5)
    assert sip_server.user_agent.malformed_datagrams == 4


def test_fuzzed_datagrams_never_take_the_server_down(peer: Peer, sip_server: SipServer) -> None:
    data, _ = peer.request("OPTIONS")
    peer.receive(status=200)
    generator = random.Random(7)
    for _ in range(400):
        mutated = bytearray(data)
        for _ in range(generator.randint(1, 12)):
            position = generator.randrange(len(mutated))
            mutated[position] = generator.randrange(256)
        if generator.random() < 0.2:
            mutated = mutated[: generator.randrange(len(mutated))]
        if generator.random() < 0.1:
            mutated = bytearray(generator.randbytes(generator.randint(0, 1_500)))
        peer.socket.sendto(bytes(mutated), peer.server)
    time.sleep(0.2)
    peer.call_id = "after-the-fuzz@test"
    _, branch = peer.request("OPTIONS")
    response = peer.receive(status=200)  # still serving (stray 4xx for mutated copies are skipped)
    while response.top_branch != branch:
        response = peer.receive(status=200)
    assert response.call_id == "after-the-fuzz@test"
    assert sip_server.user_agent.transport is not None and not sip_server.user_agent.transport.is_closing()


def test_cancel_while_ringing_gets_487_and_the_call_is_abandoned(sip_server: SipServer, peer: Peer) -> None:
    menu_flow()
    sip_server.application.answer_after_seconds = 30
    _, branch = peer.request("INVITE", body=peer.offer())
    assert peer.receive(status=100).top_branch == branch
    ringing = peer.receive(status=180)
    assert ringing.to_tag
    # A retransmitted INVITE is answered again and does not start a second call.
    peer.request("INVITE", branch=branch, body=peer.offer())
    peer.receive(status=180)
    peer.request("CANCEL", branch=branch)
    assert peer.receive(status=200).cseq == (1, "CANCEL")
    terminated = peer.receive(status=487)
    assert terminated.cseq == (1, "INVITE")
    sip_server.application.wait_for_milestone("ended", timeout=30)

    interaction = Interaction.objects.get()
    assert interaction.provider_ref == peer.call_id
    assert interaction.outcome == Outcome.ABANDONED
    kinds = list(InteractionEvent.objects.filter(interaction=interaction).values_list("kind", flat=True))
    assert kinds.count("call.new") == 1
    assert kinds.count("call.hangup") == 1
    assert "call.answered" not in kinds


def test_hold_by_reinvite_dtmf_by_info_then_the_caller_hangs_up(sip_server: SipServer, peer: Peer) -> None:
    menu_flow()
    peer.request("INVITE", body=peer.offer(types="8 101"))
    answer = peer.receive(status=200)
    peer.remote_tag = answer.to_tag
    negotiated = parse_offer(answer.body)
    assert negotiated.rtpmap == {8: "PCMA", 101: "TELEPHONE-EVENT"}
    assert negotiated.address == "127.0.0.1"
    peer.ack()

    peer.cseq = 2
    peer.request("INVITE", in_dialog=True, body=peer.offer(types="8 101", direction="sendonly"))
    held = peer.receive(status=200)
    assert held.cseq == (2, "INVITE")
    assert parse_offer(held.body).direction == "recvonly"
    peer.request("ACK", cseq=2, in_dialog=True)

    peer.cseq = 3
    peer.request("INFO", in_dialog=True, headers={"Content-Type": "application/dtmf-relay"}, body="")
    peer.receive(status=200)  # an empty INFO (keep-alive) is fine
    info = (
        "INFO sip:fedele@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch={new_branch()}\r\n"
        f"From: <sip:+390612345678@127.0.0.1>;tag={peer.tag}\r\n"
        f"To: <sip:{IVR_NUMBER}@127.0.0.1>;tag={peer.remote_tag}\r\n"
        f"Call-ID: {peer.call_id}\r\nCSeq: 4 INFO\r\nContent-Type: application/dtmf-relay\r\n"
        "Content-Length: 24\r\n\r\nSignal=2\r\nDuration=160\r\n"
    )
    peer.socket.sendto(info.encode(), peer.server)
    assert peer.receive(status=200).cseq == (4, "INFO")
    call_ref = sip_server.application.wait_for_milestone("queued", timeout=30)
    assert call_ref == peer.call_id

    peer.cseq = 5
    peer.request("BYE", in_dialog=True)
    assert peer.receive(status=200).cseq == (5, "BYE")
    sip_server.application.wait_for_milestone("ended", timeout=30)

    interaction = Interaction.objects.get(provider_ref=peer.call_id)
    assert interaction.queue is not None and interaction.queue.code == "billing"
    assert interaction.outcome == Outcome.ABANDONED
    events = InteractionEvent.objects.filter(interaction=interaction)
    dtmf = [event.data for event in events if event.kind == "call.dtmf"]
    assert [(entry["digit"], entry["method"]) for entry in dtmf] == [("2", "sip-info")]
    kinds = [event.kind for event in events]
    assert kinds.count("call.hold") == 1
    assert kinds.count("call.hangup") == 1


def test_a_number_without_a_published_flow_gets_404_and_the_call_fails(
    sip_server: SipServer, peer: Peer
) -> None:
    peer.request("INVITE", uri="sip:+390699999999@127.0.0.1", body=peer.offer())
    assert peer.receive(status=100).cseq == (1, "INVITE")
    refused = peer.receive(status=404)
    assert refused.to_tag
    peer.ack()
    sip_server.application.wait_for_milestone("ended", timeout=30)
    interaction = Interaction.objects.get(provider_ref=peer.call_id)
    assert interaction.state == "ended"
    kinds = list(InteractionEvent.objects.filter(interaction=interaction).values_list("kind", flat=True))
    assert "call.answered" not in kinds
    assert kinds.count("call.hangup") == 1


def test_only_allowed_sources_may_talk_to_the_server(tmp_path: Path) -> None:
    server = SipServer(host="127.0.0.1", port=0, prompts_dir=tmp_path, allowed_sources=["10.0.0.0/8"])
    server.start_in_thread()
    phone = Peer(server.port)
    try:
        phone.request("OPTIONS")
        assert phone.receive(status=403).cseq == (1, "OPTIONS")
        phone.request("INVITE", body=phone.offer())
        assert phone.receive(status=403).cseq == (1, "INVITE")
        assert server.user_agent.refused_datagrams == 2
        assert Interaction.objects.count() == 0
    finally:
        phone.close()
        server.stop()
    allowed = SipServer(host="127.0.0.1", port=0, prompts_dir=tmp_path, allowed_sources=["127.0.0.1"])
    allowed.start_in_thread()
    phone = Peer(allowed.port)
    try:
        phone.request("OPTIONS")
        assert phone.receive(status=200).cseq == (1, "OPTIONS")
    finally:
        phone.close()
        allowed.stop()


def test_a_late_offer_is_answered_in_the_ack_and_sets_the_codec(sip_server: SipServer, peer: Peer) -> None:
    menu_flow()
    peer.request("INVITE")  # no SDP: we offer, the caller answers in the ACK
    answer = peer.receive(status=200)
    peer.remote_tag = answer.to_tag
    ours = parse_offer(answer.body)
    assert ours.payload_types == (0, 8, 101)
    ack_body = peer.offer(types="8 101")
    ack = (
        "ACK sip:fedele@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch={new_branch()}\r\n"
        f"From: <sip:+390612345678@127.0.0.1>;tag={peer.tag}\r\n"
        f"To: <sip:{IVR_NUMBER}@127.0.0.1>;tag={peer.remote_tag}\r\n"
        f"Call-ID: {peer.call_id}\r\nCSeq: 1 ACK\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(ack_body)}\r\n\r\n{ack_body}"
    )
    peer.socket.sendto(ack.encode(), peer.server)
    # The welcome prompt reaches our media port as PCMA (payload type 8), the codec we answered.
    peer.media.settimeout(15)
    packet = parse_rtp(peer.media.recv(2_048))
    assert packet.payload_type == 8
    live = sip_server.live_call(peer.call_id)
    assert live is not None and live.negotiated.codec == "PCMA"

    peer.cseq = 2
    peer.request("BYE", in_dialog=True)
    assert peer.receive(status=200).cseq == (2, "BYE")
    sip_server.application.wait_for_milestone("ended", timeout=30)


def test_a_late_offer_without_a_usable_answer_is_hung_up(sip_server: SipServer, peer: Peer) -> None:
    menu_flow()
    peer.request("INVITE")
    answer = peer.receive(status=200)
    peer.remote_tag = answer.to_tag
    peer.ack()  # no SDP in the ACK either
    bye = peer.receive(method="BYE")
    assert bye.call_id == peer.call_id
    sip_server.application.wait_for_milestone("ended", timeout=30)
    assert Interaction.objects.get(provider_ref=peer.call_id).state == "ended"

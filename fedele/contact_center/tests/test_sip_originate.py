"""Outbound calls over SIP: fedele's user agent places the INVITE through the configured trunk and
real sipp plays the callee (or the trunk) on 127.0.0.1. An answered call reports ringing, answered
and the callee's hang-up with the call's duration; busy, an unanswered call cancelled by the agent
or by the ring timeout, a 407 digest challenge answered once with the right response, a click-to-
dial call handed to the agent's extension with REFER; and what is refused before any packet.

Ports (kept apart from the other SIP tests): our user agent on 15060-15079, sipp on 15080-15099,
RTP 40000-40499 for us and 40500-40999 for sipp."""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from fedele.contact_center.models import Interaction, InteractionEvent, InteractionState, Outcome
from fedele.contact_center.services.calls import call_originate
from fedele.contact_center.telephony import sip
from fedele.contact_center.telephony.registry import adapter_for
from fedele.contact_center.telephony.sip.message import SipMessage, parse_message, response_to
from fedele.contact_center.telephony.sip.server import SipServer
from fedele.contact_center.tests.factories import AgentFactory
from fedele.contact_center.tests.sip_fixtures import needs_sipp, sqlite_shared_connection
from fedele.contact_center.tests.sipp.tools import SCENARIOS, SIPP, SippRun, finish_sipp
from fedele.shared.errors import Conflict, ValidationFailed

pytestmark = [needs_sipp, pytest.mark.django_db(transaction=True)]

CALLER_ID = "+390600000001"
CUSTOMER = "+390612345678"
DOMAIN = "fedele.test"
PASSWORD = "s3cret-Trunk"
SERVER_PORTS = range(15060, 15080)
SIPP_PORTS = range(15080, 15100)
SERVER_RTP = (40000, 40499)
SIPP_RTP = range(40500, 41000, 2)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port(ports: range) -> int:
    for port in ports:
        if _bindable(port):
            return port
    raise OSError(f"no free UDP port in {ports}")


def _free_media_port() -> int:
    for port in SIPP_RTP:
        if _bindable(port) and _bindable(port + 1):
            return port
    raise OSError("no free RTP port pair for sipp")


@pytest.fixture
def sip_server(tmp_path: Path) -> Iterator[SipServer]:
    sip.register()
    server = SipServer(
        host="127.0.0.1",
        port=_free_port(SERVER_PORTS),
        rtp_ports=SERVER_RTP,
        prompts_dir=tmp_path / "prompts",
        connections_override=sqlite_shared_connection(),
    )
    server.start_in_thread()
    try:
        yield server
    finally:
        server.stop()


class Callee:
    """sipp as the UAS at the far end of the trunk, running one scenario for one call."""

    def __init__(self, scenario: str, work_dir: Path) -> None:
        assert SIPP is not None
        self.work_dir = work_dir
        self.port = _free_port(SIPP_PORTS)
        shutil.copy(SCENARIOS / scenario, work_dir / scenario)
        command = [
            SIPP,
            "-sf",
            scenario,
            "-i",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(_free_media_port()),
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "60s",
            "-timeout_error",
            "-trace_err",
            "-error_file",
            "errors.log",
            "-trace_msg",
            "-message_file",
            "messages.log",
        ]
        # sipp from PATH with our own arguments: nothing untrusted reaches the command line.
        self.process = subprocess.Popen(  # noqa: S603
            command, cwd=work_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 10
        while _bindable(self.port):  # sipp has not bound its port yet
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"sipp did not start: {finish_sipp(self.process, work_dir, timeout=5)}")
            time.sleep(0.05)

    def finish(self, *, timeout: float = 60) -> SippRun:
        return finish_sipp(self.process, self.work_dir, timeout=timeout)

    def exited(self) -> bool:
        return self.process.poll() is not None

    def messages(self) -> str:
        log = self.work_dir / "messages.log"
        return log.read_text(errors="replace") if log.exists() else ""


@pytest.fixture
def callee(tmp_path: Path, settings: Any) -> Iterator[Callable[[str], Callee]]:
    started: list[Callee] = []

    def start(scenario: str) -> Callee:
        peer = Callee(scenario, tmp_path)
        started.append(peer)
        settings.FEDELE_SIP_OUTBOUND_PROXY = f"127.0.0.1:{peer.port}"
        return peer

    settings.FEDELE_SIP_FROM_DOMAIN = DOMAIN
    settings.FEDELE_SIP_FROM_USER = "fedele"
    settings.FEDELE_SIP_AUTH_USERNAME = "fedele-trunk"
    settings.FEDELE_SIP_AUTH_PASSWORD = PASSWORD
    settings.FEDELE_SIP_RING_TIMEOUT_SECONDS = 30
    yield start
    for peer in started:
        if not peer.exited():
            peer.process.kill()
            peer.process.communicate()


def _events(interaction: Interaction) -> list[InteractionEvent]:
    return list(InteractionEvent.objects.filter(interaction=interaction).order_by("created_at", "id"))


def _kinds(interaction: Interaction) -> list[str]:
    return [event.kind for event in _events(interaction) if event.kind.startswith("call.")]


def _event(interaction: Interaction, kind: str) -> InteractionEvent:
    return InteractionEvent.objects.get(interaction=interaction, kind=kind)


def _wait_ended(server: SipServer, call_ref: str, peer: Callee) -> SippRun:
    server.application.wait_for_milestone("ended", call_ref=call_ref, timeout=60, give_up=peer.exited)
    return peer.finish()


def test_an_answered_call_rings_is_answered_and_ends_with_its_duration(
    sip_server: SipServer, callee: Callable[[str], Callee]
) -> None:
    peer = callee("uas_answer.xml")
    call_ref = adapter_for("sip").originate(to_number=CUSTOMER, from_number=CALLER_ID, context={})
    run = _wait_ended(sip_server, call_ref, peer)
    assert run.succeeded, run

    interaction = Interaction.objects.get(provider="sip", provider_ref=call_ref)
    assert (interaction.direction, interaction.from_address, interaction.to_address) == (
        "outbound",
        CALLER_ID,
        CUSTOMER,
    )
    assert _kinds(interaction) == ["call.new", "call.ringing", "call.answered", "call.hangup"]
    ringing, answered, hangup = (
        _event(interaction, kind) for kind in ("call.ringing", "call.answered", "call.hangup")
    )
    # sipp rings for 1 s, then hangs up 2.5 s after our ACK.
    assert (answered.created_at - ringing.created_at).total_seconds() >= 1.0
    duration = int((hangup.created_at - answered.created_at).total_seconds())
    assert hangup.data["call_duration"] == duration
    assert 2 <= duration <= 4
    assert (hangup.data["status"], hangup.data["cause"]) == ("completed", "remote_bye")
    assert interaction.state == InteractionState.ENDED
    # Answered with no agent to take it (no click-to-dial agent, no dialer routing): abandoned.
    assert interaction.outcome == Outcome.ABANDONED
    assert sip_server.live_call(call_ref) is None


def test_a_busy_callee_ends_the_call_busy_and_the_486_is_acknowledged(
    sip_server: SipServer, callee: Callable[[str], Callee]
) -> None:
    peer = callee("uas_busy.xml")
    call_ref = adapter_for("sip").originate(to_number=CUSTOMER, from_number=CALLER_ID, context={})
    run = _wait_ended(sip_server, call_ref, peer)
    assert run.succeeded, run  # sipp got its ACK (CSeq 1 ACK)

    interaction = Interaction.objects.get(provider="sip", provider_ref=call_ref)
    assert _kinds(interaction) == ["call.new", "call.hangup"]
    hangup = _event(interaction, "call.hangup")
    assert (hangup.data["status"], hangup.data["cause"], hangup.data["sip"]) == ("busy", "busy", 486)
    assert "call_duration" not in hangup.data
    assert interaction.outcome == Outcome.BUSY


def test_hanging_up_while_it_rings_cancels_the_invite(
    sip_server: SipServer, callee: Callable[[str], Callee]
) -> None:
    peer = callee("uas_ring_no_answer.xml")
    adapter = adapter_for("sip")
    call_ref = adapter.originate(to_number=CUSTOMER, from_number=CALLER_ID, context={})
    deadline = time.monotonic() + 30
    while not InteractionEvent.objects.filter(
        interaction__provider_ref=call_ref, kind="call.ringing"
    ).exists():
        assert time.monotonic() < deadline, "no ringing reported"
        time.sleep(0.05)
    adapter.hangup(call_ref)
    run = _wait_ended(sip_server, call_ref, peer)
    assert run.succeeded, run  # CANCEL (same CSeq number as the INVITE), 487 acknowledged

    interaction = Interaction.objects.get(provider="sip", provider_ref=call_ref)
    assert _kinds(interaction) == ["call.new", "call.ringing", "call.hangup"]
    hangup = _event(interaction, "call.hangup")
    assert (hangup.data["status"], hangup.data["cause"], hangup.data["sip"]) == ("canceled", "cancelled", 487)
    assert interaction.outcome == Outcome.NO_ANSWER
    assert "CSeq: 1 CANCEL" in peer.messages()


def test_a_call_nobody_answers_is_cancelled_at_the_ring_timeout(
    sip_server: SipServer, callee: Callable[[str], Callee], settings: Any
) -> None:
    peer = callee("uas_ring_no_answer.xml")
    settings.FEDELE_SIP_RING_TIMEOUT_SECONDS = 2
    started = time.monotonic()
    call_ref = adapter_for("sip").originate(to_number=CUSTOMER, from_number=CALLER_ID, context={})
    run = _wait_ended(sip_server, call_ref, peer)
    assert run.succeeded, run
    assert time.monotonic() - started >= 2

    interaction = Interaction.objects.get(provider="sip", provider_ref=call_ref)
    hangup = _event(interaction, "call.hangup")
    assert (hangup.data["status"], hangup.data["cause"], hangup.data["sip"]) == (
        "no-answer",
        "cancelled",
        487,
    )
    assert interaction.outcome == Outcome.NO_ANSWER


def _header(message: str, name: str) -> str:
    match = re.search(rf"^{name}:\s*(.+?)\r?$", message, re.MULTILINE)
    assert match, f"no {name} in {message[:400]}"
    return match.group(1)


def _digest_parameters(value: str) -> dict[str, str]:
    assert value.startswith("Digest ")
    return {
        name: quoted or plain for name, quoted, plain in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', value)
    }


def test_a_407_challenge_is_answered_once_with_the_right_digest(
    sip_server: SipServer, callee: Callable[[str], Callee]
) -> None:
    peer = callee("uas_proxy_challenge.xml")
    call_ref = adapter_for("sip").originate(to_number=CUSTOMER, from_number=CALLER_ID, context={})
    run = _wait_ended(sip_server, call_ref, peer)
    assert run.succeeded, run

    received = re.findall(
        r"UDP message received \[\d+\] bytes :\n\n(.*?)(?=\n-{10,}|\Z)", peer.messages(), re.S
    )
    invites = [message for message in received if message.startswith("INVITE ")]
    assert len(invites) == 2  # the first, then exactly one retry
    assert "Proxy-Authorization" not in invites[0]
    credentials = _digest_parameters(_header(invites[1], "Proxy-Authorization"))
    assert {
        key: credentials[key] for key in ("username", "realm", "nonce", "uri", "qop", "nc", "algorithm")
    } == {
        "username": "fedele-trunk",
        "realm": "fedele.test",
        "nonce": "b5e1c0ffee42",
        "uri": f"sip:{CUSTOMER}@{DOMAIN}",
        "qop": "auth",
        "nc": "00000001",
        "algorithm": "MD5",
    }

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - RFC 2617's algorithm

    first = md5(f"fedele-trunk:fedele.test:{PASSWORD}")
    second = md5(f"INVITE:sip:{CUSTOMER}@{DOMAIN}")
    expected = md5(f"{first}:b5e1c0ffee42:00000001:{credentials['cnonce']}:auth:{second}")
    assert credentials["response"] == expected

    interaction = Interaction.objects.get(provider="sip", provider_ref=call_ref)
    assert _kinds(interaction) == ["call.new", "call.answered", "call.hangup"]
    assert _event(interaction, "call.hangup").data["cause"] == "remote_bye"


def test_a_401_challenge_is_answered_with_credentials_sipp_verifies(
    sip_server: SipServer, callee: Callable[[str], Callee]
) -> None:
    peer = callee("uas_www_challenge.xml")
    call_ref = adapter_for("sip").originate(to_number=CUSTOMER, from_number=CALLER_ID, context={})
    run = _wait_ended(sip_server, call_ref, peer)
    assert run.succeeded, run
    interaction = Interaction.objects.get(provider="sip", provider_ref=call_ref)
    assert _kinds(interaction) == ["call.new", "call.answered", "call.hangup"]  # not 403


def test_a_wrong_password_is_refused_by_the_trunk_and_not_retried_again(
    sip_server: SipServer, callee: Callable[[str], Callee], settings: Any
) -> None:
    peer = callee("uas_www_challenge.xml")
    settings.FEDELE_SIP_AUTH_PASSWORD = "not-the-password"
    call_ref = adapter_for("sip").originate(to_number=CUSTOMER, from_number=CALLER_ID, context={})
    run = _wait_ended(sip_server, call_ref, peer)
    assert run.succeeded, run  # sipp's 403 branch, acknowledged
    interaction = Interaction.objects.get(provider="sip", provider_ref=call_ref)
    hangup = _event(interaction, "call.hangup")
    assert (hangup.data["status"], hangup.data["sip"]) == ("failed", 403)
    assert interaction.outcome == Outcome.FAILED


def test_click_to_dial_over_sip_hands_the_answered_customer_to_the_agents_extension(
    sip_server: SipServer, callee: Callable[[str], Callee]
) -> None:
    from fedele.contact_center.models import AgentState
    from fedele.contact_center.services.presence import agent_state_set

    agent = AgentFactory(display_name="Anna Bianchi", extension="201")
    agent_state_set(agent=agent, state=AgentState.AVAILABLE)
    peer = callee("uas_answer_then_refer.xml")
    with sip_server.database.sharing():  # the call's events use this connection once the INVITE leaves
        interaction = call_originate(
            agent=agent, to_number="06 1234 5678", from_number=CALLER_ID, provider="sip"
        )
    call_ref = interaction.provider_ref
    assert call_ref.endswith(f"@{DOMAIN}")
    sip_server.application.wait_for_milestone(
        "handed_to_agent", call_ref=call_ref, timeout=60, give_up=peer.exited
    )
    run = _wait_ended(sip_server, call_ref, peer)
    assert run.succeeded, run

    interaction.refresh_from_db()
    assert Interaction.objects.filter(provider="sip").count() == 1  # the event bound the call to it
    assert interaction.state == InteractionState.CONNECTED  # the agent talks on their phone now
    assert interaction.agent_id == agent.pk
    assert _kinds(interaction) == ["call.new", "call.ringing", "call.answered"]
    handed = _event(interaction, "sip.handed_to_agent")
    assert handed.data["target"] == f"sip:201@{DOMAIN}"


def test_a_number_that_cannot_be_dialled_is_refused_before_any_packet(
    sip_server: SipServer, settings: Any
) -> None:
    trunk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    trunk.bind(("127.0.0.1", _free_port(SIPP_PORTS)))
    trunk.settimeout(1.5)
    settings.FEDELE_SIP_OUTBOUND_PROXY = f"127.0.0.1:{trunk.getsockname()[1]}"
    settings.FEDELE_SIP_FROM_DOMAIN = DOMAIN
    adapter = adapter_for("sip")
    try:
        for number in ("06-CALL-ME", "+39 06 1234\r\nVia: x", "", "1"):
            with pytest.raises(ValidationFailed) as refused:
                adapter.originate(to_number=number, from_number=CALLER_ID, context={})
            assert refused.value.code == "invalid_number"
        with pytest.raises(TimeoutError):
            trunk.recv(65_535)
    finally:
        trunk.close()
    assert Interaction.objects.count() == 0
    assert sip_server.user_agent.calls == {}


def test_without_a_trunk_an_outbound_call_is_refused_and_click_to_dial_fails_cleanly(
    sip_server: SipServer, settings: Any
) -> None:
    from fedele.contact_center.models import AgentState
    from fedele.contact_center.services.presence import agent_state_set

    settings.FEDELE_SIP_OUTBOUND_PROXY = ""
    with pytest.raises(Conflict) as refused:
        adapter_for("sip").originate(to_number=CUSTOMER, from_number=CALLER_ID, context={})
    assert refused.value.code == "sip_trunk_not_configured"

    agent = AgentFactory(extension="201")
    agent_state_set(agent=agent, state=AgentState.AVAILABLE)
    with pytest.raises(Conflict):
        call_originate(agent=agent, to_number=CUSTOMER, from_number=CALLER_ID, provider="sip")
    interaction = Interaction.objects.get()
    assert (interaction.state, interaction.outcome, interaction.provider_ref) == (
        InteractionState.ENDED,
        Outcome.FAILED,
        "",
    )
    assert sip_server.user_agent.calls == {}


REMINDER_FLOW = {
    "languages": ["en"],
    "default_language": "en",
    "start": "reminder",
    "nodes": {
        "reminder": {"type": "say", "prompt": {"en": "Your appointment is tomorrow"}, "next": "bye"},
        "bye": {"type": "hangup", "prompt": {"en": "Goodbye"}},
    },
}


def test_an_answered_call_plays_the_flow_the_context_names(
    sip_server: SipServer, callee: Callable[[str], Callee]
) -> None:
    import json

    from fedele.contact_center.services.ivr import ivr_flow_create, ivr_publish

    flow = ivr_flow_create(actor=None, code="reminder", name="Reminder", source=json.dumps(REMINDER_FLOW))
    ivr_publish(actor=None, flow=flow)
    peer = callee("uas_answer_wait_bye.xml")
    call_ref = adapter_for("sip").originate(
        to_number=CUSTOMER, from_number=CALLER_ID, context={"flow": "reminder"}
    )
    run = _wait_ended(sip_server, call_ref, peer)
    assert run.succeeded, run  # fedele hung up with BYE (CSeq 2) once the flow's last prompt played

    interaction = Interaction.objects.get(provider="sip", provider_ref=call_ref)
    nodes = [event.data["node"] for event in _events(interaction) if event.kind == "ivr.node"]
    assert nodes == ["reminder", "bye"]
    assert _kinds(interaction) == ["call.new", "call.answered", "call.hangup"]
    hangup = _event(interaction, "call.hangup")
    assert (hangup.data["status"], hangup.data["cause"]) == ("completed", "local_bye")


class Trunk:
    """A raw UDP socket playing the trunk, for what sipp cannot script: retransmitted 2xx, routes."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", _free_port(SIPP_PORTS)))
        self.socket.settimeout(15)
        self.port = self.socket.getsockname()[1]
        self.media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.media.bind(("127.0.0.1", 0))
        self.fedele: tuple[str, int] = ("127.0.0.1", 0)

    def receive(self, method: str) -> tuple[SipMessage, bytes]:
        while True:
            data, self.fedele = self.socket.recvfrom(65_535)
            message = parse_message(data)
            if message.is_request and message.method == method:
                return message, data

    def reply(self, request: SipMessage, status: int, *, sdp: bool = True) -> bytes:
        response = response_to(request, status, to_tag="trunk-tag")
        response.add_header("Record-Route", "<sip:sbc.fedele.test;lr>")
        response.add_header("Contact", f"<sip:customer@127.0.0.1:{self.port}>")
        if sdp:
            response.add_header("Content-Type", "application/sdp")
            response.body = (
                "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                f"m=audio {self.media.getsockname()[1]} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
            ).encode()
        data = response.to_bytes()
        self.socket.sendto(data, self.fedele)
        return data

    def close(self) -> None:
        self.socket.close()
        self.media.close()


def test_a_retransmitted_200_gets_the_same_ack_and_the_bye_follows_the_route_set(
    sip_server: SipServer, settings: Any
) -> None:
    trunk = Trunk()
    settings.FEDELE_SIP_OUTBOUND_PROXY = f"127.0.0.1:{trunk.port}"
    settings.FEDELE_SIP_FROM_DOMAIN = DOMAIN
    adapter = adapter_for("sip")
    try:
        call_ref = adapter.originate(to_number=CUSTOMER, from_number=CALLER_ID, context={})
        invite, _ = trunk.receive("INVITE")
        assert (invite.uri, invite.call_id, invite.cseq) == (
            f"sip:{CUSTOMER}@{DOMAIN}",
            call_ref,
            (1, "INVITE"),
        )
        ok = trunk.reply(invite, 200)
        ack, ack_bytes = trunk.receive("ACK")
        assert (ack.uri, ack.header("Route"), ack.cseq, ack.to_tag) == (
            f"sip:customer@127.0.0.1:{trunk.port}",
            "<sip:sbc.fedele.test;lr>",
            (1, "ACK"),
            "trunk-tag",
        )
        trunk.socket.sendto(ok, trunk.fedele)  # as if our ACK were lost
        assert trunk.receive("ACK")[1] == ack_bytes
        sip_server.application.wait_for_milestone("answered", call_ref=call_ref, timeout=30)
        with ThreadPoolExecutor(max_workers=1) as background:  # hangup waits for the BYE's answer
            hanging_up = background.submit(adapter.hangup, call_ref)
            bye, _ = trunk.receive("BYE")
            assert (bye.uri, bye.header("Route"), bye.cseq, bye.from_tag, bye.to_tag) == (
                f"sip:customer@127.0.0.1:{trunk.port}",
                "<sip:sbc.fedele.test;lr>",
                (2, "BYE"),
                invite.from_tag,
                "trunk-tag",
            )
            trunk.reply(bye, 200, sdp=False)
            hanging_up.result(timeout=15)
        sip_server.application.wait_for_milestone("ended", call_ref=call_ref, timeout=30)
    finally:
        trunk.close()
    hangup = InteractionEvent.objects.get(interaction__provider_ref=call_ref, kind="call.hangup")
    assert (hangup.data["status"], hangup.data["cause"]) == ("completed", "local_bye")


def test_an_answer_without_usable_sdp_is_acknowledged_then_hung_up_as_failed(
    sip_server: SipServer, settings: Any
) -> None:
    trunk = Trunk()
    settings.FEDELE_SIP_OUTBOUND_PROXY = f"127.0.0.1:{trunk.port}"
    settings.FEDELE_SIP_FROM_DOMAIN = DOMAIN
    try:
        call_ref = adapter_for("sip").originate(to_number=CUSTOMER, from_number=CALLER_ID, context={})
        invite, _ = trunk.receive("INVITE")
        trunk.reply(invite, 200, sdp=False)
        assert trunk.receive("ACK")[0].cseq == (1, "ACK")
        bye, _ = trunk.receive("BYE")
        trunk.reply(bye, 200, sdp=False)
        sip_server.application.wait_for_milestone("ended", call_ref=call_ref, timeout=30)
    finally:
        trunk.close()
    interaction = Interaction.objects.get(provider="sip", provider_ref=call_ref)
    assert _kinds(interaction) == ["call.new", "call.hangup"]
    hangup = _event(interaction, "call.hangup")
    assert (hangup.data["status"], hangup.data["cause"], hangup.data["sip"]) == ("failed", "no_media", 200)
    assert interaction.outcome == Outcome.FAILED


def test_the_sip_server_process_places_a_call_asked_for_on_the_control_channel(
    sip_server: SipServer, callee: Callable[[str], Callee]
) -> None:
    # What a web process publishes on ``cc.sip.control`` when the user agent runs in cc_sip_server.
    peer = callee("uas_busy.xml")
    message = {
        "type": "sip.control",
        "action": "originate",
        "call_ref": "from-the-web@fedele.test",
        "to_number": CUSTOMER,
        "from_number": CALLER_ID,
        "context": {"campaign": "spring"},
    }
    assert sip_server.run(sip_server.control(message)) is True
    run = _wait_ended(sip_server, "from-the-web@fedele.test", peer)
    assert run.succeeded, run
    interaction = Interaction.objects.get(provider="sip", provider_ref="from-the-web@fedele.test")
    assert interaction.attributes["campaign"] == "spring"
    assert _event(interaction, "call.hangup").data["status"] == "busy"

"""fedele's SIP user agent against sipp on 127.0.0.1, with real SIP and RTP: a caller presses 2 in
the IVR menu (RFC 4733 events replayed from a pcap), waits in the billing queue, the router offers the
call to the billing agent, the agent accepts and the call is handed to the agent's extension with a
REFER. Also: the voicemail branch records the caller, a caller who hangs up in queue is abandoned,
and CANCEL before the answer."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fedele.contact_center.models import (
    Interaction,
    InteractionEvent,
    InteractionState,
    Outcome,
    VoicemailMessage,
)
from fedele.contact_center.models.routing import Offer, OfferState
from fedele.contact_center.services.routing import offer_accept
from fedele.contact_center.telephony.sip.audio import read_wav, tone
from fedele.contact_center.telephony.sip.server import SipServer
from fedele.contact_center.tests.sip_fixtures import (
    IVR_NUMBER,
    billing_agent,
    menu_flow,
    needs_sipp,
    running_sip_server,
)
from fedele.contact_center.tests.sipp.tools import audio_records, dtmf_records, finish_sipp, start_sipp

pytestmark = [needs_sipp, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sip_server(tmp_path: Path) -> Iterator[SipServer]:
    yield from running_sip_server(tmp_path)


def _timeline(interaction: Interaction) -> list[str]:
    return list(InteractionEvent.objects.filter(interaction=interaction).values_list("kind", flat=True))


def test_caller_presses_2_waits_in_queue_and_is_handed_to_the_accepting_agent(
    sip_server, tmp_path: Path
) -> None:
    menu_flow()
    agent = billing_agent(extension="201")

    sipp = start_sipp(
        scenario="queue_then_agent.xml",
        work_dir=tmp_path,
        server_port=sip_server.port,
        service=IVR_NUMBER,
        digits="2",
    )
    try:
        call_ref = sip_server.application.wait_for_milestone(
            "queued", timeout=60, give_up=lambda: sipp.poll() is not None
        )
    except TimeoutError:
        run = finish_sipp(sipp, tmp_path, timeout=5)
        raise AssertionError(f"no call queued; sipp said {run}") from None

    with sip_server.database.sharing():  # the call is live: its thread uses this connection too
        interaction = Interaction.objects.get(provider="sip", provider_ref=call_ref)
        assert interaction.channel == "voice"
        assert interaction.from_address == "+390612345678"
        assert interaction.to_address == IVR_NUMBER
        assert interaction.queue is not None and interaction.queue.code == "billing"
        assert interaction.required_skills == {"billing": 2}
        assert interaction.state in (InteractionState.QUEUED, InteractionState.OFFERED)
        dtmf = InteractionEvent.objects.filter(interaction=interaction, kind="call.dtmf")
        assert [event.data["digit"] for event in dtmf] == ["2"]  # three redundant end packets, one digit
        assert dtmf[0].data["method"] == "rfc4733"
        timeline = _timeline(interaction)
        for kind in ("call.new", "call.ringing", "call.answered", "call.dtmf"):
            assert kind in timeline

        offer = Offer.objects.get(interaction=interaction, agent=agent)
        assert offer.state == OfferState.PENDING
        offer_accept(offer=offer, agent=agent)

    sip_server.application.wait_for_milestone(
        "handed_to_agent", call_ref=call_ref, timeout=60, give_up=lambda: sipp.poll() is not None
    )
    run = finish_sipp(sipp, tmp_path)
    assert run.succeeded, run

    interaction.refresh_from_db()
    assert interaction.state == InteractionState.CONNECTED  # the agent talks on their phone now
    assert interaction.agent_id == agent.pk
    handed = InteractionEvent.objects.get(interaction=interaction, kind="sip.handed_to_agent")
    assert handed.data["target"] == "sip:201@127.0.0.1"
    assert "call.hangup" not in _timeline(interaction)


def test_caller_who_hangs_up_in_queue_is_abandoned(sip_server, tmp_path: Path) -> None:
    menu_flow()
    sipp = start_sipp(
        scenario="hang_up_in_queue.xml",
        work_dir=tmp_path,
        server_port=sip_server.port,
        service=IVR_NUMBER,
        digits="1",
    )
    call_ref = sip_server.application.wait_for_milestone(
        "ended", timeout=60, give_up=lambda: sipp.poll() is not None
    )
    run = finish_sipp(sipp, tmp_path)
    assert run.succeeded, run

    interaction = Interaction.objects.get(provider="sip", provider_ref=call_ref)
    assert interaction.queue is not None and interaction.queue.code == "sales"
    assert interaction.state == InteractionState.ENDED
    assert interaction.outcome == Outcome.ABANDONED
    assert _timeline(interaction).count("call.hangup") == 1


def test_voicemail_branch_records_the_caller_to_a_wav(sip_server, tmp_path: Path) -> None:
    menu_flow()
    # "3", then two seconds of a 440 Hz tone (the caller speaking) from 1.5 s on.
    spoken = tone((440.0,), 2_000)
    records = dtmf_records("3") + audio_records(spoken, codec="PCMA", payload_type=8, start=1.5)
    sipp = start_sipp(
        scenario="leave_voicemail.xml",
        work_dir=tmp_path,
        server_port=sip_server.port,
        service=IVR_NUMBER,
        records=records,
    )
    call_ref = sip_server.application.wait_for_milestone(
        "ended", timeout=60, give_up=lambda: sipp.poll() is not None
    )
    run = finish_sipp(sipp, tmp_path)
    assert run.succeeded, run

    interaction = Interaction.objects.get(provider="sip", provider_ref=call_ref)
    assert interaction.outcome == Outcome.VOICEMAIL
    message = VoicemailMessage.objects.get(interaction=interaction)
    assert message.box.code == "billing-box"
    content = message.audio.read()
    assert content[:4] == b"RIFF" and content[8:12] == b"WAVE"
    pcm = read_wav(io.BytesIO(content))
    # The box's limit is 3 s: what arrived of the tone is in the file, decoded from PCMA.
    assert 1 <= message.duration_seconds <= 3
    samples = np.frombuffer(pcm, dtype="<i2")
    assert int(np.abs(samples).max()) > 5_000  # the tone, not silence


@pytest.mark.slow
def test_twenty_concurrent_callers_are_each_queued_once_with_their_one_key(
    sip_server, tmp_path: Path
) -> None:
    menu_flow()
    started = time.monotonic()
    sipp = start_sipp(
        scenario="hang_up_in_queue.xml",
        work_dir=tmp_path,
        server_port=sip_server.port,
        service=IVR_NUMBER,
        digits="1",
        calls=20,
        rate=10,
    )
    run = finish_sipp(sipp, tmp_path, timeout=180)
    assert run.succeeded, run
    deadline = time.monotonic() + 60
    while (
        Interaction.objects.filter(state=InteractionState.ENDED).count() < 20 and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    elapsed = time.monotonic() - started

    interactions = list(Interaction.objects.filter(provider="sip"))
    assert len(interactions) == 20
    assert len({interaction.provider_ref for interaction in interactions}) == 20
    for interaction in interactions:
        assert interaction.queue is not None and interaction.queue.code == "sales"
        assert interaction.outcome == Outcome.ABANDONED
        digits = InteractionEvent.objects.filter(interaction=interaction, kind="call.dtmf")
        assert [event.data["digit"] for event in digits] == ["1"]
    logging.getLogger(__name__).info("20 sipp calls (10/s) through IVR, queue, hang-up: %.1f s", elapsed)

"""The issue's acceptance, end to end: a sipp caller dials the SIP endpoint on 127.0.0.1 and presses 2
in the IVR (RFC 4733 events over RTP), waits in the billing queue, the offer appears on the agent
desktop in Chromium, the agent accepts it there, and the call is handed to the agent's extension
(sipp receives the REFER for sip:201@…, reports success and is released with a BYE).

Debian's Chromium through Playwright against pytest-django's live server; sipp from Debian's
sip-tester. Screenshot: /tmp/cc-sip-offer.png (and $FEDELE_SCREENSHOTS_DIR when set).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedele.accounts.contracts import Role
from fedele.accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from fedele.contact_center.models import Interaction, InteractionEvent, InteractionState
from fedele.contact_center.telephony.sip.server import SipServer
from fedele.contact_center.tests.sip_fixtures import (
    IVR_NUMBER,
    billing_agent,
    menu_flow,
    needs_sipp,
    running_sip_server,
)
from fedele.contact_center.tests.sipp.tools import finish_sipp, start_sipp
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, needs_sipp, pytest.mark.django_db(transaction=True)]

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect


@pytest.fixture
def laptop(chromium, live_server) -> Iterator[object]:
    context = chromium.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1366, "height": 768}, locale="en-GB", base_url=live_server.url
    )
    context.set_default_timeout(45_000)  # the live server, sipp and the SIP server share two cores
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def sip_server(live_server, tmp_path: Path) -> Iterator[SipServer]:
    yield from running_sip_server(tmp_path)


def test_sipp_call_selects_2_waits_in_queue_and_the_agent_accepts_it_on_the_desktop(
    laptop, sip_server: SipServer, tmp_path: Path
) -> None:
    menu_flow()
    user = UserFactory(roles=[Role.AGENT], first_name="Anna", last_name="Bianchi")
    agent = billing_agent(extension="201", available=False, user=user)

    sign_in(laptop, user.email, DEFAULT_PASSWORD)
    laptop.goto("/contact-center/desktop/")
    laptop.get_by_test_id("state-available").click()
    expect(laptop.get_by_test_id("agent-state")).to_have_attribute("data-state", "available")

    sipp = start_sipp(
        scenario="queue_then_agent.xml",
        work_dir=tmp_path,
        server_port=sip_server.port,
        service=IVR_NUMBER,
        digits="2",
    )
    call_ref = sip_server.application.wait_for_milestone(
        "queued", timeout=60, give_up=lambda: sipp.poll() is not None
    )
    interaction = Interaction.objects.get(provider="sip", provider_ref=call_ref)

    card = laptop.get_by_test_id("offer-card")
    expect(card).to_be_visible()
    expect(card).to_have_attribute("data-interaction", str(interaction.public_id))
    for path in [Path("/tmp/cc-sip-offer.png")] + (
        [Path(os.environ["FEDELE_SCREENSHOTS_DIR"]) / "cc-sip-offer.png"]
        if os.environ.get("FEDELE_SCREENSHOTS_DIR")
        else []
    ):
        laptop.screenshot(path=str(path))  # type: ignore[attr-defined]
    laptop.get_by_test_id("offer-accept").click()
    expect(laptop.get_by_test_id("work-panel")).to_have_attribute("data-state", "connected")

    sip_server.application.wait_for_milestone(
        "handed_to_agent", call_ref=call_ref, timeout=60, give_up=lambda: sipp.poll() is not None
    )
    run = finish_sipp(sipp, tmp_path)
    assert run.succeeded, run

    interaction.refresh_from_db()
    assert interaction.state == InteractionState.CONNECTED
    assert interaction.agent_id == agent.pk
    assert interaction.queue is not None and interaction.queue.code == "billing"
    digits = InteractionEvent.objects.filter(interaction=interaction, kind="call.dtmf")
    assert [event.data["digit"] for event in digits] == ["2"]
    handed = InteractionEvent.objects.filter(interaction=interaction, kind="sip.handed_to_agent")
    assert [event.data["target"] for event in handed] == ["sip:201@127.0.0.1"]  # one REFER, not two

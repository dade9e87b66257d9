"""In Chromium: a supervisor opens a voicemail box and the browser plays the message (its audio
element loads the WAV through the audited range-request endpoint); the recording partial with its
PCI pauses and the voice settings page fit a 375 px phone. Screenshots: /tmp/cc-voicemail-*.png,
/tmp/cc-voice-settings-*.png, /tmp/cc-recordings-375.png."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fedele.accounts.tests.factories import DEFAULT_PASSWORD, user_with_roles
from fedele.contact_center.models import Interaction, QueueTelephonySettings, RecordingPause, VoicemailBox
from fedele.contact_center.services import recordings, voicemail
from fedele.contact_center.services.interactions import interaction_create
from fedele.contact_center.telephony.simulator import silent_wav
from fedele.contact_center.tests.factories import QueueFactory
from fedele.shared.models import AuditLog
from tests.browser.conftest import CHROMIUM_ARGS, CHROMIUM_PATH, _compile_catalogues, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM_PATH).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM_PATH}: run `make chromium`")
    _compile_catalogues()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with playwright_sync.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
            yield browser
            browser.close()


def _tab(chromium: Any, live_server: Any, width: int, height: int) -> Any:
    context = chromium.new_context(
        viewport={"width": width, "height": height}, locale="en-GB", base_url=live_server.url
    )
    context.set_default_timeout(30_000)
    return context


def _call(queue: Any) -> Interaction:
    return interaction_create(
        channel="voice",
        direction="inbound",
        from_address="+393331234567",
        to_address="+390212345678",
        provider="simulator",
        provider_ref="BROWSER-1",
    )


def _fits(page: Any, width: int) -> None:
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width


def test_a_voicemail_plays_in_the_browser_and_pages_fit_a_phone(
    chromium: Any, live_server: Any, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    queue = QueueFactory(code="support", channels=["voice"])
    QueueTelephonySettings.objects.create(queue=queue, record_calls=True, recording_retention_days=90)
    box = VoicemailBox.objects.create(
        code="support-vm", name="Support line", queue=queue, create_callback=False
    )
    call = _call(queue)
    message = voicemail.voicemail_create(
        interaction=call, box=box, provider="simulator", audio=silent_wav(seconds=2), duration_seconds=2
    )
    recording = recordings.recording_create(
        interaction=call, provider="simulator", audio=silent_wav(seconds=1)
    )
    Interaction.objects.filter(pk=call.pk).update(answered_at=recording.created_at)
    RecordingPause.objects.create(
        interaction=call,
        paused_at=recording.created_at + timedelta(seconds=5),
        resumed_at=recording.created_at + timedelta(seconds=25),
    )
    supervisor = user_with_roles("admin")
    box.subscribers.add(supervisor)

    for width, height in ((1366, 768), (375, 812)):
        context = _tab(chromium, live_server, width, height)
        page = context.new_page()
        sign_in(page, supervisor.email, DEFAULT_PASSWORD)
        page.goto(f"/contact-center/voicemail/{box.public_id}/")
        expect(page.get_by_test_id("voicemail-message")).to_contain_text("+393331234567")
        duration = page.evaluate(
            """() => new Promise((resolve, reject) => {
                const audio = document.querySelector('[data-testid=voicemail-message] audio');
                audio.addEventListener('loadedmetadata', () => resolve(audio.duration));
                audio.addEventListener('error', () => reject(new Error('audio error ' + audio.error.code)));
                audio.preload = 'auto';
                audio.load();
            })"""
        )
        assert duration == pytest.approx(2.0, abs=0.05)
        page.screenshot(path=f"/tmp/cc-voicemail-{width}.png", full_page=True)
        _fits(page, width)
        page.goto("/contact-center/settings/voice/")
        expect(page.locator("#voice-support")).to_be_visible()
        page.screenshot(path=f"/tmp/cc-voice-settings-{width}.png", full_page=True)
        _fits(page, width)
        if width == 375:
            page.goto(f"/contact-center/interactions/{call.public_id}/recordings/")
            expect(page.get_by_test_id("recording-pauses")).to_contain_text("20")
            page.screenshot(path="/tmp/cc-recordings-375.png", full_page=True)
            _fits(page, width)
        context.close()
    played = AuditLog.objects.filter(
        action="contact_center.voicemail_played", object_id=str(message.public_id)
    )
    assert played.exists() and set(played.values_list("actor_id", flat=True)) == {supervisor.pk}

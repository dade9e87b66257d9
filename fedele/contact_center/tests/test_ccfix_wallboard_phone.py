"""The wallboard on a 375 px phone (Debian's Chromium through Playwright): no sideways scrolling of the
page nor of a queue's table; each channel of each queue shows its key figures, labelled, stacked two a
line. Screenshot: /tmp/wallboard-phone.png."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fedele.accounts.contracts import Role
from fedele.accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from fedele.contact_center.services.interactions import interaction_create, interaction_enqueue
from fedele.contact_center.tests.desktop_support import make_desk
from fedele.contact_center.tests.factories import QueueFactory
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect
PHONE = {"width": 375, "height": 740}
KEY_FIGURES = (
    "waiting",
    "longest_wait_seconds",
    "service_level_percent",
    "average_speed_of_answer_seconds",
    "abandon_rate_percent",
    "offered_answered",
)


def _phone(chromium: Any, live_server: Any, locale: str) -> Iterator[Any]:
    context = chromium.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale=locale,
        base_url=live_server.url,
    )
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def phone(chromium: Any, live_server: Any) -> Iterator[Any]:
    yield from _phone(chromium, live_server, "en-GB")


@pytest.fixture
def telefono(chromium: Any, live_server: Any) -> Iterator[Any]:
    yield from _phone(chromium, live_server, "it-IT")


def _board(language: str = "en") -> Any:
    make_desk()  # queue "care": voice, chat, sms
    QueueFactory(
        code="sales-north-long-name",
        name_it="Vendite Nord e Centro Italia",
        name_en="Sales North and Central Italy",
        channels=["voice"],
    )
    for number in ("+390612345678", "+390612345679"):
        call = interaction_create(channel="voice", direction="inbound", from_address=number)
        interaction_enqueue(interaction=call, queue_code="care")
    return UserFactory(roles=[Role.SUPERVISOR], language=language)


def _fits(tab: Any) -> dict[str, Any]:
    return tab.evaluate(
        """() => ({
            page: document.documentElement.scrollWidth,
            tables: [...document.querySelectorAll('.cc-board-scroll')].map(
                (box) => box.scrollWidth - box.clientWidth),
        })"""
    )


def test_the_wallboard_fits_a_375_px_phone_with_every_key_figure_visible(phone: Any) -> None:
    supervisor = _board()
    sign_in(phone, supervisor.email, DEFAULT_PASSWORD)
    phone.goto("/contact-center/wallboard/")
    expect(phone.get_by_test_id("wallboard-row-care-voice")).to_be_visible()
    fits = _fits(phone)
    assert fits["page"] <= 375, fits
    assert fits["tables"] == [0, 0], fits
    rows = {
        "care": ["voice", "chat", "sms"],
        "sales-north-long-name": ["voice"],
    }
    for queue, channels in rows.items():
        expect(phone.get_by_test_id(f"wallboard-queue-{queue}")).to_be_visible()
        for channel in channels:
            row = phone.get_by_test_id(f"wallboard-row-{queue}-{channel}")
            for metric in KEY_FIGURES:
                cell = row.locator(f'[data-metric="{metric}"]')
                expect(cell).to_be_visible()
                box = cell.bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, (
                    queue,
                    metric,
                    box,
                )
    voice = phone.get_by_test_id("wallboard-row-care-voice")
    assert voice.locator('[data-metric="waiting"]').inner_text() == "2"
    assert voice.locator('[data-metric="offered_answered"]').inner_text() == "2 / 0"
    # The label a phone shows before each figure (the table's header is hidden).
    label = voice.locator('[data-metric="waiting"]').evaluate(
        "(cell) => getComputedStyle(cell, '::before').content"
    )
    assert label == '"Waiting"'
    assert phone.locator(".cc-board-table thead").first.is_hidden()
    phone.screenshot(path="/tmp/wallboard-phone.png", full_page=True)


def test_the_phone_labels_are_italian_for_an_italian_browser(telefono: Any) -> None:
    supervisor = _board(language="it")
    sign_in(telefono, supervisor.email, DEFAULT_PASSWORD)
    telefono.goto("/contact-center/wallboard/")
    voice = telefono.get_by_test_id("wallboard-row-care-voice")
    expect(voice).to_be_visible()
    labels = [
        voice.locator(f'[data-metric="{metric}"]').evaluate(
            "(cell) => getComputedStyle(cell, '::before').content"
        )
        for metric in ("waiting", "abandon_rate_percent")
    ]
    assert labels == ['"In attesa"', '"Abbandonati"'], labels
    assert _fits(telefono)["page"] <= 375


def test_a_laptop_still_sees_the_table_with_its_header(chromium: Any, live_server: Any) -> None:
    supervisor = _board()
    context = chromium.new_context(
        viewport={"width": 1366, "height": 768}, locale="en-GB", base_url=live_server.url
    )
    context.set_default_timeout(30_000)
    tab = context.new_page()
    sign_in(tab, supervisor.email, DEFAULT_PASSWORD)
    tab.goto("/contact-center/wallboard/")
    expect(tab.get_by_test_id("wallboard-row-care-voice")).to_be_visible()
    assert tab.locator(".cc-board-table thead").first.is_visible()
    display = tab.get_by_test_id("wallboard-row-care-voice").evaluate(
        "(row) => getComputedStyle(row).display"
    )
    assert display == "table-row"
    context.close()

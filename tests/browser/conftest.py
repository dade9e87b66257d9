"""Browser tests: Debian's Chromium driven by Playwright's sync API against pytest-django's live server.

Playwright's own browser download is not used; CHROMIUM_PATH points at the system browser.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedele.shared.testing import tools_required

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def _compile_catalogues() -> None:
    """The Italian catalogue is compiled at make time; compile it here too when it is missing or stale."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from django.conf import settings

    changed = False
    for po_path in Path(settings.BASE_DIR, "locale").glob("*/LC_MESSAGES/*.po"):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file)
        with mo_path.open("wb") as mo_file:
            write_mo(mo_file, catalog)
        changed = True
    if changed:
        from asgiref.local import Local
        from django.utils.translation import trans_real

        trans_real._translations = {}
        trans_real._active = Local()
        trans_real._default = None
        trans_real.reset_cache(setting="LANGUAGES")


def launch_chromium() -> Iterator[object]:
    """One Chromium per test module, closed after it: Playwright's event loop must not outlive the module,
    or later tests that use async_to_sync would find a running loop in their thread."""
    # Skipped on a developer's machine without Chromium; failed when the run requires its tools
    # (FEDELE_REQUIRE_TOOLS, set by the Makefile's pytest targets under CI).
    required = tools_required()
    if not Path(CHROMIUM_PATH).exists():
        message = f"Chromium not found at {CHROMIUM_PATH}: run `make chromium`"
        if required:
            pytest.fail(f"{message} (required: FEDELE_REQUIRE_TOOLS is set)", pytrace=False)
        pytest.skip(message)
    if required:
        import playwright.sync_api as playwright_sync
    else:
        playwright_sync = pytest.importorskip("playwright.sync_api")
    _compile_catalogues()
    with pytest.MonkeyPatch.context() as patch:
        # Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from a thread
        # with a running loop unless told it is deliberate (the test thread only makes fixtures and checks).
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with playwright_sync.sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    yield from launch_chromium()


@pytest.fixture
def page(browser, live_server) -> Iterator[object]:
    context = browser.new_context(viewport=DESKTOP, locale="en-GB", base_url=live_server.url)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def phone_page(browser, live_server) -> Iterator[object]:
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="en-GB",
        base_url=live_server.url,
    )
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


def sign_in(tab, email: str, password: str) -> None:
    tab.goto("/accounts/login/")
    tab.fill("#id_email", email)
    tab.fill("#id_password", password)
    tab.click("#sign-in")
    tab.wait_for_url(lambda url: "/accounts/login/" not in url)

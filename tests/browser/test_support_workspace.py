"""The agent workspace in a browser: keyboard-only triage on a desktop (j/o to open a ticket, a reply
sent with Ctrl+Enter appears in the conversation) and the queue as cards on a phone (390×844).

Screenshots (FEDELE_SCREENSHOTS_DIR=docs/screenshots) go to docs/screenshots/support-*.png.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import DEFAULT_PASSWORD, user_with_roles
from fedele.support.models import TicketMessage
from fedele.support.services.tickets import ticket_create
from fedele.support.tests.factories import ticket_kwargs
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect
SCREENSHOTS = Path(
    os.environ.get("FEDELE_SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "fedele-screenshots"
)
SCREENSHOTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture(autouse=True)
def _support_defaults() -> None:
    """transaction=True empties the tables after each test: put back the statuses and types that the
    seed migration writes."""
    from importlib import import_module

    from django.apps import apps
    from django.db import connection

    from fedele.support.models import TicketStatus

    if not TicketStatus.objects.exists():
        import_module("fedele.support.migrations.0002_defaults").seed(apps, connection.schema_editor())


def _tickets(agent: object, count: int = 3) -> list[object]:
    actor = actor_for(agent)
    return [
        ticket_create(actor=actor, **ticket_kwargs(subject=f"Problema di linea {index}", channel="phone"))
        for index in range(count)
    ]


def test_an_agent_triages_with_the_keyboard(page):
    agent = user_with_roles(
        "agent", email="anna@example.it", first_name="Anna", last_name="Neri", language="en"
    )
    tickets = _tickets(agent)
    newest = tickets[-1]
    sign_in(page, agent.email, DEFAULT_PASSWORD)
    page.goto("/support/?view=open&ordering=-created_at")
    expect(page.locator("#queue-table .queue-row")).to_have_count(3)
    page.keyboard.press("j")
    expect(page.locator("#queue-table .queue-row").first).to_have_class(
        "queue-row table-active border-primary"
    )
    page.keyboard.press("o")
    page.wait_for_url(f"**/support/tickets/{newest.public_id}/")
    page.keyboard.press("r")
    expect(page.locator("#reply-body")).to_be_focused()
    page.keyboard.type("Buongiorno, abbiamo riavviato la porta.")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#conversation")).to_contain_text("Buongiorno, abbiamo riavviato la porta.")
    expect(page.locator("#reply-body")).to_have_value("")
    page.screenshot(path=str(SCREENSHOTS / "support-ticket.png"), full_page=True)
    reply = TicketMessage.objects.filter(ticket=newest, kind="reply").get()
    assert (reply.body_text, reply.author_user_id) == ("Buongiorno, abbiamo riavviato la porta.", agent.pk)


def test_the_queue_becomes_cards_on_a_phone(phone_page):
    page = phone_page
    agent = user_with_roles("agent", email="bruno@example.it", language="en")
    _tickets(agent, count=2)
    sign_in(page, agent.email, DEFAULT_PASSWORD)
    page.goto("/support/?view=open")
    expect(page.locator("#queue-cards .queue-card")).to_have_count(2)
    expect(page.locator("#queue-table")).to_be_hidden()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    page.screenshot(path=str(SCREENSHOTS / "support-queue-phone.png"), full_page=True)

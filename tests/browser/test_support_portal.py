"""Acceptance: a customer asks for help in the portal on a phone, an agent answers and solves it from
the ticket page, the customer sees the answer and rates the help 5 out of 5.

Screenshots go to $FEDELE_SCREENSHOTS_DIR (or a temporary directory): support-portal-*.png.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from fedele.accounts.tests.factories import DEFAULT_PASSWORD, user_with_roles
from fedele.customers.tests.factories import ContactFactory, CustomerFactory
from fedele.support.models import Survey, Ticket
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect
SCREENSHOTS = Path(
    os.environ.get("FEDELE_SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "fedele-screenshots"
)
SCREENSHOTS.mkdir(parents=True, exist_ok=True)

SUBJECT = "Il modem non si connette"
ANSWER = "Abbiamo riavviato la linea: ora dovrebbe funzionare."


def test_customer_asks_agent_answers_customer_rates(phone_page, page):
    customer = CustomerFactory(display_name="Giulia Neri", language="en")
    portal_user = user_with_roles("portal_customer", email="giulia@example.it", language="en")
    ContactFactory(customer=customer, portal_user=portal_user)
    agent = user_with_roles("agent", email="agente@example.it", first_name="Anna", language="en")

    # The customer, on a phone, sends a request from the portal.
    phone = phone_page
    sign_in(phone, portal_user.email, DEFAULT_PASSWORD)
    phone.goto("/help/requests/new/")
    phone.select_option("#id_ticket_type", "incident")
    phone.fill("#id_subject", SUBJECT)
    phone.fill("#id_description", "Da ieri sera la luce DSL lampeggia e non navigo.")
    phone.screenshot(path=str(SCREENSHOTS / "support-portal-new-request.png"), full_page=True)
    phone.click("#send-request")
    expect(phone.locator("#request-header h1")).to_have_text(SUBJECT)
    ticket = Ticket.objects.get(subject=SUBJECT)
    assert ticket.channel == "portal" and ticket.customer_id == customer.pk
    # Nothing overflows sideways at 390 px.
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")

    # The agent answers from the ticket page and solves it in the same step.
    sign_in(page, agent.email, DEFAULT_PASSWORD)
    page.goto(f"/support/tickets/{ticket.public_id}/")
    form = page.locator("#reply-form")
    form.locator("#reply-kind-reply").check(force=True)
    form.locator("textarea[name=body]").fill(ANSWER)
    form.locator("select[name=status]").select_option("solved")
    form.get_by_role("button", name="Send").click()
    expect(page.locator("#conversation")).to_contain_text(ANSWER)

    # The customer reloads, reads the answer, and rates it.
    phone.reload()
    expect(phone.locator("#thread")).to_contain_text(ANSWER)
    expect(phone.locator("#request-status")).to_have_text("Solved")
    phone.locator("label[for=rate-5]").click()
    phone.fill("#rating-comment", "Veloci e gentili")
    phone.screenshot(path=str(SCREENSHOTS / "support-portal-rating.png"), full_page=True)
    phone.click("#rating-send")
    expect(phone.locator("#rating-thanks")).to_contain_text("5 out of 5")

    ticket.refresh_from_db()
    assert ticket.status_kind == "solved"
    assert list(ticket.messages.order_by("id").values_list("kind", flat=True)) == ["customer", "reply"]
    survey = Survey.objects.get(ticket=ticket)
    assert (survey.score, survey.comment) == (5, "Veloci e gentili")
    assert survey.responded_at is not None

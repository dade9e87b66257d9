"""In a real browser: the routing settings at desktop width and at 375 px (no sideways scrolling of
the page), and the workflow editor listing its problems through htmx without a reload.
Screenshots: /tmp/cc-routing-settings-desktop.png, /tmp/cc-routing-settings-phone.png,
/tmp/cc-routing-workflow-problems.png."""

from __future__ import annotations

import pytest

from fedele.accounts.tests.factories import DEFAULT_PASSWORD, user_with_roles
from fedele.contact_center.tests.factories import AgentFactory, AgentSkillFactory, QueueFactory, SkillFactory
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect


def _tab(chromium, live_server, width: int):  # type: ignore[no-untyped-def]
    context = chromium.new_context(
        viewport={"width": width, "height": 900}, locale="en-GB", base_url=live_server.url
    )
    context.set_default_timeout(30_000)
    return context, context.new_page()


def test_routing_settings_fit_a_phone_and_the_workflow_editor_lists_problems(chromium, live_server) -> None:  # type: ignore[no-untyped-def]
    queue = QueueFactory(code="assistenza", name_en="Customer care", channels=["voice", "chat"])
    agent = AgentFactory(display_name="Giulia Bianchi")
    agent.queues.add(queue)
    AgentSkillFactory(agent=agent, skill=SkillFactory(code="billing"), proficiency=4)
    admin = user_with_roles("admin")
    for width, name in ((1366, "desktop"), (375, "phone")):
        context, tab = _tab(chromium, live_server, width)
        sign_in(tab, admin.email, DEFAULT_PASSWORD)
        tab.goto("/contact-center/settings/routing/")
        expect(tab.locator("#routing-queues")).to_contain_text("assistenza")
        expect(tab.locator("#routing-agents")).to_contain_text("billing 4")
        overflow = tab.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0
        tab.screenshot(path=f"/tmp/cc-routing-settings-{name}.png", full_page=True)
        context.close()
    context, tab = _tab(chromium, live_server, 1366)
    sign_in(tab, admin.email, DEFAULT_PASSWORD)
    tab.goto("/contact-center/settings/routing/queues/assistenza/")
    tab.fill("#workflow-definition", '{"strategy": "random", "filters": [{"expression": "billing >>"}]}')
    tab.click("#workflow-editor button[type=submit]")
    problems = tab.locator("#workflow-problems")
    expect(problems).to_contain_text("filters[0].expression: Unexpected > at position 10.")
    expect(problems).to_contain_text("filters[0].targets: needs at least one target.")
    expect(problems).to_contain_text("strategy: one of longest_idle")
    tab.screenshot(path="/tmp/cc-routing-workflow-problems.png", full_page=True)
    context.close()

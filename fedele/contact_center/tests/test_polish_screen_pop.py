"""The screen pop words ticket and subscription statuses (the support and billing facades carry the
label in the agent's language); the codes stay only in data attributes."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils.translation import override

from fedele.billing import facade as billing_facade
from fedele.billing.tests.factories import BillingAccountFactory, flat_plan, subscription
from fedele.contact_center.models import InteractionState
from fedele.contact_center.selectors.desktop import screen_pop
from fedele.contact_center.tests.desktop_support import make_desk
from fedele.contact_center.tests.factories import InteractionFactory
from fedele.customers.tests.factories import CustomerFactory
from fedele.support import facade as support_facade
from fedele.support.tests.factories import TicketFactory, status

pytestmark = pytest.mark.django_db


def _customer_with_pending_ticket_and_subscriptions():  # type: ignore[no-untyped-def]
    customer = CustomerFactory(first_name="Mario", last_name="Rossi", display_name="Mario Rossi")
    TicketFactory(customer=customer, subject="Modem lampeggia", status=status("pending_customer"))
    account = BillingAccountFactory(customer=customer)
    subscription(flat_plan(name="Fibra 1000"), account=account, status="active")
    subscription(flat_plan(name="Mobile 50"), account=account, status="past_due")
    return customer


def _work_page(client, language: str) -> str:  # type: ignore[no-untyped-def]
    desk = make_desk()
    desk.user.language = language
    desk.user.save(update_fields=["language"])
    customer = _customer_with_pending_ticket_and_subscriptions()
    interaction = InteractionFactory(
        customer_public_id=str(customer.public_id),
        agent=desk.agent,
        queue=desk.queue,
        state=InteractionState.CONNECTED,
    )
    client.force_login(desk.user)
    response = client.get(reverse("contact_center:desktop") + f"?i={interaction.public_id}")
    assert response.status_code == 200
    return response.content.decode()


def _section(page: str, testid: str) -> str:
    return page.split(f'data-testid="{testid}"')[1].split("data-testid=")[0]


def test_screen_pop_shows_status_labels_in_english(client) -> None:  # type: ignore[no-untyped-def]
    page = _work_page(client, "en")
    tickets = _section(page, "pop-tickets")
    assert '<span class="text-nowrap" data-status="pending_customer">Pending customer</span>' in tickets
    assert ">pending_customer<" not in tickets
    subscriptions = _section(page, "pop-subscriptions")
    assert '<span class="text-nowrap" data-status="active">active · 01/01/2026</span>' in subscriptions
    assert '<span class="text-nowrap" data-status="past_due">past due · 01/01/2026</span>' in subscriptions
    assert ">past_due" not in subscriptions


def test_screen_pop_shows_status_labels_in_italian(client) -> None:  # type: ignore[no-untyped-def]
    page = _work_page(client, "it")
    tickets = _section(page, "pop-tickets")
    assert '<span class="text-nowrap" data-status="pending_customer">In attesa del cliente</span>' in tickets
    subscriptions = _section(page, "pop-subscriptions")
    assert '<span class="text-nowrap" data-status="active">attivo · 01/01/2026</span>' in subscriptions
    assert '<span class="text-nowrap" data-status="past_due">scaduto · 01/01/2026</span>' in subscriptions


def test_facades_carry_the_label_next_to_the_code() -> None:
    customer = _customer_with_pending_ticket_and_subscriptions()
    with override("en"):
        tickets = support_facade.open_tickets_for_customer(str(customer.public_id))
        subscriptions = billing_facade.active_subscriptions(str(customer.public_id))
    assert [(t.status, t.status_kind, t.status_label) for t in tickets] == [
        ("pending_customer", "pending", "Pending customer")
    ]
    assert [(s.plan_name, s.status, s.status_label) for s in subscriptions] == [
        ("Mobile 50", "past_due", "past due"),
        ("Fibra 1000", "active", "active"),
    ]
    with override("it"):
        italian = support_facade.open_tickets_for_customer(str(customer.public_id))
    assert [t.status_label for t in italian] == ["In attesa del cliente"]


def test_screen_pop_selector_words_statuses_in_the_language_it_is_given() -> None:
    customer = _customer_with_pending_ticket_and_subscriptions()
    interaction = InteractionFactory(customer_public_id=str(customer.public_id))
    with override("en"):
        pop = screen_pop(interaction, language="it")
    assert [t.status_label for t in pop.open_tickets] == ["In attesa del cliente"]
    assert [s.status_label for s in pop.subscriptions] == ["scaduto", "attivo"]

"""The support block on the customer page: open and recent tickets, a New ticket link, staff only."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.support.tests.factories import TicketFactory, status
from fedele.support.web.customer_panel import support_panel

pytestmark = pytest.mark.django_db


def test_agents_see_open_and_recent_tickets_with_a_new_ticket_link(client):
    customer = CustomerFactory()
    open_ticket = TicketFactory(customer=customer, status=status("open"), subject="Linea muta")
    solved = TicketFactory(customer=customer, status=status("solved"), subject="Fattura errata")
    other = TicketFactory(customer=CustomerFactory(), status=status("open"))
    client.force_login(user_with_roles("agent", language="en"))
    page = client.get(f"/customers/{customer.public_id}/").content.decode()
    assert 'id="customer-support"' in page
    assert open_ticket.number in page and "Linea muta" in page and "1 open" in page
    assert solved.number in page and other.number not in page
    assert f"/support/tickets/new/?customer={customer.public_id}" in page


def test_panel_context_is_exact_and_limited():
    customer = CustomerFactory()
    TicketFactory.create_batch(12, customer=customer, status=status("new"))
    TicketFactory.create_batch(7, customer=customer, status=status("closed"))
    request = RequestFactory().get("/")
    request.user = user_with_roles("agent")
    panel = support_panel(request, str(customer.public_id))
    assert panel is not None
    assert (len(panel.context["open"]), panel.context["more_open"], len(panel.context["recent"])) == (
        10,
        True,
        5,
    )
    assert panel.context["can_create"] is True


@pytest.mark.parametrize("role", ["portal_customer", "loyalty_manager"])
def test_no_panel_without_support_permission(role):
    customer = CustomerFactory()
    request = RequestFactory().get("/")
    request.user = user_with_roles(role)
    assert support_panel(request, str(customer.public_id)) is None


def test_no_panel_for_an_unknown_customer():
    request = RequestFactory().get("/")
    request.user = user_with_roles("agent")
    assert support_panel(request, "00000000-0000-0000-0000-000000000000") is None

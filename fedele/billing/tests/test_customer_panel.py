"""The billing block on the customer page: exact figures, and only for staff who may see billing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import time_machine

from fedele.accounts.tests.factories import user_with_roles
from fedele.billing.models import Invoice
from fedele.billing.tests.factories import BillingAccountFactory, flat_plan, subscription

pytestmark = pytest.mark.django_db


@time_machine.travel("2026-03-10 10:00:00+01:00", tick=False)
def test_billing_clerk_sees_position_subscriptions_and_invoices(client):
    version = flat_plan("29.90", code="fibra-casa", name="Fibra Casa")
    account = BillingAccountFactory(credit_balance=Decimal("5.00"))
    live = subscription(version, account=account)
    Invoice.objects.create(
        account=account,
        number="INV-2026-000042",
        status="finalised",
        currency="EUR",
        issue_date=date(2026, 1, 1),
        due_date=date(2026, 1, 31),
        total=Decimal("36.48"),
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
    )
    client.force_login(user_with_roles("billing_clerk", language="en"))
    response = client.get(f"/customers/{account.customer.public_id}/", HTTP_ACCEPT_LANGUAGE="en")
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="customer-billing"' in page
    assert 'data-testid="billing-overdue">€36.48<' in page
    assert 'data-testid="billing-credit">€5.00<' in page
    assert live.number in page and "Fibra Casa" in page and "INV-2026-000042" in page
    assert f"/billing/subscriptions/new/?customer={account.customer.public_id}" in page


def test_staff_without_billing_permission_do_not_see_the_panel(client):
    account = BillingAccountFactory()
    client.force_login(user_with_roles("technician"))
    page = client.get(f"/customers/{account.customer.public_id}/").content.decode()
    assert 'id="customer-billing"' not in page

"""The billing block on the customer page: position, live subscriptions, recent invoices, actions."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.translation import gettext_lazy

from fedele.accounts.facade import actor_for
from fedele.billing import facade
from fedele.billing.web.subscriptions import STATUS_LABELS as SUBSCRIPTION_STATUS_LABELS
from fedele.shared.money import Money
from fedele.shared.web.dashboard import DashboardWidget

INVOICE_STATUS_LABELS = {
    "finalised": gettext_lazy("to be paid"),
    "paid": gettext_lazy("paid"),
    "void": gettext_lazy("void"),
}


def billing_panel(request: HttpRequest, customer_public_id: str) -> DashboardWidget | None:
    if not request.user.is_authenticated:
        return None
    actor = actor_for(request.user)
    if not actor.is_internal or not actor.can("billing.view_billing"):
        return None
    balance = facade.customer_balance(customer_public_id)
    currency = balance.currency if balance else "EUR"
    language = request.LANGUAGE_CODE if hasattr(request, "LANGUAGE_CODE") else "it"

    def money(amount: object) -> str:
        return Money.of(str(amount), currency).format(language)

    subscriptions = facade.active_subscriptions(customer_public_id)
    return DashboardWidget(
        "billing/_customer_panel.html",
        {
            "customer_id": customer_public_id,
            "balance": balance,
            "open_amount": money(balance.open_amount) if balance else "",
            "overdue_amount": money(balance.overdue_amount) if balance else "",
            "credit_balance": money(balance.credit_balance) if balance else "",
            "subscriptions": [
                (row, money(row.mrr), SUBSCRIPTION_STATUS_LABELS.get(row.status, row.status))
                for row in subscriptions
            ],
            "invoices": [
                (row, money(row.total), INVOICE_STATUS_LABELS.get(row.status, row.status))
                for row in facade.recent_invoices(customer_public_id, limit=5)
            ],
            "can_manage": actor.can("billing.manage_billing"),
        },
        order=10,
    )

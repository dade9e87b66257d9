"""Billing pages under /billing/ (clerk) and the customer portal pages under /billing/my/."""

from __future__ import annotations

from fedele.billing.web import analytics, catalog, invoices, orders, payments, portal, subscriptions, usage

app_name = "billing"

urlpatterns = [
    *catalog.urlpatterns,
    *subscriptions.urlpatterns,
    *usage.urlpatterns,
    *orders.urlpatterns,
    *invoices.urlpatterns,
    *payments.urlpatterns,
    *analytics.urlpatterns,
    *portal.urlpatterns,
]

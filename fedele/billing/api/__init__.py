"""Billing API under /api/v1/billing/: one router per area, mounted together."""

from __future__ import annotations

from ninja import Router

from fedele.billing.api import analytics, catalog, invoices, orders, payments, portal, subscriptions, usage

router = Router()
for area in (catalog, subscriptions, usage, orders, invoices, payments, analytics, portal):
    router.add_router("/", area.router)

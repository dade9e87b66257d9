"""Billing API: invoices."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["billing: invoices"])

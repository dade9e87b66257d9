"""Billing API: catalog."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["billing: catalog"])

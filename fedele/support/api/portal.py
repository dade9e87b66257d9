"""Support API: portal."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["support-portal"])

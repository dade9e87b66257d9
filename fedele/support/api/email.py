"""Support API: email."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["support-email"])

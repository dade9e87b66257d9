"""Support API: kb."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["support-kb"])

"""Loyalty API: fraud."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["loyalty"])

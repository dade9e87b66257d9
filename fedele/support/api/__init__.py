"""Support API under /api/v1/support/: one router per area, mounted together."""

from __future__ import annotations

from ninja import Router

from fedele.support.api import email, imports, kb, sla, surveys, tickets

router = Router()
for area in (tickets, sla, email, kb, surveys, imports):
    router.add_router("/", area.router)

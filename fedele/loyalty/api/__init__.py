"""Loyalty API under /api/v1/loyalty/: one router per area, mounted together."""

from __future__ import annotations

from ninja import Router

from fedele.loyalty.api import evaluation, fraud, members, partners, programmes, rewards, rules

router = Router()
for area in (members, programmes, rules, rewards, partners, evaluation, fraud):
    router.add_router("/", area.router)

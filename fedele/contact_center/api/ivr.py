"""The ivr area's API under /api/v1/contact-center/."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["contact center"])

"""Contact-center API under /api/v1/contact-center/: one router per area, mounted together."""

from __future__ import annotations

from ninja import Router

from fedele.contact_center.api import desktop, dialer, ivr, messaging, routing, telephony

router = Router()
for area in (routing, telephony, ivr, messaging, dialer, desktop):
    router.add_router("/", area.router)

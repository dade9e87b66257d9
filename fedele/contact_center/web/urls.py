"""Contact-center pages under /contact-center/ (agent desktop, wallboards, settings, webhooks)."""

from __future__ import annotations

from fedele.contact_center.web import desktop, dialer, ivr, messaging, routing, telephony

app_name = "contact_center"

urlpatterns = [
    *routing.urlpatterns,
    *telephony.urlpatterns,
    *ivr.urlpatterns,
    *messaging.urlpatterns,
    *dialer.urlpatterns,
    *desktop.urlpatterns,
]

"""Support pages: agent workspace and settings under /support/, self-service portal under /help/."""

from __future__ import annotations

from fedele.support.web import email, imports, kb, portal, sla, surveys, workspace

app_name = "support"

urlpatterns = [
    *workspace.urlpatterns,
    *sla.urlpatterns,
    *email.urlpatterns,
    *kb.urlpatterns,
    *imports.urlpatterns,
    *surveys.urlpatterns,
]

# The portal lives at /help/ (config/urls.py) with its own namespace "help".
portal_urlpatterns = [*portal.urlpatterns, *kb.portal_urlpatterns]

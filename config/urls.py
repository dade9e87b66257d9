from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from config.api import api
from fedele.shared.web import views as shared_views

urlpatterns = [
    path("", shared_views.home, name="home"),
    path("search/", shared_views.global_search, name="search"),
    path("notifications/", shared_views.notifications, name="notifications"),
    path("healthz", shared_views.health, name="health"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("fedele.accounts.web.urls")),
    path("customers/", include("fedele.customers.web.urls")),
    path("billing/", include("fedele.billing.web.urls")),
    path("support/", include("fedele.support.web.urls")),
    path("help/", include("fedele.support.web.portal_urls")),
    path("loyalty/", include("fedele.loyalty.web.urls")),
    path("club/", include("fedele.loyalty.web.club_urls")),
    path("contact-center/", include("fedele.contact_center.web.urls")),
    path("field-service/", include("fedele.field_service.web.urls")),
    path("partner/", include("fedele.loyalty.web.partner_urls")),
    path("settings/webhooks/", include("fedele.shared.web.webhook_urls")),
    path("settings/audit/", include("fedele.shared.web.audit_urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
]

from django.urls import path

from fedele.shared.web import admin_views

app_name = "audit"

urlpatterns = [
    path("", admin_views.audit_list, name="list"),
]

from django.urls import path

from fedele.shared.web import admin_views

app_name = "webhooks"

urlpatterns = [
    path("", admin_views.webhook_list, name="list"),
    path("<uuid:endpoint_id>/", admin_views.webhook_detail, name="detail"),
    path("deliveries/<uuid:delivery_id>/replay/", admin_views.webhook_replay, name="replay"),
]

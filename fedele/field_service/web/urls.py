"""Field service pages under /field-service/."""

from __future__ import annotations

from django.urls import path

from fedele.field_service.web import views

app_name = "field_service"

urlpatterns = [
    path("", views.work_order_list, name="work_order_list"),
    path("work-orders/new/", views.work_order_create, name="work_order_create"),
    path("work-orders/<uuid:public_id>/", views.work_order_detail, name="work_order_detail"),
    path("work-orders/<uuid:public_id>/<slug:action>/", views.work_order_action, name="work_order_action"),
    path("equipment/", views.equipment_list, name="equipment_list"),
    path("equipment/new/", views.equipment_create, name="equipment_create"),
    path("equipment/<uuid:public_id>/", views.equipment_detail, name="equipment_detail"),
    path("technicians/", views.technician_list, name="technician_list"),
]

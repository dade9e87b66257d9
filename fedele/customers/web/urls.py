from django.urls import path

from fedele.customers.web import views

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="list"),
    path("new/", views.customer_create, name="create"),
    path("import/", views.customer_list, name="import"),
    path("<uuid:public_id>/", views.customer_detail, name="detail"),
]

from django.urls import path

from fedele.customers.web import operations, views

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="list"),
    path("new/", views.customer_create, name="create"),
    path("import/", operations.customer_import, name="import"),
    path("<uuid:public_id>/", views.customer_detail, name="detail"),
    path("<uuid:public_id>/duplicates/", operations.customer_duplicates, name="duplicates"),
    path("<uuid:public_id>/merge/", operations.customer_merge, name="merge"),
    path("<uuid:public_id>/personal-data/", operations.customer_personal_data, name="gdpr_export"),
    path("<uuid:public_id>/erase/", operations.customer_erase, name="erase"),
]

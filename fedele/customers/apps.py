from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "fedele.customers"
    label = "customers"
    verbose_name = "Customers"

    def ready(self) -> None:
        from fedele.customers.services import timeline  # noqa: F401  (registers event handlers)
        from fedele.shared import navigation
        from fedele.shared.navigation import NavItem

        from django.utils.translation import gettext_lazy as _

        from fedele.customers.web.views import search_customers
        from fedele.shared import search

        navigation.register("customers", NavItem(_("Customers"), "customers:list", "customers.view_customer"))
        navigation.register("customers", NavItem(_("Import"), "customers:import", "customers.import_customers"))
        search.register("customers", search_customers)

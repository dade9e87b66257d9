from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "fedele.customers"
    label = "customers"
    verbose_name = "Customers"

    def ready(self) -> None:
        from django.utils.translation import gettext_lazy as _

        from fedele.customers import demo as customers_demo
        from fedele.customers.services import timeline  # noqa: F401  (registers event handlers)
        from fedele.customers.web.views import search_customers
        from fedele.shared import demo, navigation, search
        from fedele.shared.navigation import NavItem

        navigation.register("customers", NavItem(_("Customers"), "customers:list", "customers.view_customer"))
        navigation.register(
            "customers", NavItem(_("Import"), "customers:import", "customers.import_customers")
        )
        search.register("customers", search_customers)
        # The kernel's home page cannot import this module: it asks the widgets registered here.
        from fedele.customers.web.views import dashboard_widget, portal_widget
        from fedele.shared.web import dashboard

        dashboard.register("customers", dashboard_widget)
        dashboard.register("customers-portal", portal_widget)

        from fedele.shared import scheduler

        scheduler.register("customers-import-previews-purge", "customers.purge_stale_import_previews", 3600)
        demo.register("customers", customers_demo.load, order=20)
        demo.register_login(customers_demo.PORTAL_EMAIL, "portal_customer")

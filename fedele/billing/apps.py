from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "fedele.billing"
    label = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from fedele.billing import setup

        setup.register()

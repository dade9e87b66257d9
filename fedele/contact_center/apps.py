from django.apps import AppConfig


class ContactCenterConfig(AppConfig):
    name = "fedele.contact_center"
    label = "contact_center"
    verbose_name = "Contact center"

    def ready(self) -> None:
        from fedele.contact_center import setup

        setup.register()

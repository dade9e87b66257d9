from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "fedele.support"
    label = "support"
    verbose_name = "Support"

    def ready(self) -> None:
        from fedele.support import setup

        setup.register()

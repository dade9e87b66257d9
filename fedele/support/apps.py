from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "fedele.support"
    label = "support"
    verbose_name = "Support"

    def ready(self) -> None:
        from fedele.support import setup

        setup.register()

        from fedele.support.api import fast_tickets

        fast_tickets.register()
        # The configuration cache's version bumps are receivers of that module: connect them now.
        from fedele.support.services import config_cache as _config_cache  # noqa: F401

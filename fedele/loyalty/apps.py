from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "fedele.loyalty"
    label = "loyalty"
    verbose_name = "Loyalty"

    def ready(self) -> None:
        from fedele.loyalty import setup

        setup.register()

        from fedele.loyalty.api import fast_events

        fast_events.register()

        from fedele.loyalty.selectors import config_cache

        config_cache.connect()

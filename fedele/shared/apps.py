from django.apps import AppConfig


class SharedConfig(AppConfig):
    name = "fedele.shared"
    label = "shared"
    verbose_name = "Shared kernel"

    def ready(self) -> None:
        from fedele.shared import webhooks  # noqa: F401  (registers the webhook fan-out handler)

from django.apps import AppConfig


class FieldServiceConfig(AppConfig):
    name = "fedele.field_service"
    label = "field_service"
    verbose_name = "Field service"

    def ready(self) -> None:
        from fedele.field_service import setup

        setup.register()

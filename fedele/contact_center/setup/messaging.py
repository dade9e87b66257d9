"""What the messaging area registers at start-up: the e-mail routing handler (support's new e-mail
tickets become queued e-mail interactions) and the settings pages in the navigation."""

from __future__ import annotations

from fedele.shared.events import EventEnvelope


def _on_ticket_created(envelope: EventEnvelope) -> None:
    from fedele.contact_center.services.email_routing import on_ticket_created

    on_ticket_created(envelope)


def register() -> None:
    from django.utils.translation import gettext_lazy as _

    from fedele.contact_center.services.email_routing import HANDLER_NAME, TICKET_CREATED
    from fedele.shared import events, navigation
    from fedele.shared.navigation import NavItem

    events.handles(TICKET_CREATED, name=HANDLER_NAME)(_on_ticket_created)
    navigation.register(
        "contact_center",
        NavItem(
            _("Chat and messaging"),
            "contact_center:messaging_settings",
            "contact_center.manage_contact_center",
        ),
    )

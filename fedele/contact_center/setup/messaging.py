"""What the messaging area registers at start-up: the e-mail routing handler (support's new e-mail
tickets become queued e-mail interactions), the end of a chat by its agent reaching the visitor, and
the settings pages in the navigation."""

from __future__ import annotations

from fedele.shared.events import EventEnvelope


def _on_ticket_created(envelope: EventEnvelope) -> None:
    from fedele.contact_center.services.email_routing import on_ticket_created

    on_ticket_created(envelope)


def _on_interaction_ended(envelope: EventEnvelope) -> None:
    from fedele.contact_center.services.chat import on_interaction_ended

    on_interaction_ended(envelope)


def register() -> None:
    from django.utils.translation import gettext_lazy as _

    from fedele.contact_center.services.chat import INTERACTION_ENDED_HANDLER
    from fedele.contact_center.services.email_routing import HANDLER_NAME, TICKET_CREATED
    from fedele.shared import events, navigation
    from fedele.shared.navigation import NavItem

    events.handles(TICKET_CREATED, name=HANDLER_NAME)(_on_ticket_created)
    events.handles("contact_center.interaction_ended", name=INTERACTION_ENDED_HANDLER)(_on_interaction_ended)
    navigation.register(
        "contact_center",
        NavItem(
            _("Chat and messaging"),
            "contact_center:messaging_settings",
            "contact_center.manage_contact_center",
        ),
    )

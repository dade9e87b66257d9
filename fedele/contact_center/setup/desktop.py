"""What the desktop area registers at start-up: the "Contact center" navigation entries (agent
desktop, wallboard, interval report, canned replies), the contact-center demo data, and the wallboard
push when a contact ends or is wrapped up (the wallboards' own tick covers everything else)."""

from __future__ import annotations

from fedele.shared.events import EventEnvelope

WALLBOARD_EVENTS = ("contact_center.interaction_ended", "contact_center.interaction_wrapped_up")


def wallboard_changed(envelope: EventEnvelope) -> None:
    """Open wallboards recompute now (debounced in the consumer). A repeated push changes nothing."""
    from fedele.contact_center.consumers.desktop import WALLBOARD_GROUP
    from fedele.shared.realtime import send_now

    send_now(WALLBOARD_GROUP, "cc.wallboard.changed", {"event": envelope.event_type})


def register() -> None:
    from django.utils.translation import gettext_lazy as _

    from fedele.contact_center import demo as contact_center_demo
    from fedele.shared import demo, events, navigation
    from fedele.shared.navigation import NavItem

    navigation.register(
        "contact_center",
        NavItem(_("Agent desktop"), "contact_center:desktop", "contact_center.handle_interactions"),
    )
    navigation.register(
        "contact_center",
        NavItem(_("Wallboard"), "contact_center:wallboard", "contact_center.view_wallboards"),
    )
    navigation.register(
        "contact_center",
        NavItem(_("Interval report"), "contact_center:interval_report", "contact_center.view_wallboards"),
    )
    navigation.register(
        "contact_center",
        NavItem(
            _("Canned replies"), "contact_center:canned_reply_list", "contact_center.manage_contact_center"
        ),
    )
    demo.register("contact_center", contact_center_demo.load, order=300)
    for event_type in WALLBOARD_EVENTS:
        events.handles(event_type, name=f"contact_center.desktop.wallboard_changed.{event_type}")(
            wallboard_changed
        )

"""What the desktop area registers at start-up: the "Contact center" navigation entries (agent
desktop, wallboard, interval report, canned replies) and the contact-center demo data."""

from __future__ import annotations


def register() -> None:
    from django.utils.translation import gettext_lazy as _

    from fedele.contact_center import demo as contact_center_demo
    from fedele.shared import demo, navigation
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

"""What the imports area registers at start-up: its navigation entry."""

from __future__ import annotations


def register() -> None:
    from django.utils.translation import gettext_lazy as _

    from fedele.shared import navigation

    navigation.register(
        "service", navigation.NavItem(_("Import tickets"), "support:imports", "support.import_tickets")
    )

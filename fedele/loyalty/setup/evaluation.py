"""What the programme evaluation area registers at start-up: its navigation entry."""

from __future__ import annotations


def register() -> None:
    from django.utils.translation import gettext_lazy as _

    from fedele.shared import navigation
    from fedele.shared.navigation import NavItem

    navigation.register(
        "loyalty", NavItem(_("Evaluation"), "loyalty:evaluation_page", "loyalty.view_loyalty_reports")
    )

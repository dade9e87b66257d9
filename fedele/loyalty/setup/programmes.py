"""What the programmes and tiers area registers at start-up: the earn hook that upgrades tiers, the
tier review job, the navigation entry and the demo loader."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


def register() -> None:
    from fedele.loyalty import demo as loyalty_demo
    from fedele.loyalty import hooks
    from fedele.loyalty.services.tiers import tier_check_upgrade, tier_check_upgrade_many
    from fedele.shared import demo, navigation, scheduler

    hooks.on_earn_many(tier_check_upgrade, tier_check_upgrade_many)
    scheduler.register("loyalty-tiers-review", "loyalty.tiers_review_due", 3600)
    navigation.register(
        "loyalty",
        navigation.NavItem(_("Programmes"), "loyalty:programmes_overview", "loyalty.manage_loyalty"),
    )
    demo.register("loyalty", loyalty_demo.load, order=150)

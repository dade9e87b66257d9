"""What the sla area registers at start-up (navigation, scheduler jobs, event handlers, panels, demo)."""

from __future__ import annotations


def register() -> None:
    from django.utils.translation import gettext_lazy as _

    from fedele.shared import navigation, scheduler
    from fedele.shared.navigation import NavItem

    navigation.register(
        "service", NavItem(_("SLA report"), "support:sla_report", "support.view_support_reports")
    )
    navigation.register(
        "service", NavItem(_("SLA policies"), "support:sla_policy_list", "support.manage_support")
    )
    navigation.register(
        "service", NavItem(_("Business calendars"), "support:calendar_list", "support.manage_support")
    )
    navigation.register("service", NavItem(_("Triggers"), "support:trigger_list", "support.manage_support"))
    navigation.register(
        "service", NavItem(_("Time rules"), "support:time_rule_list", "support.manage_support")
    )
    navigation.register("service", NavItem(_("Macros"), "support:macro_list", "support.manage_support"))
    import fedele.support.tasks  # noqa: F401  (registers the Celery tasks the scheduler names)

    scheduler.register("support-sla", "support.sla_run_due", 60)
    scheduler.register("support-time-rules", "support.time_rules_run", 300)

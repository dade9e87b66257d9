"""Everything billing registers with the kernel at start-up (roles, navigation, jobs, demo, search).

Each area keeps its registrations in its own function so they can be read side by side.
"""

from __future__ import annotations

from fedele.accounts.contracts import Role

BILLING_VIEW = {"billing.view_billing"}
BILLING_MANAGE = BILLING_VIEW | {"billing.manage_billing"}
BILLING_ADMIN = BILLING_MANAGE | {"billing.manage_catalog", "billing.run_billing", "billing.view_revenue"}


def _roles() -> None:
    from fedele.accounts.facade import grant_to_role

    grant_to_role(Role.ADMIN, BILLING_ADMIN)
    grant_to_role(Role.BILLING_CLERK, BILLING_ADMIN)
    grant_to_role(Role.SUPERVISOR, BILLING_VIEW | {"billing.view_revenue"})
    grant_to_role(Role.ANALYST, BILLING_VIEW | {"billing.view_revenue"})
    grant_to_role(Role.AGENT, BILLING_VIEW)


def _catalog_and_subscriptions() -> None:
    from django.utils.translation import gettext_lazy as _

    from fedele.billing.services import subscription_rules  # noqa: F401  (registers the Celery task)
    from fedele.shared import navigation, scheduler
    from fedele.shared.navigation import NavItem

    navigation.register(
        "billing", NavItem(_("Subscriptions"), "billing:subscription_list", "billing.view_billing")
    )
    navigation.register("billing", NavItem(_("Catalog"), "billing:catalog", "billing.view_billing"))
    navigation.register("billing", NavItem(_("Coupons"), "billing:coupon_list", "billing.view_billing"))
    navigation.register(
        "billing", NavItem(_("Import subscriptions"), "billing:subscription_import", "billing.manage_billing")
    )
    # Renewal reminders, scheduled pauses and resumes: hourly is enough for day-granular dates.
    scheduler.register("billing-subscription-schedules", "billing.subscription_schedules", 3600)


def _invoicing() -> None:
    from django.utils.translation import gettext_lazy as _

    from fedele.shared import navigation, scheduler

    navigation.register(
        "billing", navigation.NavItem(_("Invoices"), "billing:invoice_list", "billing.view_billing")
    )
    navigation.register(
        "billing", navigation.NavItem(_("Billing runs"), "billing:billing_run_list", "billing.run_billing")
    )
    # Daily run (resumes a crashed one first); hourly sweep e-mails issued invoices not sent yet.
    scheduler.register("billing-daily-run", "billing.daily_billing_run", 24 * 3600)
    scheduler.register("billing-deliver-invoices", "billing.deliver_pending_invoices", 3600)


def _usage_and_orders() -> None:
    from django.utils.translation import gettext_lazy as _

    import fedele.billing.orders_tasks  # noqa: F401  (registers the Celery tasks below)
    from fedele.shared import navigation, scheduler
    from fedele.shared.navigation import NavItem

    navigation.register("billing", NavItem(_("Quotes"), "billing:quote_list", "billing.view_billing"))
    navigation.register("billing", NavItem(_("Orders"), "billing:order_list", "billing.view_billing"))
    navigation.register("billing", NavItem(_("Usage"), "billing:usage", "billing.view_billing"))

    # Retry due provisioning steps (backoff passed, or stuck running); expire quotes past validity.
    scheduler.register("billing-provisioning-due", "billing.provisioning_run_due", 60)
    scheduler.register("billing-quotes-expire", "billing.quotes_expire_due", 3600)


def _payments_and_dunning() -> None:
    from django.utils.translation import gettext_lazy as _

    from fedele.billing.gateways import manual, sepa, stripe
    from fedele.billing.services import dunning  # noqa: F401 (subscribes billing.dunning.on_invoice_paid)
    from fedele.shared import navigation, scheduler
    from fedele.shared.navigation import NavItem

    manual.install()
    sepa.install()
    stripe.install()
    navigation.register("billing", NavItem(_("Payments"), "billing:payments", "billing.view_billing"))
    navigation.register(
        "billing", NavItem(_("Bank reconciliation"), "billing:reconciliation", "billing.manage_billing")
    )
    navigation.register("billing", NavItem(_("Dunning"), "billing:dunning", "billing.view_billing"))
    navigation.register("billing", NavItem(_("Collections"), "billing:collections", "billing.view_billing"))
    scheduler.register("billing-dunning", "billing.dunning_run", 3600)


def _analytics_and_portal() -> None:
    from django.utils.translation import gettext_lazy as _

    from fedele.billing.web.portal import portal_widget
    from fedele.shared import navigation
    from fedele.shared.navigation import NavItem
    from fedele.shared.web import dashboard

    navigation.register("billing", NavItem(_("Revenue"), "billing:revenue", "billing.view_revenue"))
    dashboard.register("billing-portal", portal_widget)


def _customer_panel() -> None:
    from fedele.billing.web.customer_panel import billing_panel
    from fedele.shared.web import panels

    panels.register("billing", billing_panel)


def _demo() -> None:
    from fedele.billing import demo as billing_demo
    from fedele.shared import demo

    demo.register("billing", billing_demo.load, order=100)


def _subjects() -> None:
    from fedele.billing.selectors.subscriptions import entitlement_subject
    from fedele.shared import subjects

    subjects.register("entitlement", entitlement_subject)


def register() -> None:
    _roles()
    _subjects()
    _demo()
    _customer_panel()
    _catalog_and_subscriptions()
    _invoicing()
    _usage_and_orders()
    _payments_and_dunning()
    _analytics_and_portal()

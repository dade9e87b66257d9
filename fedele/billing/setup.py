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
    pass


def _invoicing() -> None:
    pass


def _usage_and_orders() -> None:
    pass


def _payments_and_dunning() -> None:
    pass


def _analytics_and_portal() -> None:
    pass


def register() -> None:
    _roles()
    _catalog_and_subscriptions()
    _invoicing()
    _usage_and_orders()
    _payments_and_dunning()
    _analytics_and_portal()

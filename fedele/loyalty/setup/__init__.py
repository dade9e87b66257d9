"""Everything loyalty registers with the kernel at start-up: roles here, then one file per area."""

from __future__ import annotations

from fedele.accounts.contracts import Role

LOYALTY_VIEW = {"loyalty.view_loyalty"}
LOYALTY_OPERATE = LOYALTY_VIEW | {"loyalty.operate_loyalty"}
LOYALTY_MANAGE = LOYALTY_OPERATE | {
    "loyalty.manage_loyalty",
    "loyalty.manage_partners",
    "loyalty.view_loyalty_reports",
    "loyalty.review_loyalty_fraud",
}


def _roles() -> None:
    from fedele.accounts.facade import grant_to_role

    grant_to_role(Role.ADMIN, LOYALTY_MANAGE)
    grant_to_role(Role.LOYALTY_MANAGER, LOYALTY_MANAGE)
    grant_to_role(
        Role.SUPERVISOR, LOYALTY_OPERATE | {"loyalty.view_loyalty_reports", "loyalty.review_loyalty_fraud"}
    )
    grant_to_role(Role.AGENT, LOYALTY_OPERATE)
    grant_to_role(Role.BILLING_CLERK, LOYALTY_VIEW)
    grant_to_role(Role.ANALYST, LOYALTY_VIEW | {"loyalty.view_loyalty_reports"})


def _attributes() -> None:
    from fedele.loyalty.facade import loyalty_tier
    from fedele.shared import customer_attributes

    customer_attributes.register("loyalty_tier", loyalty_tier)


def register() -> None:
    from fedele.loyalty.setup import club, evaluation, fraud, ledger, partners, programmes, rewards, rules

    _roles()
    _attributes()
    for area in (ledger, programmes, rules, rewards, partners, club, evaluation, fraud):
        area.register()

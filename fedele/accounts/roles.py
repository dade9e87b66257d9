"""Role -> permission map. Groups are kept in step with it after every migrate."""

from __future__ import annotations

from fedele.accounts.contracts import Role

CUSTOMER_READ = {"customers.view_customer", "customers.view_contact"}
CUSTOMER_WRITE = CUSTOMER_READ | {
    "customers.add_customer",
    "customers.change_customer",
    "customers.add_contact",
    "customers.change_contact",
    "customers.delete_contact",
    "customers.record_consent",
}
CUSTOMER_ADMIN = CUSTOMER_WRITE | {
    "customers.import_customers",
    "customers.merge_customers",
    "customers.export_personal_data",
    "customers.erase_personal_data",
    "customers.delete_customer",
}
KERNEL_ADMIN = {
    "shared.view_audit",
    "shared.manage_webhooks",
    "accounts.manage_users",
    "accounts.view_user",
    "accounts.add_user",
    "accounts.change_user",
}

ROLE_PERMISSIONS: dict[Role, set[str]] = {
    Role.ADMIN: CUSTOMER_ADMIN | KERNEL_ADMIN,
    Role.SUPERVISOR: CUSTOMER_ADMIN | {"shared.view_audit", "accounts.view_user"},
    Role.AGENT: CUSTOMER_WRITE,
    Role.BILLING_CLERK: CUSTOMER_WRITE,
    Role.LOYALTY_MANAGER: CUSTOMER_READ,
    Role.TECHNICIAN: CUSTOMER_READ,
    Role.DISPATCHER: CUSTOMER_READ,
    Role.ANALYST: CUSTOMER_READ | {"customers.export_customers"},
    Role.PORTAL_CUSTOMER: set(),
    Role.PARTNER: {"customers.view_customer", "customers.add_customer", "customers.view_contact"},
}


def extend(role: Role, permissions: set[str]) -> None:
    """Later modules add their permissions to roles from their AppConfig.ready().

    A new set each time: several roles start from the same constant (CUSTOMER_WRITE), and an
    in-place ``|=`` would hand one role's grants to every role sharing it."""
    ROLE_PERMISSIONS[role] = ROLE_PERMISSIONS[role] | permissions

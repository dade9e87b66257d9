"""Role grants added by modules stay with the role they were given to."""

from __future__ import annotations

from fedele.accounts import roles
from fedele.accounts.contracts import Role


def test_grants_do_not_leak_to_roles_sharing_a_permission_set():
    # Agent and billing clerk both start from CUSTOMER_WRITE; billing grants admin rights to the clerk only.
    assert "billing.manage_catalog" in roles.ROLE_PERMISSIONS[Role.BILLING_CLERK]
    assert "billing.manage_catalog" not in roles.ROLE_PERMISSIONS[Role.AGENT]
    assert "billing.manage_catalog" not in roles.CUSTOMER_WRITE
    assert "billing.view_billing" in roles.ROLE_PERMISSIONS[Role.AGENT]

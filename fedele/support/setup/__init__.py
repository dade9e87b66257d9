"""Everything support registers with the kernel at start-up: roles here, then one file per area."""

from __future__ import annotations

from fedele.accounts.contracts import Role

SUPPORT_VIEW = {"support.view_ticket"}
SUPPORT_AGENT = SUPPORT_VIEW | {"support.work_tickets", "support.edit_knowledge_base"}
SUPPORT_SUPERVISOR = SUPPORT_AGENT | {
    "support.view_all_tickets",
    "support.view_support_reports",
    "support.publish_knowledge_base",
    "support.import_tickets",
}
SUPPORT_ADMIN = SUPPORT_SUPERVISOR | {"support.manage_support"}


def _roles() -> None:
    from fedele.accounts.facade import grant_to_role

    grant_to_role(Role.ADMIN, SUPPORT_ADMIN)
    grant_to_role(Role.SUPERVISOR, SUPPORT_SUPERVISOR)
    grant_to_role(Role.AGENT, SUPPORT_AGENT | {"support.view_all_tickets"})
    grant_to_role(Role.ANALYST, SUPPORT_VIEW | {"support.view_all_tickets", "support.view_support_reports"})
    grant_to_role(Role.BILLING_CLERK, SUPPORT_AGENT | {"support.view_all_tickets"})
    grant_to_role(Role.TECHNICIAN, SUPPORT_VIEW)
    grant_to_role(Role.DISPATCHER, SUPPORT_AGENT)


def _demo() -> None:
    from fedele.shared import demo
    from fedele.support import demo as support_demo

    demo.register("support", support_demo.load, order=200)


def register() -> None:
    from fedele.support.setup import email, imports, kb, portal, sla, tickets, workspace

    _roles()
    _demo()
    tickets.register()
    sla.register()
    email.register()
    kb.register()
    portal.register()
    workspace.register()
    imports.register()

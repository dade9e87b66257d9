"""Everything the contact center registers at start-up: roles here, then one file per area.

Each area's ``register()`` lives in its own file (routing, telephony, ivr, messaging, dialer, desktop);
an area without registrations yet has an empty one."""

from __future__ import annotations

from fedele.accounts.contracts import Role

CC_VIEW = {"contact_center.view_interaction"}
CC_AGENT = CC_VIEW | {"contact_center.handle_interactions"}
CC_SUPERVISOR = CC_AGENT | {
    "contact_center.view_all_interactions",
    "contact_center.view_wallboards",
    "contact_center.listen_recordings",
    "contact_center.run_campaigns",
}
CC_ADMIN = CC_SUPERVISOR | {"contact_center.manage_contact_center"}


def _roles() -> None:
    from fedele.accounts.facade import grant_to_role

    grant_to_role(Role.ADMIN, CC_ADMIN)
    grant_to_role(Role.SUPERVISOR, CC_SUPERVISOR)
    grant_to_role(Role.AGENT, CC_AGENT)
    grant_to_role(
        Role.ANALYST, CC_VIEW | {"contact_center.view_all_interactions", "contact_center.view_wallboards"}
    )
    grant_to_role(Role.DISPATCHER, CC_AGENT)


def register() -> None:
    from fedele.contact_center.setup import desktop, dialer, ivr, messaging, routing, telephony

    _roles()
    routing.register()
    telephony.register()
    ivr.register()
    messaging.register()
    dialer.register()
    desktop.register()

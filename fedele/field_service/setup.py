"""Everything field service registers with the kernel at start-up (roles, subjects, customer 360 panel,
navigation, demo). Each area keeps its registrations in its own function so they read side by side."""

from __future__ import annotations

from fedele.accounts.contracts import Role
from fedele.shared.subjects import SubjectRef

FIELD_SERVICE_VIEW = {"field_service.view_field_service"}
FIELD_SERVICE_WORK = FIELD_SERVICE_VIEW | {"field_service.work_field_service"}
FIELD_SERVICE_MANAGE = FIELD_SERVICE_WORK | {"field_service.manage_field_service"}


def _roles() -> None:
    from fedele.accounts.facade import grant_to_role

    grant_to_role(Role.ADMIN, FIELD_SERVICE_MANAGE)
    grant_to_role(Role.SUPERVISOR, FIELD_SERVICE_MANAGE)
    grant_to_role(Role.DISPATCHER, FIELD_SERVICE_MANAGE)
    grant_to_role(Role.TECHNICIAN, FIELD_SERVICE_WORK)
    grant_to_role(Role.AGENT, FIELD_SERVICE_VIEW)
    grant_to_role(Role.ANALYST, FIELD_SERVICE_VIEW)


def equipment_subject(reference: str) -> SubjectRef | None:
    """A unit (by public id) as a ticket's or a call's subject."""
    from fedele.field_service.selectors import equipment_get

    row = equipment_get(reference)
    if row is None:
        return None
    return SubjectRef(
        kind="equipment",
        reference=str(row.public_id),
        customer_public_id=str(row.customer.public_id),
        label=f"{row.name} · {row.serial_number}",
        status=row.status,
    )


def work_order_subject(reference: str) -> SubjectRef | None:
    """A work order (by public id) as a ticket's subject; support notes its updates on such tickets."""
    from fedele.field_service.selectors import work_order_get

    row = work_order_get(reference)
    if row is None:
        return None
    return SubjectRef(
        kind="work_order",
        reference=str(row.public_id),
        customer_public_id=str(row.customer.public_id),
        label=f"{row.number} · {row.summary}",
        status=row.status,
    )


def register_subjects() -> None:
    """Also called by tests: another module's test may have put its own resolver in place."""
    from fedele.shared import subjects

    subjects.register("equipment", equipment_subject)
    subjects.register("work_order", work_order_subject)


def _demo() -> None:
    from fedele.field_service import demo as field_service_demo
    from fedele.shared import demo

    demo.register("field_service", field_service_demo.load, order=300)


def _customer_panel() -> None:
    from fedele.field_service.web.customer_panel import field_service_panel
    from fedele.shared.web import panels

    panels.register("field_service", field_service_panel)


def _navigation() -> None:
    from django.utils.translation import gettext_lazy as _

    from fedele.shared import navigation
    from fedele.shared.navigation import NavItem

    view = "field_service.view_field_service"
    navigation.register("field_service", NavItem(_("Work orders"), "field_service:work_order_list", view))
    navigation.register("field_service", NavItem(_("Equipment"), "field_service:equipment_list", view))
    navigation.register("field_service", NavItem(_("Technicians"), "field_service:technician_list", view))


def register() -> None:
    _roles()
    register_subjects()
    _demo()
    _customer_panel()
    _navigation()

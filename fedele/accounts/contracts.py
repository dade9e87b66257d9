"""What other modules may know about users and roles. No Django imports."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"
    BILLING_CLERK = "billing_clerk"
    LOYALTY_MANAGER = "loyalty_manager"
    TECHNICIAN = "technician"
    DISPATCHER = "dispatcher"
    ANALYST = "analyst"
    PORTAL_CUSTOMER = "portal_customer"
    PARTNER = "partner"


EXTERNAL_ROLES = frozenset({Role.PORTAL_CUSTOMER, Role.PARTNER})


class OrganisationKind(StrEnum):
    OPERATOR = "operator"
    PARTNER = "partner"
    VENDOR = "vendor"


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller of a service or selector: enough to authorise and scope, nothing more."""

    user_id: int
    public_id: UUID
    email: str
    roles: frozenset[str]
    permissions: frozenset[str]
    organisation_id: int | None
    organisation_kind: str | None
    language: str
    is_superuser: bool = False
    display_name: str = ""  # full name, or the e-mail when there is none ("" = not known)

    def can(self, permission: str) -> bool:
        return self.is_superuser or permission in self.permissions

    @property
    def is_portal_customer(self) -> bool:
        return Role.PORTAL_CUSTOMER in self.roles and not self.is_internal

    @property
    def is_partner(self) -> bool:
        return Role.PARTNER in self.roles and not self.is_internal

    @property
    def is_internal(self) -> bool:
        return self.is_superuser or bool(self.roles - EXTERNAL_ROLES)


@dataclass(frozen=True, slots=True)
class UserSummary:
    user_id: int
    public_id: UUID
    email: str
    full_name: str
    roles: frozenset[str]

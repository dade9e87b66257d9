"""The product map for the role-aware navigation. Modules fill in their entries when they install."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(slots=True)
class NavItem:
    label: str | Promise
    url_name: str
    permission: str | None = None


@dataclass(slots=True)
class NavSection:
    key: str
    label: str | Promise
    icon: str
    permission_prefix: tuple[str, ...]
    items: list[NavItem] = field(default_factory=list)

    @property
    def installed(self) -> bool:
        return bool(self.items)


SECTIONS: dict[str, NavSection] = {
    section.key: section
    for section in [
        NavSection("customers", _("Customers"), "people", ("customers.",)),
        NavSection("billing", _("Billing"), "receipt", ("billing.",)),
        NavSection("loyalty", _("Loyalty"), "star", ("loyalty.",)),
        NavSection("service", _("Service"), "life-ring", ("support.",)),
        NavSection("contact_center", _("Contact center"), "headset", ("contact_center.",)),
        NavSection("wfm", _("Workforce"), "calendar", ("wfm.",)),
        NavSection("field_service", _("Field service"), "wrench", ("field_service.",)),
        NavSection("insights", _("Insights"), "chart", ("insights.",)),
        NavSection("settings", _("Settings"), "gear", ("accounts.", "shared.")),
    ]
}


def register(section_key: str, item: NavItem) -> None:
    section = SECTIONS[section_key]
    if not any(existing.url_name == item.url_name for existing in section.items):
        section.items.append(item)

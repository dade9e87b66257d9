from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse

from fedele.shared import navigation as product_map
from fedele.shared.notifications import unread_count


def _brand() -> dict[str, str]:
    """The brand shown on every page and, most visibly, on the customer-facing portal."""
    return {
        "brand_name": settings.FEDELE_BRAND_NAME,
        "brand_color": settings.FEDELE_BRAND_COLOR,
        "brand_logo_url": settings.FEDELE_BRAND_LOGO_URL,
    }


def navigation(request: HttpRequest) -> dict[str, Any]:
    """Sections and links the current user may open; uninstalled modules show as 'coming soon'."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return _brand()
    permissions = user.get_all_permissions()
    is_internal = getattr(user, "is_internal", False)
    sections = []
    all_links: list[dict[str, Any]] = []
    for section in product_map.SECTIONS.values():
        links = [
            {"label": item.label, "url": reverse(item.url_name), "active": False}
            for item in section.items
            if item.permission is None or item.permission in permissions
        ]
        all_links.extend(links)
        # Modules not installed yet are listed, disabled, for staff: the map of the product.
        if links or (not section.installed and is_internal):
            sections.append(
                {
                    "key": section.key,
                    "label": section.label,
                    "icon": section.icon,
                    "links": links,
                    "installed": section.installed,
                }
            )
    # Only the most specific link is active: /customers/import/ is "Import", not also "Customers".
    matching = [link for link in all_links if request.path.startswith(link["url"])]
    if matching:
        max(matching, key=lambda link: len(link["url"]))["active"] = True
    return {
        **_brand(),
        "nav_sections": sections,
        "unread_notifications": unread_count(recipient_id=user.pk),
    }

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse

from fedele.shared import navigation as product_map
from fedele.shared.notifications import unread_count


def navigation(request: HttpRequest) -> dict[str, Any]:
    """Sections and links the current user may open; uninstalled modules show as 'coming soon'."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"brand_name": settings.FEDELE_BRAND_NAME}
    permissions = user.get_all_permissions()
    sections = []
    for section in product_map.SECTIONS.values():
        links = [
            {
                "label": item.label,
                "url": reverse(item.url_name),
                "active": request.path.startswith(reverse(item.url_name)),
            }
            for item in section.items
            if item.permission is None or item.permission in permissions
        ]
        # Modules not installed yet are listed, disabled, for staff: the map of the product.
        if links or (not section.installed and getattr(user, "is_internal", False)):
            sections.append(
                {
                    "key": section.key,
                    "label": section.label,
                    "icon": section.icon,
                    "links": links,
                    "installed": section.installed,
                }
            )
    return {
        "brand_name": settings.FEDELE_BRAND_NAME,
        "nav_sections": sections,
        "unread_notifications": unread_count(recipient_id=user.pk),
    }

"""Shared pieces of the desktop area's pages: who may use them."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.translation import gettext as _

from fedele.accounts.facade import Actor, actor_for
from fedele.shared.errors import ApplicationError, PermissionDenied

WALLBOARDS = "contact_center.view_wallboards"
HANDLE = "contact_center.handle_interactions"


def supervisor(request: HttpRequest) -> Actor:
    """An internal user allowed to see wallboards and contact-center reports; anyone else gets a 403."""
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can(WALLBOARDS)):
        raise PermissionDenied(_("You may not see contact-center wallboards and reports."))
    return actor


def errors_of(error: ApplicationError) -> dict[str, list[str]]:
    return error.fields or {"__all__": [error.message]}

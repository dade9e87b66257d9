"""Reads of interactions, scoped to what the caller may see: an agent sees the contacts they
handled; ``contact_center.view_all_interactions`` sees every contact."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.contact_center.models import Interaction
from fedele.shared.errors import NotFound, PermissionDenied

VIEW = "contact_center.view_interaction"
VIEW_ALL = "contact_center.view_all_interactions"
FILTERS = ("channel", "state", "direction", "outcome")


def require_view(actor: Actor) -> None:
    if not actor.can(VIEW):
        raise PermissionDenied(_("You may not see contacts."), code="permission_denied")


def interaction_list(*, actor: Actor, filters: Mapping[str, str] | None = None) -> QuerySet[Interaction]:
    require_view(actor)
    rows = Interaction.objects.select_related("queue", "agent", "wrap_up_code")
    if not actor.can(VIEW_ALL):
        rows = rows.filter(agent__user_id=actor.user_id)
    for name in FILTERS:
        value = (filters or {}).get(name, "")
        if value:
            rows = rows.filter(**{name: value})
    queue = (filters or {}).get("queue", "")
    if queue:
        rows = rows.filter(queue__code=queue)
    customer = (filters or {}).get("customer", "")
    if customer:
        rows = rows.filter(customer_public_id=customer)
    return rows


def interaction_get(*, actor: Actor, public_id: str) -> Interaction:
    """One contact, or NotFound (also for a contact the caller may not see: no existence leak)."""
    try:
        key = uuid.UUID(str(public_id))
    except ValueError:
        raise NotFound(_("This contact does not exist."), code="interaction_not_found") from None
    found = interaction_list(actor=actor).filter(public_id=key).first()
    if found is None:
        raise NotFound(_("This contact does not exist."), code="interaction_not_found")
    return found

"""Saved views (named queues): personal ones for their owner, shared ones for support managers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.shared import audit, clock
from fedele.shared.errors import PermissionDenied, ValidationFailed
from fedele.support.models import SavedView, Ticket
from fedele.support.selectors.tickets import ORDERINGS, apply_filters, saved_view_get

MANAGE = "support.manage_support"
UPDATE_KEYS = frozenset({"name", "filters", "ordering", "shared", "position"})


def _validated(actor: Actor, values: Mapping[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if "name" in values:
        name = " ".join(str(values["name"] or "").split())
        if not name:
            raise ValidationFailed(
                _("A view needs a name."), code="name_required", fields={"name": _("Required.")}
            )
        clean["name"] = name[:80]
    if "filters" in values:
        filters = values["filters"] or {}
        if not isinstance(filters, Mapping):
            raise ValidationFailed(
                _("filters must be an object."),
                code="invalid_filter",
                fields={"filters": _("Must be an object.")},
            )
        clean["filters"] = {str(k): str(v) for k, v in filters.items() if v not in (None, "")}
        # Validates every key and value (raises ValidationFailed) without running a query.
        apply_filters(Ticket.objects.none(), actor=actor, filters=clean["filters"])
    if "ordering" in values:
        ordering = str(values["ordering"] or "-id")
        if ordering not in ORDERINGS:
            raise ValidationFailed(
                _("Unknown ordering '%(ordering)s'.") % {"ordering": ordering},
                code="invalid_ordering",
                fields={"ordering": _("Unknown ordering.")},
            )
        clean["ordering"] = ordering
    if "shared" in values:
        clean["shared"] = bool(values["shared"])
    if "position" in values:
        try:
            position = int(values["position"])
        except (TypeError, ValueError) as error:
            raise ValidationFailed(
                _("position must be a number."), code="invalid_position", fields={"position": _("Invalid.")}
            ) from error
        if not 0 <= position <= 32767:
            raise ValidationFailed(
                _("position must be between 0 and 32767."),
                code="invalid_position",
                fields={"position": _("Invalid.")},
            )
        clean["position"] = position
    return clean


def _require_work(actor: Actor) -> None:
    if actor.is_portal_customer or not actor.can("support.work_tickets"):
        raise PermissionDenied(_("You may not manage ticket views."))


def _require_edit(actor: Actor, view: SavedView) -> None:
    if view.shared and not actor.can(MANAGE):
        raise PermissionDenied(_("Only support managers can change shared views."))
    if not view.shared and view.owner_id != actor.user_id:
        raise PermissionDenied(_("This view belongs to someone else."))


def saved_view_create(
    *,
    actor: Actor,
    name: str,
    filters: Mapping[str, Any] | None = None,
    ordering: str = "-id",
    shared: bool = False,
    position: int = 0,
) -> SavedView:
    _require_work(actor)
    clean = _validated(
        actor,
        {
            "name": name,
            "filters": filters or {},
            "ordering": ordering,
            "shared": shared,
            "position": position,
        },
    )
    if clean["shared"] and not actor.can(MANAGE):
        raise PermissionDenied(_("Only support managers can share views."))
    with transaction.atomic():
        view = SavedView.objects.create(
            owner_id=None if clean["shared"] else actor.user_id, created_at=clock.now(), **clean
        )
        audit.record(
            action="support.saved_view_created",
            object_type="support.saved_view",
            object_id=str(view.public_id),
            after=clean,
            actor_id=actor.user_id,
        )
    return view


def saved_view_update(*, actor: Actor, view: SavedView | str, changes: Mapping[str, Any]) -> SavedView:
    _require_work(actor)
    unknown = sorted(set(changes) - UPDATE_KEYS)
    if unknown:
        raise ValidationFailed(
            _("Unknown fields: %(fields)s.") % {"fields": ", ".join(unknown)},
            code="unknown_field",
            fields={key: _("Unknown field.") for key in unknown},
        )
    clean = _validated(actor, changes)
    with transaction.atomic():
        row = saved_view_get(
            actor=actor, public_id=str(view.public_id if isinstance(view, SavedView) else view)
        )
        row = SavedView.objects.select_for_update().get(pk=row.pk)
        _require_edit(actor, row)
        if clean.get("shared") and not row.shared and not actor.can(MANAGE):
            raise PermissionDenied(_("Only support managers can share views."))
        before = {key: getattr(row, key) for key in clean}
        for key, value in clean.items():
            setattr(row, key, value)
        if "shared" in clean:
            row.owner_id = None if row.shared else (row.owner_id or actor.user_id)
        row.save()
        audit.record(
            action="support.saved_view_updated",
            object_type="support.saved_view",
            object_id=str(row.public_id),
            before=before,
            after=clean,
            actor_id=actor.user_id,
        )
    return row


def saved_view_delete(*, actor: Actor, view: SavedView | str) -> None:
    _require_work(actor)
    with transaction.atomic():
        row = saved_view_get(
            actor=actor, public_id=str(view.public_id if isinstance(view, SavedView) else view)
        )
        _require_edit(actor, row)
        audit.record(
            action="support.saved_view_deleted",
            object_type="support.saved_view",
            object_id=str(row.public_id),
            before={"name": row.name, "filters": row.filters},
            actor_id=actor.user_id,
        )
        row.delete()

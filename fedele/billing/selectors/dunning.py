"""Dunning reads: the dunning queue (open cases) and the collections queue (escalated cases)."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet

from fedele.accounts.facade import Actor
from fedele.billing.models import DunningAction, DunningCase
from fedele.billing.selectors.payments import require_staff
from fedele.shared.errors import NotFound

ORDERINGS = {"due_date": "due_date", "opened_at": "opened_at"}


def case_list(*, actor: Actor, status: str = "") -> QuerySet[DunningCase]:
    require_staff(actor)
    queryset = DunningCase.objects.select_related("invoice", "account", "policy")
    if status:
        queryset = queryset.filter(status=status)
    return queryset


def case_get(*, actor: Actor, public_id: str) -> DunningCase:
    require_staff(actor)
    try:
        key = UUID(str(public_id))
    except ValueError:
        key = None
    case = (
        DunningCase.objects.select_related("invoice", "account").filter(public_id=key).first()
        if key
        else None
    )
    if case is None:
        raise NotFound("Dunning case not found.", code="case_not_found")
    return case


def case_actions(case: DunningCase) -> QuerySet[DunningAction]:
    return DunningAction.objects.filter(case=case).order_by("id")

"""Helpers of the earning-rules tests: rules and events through the real services, and row counts."""

from __future__ import annotations

from decimal import Decimal
from itertools import count
from typing import Any

from fedele.loyalty.models import (
    CampaignAssignment,
    EarningRule,
    LoyaltyEvent,
    Member,
    PointsEntry,
    PointsTransaction,
    Programme,
    RuleUsage,
)
from fedele.loyalty.services.rules import event_record, rule_create
from fedele.shared.models import AuditLog, OutboxEvent

_numbers = count(1)


def make_rule(programme: Programme, **data: Any) -> EarningRule:
    """An active rule (spend, 1 point per euro unless told otherwise)."""
    number = next(_numbers)
    values: dict[str, Any] = {
        "code": f"rule-{number}",
        "name_en": f"Rule {number}",
        "name_it": f"Regola {number}",
        "event_type": "spend",
        "points_per_euro": "1",
        "pending": False,
        "status": "active",
    }
    values.update(data)
    return rule_create(actor=None, programme=programme, data=values)


def spend(
    member: Member, amount: str | Decimal | None, external_id: str | None = None, **kwargs: Any
) -> LoyaltyEvent:
    return event_record(
        actor=kwargs.pop("actor", None),
        programme=member.programme,
        member=member,
        event_type=kwargs.pop("event_type", "spend"),
        source=kwargs.pop("source", "pos"),
        external_id=external_id or f"receipt-{next(_numbers)}",
        amount_eur=Decimal(str(amount)) if amount is not None else None,
        **kwargs,
    )


def points_of(event: LoyaltyEvent) -> int:
    return int(event.result["points"])


def row_counts() -> dict[str, int]:
    return {
        "events": LoyaltyEvent.objects.count(),
        "transactions": PointsTransaction.objects.count(),
        "entries": PointsEntry.objects.count(),
        "usage": RuleUsage.objects.count(),
        "assignments": CampaignAssignment.objects.count(),
        "audit": AuditLog.objects.count(),
        "outbox": OutboxEvent.objects.count(),
    }


def balance(member: Member) -> tuple[int, int]:
    member.refresh_from_db()
    return member.available, member.pending

"""Builders for the evaluation and fraud tests: members and postings made through the real services
at a chosen moment (the clock is moved with time_machine), never by setting balance fields."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import time_machine

from fedele.loyalty.models import Member, PointsTransaction, Programme
from fedele.loyalty.selectors.evaluation_common import Period
from fedele.loyalty.services.ledger import lots_expire_due, points_earn, points_redeem
from fedele.loyalty.tests.factories import MemberFactory

ROME = ZoneInfo("Europe/Rome")
_keys = itertools.count(1)


def utc(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def rome(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ROME)


def member_at(programme: Programme, when: datetime, **fields: Any) -> Member:
    with time_machine.travel(when, tick=False):
        member: Member = MemberFactory(programme=programme, enrolled_at=when, **fields)
    return member


def earn(
    member: Member, points: int, when: datetime, *, amount: str | None = None, **extra: Any
) -> PointsTransaction:
    with time_machine.travel(when, tick=False):
        return points_earn(
            actor=None,
            member=member,
            points=points,
            source="test",
            idempotency_key=f"earn-{next(_keys)}",
            amount_eur=Decimal(amount) if amount is not None else None,
            **extra,
        )


def redeem(member: Member, points: int, when: datetime) -> PointsTransaction:
    with time_machine.travel(when, tick=False):
        return points_redeem(
            actor=None, member=member, points=points, idempotency_key=f"redeem-{next(_keys)}", source="test"
        )


def expire(programme: Programme, day: date) -> int:
    with time_machine.travel(datetime(day.year, day.month, day.day, 3, tzinfo=ROME), tick=False):
        return lots_expire_due(today=day, programme=programme)


def period(programme: Programme, start: date, end: date) -> Period:
    return Period(programme=programme, start=start, end=end)

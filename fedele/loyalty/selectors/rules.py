"""Reads of the earning-rules area: programmes by code, rules, campaigns, inbound events, members by
public id or card number, and the cap usage a quote trims against."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from fedele.loyalty.models import (
    Campaign,
    EarningRule,
    EventType,
    LoyaltyEvent,
    Member,
    Programme,
    RuleStatus,
    RuleUsage,
    Tier,
)
from fedele.shared.errors import NotFound

UsageKey = tuple[int, int | None, date | None]
"""(rule pk, member pk or None for everyone, day or None for "in total")."""

_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def as_uuid(value: object) -> uuid.UUID | None:
    """A UUID from text, or None when the text is not one (so it never reaches the database)."""
    text = str(value or "").strip()
    return uuid.UUID(text) if _UUID.match(text) else None


def programme_get(code: str) -> Programme:
    programme = Programme.objects.filter(code=str(code or "").strip()).first()
    if programme is None:
        raise NotFound(_("Programme not found."), code="programme_not_found")
    return programme


def programmes() -> QuerySet[Programme]:
    return Programme.objects.order_by("code")


def rules_for_event(
    programme: Programme, event_type: str, *, custom_event: str = "", include_drafts: bool = False
) -> list[EarningRule]:
    """The rules an event of this type is evaluated on (one query, campaigns joined), in position order.
    Custom events match rules naming the same custom event and rules naming none."""
    statuses = [RuleStatus.ACTIVE, RuleStatus.DRAFT] if include_drafts else [RuleStatus.ACTIVE]
    rows = EarningRule.objects.filter(programme=programme, event_type=event_type, status__in=statuses)
    if event_type == EventType.CUSTOM:
        rows = rows.filter(custom_event__in=["", custom_event])
    return list(rows.select_related("campaign").order_by("position", "id"))


def has_active_rule(programme: Programme, event_type: str, *, custom_event: str = "") -> bool:
    rows = EarningRule.objects.filter(programme=programme, event_type=event_type, status=RuleStatus.ACTIVE)
    if event_type == EventType.CUSTOM:
        rows = rows.filter(custom_event__in=["", custom_event])
    return rows.exists()


def rule_list(*, programme: Programme, status: str = "", event_type: str = "") -> QuerySet[EarningRule]:
    rows = EarningRule.objects.filter(programme=programme).select_related("campaign")
    if status:
        rows = rows.filter(status=status)
    if event_type:
        rows = rows.filter(event_type=event_type)
    return rows.order_by("position", "id")


def rule_get(public_id: object, *, programme: Programme | None = None) -> EarningRule:
    found = as_uuid(public_id)
    rows = EarningRule.objects.select_related("programme", "campaign")
    if programme is not None:
        rows = rows.filter(programme=programme)
    rule = rows.filter(public_id=found).first() if found else None
    if rule is None:
        raise NotFound(_("Earning rule not found."), code="rule_not_found")
    return rule


def campaign_list(*, programme: Programme, status: str = "") -> QuerySet[Campaign]:
    rows = Campaign.objects.filter(programme=programme)
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("-starts_at", "id")


def campaign_get(public_id: object, *, programme: Programme | None = None) -> Campaign:
    found = as_uuid(public_id)
    rows = Campaign.objects.select_related("programme")
    if programme is not None:
        rows = rows.filter(programme=programme)
    campaign = rows.filter(public_id=found).first() if found else None
    if campaign is None:
        raise NotFound(_("Campaign not found."), code="campaign_not_found")
    return campaign


def member_find(programme: Programme, identifier: str) -> Member | None:
    """A member of the programme by public id or card number (tier joined: the quote reads it)."""
    text = str(identifier or "").strip()
    if not text:
        return None
    rows = Member.objects.select_related("tier").filter(programme=programme)
    found = as_uuid(text)
    if found is not None:
        return rows.filter(public_id=found).first()
    return rows.filter(card_number=text).first()


_MEMBER_FIELDS = [field.attname for field in Member._meta.concrete_fields]


def members_find(
    programme: Programme, identifiers: Iterable[str], *, tiers: Mapping[int, Tier] | None = None
) -> dict[str, Member]:
    """``member_find`` for many identifiers at once, by the identifier given: one raw statement (the
    earn hot path: no query building); the members' tiers from ``tiers`` (by id) when given."""
    texts = {str(identifier or "").strip() for identifier in identifiers} - {""}
    if not texts:
        return {}
    by_uuid = {text: value for text in texts if (value := as_uuid(text)) is not None}
    cards = sorted(text for text in texts if text not in by_uuid)
    public_id = Member._meta.get_field("public_id")
    ids = [public_id.get_db_prep_value(value, connection) for value in by_uuid.values()]
    columns = ", ".join(f"{field.column}" for field in Member._meta.concrete_fields)
    match = []
    params: list[Any] = [programme.pk]
    if cards:
        match.append(f"card_number IN ({', '.join(['%s'] * len(cards))})")
        params.extend(cards)
    if ids:
        match.append(f"public_id IN ({', '.join(['%s'] * len(ids))})")
        params.extend(ids)
    sql = f"SELECT {columns} FROM {Member._meta.db_table} WHERE programme_id = %s AND ({' OR '.join(match)})"  # noqa: S608
    if connection.vendor == "postgresql":
        # The driver returns Python values for every column of a member: no converters to apply, so
        # the rows become members without the raw query set's per-query column resolution.
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = [Member.from_db("default", _MEMBER_FIELDS, values) for values in cursor.fetchall()]
    else:
        rows = list(Member.objects.raw(sql, params))
    if tiers is None and rows:
        tiers = {tier.pk: tier for tier in Tier.objects.filter(programme=programme)}
    found: dict[str, Member] = {}
    by_public_id = {value: text for text, value in by_uuid.items()}
    for member in rows:
        member.tier = tiers.get(member.tier_id) if tiers and member.tier_id is not None else None
        if member.public_id in by_public_id:
            found[by_public_id[member.public_id]] = member
        if member.card_number in texts and member.card_number not in by_uuid:
            found[member.card_number] = member
    return found


def event_list(
    *, programme: Programme, member: Member | None = None, event_type: str = "", limit: int = 100
) -> list[LoyaltyEvent]:
    rows = LoyaltyEvent.objects.filter(programme=programme).select_related("member", "transaction")
    if member is not None:
        rows = rows.filter(member=member)
    if event_type:
        rows = rows.filter(event_type=event_type)
    return list(rows.order_by("-id")[: max(1, min(limit, 500))])


def event_get(public_id: object) -> LoyaltyEvent:
    found = as_uuid(public_id)
    event = (
        LoyaltyEvent.objects.select_related("programme", "member", "transaction")
        .filter(public_id=found)
        .first()
        if found
        else None
    )
    if event is None:
        raise NotFound(_("Event not found."), code="event_not_found")
    return event


def _usage_filter(keys: Iterable[UsageKey]) -> Q:
    condition = Q(pk__in=[])
    for rule_id, member_id, day in keys:
        condition |= Q(rule_id=rule_id, member_id=member_id, day=day)
    return condition


def usage_points(keys: Iterable[UsageKey]) -> dict[UsageKey, int]:
    """Points already awarded per cap key (missing keys: nothing awarded yet). One query."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    rows = RuleUsage.objects.filter(_usage_filter(wanted)).values_list(
        "rule_id", "member_id", "day", "points"
    )
    return {(rule_id, member_id, day): points for rule_id, member_id, day, points in rows}


def usage_locked(keys: Iterable[UsageKey]) -> dict[UsageKey, RuleUsage]:
    """The usage rows of these keys, created when missing, locked for update (ordered by pk)."""
    wanted = sorted(set(keys), key=_key_order)
    if not wanted:
        return {}
    rows = _lock_rows(wanted)
    missing = [key for key in wanted if key not in rows]
    if missing:
        # Inserting only what is missing keeps the steady state at one query; a racing request that
        # inserted the same key first makes ours a no-op, and the second SELECT then waits for its lock.
        RuleUsage.objects.bulk_create(
            [RuleUsage(rule_id=rule_id, member_id=member_id, day=day) for rule_id, member_id, day in missing],
            ignore_conflicts=True,
        )
        rows.update(_lock_rows(missing))
    return rows


def _key_order(key: UsageKey) -> tuple[int, int, date]:
    """One insertion order for every request, so two of them never wait on each other's inserts."""
    rule_id, member_id, day = key
    return (rule_id, -1 if member_id is None else member_id, day or date.min)


def _lock_rows(keys: list[UsageKey]) -> dict[UsageKey, RuleUsage]:
    found: dict[UsageKey, RuleUsage] = {}
    for row in RuleUsage.objects.select_for_update().filter(_usage_filter(keys)).order_by("pk"):
        found.setdefault((row.rule_id, row.member_id, row.day), row)
    return found


def campaign_budget_used(campaign_ids: Iterable[int]) -> dict[int, int]:
    """Points every rule of each campaign has awarded in total (its "everyone, in total" usage rows)."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return {}
    used = dict.fromkeys(ids, 0)
    rows = RuleUsage.objects.filter(rule__campaign_id__in=ids, member__isnull=True, day__isnull=True)
    for campaign_id, points in rows.values_list("rule__campaign_id", "points"):
        used[campaign_id] += points
    return used

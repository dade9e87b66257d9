"""Programmes and earning rules cached per process for the earn hot path, under the shared version
``loyalty-config`` (``fedele.shared.versioned_cache``).

Any save or delete of a programme, an earning rule, a campaign or a tier bumps the version inside
its own transaction (signals connected in ``apps.py``), so every process reads the rows again from
the first request that can see the change. Outside a request scope (jobs, commands, tests calling
services) the loaders run every time, exactly as before.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from fedele.loyalty.models import Campaign, EarningRule, Programme, Tier
from fedele.loyalty.selectors import rules as rule_selectors
from fedele.shared import versioned_cache

NAMESPACE = versioned_cache.register("loyalty-config")


def _load_programme(code: Any) -> Programme | None:
    return Programme.objects.filter(code=str(code)).first()


def _load_rules(key: Any) -> tuple[EarningRule, ...]:
    programme, event_type, custom_event = key
    return tuple(rule_selectors.rules_for_event(programme, event_type, custom_event=custom_event))


def _load_tiers(programme_id: Any) -> dict[int, Tier]:
    return {tier.pk: tier for tier in Tier.objects.filter(programme_id=programme_id)}


_tiers: versioned_cache.VersionedMapping[dict[int, Tier]] = versioned_cache.VersionedMapping(
    NAMESPACE, _load_tiers, max_entries=1_000
)
_programmes: versioned_cache.VersionedMapping[Programme] = versioned_cache.VersionedMapping(
    NAMESPACE, _load_programme, max_entries=1_000
)
_rules: versioned_cache.VersionedMapping[tuple[EarningRule, ...]] = versioned_cache.VersionedMapping(
    NAMESPACE, _load_rules, max_entries=10_000
)


def programme_get(code: str) -> Programme:
    """``selectors.rules.programme_get`` through the cache (NotFound the same way)."""
    text = str(code or "").strip()
    found = _programmes.get(text) if text else None
    return found if found is not None else rule_selectors.programme_get(text)


def tiers(programme: Programme) -> dict[int, Tier]:
    """The programme's tiers by id."""
    return _tiers.get(programme.pk) or {}


def rules_for_event(programme: Programme, event_type: str, *, custom_event: str = "") -> list[EarningRule]:
    """``selectors.rules.rules_for_event`` (active rules) through the cache."""
    found = _rules.get((programme, event_type, custom_event))
    return list(found) if found is not None else []


def _changed(**_kwargs: Any) -> None:
    versioned_cache.bump(NAMESPACE)


def connect() -> None:
    for model in (Programme, EarningRule, Campaign, Tier):
        uid = f"loyalty-config-{model._meta.model_name}"
        post_save.connect(_changed, sender=model, dispatch_uid=f"{uid}-save")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"{uid}-delete")

"""Facts about a customer that one module owns and others condition on, without importing it.

Loyalty registers "loyalty_tier"; support's SLA policies and triggers and the contact center's
routing read it by name. A module that is not installed simply provides nothing (None).
"""

from __future__ import annotations

from collections.abc import Callable

AttributeProvider = Callable[[str], "str | None"]
_providers: dict[str, AttributeProvider] = {}


def register(name: str, provider: AttributeProvider) -> None:
    _providers[name] = provider


def unregister(name: str) -> None:
    _providers.pop(name, None)


def get(customer_public_id: str, name: str) -> str | None:
    provider = _providers.get(name)
    if provider is None or not customer_public_id:
        return None
    return provider(customer_public_id)

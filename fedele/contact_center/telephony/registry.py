"""Which adapter speaks for which provider.

Adapters register a factory under their provider name (``twilio``, ``sip``, ``simulator``…) at
start-up; ``adapter_for(interaction.provider)`` then gives the call-control object for a call. A
factory is called on every lookup, so an adapter that reads its credentials from settings sees the
current ones; an adapter with in-process state (the simulator, the SIP user agent) returns its one
instance from its factory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.utils.translation import gettext as _

from fedele.contact_center.telephony.port import TelephonyAdapter
from fedele.shared.errors import ValidationFailed

AdapterFactory = Callable[[], TelephonyAdapter]

_factories: dict[str, AdapterFactory] = {}
_lock = threading.Lock()


def register_adapter(provider: str, factory: AdapterFactory) -> None:
    """Register (or replace) the factory of ``provider``'s adapter."""
    if not provider or provider != provider.strip().lower():
        raise ValueError(f"A provider name is lower-case and non-empty, not {provider!r}.")
    with _lock:
        _factories[provider] = factory


def registered_providers() -> list[str]:
    with _lock:
        return sorted(_factories)


def adapter_for(provider: str) -> TelephonyAdapter:
    """The adapter of ``provider``; an unknown provider is a clear error (a call whose provider has no
    adapter cannot be controlled)."""
    with _lock:
        factory = _factories.get(provider)
    if factory is None:
        raise ValidationFailed(
            _("No telephony adapter is registered for provider “%(provider)s”.") % {"provider": provider},
            code="unknown_telephony_provider",
            fields={"provider": _("Unknown provider.")},
        )
    return factory()


@contextmanager
def adapter_override(provider: str, adapter: TelephonyAdapter) -> Iterator[TelephonyAdapter]:
    """Use ``adapter`` for ``provider`` inside the block (tests put a recording adapter in place)."""
    with _lock:
        previous = _factories.get(provider)
        _factories[provider] = lambda: adapter
    try:
        yield adapter
    finally:
        with _lock:
            if previous is None:
                _factories.pop(provider, None)
            else:
                _factories[provider] = previous

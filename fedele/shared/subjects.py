"""What a ticket (or a call, a work order) can be *about*: things another module owns.

Billing registers "entitlement" (a provisioned service: a fibre line, a licence seat); field service
registers "equipment" and "work_order" when it is installed. A caller that stores a reference checks it
here: a kind nobody registered is not available, and a reference the owner does not know is refused.
The kernel imports no module: owners register a resolver at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SubjectRef:
    kind: str
    reference: str
    customer_public_id: str | None
    label: str
    status: str


Resolver = Callable[[str], "SubjectRef | None"]
_resolvers: dict[str, Resolver] = {}


def register(kind: str, resolver: Resolver) -> None:
    _resolvers[kind] = resolver


def unregister(kind: str) -> None:
    _resolvers.pop(kind, None)


def available_kinds() -> list[str]:
    return sorted(_resolvers)


def is_available(kind: str) -> bool:
    return kind in _resolvers


def resolve(kind: str, reference: str) -> SubjectRef | None:
    """The owner's view of the reference, or None (kind not available, or reference unknown)."""
    resolver = _resolvers.get(kind)
    if resolver is None or not reference:
        return None
    return resolver(reference)

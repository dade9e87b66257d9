"""Demo data hooks: each module registers a loader; `manage.py demo` runs them in order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEMO_PASSWORD = "fedele-demo-2026"  # noqa: S105  (printed on purpose: demo data only)

DemoLoader = Callable[["DemoContext"], None]


@dataclass
class DemoContext:
    """Shared state between loaders: the seeded Faker, the users made so far, counts to report."""

    faker: Any
    seed: int
    users: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict)
    """What one loader made that later loaders build on (e.g. customers' public ids for billing)."""
    progress: Callable[[str, int, int], None] = lambda label, done, total: None


@dataclass(frozen=True, slots=True)
class _Loader:
    order: int
    name: str
    function: DemoLoader


_loaders: list[_Loader] = []
_logins: list[tuple[str, str]] = []


def register_login(email: str, description: str) -> None:
    """A demo login to print after loading (the password is DEMO_PASSWORD for all)."""
    if not any(existing == email for existing, _ in _logins):
        _logins.append((email, description))


def logins() -> list[tuple[str, str]]:
    return list(_logins)


def register(name: str, function: DemoLoader, *, order: int = 100) -> None:
    """Accounts load at order 10, customers at 20; later modules use 100+ so people and customers exist."""
    if not any(loader.name == name for loader in _loaders):
        _loaders.append(_Loader(order, name, function))


def loaders() -> list[tuple[str, DemoLoader]]:
    return [(loader.name, loader.function) for loader in sorted(_loaders, key=lambda x: (x.order, x.name))]

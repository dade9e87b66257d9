"""Triggers and macros (owned by the SLA/automation area). Ticket services call run_triggers inside
their transaction after the change is saved."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fedele.accounts.contracts import Actor
    from fedele.support.models import Ticket


def run_triggers(
    ticket: Ticket, *, event: str, actor: Actor | None, changes: dict[str, tuple[Any, Any]] | None = None
) -> None:
    """Run every active trigger for ``event`` whose conditions hold. ``changes`` maps field → (old, new)."""

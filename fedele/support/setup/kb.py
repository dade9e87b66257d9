"""What the kb area registers at start-up (navigation, scheduler jobs, event handlers, panels, demo)."""

from __future__ import annotations


def register() -> None:
    """Filled in by the owner of this area."""

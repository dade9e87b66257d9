"""What the dialer area registers at start-up (navigation, scheduler jobs, event handlers, demo)."""

from __future__ import annotations


def register() -> None:
    return None

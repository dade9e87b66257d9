"""What the programme evaluation area registers at start-up."""

from __future__ import annotations


def register() -> None:
    return None

"""What the fraud and abuse guards area registers at start-up."""

from __future__ import annotations


def register() -> None:
    return None

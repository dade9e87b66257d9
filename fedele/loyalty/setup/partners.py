"""What the coalition partners and settlements area registers at start-up."""

from __future__ import annotations


def register() -> None:
    return None

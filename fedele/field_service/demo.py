"""Field service demo data (filled in below)."""

from __future__ import annotations

from fedele.shared.demo import DemoContext


def load(context: DemoContext) -> None:
    return None

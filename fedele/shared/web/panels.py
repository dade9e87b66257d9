"""Customer 360 panels: each module adds its own block to the customer page (billing position,
open tickets, loyalty tier, equipment...). The customers module may not import them, so they plug in
here, like dashboard widgets."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest

from fedele.shared.web.dashboard import DashboardWidget

PanelSource = Callable[[HttpRequest, str], "DashboardWidget | None"]
_sources: dict[str, PanelSource] = {}


def register(name: str, source: PanelSource) -> None:
    _sources[name] = source


def panels_for_customer(request: HttpRequest, customer_public_id: str) -> list[DashboardWidget]:
    """The panels this user may see for one customer; a source returns None to stay out."""
    panels = [
        panel
        for name in sorted(_sources)
        if (panel := _sources[name](request, customer_public_id)) is not None
    ]
    return sorted(panels, key=lambda panel: panel.order)

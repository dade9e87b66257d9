"""Home dashboard widgets: each module registers a source; the home page shows what the user may see.

The kernel may not import business modules, so modules plug their widgets in here, as they do for
global search and navigation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest


@dataclass(frozen=True, slots=True)
class DashboardWidget:
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    order: int = 100


WidgetSource = Callable[[HttpRequest], "DashboardWidget | None"]
_sources: dict[str, WidgetSource] = {}


def register(name: str, source: WidgetSource) -> None:
    _sources[name] = source


def widgets_for(request: HttpRequest) -> list[DashboardWidget]:
    """The widgets this request's user may see; a source returns None to stay out."""
    widgets = [widget for name in sorted(_sources) if (widget := _sources[name](request)) is not None]
    return sorted(widgets, key=lambda widget: widget.order)


# A module may send some users to a home of their own (a loyalty partner's staff to the partner
# portal): the first source that answers with a URL wins, before the kernel's own rule.
HomeSource = Callable[[HttpRequest], "str | None"]
_homes: dict[str, HomeSource] = {}


def register_home(name: str, source: HomeSource) -> None:
    _homes[name] = source


def home_for(request: HttpRequest) -> str | None:
    for name in sorted(_homes):
        url = _homes[name](request)
        if url:
            return url
    return None

"""Global search: modules register a source; the search box asks every source the user may use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest


@dataclass(frozen=True, slots=True)
class SearchHit:
    source: str
    title: str
    subtitle: str
    url: str


SearchSource = Callable[[HttpRequest, str, int], list[SearchHit]]
_sources: dict[str, SearchSource] = {}


def register(name: str, source: SearchSource) -> None:
    _sources[name] = source


def source_names() -> list[str]:
    return sorted(_sources)


def run(request: HttpRequest, query: str, per_source: int = 8) -> list[SearchHit]:
    hits: list[SearchHit] = []
    for name in sorted(_sources):
        hits.extend(_sources[name](request, query, per_source))
    return hits

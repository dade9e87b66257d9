"""Project-wide pytest set-up: database markers, time, query counting."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgres = connection.vendor == "postgresql"
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: run with DATABASE_URL=postgres://...")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _seeded_defaults(request: pytest.FixtureRequest) -> None:
    """Put back the rows data migrations seed (support's statuses, ticket types, default calendar and
    SLA policy) when an earlier transactional test flushed them: Django empties every table after a
    TransactionTestCase, and later tests, or the live server, expect a freshly migrated database."""
    marker = request.node.get_closest_marker("django_db")
    if marker is not None:
        request.getfixturevalue("_django_db_helper")
    elif "live_server" in request.fixturenames:
        request.getfixturevalue("transactional_db")
    else:
        return
    from fedele.support.models import TicketStatus

    if TicketStatus.objects.exists():
        return
    import importlib

    from django.apps import apps

    importlib.import_module("fedele.support.migrations.0002_defaults").seed(apps, None)


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Chromium for the modules' own browser tests: one per test module, launched as tests/browser's."""
    from tests.browser.conftest import launch_chromium

    yield from launch_chromium()

"""Project-wide pytest set-up: database markers, time, query counting."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from django.db import connection


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgres = connection.vendor == "postgresql"
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: run with DATABASE_URL=postgres://...")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)


@pytest.fixture(scope="session", autouse=True)
def _one_request_at_a_time_on_sqlite() -> Iterator[None]:
    """On SQLite the live server's threads share the test database's single in-memory connection,
    so two requests at once (a page's audio range request beside its notification socket's knock)
    collide in "cannot start a transaction within a transaction". There the live server handles one
    request at a time; on PostgreSQL each thread keeps its own connection and nothing changes."""
    if connection.vendor != "sqlite":
        yield
        return
    from django.test.testcases import LiveServerThread

    lock = threading.Lock()
    original = getattr(LiveServerThread, "_create_server")  # noqa: B009 - private, absent from the stubs

    def create_server(self: Any, *args: Any, **kwargs: Any) -> Any:
        server = original(self, *args, **kwargs)
        set_app = server.set_app

        def serial_set_app(app: Callable[..., Iterable[bytes]]) -> None:
            def serial(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
                with lock:
                    return app(environ, start_response)

            set_app(serial)

        server.set_app = serial_set_app
        return server

    setattr(LiveServerThread, "_create_server", create_server)  # noqa: B010
    yield
    setattr(LiveServerThread, "_create_server", original)  # noqa: B010


@pytest.fixture(autouse=True)
def _site_language() -> Iterator[None]:
    """Every test starts in the site's language: Django's LocaleMiddleware activates a request's
    language and leaves it active in the thread, so an earlier test's Italian request would otherwise
    decide which language a later test's services speak (order-dependent under xdist)."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


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

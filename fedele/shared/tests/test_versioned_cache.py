"""Per-process caches under a shared version: loads, invalidation by a bump (also one made by another
process), rolled-back bumps, the once-per-request read of the versions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection, transaction
from django.test.utils import CaptureQueriesContext

from fedele.shared import versioned_cache
from fedele.shared.models import SequenceCounter

pytestmark = pytest.mark.django_db


class Loader:
    """Counts its calls and answers with the current value of ``source``."""

    def __init__(self) -> None:
        self.calls = 0
        self.source = "first"

    def __call__(self) -> str:
        self.calls += 1
        return self.source


@pytest.fixture
def loader() -> Loader:
    return Loader()


def _send(signal: Any) -> None:
    """Send a request signal as Django's test client does: without closing the test's connection."""
    signal.disconnect(close_old_connections)
    try:
        signal.send(sender=None)
    finally:
        signal.connect(close_old_connections)


@pytest.fixture
def request_scope() -> Iterator[None]:
    _send(request_started)
    yield
    _send(request_finished)


def _other_process_bumps(namespace: str, value: int) -> None:
    """What another process's bump leaves in the database (this process's memo knows nothing)."""
    SequenceCounter.objects.update_or_create(
        series=f"{versioned_cache.SERIES_PREFIX}{namespace}", defaults={"last_value": value}
    )


def test_a_namespace_never_bumped_has_version_zero_and_a_bump_changes_it() -> None:
    assert versioned_cache.version("test.never") == 0
    first = versioned_cache.bump("test.never")
    assert first != 0
    assert versioned_cache.version("test.never") == first
    second = versioned_cache.bump("test.never")
    assert second not in (0, first)
    assert versioned_cache.version("test.never") == second
    stored = SequenceCounter.objects.get(series="cache-version:test.never")
    assert stored.last_value == second


def test_a_rolled_back_bump_leaves_the_version_as_it_was() -> None:
    before = versioned_cache.bump("test.rollback")
    with pytest.raises(RuntimeError), transaction.atomic():
        versioned_cache.bump("test.rollback")
        raise RuntimeError("change failed")
    assert versioned_cache.version("test.rollback") == before


def test_outside_a_request_the_loader_runs_every_time(loader: Loader) -> None:
    cached = versioned_cache.VersionedValue("test.outside", loader)
    assert versioned_cache.in_request() is False
    assert (cached.get(), cached.get()) == ("first", "first")
    assert loader.calls == 2


def test_inside_a_request_the_value_is_loaded_once_and_again_after_a_bump(
    loader: Loader, request_scope: None
) -> None:
    cached = versioned_cache.VersionedValue("test.inside", loader)
    assert versioned_cache.in_request() is True
    assert (cached.get(), cached.get()) == ("first", "first")
    assert loader.calls == 1
    loader.source = "second"
    versioned_cache.bump("test.inside")  # a change made by this process, in this request
    assert cached.get() == "second"
    assert loader.calls == 2


def test_a_bump_by_another_process_is_seen_on_the_next_request(loader: Loader) -> None:
    cached = versioned_cache.VersionedValue("test.other", loader)
    with versioned_cache.scope():
        assert cached.get() == "first"
    loader.source = "second"
    _other_process_bumps("test.other", 12345)
    with versioned_cache.scope():
        assert cached.get() == "second"
        assert cached.get() == "second"
    assert loader.calls == 2


def test_the_versions_are_read_once_per_request_with_one_statement(loader: Loader) -> None:
    first = versioned_cache.VersionedValue("test.one", loader)
    second = versioned_cache.VersionedValue("test.two", lambda: "two")
    first.get()  # outside a request: loads, not cached
    with versioned_cache.scope(), CaptureQueriesContext(connection) as queries:
        assert (first.get(), second.get(), first.get(), second.get()) == ("first", "two", "first", "two")
    assert len(queries.captured_queries) == 1
    assert "cache-version:test.one" in queries.captured_queries[0]["sql"]
    assert "cache-version:test.two" in queries.captured_queries[0]["sql"]
    with versioned_cache.scope(), CaptureQueriesContext(connection) as queries:
        assert (first.get(), second.get()) == ("first", "two")
    assert len(queries.captured_queries) == 1
    assert loader.calls == 2


def test_rows_cached_inside_a_rolled_back_change_are_not_served_later(loader: Loader) -> None:
    cached = versioned_cache.VersionedValue("test.undone", loader)
    with versioned_cache.scope():
        assert cached.get() == "first"
        with pytest.raises(RuntimeError), transaction.atomic():
            versioned_cache.bump("test.undone")
            loader.source = "uncommitted"
            assert cached.get() == "uncommitted"
            raise RuntimeError("change failed")
        loader.source = "first"
        assert cached.get() == "first"  # the same request, after the rollback
    with versioned_cache.scope():
        assert cached.get() == "first"
    assert loader.calls == 3


def test_mapping_caches_found_keys_only_and_keeps_at_most_max_entries() -> None:
    calls: list[str] = []

    def load(key: str) -> str | None:
        calls.append(key)
        return None if key == "missing" else key.upper()

    mapping = versioned_cache.VersionedMapping("test.mapping", load, max_entries=2)
    with versioned_cache.scope():
        assert [mapping.get("a"), mapping.get("a"), mapping.get("missing"), mapping.get("missing")] == [
            "A",
            "A",
            None,
            None,
        ]
        assert calls == ["a", "missing", "missing"]
        mapping.get("b")
        mapping.get("a")  # a is now the most recently used
        mapping.get("c")  # b goes
        calls.clear()
        assert [mapping.get("a"), mapping.get("c"), mapping.get("b")] == ["A", "C", "B"]
        assert calls == ["b"]
        versioned_cache.bump("test.mapping")
        calls.clear()
        mapping.get("a")
        assert calls == ["a"]


def test_request_signals_open_and_close_the_request_scope() -> None:
    assert versioned_cache.in_request() is False
    _send(request_started)
    assert versioned_cache.in_request() is True
    _send(request_finished)
    assert versioned_cache.in_request() is False
    versioned_cache.begin_request()
    assert versioned_cache.in_request() is True
    versioned_cache.end_request()
    assert versioned_cache.in_request() is False
    with versioned_cache.scope():
        assert versioned_cache.in_request() is True
    assert versioned_cache.in_request() is False


def test_a_namespace_name_must_fit_the_counter_row() -> None:
    with pytest.raises(ValueError, match="1-50"):
        versioned_cache.register("x" * 51)
    with pytest.raises(ValueError, match="1-50"):
        versioned_cache.register("")

"""Per-process caches of rarely changing rows (configuration, API tokens), invalidated everywhere at
once by a version that every change bumps.

The version of a namespace lives in the database, in a ``shared_sequencecounter`` row named
``cache-version:<namespace>``, for three reasons:

- the bump is part of the transaction that changes the rows: other processes see the new version
  exactly when they can see the new rows, never before;
- it is correct with any cache backend and any number of processes (the local-memory cache of the
  embedded mode is per process, and several workers may share one database);
- all the versions are read with one small statement, at most once per request (see "Request
  scope" below).

Request scope: the versions read are remembered in a context variable from ``begin_request()`` (or
``scope()``) to the end of the request. Django's ``request_started``/``request_finished`` open and
close it for synchronous servers (WSGI, the test client); under ASGI those signals run in copies of
the request's context, so the API authentication calls ``begin_request()`` itself (each ASGI request
runs in a context of its own, which ends with it).

Outside a request scope (tasks, commands, imports, tests calling services) there is no per-request
read to share: checking the version would cost a statement per lookup, about what reading the rows
costs, so the caches there simply call their loader (and always see the database as it is).

A bump writes a fresh random value rather than adding one: a process that cached rows inside a
transaction which then rolled back holds them under a version that will never exist again.
"""

from __future__ import annotations

import contextvars
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from django.core.signals import request_finished, request_started
from django.db import connection, transaction

from fedele.shared.models import SequenceCounter

T = TypeVar("T")
SERIES_PREFIX = "cache-version:"
ABSENT = 0  # the version of a namespace that was never bumped

_namespaces: set[str] = set()


class _RequestState:
    """The versions read in this request, and the namespaces this request bumped."""

    __slots__ = ("bumped", "versions")

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.bumped: set[str] = set()


# A context variable, not a thread local: under ASGI the request's signals and its view run in
# different threads, and asgiref carries context variables (and their changes) between them.
_request: contextvars.ContextVar[_RequestState | None] = contextvars.ContextVar(
    "fedele_versioned_cache_request", default=None
)


def _series(namespace: str) -> str:
    return f"{SERIES_PREFIX}{namespace}"


def register(namespace: str) -> str:
    """Make ``namespace`` one of the versions read together (caches register at import)."""
    if not namespace or len(_series(namespace)) > 64:
        raise ValueError("A cache namespace needs 1-50 characters.")
    _namespaces.add(namespace)
    return namespace


def _read_versions(namespaces: set[str]) -> dict[str, int]:
    table = SequenceCounter._meta.db_table
    series = sorted(_series(name) for name in namespaces)
    placeholders = ", ".join(["%s"] * len(series))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT series, last_value FROM {table} WHERE series IN ({placeholders})",  # noqa: S608
            series,
        )
        found = {str(name)[len(SERIES_PREFIX) :]: int(value) for name, value in cursor.fetchall()}
    return {name: found.get(name, ABSENT) for name in namespaces}


def _state() -> _RequestState | None:
    return _request.get()


def version(namespace: str) -> int:
    """The namespace's current version (read at most once per request for every namespace)."""
    register(namespace)
    state = _state()
    if state is None or namespace in state.bumped:
        return _read_versions({namespace})[namespace]
    if namespace not in state.versions:
        state.versions.update(_read_versions(set(_namespaces) - set(state.versions)))
    return state.versions[namespace]


def in_request() -> bool:
    """True between ``request_started`` and ``request_finished`` (where the caches are used)."""
    return _state() is not None


def bump(namespace: str) -> int:
    """Give the namespace a new version, inside the caller's transaction (rolled back with it)."""
    register(namespace)
    value = secrets.randbits(62) + 1
    table = SequenceCounter._meta.db_table
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (series, last_value) VALUES (%s, %s) "  # noqa: S608
            f"ON CONFLICT (series) DO UPDATE SET last_value = EXCLUDED.last_value",
            [_series(namespace), value],
        )
    state = _state()
    if state is not None:
        # For the rest of this request the version is read from the database at each use: only the
        # database knows whether this bump is still there (a rolled-back savepoint takes it away).
        state.versions.pop(namespace, None)
        state.bumped.add(namespace)
    return value


@contextmanager
def scope() -> Iterator[None]:
    """Treat the block as one request (handlers outside Django's request cycle, e.g. fast paths):
    the versions are read once inside it and the caches are used."""
    token = _request.set(_RequestState())
    try:
        yield
    finally:
        _request.reset(token)


def begin_request() -> None:
    """Start remembering the versions for the rest of the current request (its context)."""
    _request.set(_RequestState())


def end_request() -> None:
    _request.set(None)


def _request_began(**_kwargs: Any) -> None:
    begin_request()


def _request_ended(**_kwargs: Any) -> None:
    end_request()


request_started.connect(_request_began, dispatch_uid="fedele.shared.versioned_cache.began")
request_finished.connect(_request_ended, dispatch_uid="fedele.shared.versioned_cache.ended")


class VersionedValue(Generic[T]):
    """One value per process (e.g. every active status), loaded again when the version changed."""

    def __init__(self, namespace: str, loader: Callable[[], T]) -> None:
        self.namespace = register(namespace)
        self._loader = loader
        self._entry: tuple[int, T] | None = None

    def get(self) -> T:
        if not in_request():
            return self._loader()
        current = version(self.namespace)
        entry = self._entry
        if entry is not None and entry[0] == current:
            return entry[1]
        value = self._loader()
        self._entry = (current, value)
        return value

    def clear(self) -> None:
        self._entry = None


class VersionedMapping(Generic[T]):
    """Values by key (e.g. API tokens by hash), all dropped when the version changes; at most
    ``max_entries`` kept (the least recently used go first). A loader returning None is not cached."""

    def __init__(
        self, namespace: str, loader: Callable[[Any], T | None], *, max_entries: int = 10_000
    ) -> None:
        self.namespace = register(namespace)
        self._loader = loader
        self._max_entries = max_entries
        self._version: int | None = None
        self._entries: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> T | None:
        if not in_request():
            return self._loader(key)
        current = version(self.namespace)
        with self._lock:
            if self._version != current:
                self._entries.clear()
                self._version = current
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        value = self._loader(key)
        if value is None:
            return None
        with self._lock:
            if self._version == current:
                self._entries[key] = value
                while len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._version = None

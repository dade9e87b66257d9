"""Fast paths: a few hot API writes answered by a lean ASGI handler in front of Django, with group commit.

Why (ADR 0002): Django's full request cycle (fifteen middlewares, the ninja router, one database
transaction per request) costs a few milliseconds of CPU before the endpoint does anything, which on a
2-core machine caps a write endpoint far below what a POS or partner integration sends at peak. A fast
path serves only the plain, common form of one endpoint (bearer token, JSON body that validates, no
Idempotency-Key header, no cookies); every other request, and every request the fast path declines at
any point, goes to Django unchanged (its body is replayed), so the answers and errors are Django's.

Group commit: the requests that arrive while the worker thread is busy are handled together by one
call of the endpoint's batch function (one database transaction for many requests). A process that
dies loses only requests that were never answered; callers retry them, and the endpoints that use this
are idempotent by their own key. Nothing that matters is kept in the process.

Enabled with ``FEDELE_FAST_PATHS`` (on for PostgreSQL by default: SQLite has one writer, and the
embedded mode serves one user).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import connections
from ninja.renderers import JSONRenderer
from pydantic import BaseModel, ValidationError

from fedele.shared.errors import ApplicationError, RateLimited

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

T = TypeVar("T")
IDLE_SECONDS = 5.0  # a group-commit worker idle this long gives its database connection back
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class FastRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes
    client: str | None
    request_id: str


@dataclass(slots=True)
class FastResponse:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[FastRequest], Awaitable[FastResponse | None]]
_routes: dict[tuple[str, str], Handler] = {}

# What Django's middlewares put on every API response (security, clickjacking, locale).
_COMMON_HEADERS = [
    ("content-type", "application/json; charset=utf-8"),
    ("x-frame-options", "DENY"),
    ("vary", "Accept-Language, Cookie"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
]


def register(method: str, path: str, handler: Handler) -> None:
    """Serve ``method path`` (exact path) with ``handler`` when fast paths are on; the handler returns
    None to let Django answer the request."""
    _routes[(method.upper(), path)] = handler


def enabled() -> bool:
    configured = getattr(settings, "FEDELE_FAST_PATHS", None)
    if configured is not None:
        return bool(configured)
    return bool(connections["default"].vendor == "postgresql")


def router(app: Any) -> ASGIApp:
    """The ASGI application: registered fast paths first, Django for everything else."""

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        handler = (
            _routes.get((scope.get("method", ""), scope.get("path", ""))) if scope["type"] == "http" else None
        )
        if handler is not None and enabled():
            request = await _read(scope, receive)
            if request is not None:
                try:
                    response = await handler(request)
                except Exception:  # the fast path never answers 500 on its own: Django decides
                    logger.exception("fast path %s %s failed; Django answers", request.method, request.path)
                    response = None
                if response is not None:
                    await _send(send, response, request)
                    return
                receive = _replay(request.body, receive)
        await app(scope, receive, send)

    return application


async def _read(scope: Scope, receive: Receive) -> FastRequest | None:
    """The request with its body, when it declares a length within the API's limit; else None (unread)."""
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        headers[name.decode("latin-1").lower()] = value.decode("latin-1")
    try:
        length = int(headers.get("content-length", ""))
    except ValueError:
        return None
    limit = min(
        settings.FEDELE_MAX_BODY_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE or settings.FEDELE_MAX_BODY_BYTES
    )
    if length < 0 or length > limit or "transfer-encoding" in headers:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > length:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    client = scope.get("client")
    return FastRequest(
        method=scope["method"],
        path=scope["path"],
        headers=headers,
        body=b"".join(chunks),
        client=str(client[0]) if client else None,
        request_id=headers.get("x-request-id", "")[:64] or uuid.uuid4().hex,
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands Django the body already read, then the connection's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send(send: Send, response: FastResponse, request: FastRequest) -> None:
    names = {name for name, _ in response.headers}
    headers = [(name, value) for name, value in _COMMON_HEADERS if name not in names]
    headers += response.headers
    headers.append(("x-request-id", request.request_id))
    headers.append(("content-length", str(len(response.body))))
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers],
        }
    )
    await send({"type": "http.response.body", "body": response.body})


class GroupCommit(Generic[T, R]):
    """Items submitted by concurrent requests are handed, in arrival order, to ``process`` in groups of
    at most ``max_group``: everything that arrived while the workers were busy. ``workers`` threads per
    process take groups from the one queue (while one waits for the database, another writes); no
    delay is added when a worker is idle. ``process`` returns one result per item, in order; if it
    raises, every item of the group gets the exception (the fast path then lets Django answer).

    Each worker keeps its database connection between groups (a pooled connection per worker) and
    drops it after a failed group, so a broken connection is replaced by the next group."""

    def __init__(
        self,
        process: Callable[[list[T]], Iterable[R]],
        *,
        max_group: int = 200,
        workers: int = 1,
        name: str,
    ) -> None:
        self._process = process
        self._max_group = max_group
        self._workers = workers
        self._name = name
        self._queue: list[tuple[T, asyncio.Future[R], asyncio.AbstractEventLoop]] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self.groups = 0  # groups processed and items in them, for the benchmark and the tests
        self.items = 0

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        with self._lock:
            self._queue.append((item, future, loop))
            self._stopping = False
            self._threads = [thread for thread in self._threads if thread.is_alive()]
            if len(self._threads) < self._workers:
                thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                thread.start()
                self._threads.append(thread)
            self._wake.notify()
        return await future

    def stop(self) -> None:
        """Let the workers finish what is queued, close their connections and end (tests, shutdown);
        the next submit starts them again."""
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    if not self._wake.wait(timeout=IDLE_SECONDS) and not self._queue:
                        connections.close_all()  # idle: give the connection back to the pool
                if not self._queue:
                    connections.close_all()
                    return
                group = self._queue[: self._max_group]
                del self._queue[: self._max_group]
            items = [item for item, _, _ in group]
            self.groups += 1
            self.items += len(items)
            outcome: list[R] | BaseException
            try:
                outcome = list(self._process(items))
                if len(outcome) != len(items):
                    raise RuntimeError(f"{self._name}: {len(outcome)} results for {len(items)} items")
            except Exception as error:
                logger.exception("%s: a group of %s failed", self._name, len(items))
                outcome = error
                connections.close_all()
            for index, (_, future, loop) in enumerate(group):
                value = outcome if isinstance(outcome, BaseException) else outcome[index]
                loop.call_soon_threadsafe(_settle, future, value)


def _settle(future: asyncio.Future[Any], value: Any) -> None:
    if future.cancelled():
        return
    if isinstance(value, BaseException):
        future.set_exception(value)
    else:
        future.set_result(value)


# --- the plain form of a JSON API write, shared by every fast path ------------------------------------

PayloadT = TypeVar("PayloadT", bound=BaseModel)
_JSON = JSONRenderer()


@dataclass(frozen=True, slots=True)
class JsonCall(Generic[PayloadT]):
    """A request in the plain form a fast path serves: a bearer token and a body valid for the schema."""

    authorization: str
    payload: PayloadT
    client: str | None
    user_agent: str
    request_id: str
    language: str


def json_call(request: FastRequest, schema: type[PayloadT]) -> JsonCall[PayloadT] | None:
    """The call, or None for anything Django must answer: no bearer token, cookies, an
    Idempotency-Key, another content type, a body that is not a JSON object or not valid for
    ``schema`` (ninja answers with its own validation envelope)."""
    headers = request.headers
    authorization = headers.get("authorization", "")
    if (
        not authorization.lower().startswith("bearer ")
        or "cookie" in headers
        or "idempotency-key" in headers
        or headers.get("content-type", "").split(";")[0].strip().lower() != "application/json"
    ):
        return None
    try:
        data = json.loads(request.body)
        if not isinstance(data, dict):
            return None
        payload = schema.model_validate(data)
    except (ValueError, ValidationError):
        return None
    return JsonCall(
        authorization=authorization,
        payload=payload,
        client=request.client,
        user_agent=headers.get("user-agent", "")[:300],
        request_id=request.request_id,
        language=accept_language(headers.get("accept-language", "")),
    )


def accept_language(accept: str) -> str:
    """The language Django's locale middleware would pick from an Accept-Language header."""
    from django.utils.translation import trans_real

    for code, _quality in trans_real.parse_accept_lang_header(accept):
        if code == "*":
            break
        try:
            return trans_real.get_supported_language_variant(code)
        except LookupError:
            continue
    return str(settings.LANGUAGE_CODE)


def render_json(status: int, data: Any, extra: list[tuple[str, str]] | None = None) -> FastResponse:
    body = _JSON.render(None, data, response_status=status)  # type: ignore[arg-type]
    return FastResponse(status=status, body=body.encode(), headers=list(extra or []))


def render_error(error: ApplicationError, language: str) -> FastResponse:
    """The error envelope as the API's exception handler renders it."""
    extra = [("content-language", language)]
    if isinstance(error, RateLimited):
        extra.append(("retry-after", str(error.retry_after_seconds)))
    return render_json(error.status_code, error.envelope(), extra)


def by_caller(calls: Sequence[JsonCall[Any]]) -> dict[tuple[str, str, str | None, str], list[int]]:
    """Positions of a group's calls per caller (token, language, address, user agent), in order: one
    authentication, one request context and one translation per caller."""
    callers: dict[tuple[str, str, str | None, str], list[int]] = defaultdict(list)
    for index, call in enumerate(calls):
        callers[(call.authorization, call.language, call.client, call.user_agent)].append(index)
    return callers

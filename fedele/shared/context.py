"""Who is acting and from where, for the audit log. Set per request by middleware, per task by callers."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    actor_id: int | None = None
    actor_label: str = ""
    ip_address: str | None = None
    user_agent: str = ""
    request_id: str = ""


_EMPTY = RequestContext()
_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "fedele_request_context", default=_EMPTY
)


def current() -> RequestContext:
    return _current.get()


@contextmanager
def acting(context: RequestContext) -> Iterator[None]:
    token = _current.set(context)
    try:
        yield
    finally:
        _current.reset(token)


def set_current(context: RequestContext) -> contextvars.Token[RequestContext]:
    return _current.set(context)


def reset(token: contextvars.Token[RequestContext]) -> None:
    _current.reset(token)

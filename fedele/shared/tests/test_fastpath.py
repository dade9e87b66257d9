"""The fast-path router and group commit, with a toy application (no database)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from django.test import override_settings

from fedele.shared import fastpath


async def _django_stand_in(scope: Any, receive: Any, send: Any) -> None:
    """What the router hands over to: echoes the body it receives, so a replay is visible."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 299, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"django:" + body})


async def _handler(request: fastpath.FastRequest) -> fastpath.FastResponse | None:
    if request.body == b"decline":
        return None
    if request.body == b"boom":
        raise RuntimeError("unexpected")
    return fastpath.FastResponse(status=201, body=b'{"fast": "' + request.body + b'"}')


def _post(path: str, body: bytes, **headers: str) -> httpx.Response:
    app = fastpath.router(_django_stand_in)

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.post(path, content=body, headers=headers)

    with override_settings(FEDELE_FAST_PATHS=True):
        return asyncio.run(go())


@pytest.fixture(autouse=True)
def _route() -> Any:
    fastpath.register("POST", "/fast/x", _handler)
    yield
    fastpath._routes.pop(("POST", "/fast/x"), None)


def test_the_router_serves_declines_with_the_body_replayed_and_survives_errors() -> None:
    served = _post("/fast/x", b"hello", **{"X-Request-ID": "abc"})
    assert (served.status_code, served.content) == (201, b'{"fast": "hello"}')
    assert served.headers["x-request-id"] == "abc"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-length"] == "17"
    declined = _post("/fast/x", b"decline")
    assert (declined.status_code, declined.content) == (299, b"django:decline")
    failed = _post("/fast/x", b"boom")  # the fast path never answers 500 itself
    assert (failed.status_code, failed.content) == (299, b"django:boom")
    other = _post("/not/fast", b"hello")
    assert (other.status_code, other.content) == (299, b"django:hello")


def test_the_router_leaves_big_or_undeclared_bodies_unread() -> None:
    big = b"x" * (2 * 1024 * 1024)
    with override_settings(FEDELE_MAX_BODY_BYTES=1024):
        response = _post("/fast/x", big)
    assert response.status_code == 299 and response.content == b"django:" + big


def test_group_commit_groups_concurrent_items_in_order_and_shares_a_failure() -> None:
    release = threading.Event()
    seen: list[list[int]] = []

    def process(items: list[int]) -> list[int]:
        if not seen:
            release.wait(timeout=10)  # hold the first group so the others queue up behind it
        seen.append(list(items))
        if -1 in items:
            raise ValueError("bad group")
        return [item * 10 for item in items]

    groups: fastpath.GroupCommit[int, int] = fastpath.GroupCommit(process, max_group=3, name="test-groups")

    async def go() -> list[Any]:
        first = asyncio.ensure_future(groups.submit(0))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(groups.submit(item)) for item in [1, 2, 3, 4, -1]]
        await asyncio.sleep(0.05)
        release.set()
        return list(await asyncio.gather(first, *rest, return_exceptions=True))

    results = asyncio.run(go())
    groups.stop()
    assert seen == [[0], [1, 2, 3], [4, -1]]
    assert results[:4] == [0, 10, 20, 30]
    assert all(isinstance(result, ValueError) for result in results[4:])
    assert (groups.groups, groups.items) == (3, 6)
    assert asyncio.run(groups.submit(7)) == 70  # stopped workers start again on the next item
    groups.stop()

"""Body size limit for bodies without a Content-Length (chunked, under ASGI)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse

from fedele.shared.middleware import BodySizeLimitMiddleware


def _chunked_request(body: bytes, path: str = "/api/v1/customers") -> ASGIRequest:
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    return ASGIRequest(scope, io.BytesIO(body))


def _echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.body, content_type="application/octet-stream")


@pytest.fixture
def small_limit(settings):  # type: ignore[no-untyped-def]
    settings.FEDELE_MAX_BODY_BYTES = 100
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    return settings


def test_oversized_chunked_body_is_refused_without_reading_it_all(small_limit) -> None:  # type: ignore[no-untyped-def]
    body = b"x" * 10_000
    request = _chunked_request(body)
    assert "CONTENT_LENGTH" not in request.META
    response = BodySizeLimitMiddleware(_echo)(request)
    assert response.status_code == 413
    assert json.loads(response.content) == {
        "error": {
            "code": "payload_too_large",
            "message": "The request body is too large (limit 100 bytes).",
            "fields": {},
        }
    }
    web = BodySizeLimitMiddleware(_echo)(_chunked_request(body, path="/customers/new/"))
    assert (web.status_code, web["Content-Type"]) == (413, "text/plain")


def test_small_chunked_body_reaches_the_view_intact(small_limit) -> None:  # type: ignore[no-untyped-def]
    body = b'{"kind": "person"}'
    response = BodySizeLimitMiddleware(_echo)(_chunked_request(body))
    assert response.status_code == 200
    assert response.content == body
    exact = b"y" * 100
    assert BodySizeLimitMiddleware(_echo)(_chunked_request(exact)).content == exact

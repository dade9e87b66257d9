"""Kernel middleware: body size limit, request context for audit, API guard, htmx error partials."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from fedele.shared import context, idempotency, ratelimit
from fedele.shared.errors import ApplicationError, RateLimited, error_envelope

logger = logging.getLogger(__name__)
API_PREFIX = "/api/"

GetResponse = Callable[[HttpRequest], HttpResponse]


def client_address(request: HttpRequest) -> str | None:
    address = request.META.get("REMOTE_ADDR")
    return str(address) if address else None


class BodySizeLimitMiddleware:
    """Refuse a declared oversized body with 413 before anything reads it."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if request.content_type == "multipart/form-data":
            limit = settings.FEDELE_MAX_UPLOAD_BYTES
        else:
            limit = settings.FEDELE_MAX_BODY_BYTES
            # Django refuses to read a body above DATA_UPLOAD_MAX_MEMORY_SIZE (RequestDataTooBig,
            # a bare 400 outside the API's envelope): refuse it here, as a 413, if that is lower.
            if settings.DATA_UPLOAD_MAX_MEMORY_SIZE is not None:
                limit = min(limit, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        if length > limit or (not length and self._undeclared_body_too_large(request, limit)):
            message = f"The request body is too large (limit {limit} bytes)."
            if request.path.startswith(API_PREFIX):
                return JsonResponse(error_envelope("payload_too_large", message), status=413)
            return HttpResponse(message, status=413, content_type="text/plain")
        return self.get_response(request)

    @staticmethod
    def _undeclared_body_too_large(request: HttpRequest, limit: int) -> bool:
        """A chunked body has no Content-Length, and Django (under ASGI) would read all of it into
        memory: read at most limit + 1 bytes here and keep them as the body the view will read."""
        if not request.META.get("HTTP_TRANSFER_ENCODING") or request.content_type == "multipart/form-data":
            return False
        data = request.read(limit + 1)
        if len(data) > limit:
            return True
        request._body = data  # what HttpRequest.body returns from now on
        return False


class RequestContextMiddleware:
    """Remember who acts and from where, for every audit row written during the request."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        authenticated = user is not None and user.is_authenticated
        request_id = request.META.get("HTTP_X_REQUEST_ID", "")[:64] or uuid.uuid4().hex
        token = context.set_current(
            context.RequestContext(
                actor_id=user.pk if authenticated and user is not None else None,
                actor_label=str(user.get_username()) if authenticated and user is not None else "",
                ip_address=client_address(request),
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
                request_id=request_id,
            )
        )
        try:
            response = self.get_response(request)
        finally:
            context.reset(token)
        response["X-Request-ID"] = request_id
        return response


class ApiGuardMiddleware:
    """Rate limits per caller and Idempotency-Key replay for every API write."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        try:
            ratelimit.hit(
                "api:" + idempotency.caller_scope(request), limit=settings.FEDELE_API_RATE_LIMIT_PER_MINUTE
            )
        except RateLimited as error:
            response = JsonResponse(error.envelope(), status=429)
            response["Retry-After"] = str(error.retry_after_seconds)
            return response
        bad_parameters = sorted(
            {name for name, values in request.GET.lists() if "\x00" in name + "".join(values)}
        )
        if bad_parameters:
            # PostgreSQL text cannot hold NUL: refuse it here rather than fail with a 500 in a query.
            return JsonResponse(
                error_envelope(
                    "validation_error",
                    "The request is not valid.",
                    {name: ["NUL characters are not allowed."] for name in bad_parameters},
                ),
                status=422,
            )
        return idempotency.handle(request, lambda: self.get_response(request))


class HtmxErrorMiddleware:
    """An ApplicationError raised in a web view becomes an error partial (htmx) or an error page."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, ApplicationError) or request.path.startswith(API_PREFIX):
            return None
        template = "partials/_error.html" if getattr(request, "htmx", False) else "error.html"
        response = render(request, template, {"error": exception}, status=exception.status_code)
        if getattr(request, "htmx", False):
            # Errors land in the page's error slot, whatever the element that asked.
            response["HX-Retarget"] = "#flash-area"
            response["HX-Reswap"] = "innerHTML"
        return response

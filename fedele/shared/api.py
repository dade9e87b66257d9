"""The HTTP API kernel: one NinjaAPI at /api/v1/, one error envelope, strict schemas."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import time
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from pydantic import ConfigDict, field_validator

from fedele.shared.errors import ApplicationError, PermissionDenied, RateLimited, error_envelope

logger = logging.getLogger(__name__)


def contains_nul(value: Any) -> bool:
    """NUL characters anywhere in a value (PostgreSQL text cannot store them: a 500, not a 422).

    A usage batch of 10,000 events holds a million values, so containers are screened first through
    the C JSON encoder, which writes NUL as the escape \\u0000: without that text there is no NUL.
    With it (or with a value the encoder refuses) the values are walked one by one, since the text
    may also come from a literal backslash followed by u0000."""
    if isinstance(value, str):
        return "\x00" in value
    if not isinstance(value, (dict, list, tuple, set)):
        return False
    try:
        if "\\u0000" not in json.dumps(value, ensure_ascii=False):
            return False
    except (TypeError, ValueError):
        pass
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, (list, tuple, set)):
            pending.extend(item)
    return False


class StrictSchema(Schema):
    """Input schemas refuse unknown fields instead of silently dropping them, and NUL characters."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_nul_characters(cls, value: Any) -> Any:
        if contains_nul(value):
            raise ValueError("NUL characters are not allowed.")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_times_of_day_with_an_offset(cls, value: Any) -> Any:
        # Opening hours and calling windows are local times in the calendar's or contact's own time
        # zone: "09:00+01:00" has no meaning there (and SQLite cannot even store it).
        if isinstance(value, time) and value.tzinfo is not None:
            raise ValueError("Give a local time of day without a time zone offset.")
        return value


class ErrorBody(Schema):
    code: str
    message: str
    fields: dict[str, list[str]]


class ErrorEnvelope(Schema):
    error: ErrorBody


# Every operation documents the same envelope for each error status it can answer with.
ERROR_RESPONSES: dict[int, type[ErrorEnvelope]] = dict.fromkeys(
    (400, 401, 403, 404, 409, 413, 422, 429), ErrorEnvelope
)


def _field_name(location: Sequence[Any]) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header", "payload", "form")]
    return ".".join(parts) or "__all__"


def validation_fields(errors: list[dict[str, Any]]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for error in errors:
        message = str(error.get("msg", "Invalid value."))
        if error.get("type") == "extra_forbidden":
            message = "Unknown field."
        fields.setdefault(_field_name(error.get("loc", ())), []).append(message)
    return fields


SCOPES_ATTRIBUTE = "fedele_scopes"


def require_scope(request: HttpRequest, scope: str) -> None:
    """The authenticated caller's token (or web session) must carry this scope."""
    scopes: frozenset[str] = getattr(request, SCOPES_ATTRIBUTE, frozenset())
    if scope not in scopes:
        raise PermissionDenied(f"This token lacks the '{scope}' scope.", code="insufficient_scope")


def build_api(*, auth: Sequence[Any], title: str = "fedele API") -> NinjaAPI:
    api = NinjaAPI(
        title=title,
        version="1",
        description="Customer-retention suite. Errors always use the envelope "
        '{"error": {"code", "message", "fields"}}. POSTs accept an Idempotency-Key header.',
        auth=list(auth),
        urls_namespace="api-v1",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )

    def respond(
        request: HttpRequest, status: int, code: str, message: str, fields: Any = None
    ) -> HttpResponse:
        return api.create_response(request, error_envelope(code, message, fields), status=status)

    @api.exception_handler(ApplicationError)
    def application_error(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
        response = respond(request, exc.status_code, exc.code, exc.message, exc.fields)
        if isinstance(exc, RateLimited):
            response["Retry-After"] = str(exc.retry_after_seconds)
        return response

    @api.exception_handler(NinjaValidationError)
    def validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        return respond(
            request, 422, "validation_error", "The request is not valid.", validation_fields(exc.errors)
        )

    @api.exception_handler(AuthenticationError)
    def authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return respond(
            request, 401, "not_authenticated", "Authentication is required: send a valid API token."
        )

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        code = {400: "bad_request", 401: "not_authenticated", 403: "permission_denied", 404: "not_found"}.get(
            exc.status_code, "http_error"
        )
        if str(exc).startswith("Cannot parse request body"):
            code = "malformed_json"
        return respond(request, exc.status_code, code, str(exc))

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return respond(request, 404, "not_found", "Not found.")

    @api.exception_handler(DjangoPermissionDenied)
    def forbidden(request: HttpRequest, exc: DjangoPermissionDenied) -> HttpResponse:
        return respond(request, 403, "permission_denied", "You do not have permission for this action.")

    @api.exception_handler(RequestDataTooBig)
    def too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        return respond(request, 413, "payload_too_large", "The request body is too large.")

    @api.exception_handler(Exception)
    def unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.exception("Unhandled API error on %s %s", request.method, request.path)
        return respond(
            request, 500, "internal_error", "Something went wrong on our side; it has been logged."
        )

    return api

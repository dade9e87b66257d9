"""ApplicationError hierarchy. Every error maps to one JSON envelope and to an htmx error partial:

{"error": {"code": "...", "message": "...", "fields": {...}}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class ApplicationError(Exception):
    status_code: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: Mapping[str, list[str] | str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.fields: dict[str, list[str]] = {
            key: ([value] if isinstance(value, str) else [str(v) for v in value])
            for key, value in (fields or {}).items()
        }

    def envelope(self) -> dict[str, Any]:
        return error_envelope(self.code, self.message, self.fields)


class ValidationFailed(ApplicationError):
    status_code = 422
    default_code = "validation_error"


class NotFound(ApplicationError):
    status_code = 404
    default_code = "not_found"


class PermissionDenied(ApplicationError):
    status_code = 403
    default_code = "permission_denied"


class NotAuthenticated(ApplicationError):
    status_code = 401
    default_code = "not_authenticated"


class Conflict(ApplicationError):
    status_code = 409
    default_code = "conflict"


class RateLimited(ApplicationError):
    status_code = 429
    default_code = "rate_limited"

    def __init__(self, message: str, *, retry_after_seconds: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after_seconds = retry_after_seconds


class PayloadTooLarge(ApplicationError):
    status_code = 413
    default_code = "payload_too_large"


def error_envelope(code: str, message: str, fields: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": dict(fields or {})}}

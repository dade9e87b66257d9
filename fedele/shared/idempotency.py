"""Idempotency-Key for API writes: same key + same body -> the same response, replayed;
same key + a different body -> 409. Keys are scoped to the caller and kept for 24 hours."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from fedele.shared import clock
from fedele.shared.errors import error_envelope
from fedele.shared.models import IdempotencyRecord

HEADER = "HTTP_IDEMPOTENCY_KEY"
RETENTION = timedelta(hours=24)
IN_FLIGHT_EXPIRY = timedelta(minutes=2)
MAX_KEY_LENGTH = 255
IDEMPOTENT_METHODS = frozenset({"POST", "PATCH"})


def caller_scope(request: HttpRequest) -> str:
    """Who owns the key: the API token (hashed) or the session user, else the client address."""
    authorization = request.META.get("HTTP_AUTHORIZATION", "")
    if authorization:
        return "auth:" + hashlib.sha256(authorization.encode()).hexdigest()[:40]
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return "addr:" + str(request.META.get("REMOTE_ADDR", ""))


def request_fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode() if request.method else b"")
    digest.update(b"\0" + request.get_full_path().encode() + b"\0")
    if request.content_type == "multipart/form-data":
        # Uploads may exceed the in-memory body limit: hash the parsed fields and files as streams.
        for name in sorted(request.POST):
            digest.update(f"{name}={request.POST.getlist(name)}\0".encode())
        for name in sorted(request.FILES):
            for upload in request.FILES.getlist(name):
                digest.update(f"{name}:{upload.name}:{upload.size}\0".encode())
                for chunk in upload.chunks():
                    digest.update(chunk)
                upload.seek(0)
    else:
        digest.update(request.body)
    return digest.hexdigest()


def _conflict(message: str, code: str) -> JsonResponse:
    return JsonResponse(error_envelope(code, message), status=409)


def handle(request: HttpRequest, call_view: object) -> HttpResponse:
    """Run call_view() at most once per (caller, key); replay its stored response afterwards."""
    key = request.META.get(HEADER, "").strip()
    if not key or request.method not in IDEMPOTENT_METHODS:
        return call_view()  # type: ignore[operator]
    if len(key) > MAX_KEY_LENGTH:
        return JsonResponse(
            error_envelope(
                "invalid_idempotency_key", "The Idempotency-Key header is longer than 255 characters."
            ),
            status=400,
        )
    scope = caller_scope(request)
    fingerprint = request_fingerprint(request)
    now = clock.now()
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.filter(
                scope=scope, key=key, completed_at__isnull=True, created_at__lt=now - IN_FLIGHT_EXPIRY
            ).delete()
            IdempotencyRecord.objects.filter(scope=scope, key=key, created_at__lt=now - RETENTION).delete()
            record = IdempotencyRecord.objects.create(
                scope=scope,
                key=key,
                method=request.method or "",
                path=request.path[:500],
                request_hash=fingerprint,
                created_at=now,
            )
    except IntegrityError:
        existing = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
        if existing is None:
            return _conflict(
                "A request with this Idempotency-Key is being processed; retry shortly.",
                "idempotency_in_progress",
            )
        if existing.request_hash != fingerprint:
            return _conflict(
                "This Idempotency-Key was already used with a different request.", "idempotency_key_reused"
            )
        if existing.completed_at is None or existing.status_code is None:
            return _conflict(
                "A request with this Idempotency-Key is being processed; retry shortly.",
                "idempotency_in_progress",
            )
        replay = HttpResponse(
            bytes(existing.response_body or b""),
            status=existing.status_code,
            content_type=existing.content_type or "application/json",
        )
        replay["Idempotent-Replayed"] = "true"
        return replay

    try:
        response: HttpResponse = call_view()  # type: ignore[operator]
    except BaseException:
        # No answer at all: free the key at once instead of blocking retries as "in progress".
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        raise
    if response.status_code >= 500 or response.streaming:
        # A server error is not an answer: let the client retry with the same key.
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return response
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status_code=response.status_code,
        response_body=response.content,
        content_type=response.get("Content-Type", "application/json"),
        completed_at=clock.now(),
    )
    return response


def purge_expired() -> int:
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=clock.now() - RETENTION).delete()
    return deleted

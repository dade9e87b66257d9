"""Outbound webhooks: subscriptions per event type, HMAC-SHA256 signatures, retries with
exponential backoff, a delivery log and replay.

Signature header (Stripe-style, so receivers can reuse known code):
    Fedele-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db import transaction

from fedele.shared import audit, clock
from fedele.shared.errors import NotFound, ValidationFailed
from fedele.shared.events import ALL_EVENTS, EventEnvelope, handles
from fedele.shared.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Fedele-Signature"
EVENT_HEADER = "Fedele-Event"
DELIVERY_HEADER = "Fedele-Delivery"
BASE_BACKOFF_SECONDS = 30
MAX_BACKOFF = timedelta(hours=6)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes, *, tolerance_seconds: int = 300) -> bool:
    """Constant-time check of a Fedele-Signature header, refusing stale timestamps (replay guard)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        received = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    # Bytes, not str: compare_digest raises TypeError on non-ASCII text, and a forged header must
    # get False, not an exception.
    return hmac.compare_digest(expected.encode(), received.encode("utf-8", "surrogatepass"))


def backoff_for(attempt: int) -> timedelta:
    """30 s, 60 s, 2 min, 4 min ... capped at 6 h."""
    return min(timedelta(seconds=BASE_BACKOFF_SECONDS * 2 ** max(attempt - 1, 0)), MAX_BACKOFF)


# --- endpoints -----------------------------------------------------------------------------------


def target_refusal(url: str) -> str | None:
    """Why this URL may not receive webhooks, or None.

    Unless FEDELE_WEBHOOK_ALLOW_PRIVATE_TARGETS is on, every address the host resolves to must be a
    public one: a webhook must not become a way to reach the server's own network (SSRF). Checked at
    subscription and again before every send, since DNS answers can change.
    """
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return "Use an http(s) URL with a host name."
    if settings.FEDELE_WEBHOOK_ALLOW_PRIVATE_TARGETS:
        return None
    try:
        infos = socket.getaddrinfo(parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError):
        return f"The host {parsed.hostname} cannot be resolved."
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global:
            return f"The host {parsed.hostname} resolves to a private or reserved address ({address})."
    return None


def endpoint_create(*, url: str, event_types: list[str], description: str = "") -> WebhookEndpoint:
    url = url.strip()
    if not url.startswith(("https://", "http://")):
        raise ValidationFailed("The webhook URL must be http(s).", fields={"url": "Use an http(s) URL."})
    refusal = target_refusal(url)
    if refusal:
        raise ValidationFailed(refusal, code="webhook_target_refused", fields={"url": refusal})
    cleaned = sorted({e.strip() for e in event_types if e.strip()})
    if not cleaned:
        raise ValidationFailed("Choose at least one event type.", fields={"event_types": "Required."})
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            url=url,
            event_types=cleaned,
            description=description[:200],
            secret=f"whsec_{secrets.token_hex(24)}",
            created_at=clock.now(),
        )
        audit.record(
            action="webhook_endpoint.created",
            object_type="webhook_endpoint",
            object_id=str(endpoint.public_id),
            after={"url": url, "event_types": cleaned},
        )
    return endpoint


def endpoint_deactivate(*, endpoint_public_id: str) -> WebhookEndpoint:
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().filter(public_id=endpoint_public_id).first()
        if endpoint is None:
            raise NotFound("Webhook endpoint not found.")
        endpoint.is_active = False
        endpoint.save(update_fields=["is_active"])
        audit.record(
            action="webhook_endpoint.deactivated",
            object_type="webhook_endpoint",
            object_id=str(endpoint.public_id),
            before={"is_active": True},
            after={"is_active": False},
        )
    return endpoint


# --- fan-out from the outbox ----------------------------------------------------------------------


@handles(ALL_EVENTS, name="shared.webhooks.fan_out")
def fan_out(envelope: EventEnvelope) -> None:
    """Create one delivery per interested endpoint; runs in the handler's transaction."""
    now = clock.now()
    body = {
        "id": str(envelope.event_id),
        "type": envelope.event_type,
        "created": envelope.occurred_at.isoformat(),
        "aggregate": {"type": envelope.aggregate_type, "id": envelope.aggregate_id},
        "data": dict(envelope.payload),
    }
    for endpoint in WebhookEndpoint.objects.filter(is_active=True).order_by("id"):
        if not endpoint.wants(envelope.event_type):
            continue
        delivery, created = WebhookDelivery.objects.get_or_create(
            endpoint=endpoint,
            event_id=envelope.event_id,
            defaults={
                "event_type": envelope.event_type,
                "payload": body,
                "created_at": now,
                "next_attempt_at": now,
            },
        )
        if created:
            delivery_id = delivery.pk
            transaction.on_commit(partial(_enqueue, delivery_id))


def _enqueue(delivery_id: int) -> None:
    from fedele.shared.tasks import deliver_webhook

    try:
        deliver_webhook.delay(delivery_id)
    except Exception:
        logger.exception("Could not enqueue webhook delivery %s; the sweep will retry it", delivery_id)


# --- delivery -------------------------------------------------------------------------------------


def _post(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> tuple[int | None, str, str]:
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "fedele-webhooks/1",
        SIGNATURE_HEADER: sign(endpoint.secret, body, timestamp),
        EVENT_HEADER: delivery.event_type,
        DELIVERY_HEADER: str(delivery.public_id),
        "Idempotency-Key": str(delivery.event_id),
    }
    refusal = target_refusal(endpoint.url)
    if refusal:
        return None, "", f"Refused: {refusal}"
    try:
        response = httpx.post(
            endpoint.url,
            content=body,
            headers=headers,
            timeout=settings.FEDELE_WEBHOOK_TIMEOUT_SECONDS,
            follow_redirects=False,
        )
    except httpx.HTTPError as error:
        return None, "", f"{type(error).__name__}: {error}"
    return response.status_code, response.text[:2000], ""


def deliver(delivery_id: int, *, is_replay: bool = False) -> str:
    """One HTTP attempt.

    The row is claimed in a short transaction (a lease on next_attempt_at), the POST runs outside
    any transaction so no lock is held while the receiver thinks, and the outcome is written in a
    second short transaction. Two workers never send the same delivery at the same time.
    """
    lease = timedelta(seconds=settings.FEDELE_WEBHOOK_TIMEOUT_SECONDS + 30)
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update()
            .select_related("endpoint")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            return "missing"
        now = clock.now()
        if not is_replay:
            if delivery.status in (WebhookDelivery.Status.SUCCEEDED, WebhookDelivery.Status.FAILED):
                return str(delivery.status)
            if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
                return str(delivery.status)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now + lease)
    status_before = delivery.status
    endpoint = delivery.endpoint
    started = time.monotonic()
    status_code, response_body, error = _post(endpoint, delivery)
    duration_ms = int((time.monotonic() - started) * 1000)
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        now = clock.now()
        delivery.attempts += 1
        delivery.last_status_code = status_code
        delivery.last_response_body = response_body
        delivery.last_error = error
        if status_code is not None and 200 <= status_code < 300:
            delivery.status = WebhookDelivery.Status.SUCCEEDED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
        elif is_replay and status_before in (
            WebhookDelivery.Status.SUCCEEDED,
            WebhookDelivery.Status.FAILED,
        ):
            # A failed manual replay leaves a finished delivery as it was (a delivered event stays
            # delivered); the attempt log shows the failure.
            delivery.status = status_before
            delivery.next_attempt_at = None
        elif delivery.attempts >= settings.FEDELE_WEBHOOK_MAX_ATTEMPTS:
            delivery.status = WebhookDelivery.Status.FAILED
            delivery.next_attempt_at = None
        else:
            delivery.status = WebhookDelivery.Status.RETRYING
            delivery.next_attempt_at = now + backoff_for(delivery.attempts)
        delivery.save()
        WebhookAttempt.objects.create(
            delivery=delivery,
            attempted_at=now,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
            is_replay=is_replay,
        )
    return str(delivery.status)


def deliver_due(limit: int = 200) -> int:
    now = clock.now()
    due = list(
        WebhookDelivery.objects.filter(
            status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING],
            next_attempt_at__lte=now,
        )
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    for delivery_id in due:
        deliver(delivery_id)
    return len(due)


def delivery_replay(*, delivery_public_id: str) -> WebhookDelivery:
    """Send a delivery again now, whatever its state; the attempt is logged as a replay."""
    delivery = WebhookDelivery.objects.filter(public_id=delivery_public_id).first()
    if delivery is None:
        raise NotFound("Webhook delivery not found.")
    with transaction.atomic():
        audit.record(
            action="webhook_delivery.replayed",
            object_type="webhook_delivery",
            object_id=str(delivery.public_id),
        )
    deliver(delivery.pk, is_replay=True)
    delivery.refresh_from_db()
    return delivery


def delivery_summary(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": str(delivery.public_id),
        "event_id": str(delivery.event_id),
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "next_attempt_at": delivery.next_attempt_at.isoformat() if delivery.next_attempt_at else None,
        "delivered_at": delivery.delivered_at.isoformat() if delivery.delivered_at else None,
    }

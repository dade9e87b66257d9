"""Provisioning: the steps that turn a sold product into an active entitlement, and suspension.

Each provisioning kind has an ordered list of steps (a registry, extended with ``register_kind``);
each step names a handler (``register_handler``). Built-in handlers:

- ``internal``: allocates an identifier from a gapless series (a line id, a licence key) and is done;
- ``manual``: waits until a clerk marks the step done in the UI (``provisioning_step_complete``);
- ``http``: POSTs the step as JSON, signed like the kernel's webhooks (Fedele-Signature), to the
  step's configured URL; a 2xx answer is done, anything else fails and is retried with backoff.
  Private targets are refused like the kernel's webhooks.

Steps run in order. A step is claimed (status running, attempts + 1) in its own transaction, the
handler runs outside it (an HTTP call must not hold row locks), and the outcome is written in a
second transaction with the audit row and, on success, the ServiceProvisioned event. When every step
has succeeded, the entitlement is active and its order line (and order, when all lines are) complete.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction

from fedele.billing.events import ServiceProvisioned
from fedele.billing.models import Entitlement, Order, OrderLine, ProvisioningStep
from fedele.shared import audit, clock, events, sequences, webhooks
from fedele.shared.errors import Conflict, ValidationFailed

STALE_RUNNING = timedelta(minutes=10)
HTTP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class StepSpec:
    name: str
    handler: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """``done``: succeeded; ``waiting``: a person must act (manual); otherwise failed with ``error``."""

    done: bool
    waiting: bool = False
    error: str = ""
    result: dict[str, Any] = field(default_factory=dict)


StepHandler = Callable[[ProvisioningStep, Entitlement, StepSpec], StepOutcome]

PROVISIONING_KINDS: dict[str, list[StepSpec]] = {
    "fibre_line": [
        StepSpec("reserve_port", "internal", {"series": "PORT"}),
        StepSpec("configure_ont", "manual"),
        StepSpec("activate", "internal", {"series": "FIBRE", "identifier": True}),
    ],
    "licence_seat": [
        StepSpec("allocate_seat", "internal", {"series": "LIC", "identifier": True}),
        StepSpec("activate", "internal", {}),
    ],
}
HANDLERS: dict[str, StepHandler] = {}


def register_kind(kind: str, steps: list[StepSpec]) -> None:
    unknown = [step.handler for step in steps if step.handler not in HANDLERS]
    if unknown or not steps:
        raise ValueError(f"Provisioning kind {kind} needs steps with known handlers (unknown: {unknown}).")
    PROVISIONING_KINDS[kind] = steps


def register_handler(name: str, handler: StepHandler) -> None:
    HANDLERS[name] = handler


def spec_for(step: ProvisioningStep, entitlement: Entitlement) -> StepSpec:
    for spec in PROVISIONING_KINDS.get(entitlement.kind, []):
        if spec.name == step.name:
            return spec
    return StepSpec(step.name, step.handler)


def internal_handler(step: ProvisioningStep, entitlement: Entitlement, spec: StepSpec) -> StepOutcome:
    series = str(spec.options.get("series", "")).upper()
    if not series:
        return StepOutcome(done=True)
    value = sequences.next_number(series, year=clock.now().year)
    result: dict[str, Any] = {"allocated": value}
    if spec.options.get("identifier"):
        result["identifier"] = value
    return StepOutcome(done=True, result=result)


def manual_handler(step: ProvisioningStep, entitlement: Entitlement, spec: StepSpec) -> StepOutcome:
    return StepOutcome(done=False, waiting=True)


def http_client() -> httpx.Client:
    """Replaced in tests with a client on an httpx.MockTransport."""
    return httpx.Client(timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False)


def http_handler(step: ProvisioningStep, entitlement: Entitlement, spec: StepSpec) -> StepOutcome:
    url = str(spec.options.get("url", ""))
    secret = str(spec.options.get("secret", "") or getattr(settings, "FEDELE_PROVISIONING_SECRET", ""))
    if not url or not secret:
        return StepOutcome(done=False, error="No URL or signing secret is configured for this step.")
    refusal = webhooks.target_refusal(url)
    if refusal:
        return StepOutcome(done=False, error=refusal)
    body = json.dumps(
        {
            "step": step.name,
            "step_id": str(step.public_id),
            "attempt": step.attempts,
            "entitlement_id": str(entitlement.public_id),
            "kind": entitlement.kind,
            "identifier": entitlement.identifier,
            "attributes": entitlement.attributes,
        },
        sort_keys=True,
    ).encode()
    headers = {
        "Content-Type": "application/json",
        webhooks.SIGNATURE_HEADER: webhooks.sign(secret, body, int(time.time())),
        "Idempotency-Key": str(step.public_id),
    }
    try:
        with http_client() as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as error:
        return StepOutcome(done=False, error=f"{type(error).__name__}: {error}"[:500])
    if 200 <= response.status_code < 300:
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        result = answer if isinstance(answer, dict) else {}
        return StepOutcome(done=True, result={"status": response.status_code, **result})
    return StepOutcome(done=False, error=f"HTTP {response.status_code}: {response.text[:200]}")


register_handler("internal", internal_handler)
register_handler("manual", manual_handler)
register_handler("http", http_handler)


def steps_create(*, entitlement: Entitlement, order_line: OrderLine | None) -> list[ProvisioningStep]:
    """The steps of the entitlement's kind, in the caller's transaction (order fulfilment)."""
    specs = PROVISIONING_KINDS.get(entitlement.kind)
    if not specs:
        raise ValidationFailed(
            f"Unknown provisioning kind '{entitlement.kind}'.",
            code="unknown_provisioning_kind",
            fields={"provisioning_kind": [f"'{entitlement.kind}' has no registered steps."]},
        )
    now = clock.now()
    return ProvisioningStep.objects.bulk_create(
        ProvisioningStep(
            entitlement=entitlement,
            order_line=order_line,
            position=position,
            name=spec.name,
            handler=spec.handler,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        for position, spec in enumerate(specs)
    )


def _claim(step_id: int, *, force: bool) -> ProvisioningStep | None:
    with transaction.atomic():
        step = ProvisioningStep.objects.select_for_update().filter(pk=step_id).first()
        if step is None or step.status == ProvisioningStep.Status.SUCCEEDED:
            return None
        now = clock.now()
        stale = step.status == ProvisioningStep.Status.RUNNING and step.updated_at < now - STALE_RUNNING
        due = step.next_attempt_at is not None and step.next_attempt_at <= now
        if step.status == ProvisioningStep.Status.RUNNING and not stale:
            return None
        if not (force or due or stale):
            return None
        step.status = ProvisioningStep.Status.RUNNING
        step.attempts += 1
        step.updated_at = now
        step.save(update_fields=["status", "attempts", "updated_at"])
        return step


def _record(step_id: int, outcome: StepOutcome, *, actor_id: int | None = None) -> ProvisioningStep:
    with transaction.atomic():
        step = ProvisioningStep.objects.select_for_update().get(pk=step_id)
        entitlement = (
            Entitlement.objects.select_for_update()
            .select_related("account__customer")
            .get(pk=step.entitlement_id)
        )
        now = clock.now()
        before = {"status": step.status, "attempts": step.attempts}
        step.updated_at = now
        if outcome.done:
            step.status = ProvisioningStep.Status.SUCCEEDED
            step.result = outcome.result
            step.last_error = ""
            step.next_attempt_at = None
            step.completed_at = now
            step.completed_by_id = actor_id
            identifier = str(outcome.result.get("identifier", ""))
            if identifier and not entitlement.identifier:
                entitlement.identifier = identifier[:120]
        elif outcome.waiting:
            # Waiting for a person: the attempt does not count against the retry budget.
            step.status = ProvisioningStep.Status.PENDING
            step.attempts = max(step.attempts - 1, 0)
            step.next_attempt_at = None
        else:
            step.status = ProvisioningStep.Status.FAILED
            step.last_error = outcome.error[:500]
            step.next_attempt_at = (
                now + webhooks.backoff_for(step.attempts) if step.attempts < step.max_attempts else None
            )
        step.save()
        if entitlement.status == Entitlement.Status.PENDING:
            entitlement.status = Entitlement.Status.PROVISIONING
        entitlement.updated_at = now
        audit.record(
            action=f"billing.provisioning_step.{step.status}",
            object_type="provisioning_step",
            object_id=str(step.public_id),
            before=before,
            after={"status": step.status, "attempts": step.attempts, "error": step.last_error},
            actor_id=actor_id,
        )
        if outcome.done:
            order_line = (
                OrderLine.objects.select_related("order").filter(pk=step.order_line_id).first()
                if step.order_line_id is not None
                else None
            )
            events.publish(
                ServiceProvisioned(
                    entitlement_id=str(entitlement.public_id),
                    customer_id=str(entitlement.account.customer.public_id),
                    order_number=order_line.order.number if order_line else "",
                    kind=entitlement.kind,
                    identifier=entitlement.identifier,
                    step=step.name,
                ),
                aggregate_type="billing.entitlement",
                aggregate_id=str(entitlement.public_id),
            )
            _complete_if_done(entitlement, order_line, now)
        entitlement.save()
    return step


def _complete_if_done(entitlement: Entitlement, order_line: OrderLine | None, now: Any) -> None:
    remaining = ProvisioningStep.objects.filter(entitlement=entitlement).exclude(status="succeeded").exists()
    if remaining:
        return
    entitlement.status = Entitlement.Status.ACTIVE
    entitlement.activated_at = now
    if order_line is None:
        return
    OrderLine.objects.filter(pk=order_line.pk).update(status=OrderLine.Status.COMPLETED)
    order = Order.objects.select_for_update().get(pk=order_line.order_id)
    if not order.lines.exclude(status=OrderLine.Status.COMPLETED).exists():
        order.status = Order.Status.COMPLETED
        order.completed_at = now
        order.updated_at = now
        order.save(update_fields=["status", "completed_at", "updated_at"])
        audit.record(
            action="billing.order.completed",
            object_type="order",
            object_id=str(order.public_id),
            after={"status": order.status},
        )


def provisioning_step_run(
    *, step: ProvisioningStep, force: bool = False, actor_id: int | None = None
) -> bool:
    """Run one step if it is due (or ``force``); True when it ran."""
    claimed = _claim(step.pk, force=force)
    if claimed is None:
        return False
    entitlement = Entitlement.objects.get(pk=claimed.entitlement_id)
    spec = spec_for(claimed, entitlement)
    handler = HANDLERS.get(claimed.handler)
    try:
        outcome = (
            handler(claimed, entitlement, spec)
            if handler
            else StepOutcome(done=False, error=f"No handler named '{claimed.handler}'.")
        )
    except Exception as error:  # a handler bug must fail the step, not leave it running
        outcome = StepOutcome(done=False, error=f"{type(error).__name__}: {error}"[:500])
    _record(claimed.pk, outcome, actor_id=actor_id)
    return True


def provisioning_advance(*, entitlement: Entitlement, actor_id: int | None = None) -> int:
    """Run the entitlement's steps in order until one waits, fails or all have succeeded; returns
    how many step attempts ran."""
    attempts = 0
    for _ in range(50):
        step = (
            ProvisioningStep.objects.filter(entitlement_id=entitlement.pk)
            .exclude(status="succeeded")
            .order_by("position")
            .first()
        )
        if step is None:
            return attempts
        # A manual step waits with no next attempt; a failed one out of retries too: neither is claimed.
        ran = provisioning_step_run(step=step, actor_id=actor_id)
        attempts += int(ran)
        step.refresh_from_db()
        if not ran or step.status != ProvisioningStep.Status.SUCCEEDED:
            return attempts
    return attempts


def provisioning_step_retry(*, step: ProvisioningStep, actor_id: int | None = None) -> ProvisioningStep:
    """A clerk retries a failed step now (with a fresh retry budget), then the steps after it."""
    with transaction.atomic():
        locked = ProvisioningStep.objects.select_for_update().get(pk=step.pk)
        if locked.status != ProvisioningStep.Status.FAILED:
            raise Conflict("Only a failed step can be retried.", code="step_not_failed")
        locked.next_attempt_at = clock.now()
        locked.max_attempts = locked.attempts + 5
        locked.save(update_fields=["next_attempt_at", "max_attempts"])
        audit.record(
            action="billing.provisioning_step.retry_requested",
            object_type="provisioning_step",
            object_id=str(locked.public_id),
            actor_id=actor_id,
        )
    provisioning_advance(entitlement=Entitlement.objects.get(pk=locked.entitlement_id), actor_id=actor_id)
    locked.refresh_from_db()
    return locked


def provisioning_step_complete(
    *, step: ProvisioningStep, identifier: str = "", note: str = "", actor_id: int | None = None
) -> ProvisioningStep:
    """A clerk marks a manual step done (optionally recording the identifier), then the rest runs."""
    with transaction.atomic():
        locked = ProvisioningStep.objects.select_for_update().get(pk=step.pk)
        if locked.handler != "manual":
            raise Conflict("Only a manual step can be marked done by hand.", code="step_not_manual")
        if locked.status == ProvisioningStep.Status.SUCCEEDED:
            raise Conflict("This step is already done.", code="step_done")
        earlier = ProvisioningStep.objects.filter(
            entitlement_id=locked.entitlement_id, position__lt=locked.position
        ).exclude(status="succeeded")
        if earlier.exists():
            raise Conflict("The steps before this one are not done yet.", code="earlier_steps_pending")
        locked.attempts += 1
        locked.save(update_fields=["attempts"])
    result: dict[str, Any] = {"note": note.strip()[:300]} if note.strip() else {}
    if identifier.strip():
        result["identifier"] = identifier.strip()[:120]
    _record(locked.pk, StepOutcome(done=True, result=result), actor_id=actor_id)
    entitlement = Entitlement.objects.get(pk=locked.entitlement_id)
    provisioning_advance(entitlement=entitlement, actor_id=actor_id)
    locked.refresh_from_db()
    return locked


def provisioning_run_due(*, limit: int = 200) -> int:
    """The periodic job: run due steps (failed ones whose backoff has passed, stale running ones);
    returns how many entitlements made an attempt."""
    now = clock.now()
    due = list(
        ProvisioningStep.objects.filter(status__in=["pending", "failed"], next_attempt_at__lte=now)
        .exclude(handler="manual", status="pending")
        .order_by("next_attempt_at", "id")
        .values_list("entitlement_id", flat=True)[:limit]
    )
    stale = list(
        ProvisioningStep.objects.filter(status="running", updated_at__lt=now - STALE_RUNNING).values_list(
            "entitlement_id", flat=True
        )[:limit]
    )
    ran = 0
    for entitlement in Entitlement.objects.filter(pk__in=set(due) | set(stale)):
        ran += 1 if provisioning_advance(entitlement=entitlement) else 0
    return ran


# suspension for dunning (contract with H4) -------------------------------------------------------


def _set_status(*, account_id: int, reason: str, source: str, target: str, action: str) -> int:
    if not reason.strip():
        raise ValidationFailed(
            "A reason is required.", code="reason_required", fields={"reason": ["is required."]}
        )
    with transaction.atomic():
        rows = list(
            Entitlement.objects.select_for_update()
            .filter(account_id=account_id, status=source)
            .order_by("pk")
        )
        now = clock.now()
        for entitlement in rows:
            entitlement.status = target
            entitlement.suspended_at = now if target == Entitlement.Status.SUSPENDED else None
            entitlement.updated_at = now
            audit.record(
                action=f"billing.entitlement.{action}",
                object_type="entitlement",
                object_id=str(entitlement.public_id),
                before={"status": source},
                after={"status": target, "reason": reason.strip()[:300]},
            )
        Entitlement.objects.bulk_update(rows, ["status", "suspended_at", "updated_at"])
    return len(rows)


def entitlements_suspend(*, account_id: int, reason: str) -> int:
    """Suspend the account's active entitlements (dunning); returns how many. Idempotent."""
    return _set_status(
        account_id=account_id, reason=reason, source="active", target="suspended", action="suspended"
    )


def entitlements_reactivate(*, account_id: int, reason: str) -> int:
    """Reactivate the account's suspended entitlements; returns how many. Idempotent."""
    return _set_status(
        account_id=account_id, reason=reason, source="suspended", target="active", action="reactivated"
    )

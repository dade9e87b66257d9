"""Provisioning steps: internal, manual and HTTP handlers, retries, suspension for dunning."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import time_machine
from django.test import override_settings

from fedele.billing.models import Entitlement, ProvisioningStep
from fedele.billing.services import provisioning
from fedele.billing.services.provisioning import (
    StepSpec,
    entitlements_reactivate,
    entitlements_suspend,
    provisioning_advance,
    provisioning_run_due,
    provisioning_step_complete,
    provisioning_step_retry,
    steps_create,
)
from fedele.billing.tests.factories import BillingAccountFactory, ProductFactory
from fedele.shared import webhooks
from fedele.shared.errors import Conflict, ValidationFailed
from fedele.shared.models import OutboxEvent

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _entitlement(kind: str, account: object = None) -> Entitlement:
    product = ProductFactory(provisioning_kind=kind)
    entitlement = Entitlement.objects.create(
        account=account or BillingAccountFactory(), product=product, kind=kind, created_at=NOW, updated_at=NOW
    )
    steps_create(entitlement=entitlement, order_line=None)
    return entitlement


def _steps(entitlement: Entitlement) -> list[tuple[str, str, int]]:
    return [
        (s.name, s.status, s.attempts)
        for s in ProvisioningStep.objects.filter(entitlement=entitlement).order_by("position")
    ]


def test_licence_seat_runs_to_active_with_an_identifier_and_events() -> None:
    entitlement = _entitlement("licence_seat")
    provisioning_advance(entitlement=entitlement)
    entitlement.refresh_from_db()
    assert _steps(entitlement) == [("allocate_seat", "succeeded", 1), ("activate", "succeeded", 1)]
    assert entitlement.status == "active"
    assert entitlement.identifier == "LIC-2026-000001"
    assert entitlement.activated_at == NOW
    events = OutboxEvent.objects.filter(event_type="billing.service_provisioned").order_by("id")
    assert [e.payload["step"] for e in events] == ["allocate_seat", "activate"]
    assert events[1].payload["identifier"] == "LIC-2026-000001"


def test_fibre_line_waits_for_the_manual_step_then_completes() -> None:
    entitlement = _entitlement("fibre_line")
    provisioning_advance(entitlement=entitlement)
    assert _steps(entitlement) == [
        ("reserve_port", "succeeded", 1),
        ("configure_ont", "pending", 0),
        ("activate", "pending", 0),
    ]
    provisioning_advance(entitlement=entitlement)  # nothing more happens by itself
    assert provisioning_run_due() == 0
    manual = ProvisioningStep.objects.get(entitlement=entitlement, name="configure_ont")
    provisioning_step_complete(step=manual, note="ONT serial ZTE123")
    entitlement.refresh_from_db()
    assert _steps(entitlement)[1:] == [("configure_ont", "succeeded", 1), ("activate", "succeeded", 1)]
    assert entitlement.status == "active"
    assert entitlement.identifier == "FIBRE-2026-000001"
    with pytest.raises(Conflict):
        provisioning_step_complete(step=manual)


def test_http_step_retries_with_backoff_then_succeeds(
    frozen: time_machine.Traveller, monkeypatch: pytest.MonkeyPatch
) -> None:
    received: list[httpx.Request] = []
    answers = iter([503, 200])

    def respond(request: httpx.Request) -> httpx.Response:
        received.append(request)
        status = next(answers)
        return httpx.Response(status, json={"identifier": "LINE-42"} if status == 200 else {"error": "busy"})

    monkeypatch.setattr(
        provisioning, "http_client", lambda: httpx.Client(transport=httpx.MockTransport(respond))
    )
    monkeypatch.setitem(
        provisioning.PROVISIONING_KINDS,
        "sim_card",
        [
            StepSpec(
                "activate_sim", "http", {"url": "https://provisioning.example.com/sim", "secret": "s3cret"}
            )
        ],
    )
    monkeypatch.setattr(webhooks, "target_refusal", lambda url: None)
    entitlement = _entitlement("sim_card")
    provisioning_advance(entitlement=entitlement)
    step = ProvisioningStep.objects.get(entitlement=entitlement)
    assert (step.status, step.attempts, step.last_error) == ("failed", 1, 'HTTP 503: {"error":"busy"}')
    assert step.next_attempt_at == NOW + timedelta(seconds=30)
    assert webhooks.verify_signature("s3cret", received[0].headers["Fedele-Signature"], received[0].content)
    assert provisioning_run_due() == 0  # not due yet
    frozen.shift(timedelta(seconds=31))
    assert provisioning_run_due() == 1
    step.refresh_from_db()
    entitlement.refresh_from_db()
    assert (step.status, step.attempts, entitlement.status, entitlement.identifier) == (
        "succeeded",
        2,
        "active",
        "LINE-42",
    )


def test_http_step_refuses_private_targets_and_clerk_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        provisioning.PROVISIONING_KINDS,
        "router",
        [StepSpec("push_config", "http", {"url": "http://127.0.0.1:8080/x", "secret": "k"})],
    )
    entitlement = _entitlement("router")
    with override_settings(FEDELE_WEBHOOK_ALLOW_PRIVATE_TARGETS=False):
        provisioning_advance(entitlement=entitlement)
        step = ProvisioningStep.objects.get(entitlement=entitlement)
        assert step.status == "failed"
        assert "private or reserved address" in step.last_error
        step.attempts = step.max_attempts
        step.next_attempt_at = None
        step.save()
        retried = provisioning_step_retry(step=step)
    assert (retried.status, retried.attempts) == ("failed", 6)
    assert retried.next_attempt_at is not None


def test_suspend_and_reactivate_only_touch_that_account() -> None:
    account = BillingAccountFactory()
    first = _entitlement("licence_seat", account)
    second = _entitlement("licence_seat", account)
    other = _entitlement("licence_seat")
    pending = _entitlement("fibre_line", account)
    for entitlement in (first, second, other):
        provisioning_advance(entitlement=entitlement)
    assert entitlements_suspend(account_id=account.pk, reason="dunning step 3") == 2
    assert entitlements_suspend(account_id=account.pk, reason="dunning step 3") == 0
    statuses = dict(Entitlement.objects.values_list("pk", "status"))
    assert statuses == {
        first.pk: "suspended",
        second.pk: "suspended",
        other.pk: "active",
        pending.pk: "pending",
    }
    assert Entitlement.objects.get(pk=first.pk).suspended_at == NOW
    with pytest.raises(ValidationFailed):
        entitlements_reactivate(account_id=account.pk, reason=" ")
    assert entitlements_reactivate(account_id=account.pk, reason="paid") == 2
    assert Entitlement.objects.filter(account=account, status="active").count() == 2
    assert Entitlement.objects.get(pk=first.pk).suspended_at is None

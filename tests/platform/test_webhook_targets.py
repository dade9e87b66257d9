"""Webhooks may not be aimed at the server's own network unless the operator allows it (SSRF)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from fedele.shared import webhooks
from fedele.shared.errors import ValidationFailed
from fedele.shared.models import WebhookEndpoint


@pytest.mark.django_db
@override_settings(FEDELE_WEBHOOK_ALLOW_PRIVATE_TARGETS=False)
@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127.0.0.1:8000/hook", "127.0.0.1"),
        ("http://localhost/hook", "127.0.0.1"),
        ("http://10.0.0.7/hook", "10.0.0.7"),
        ("http://192.168.1.20/hook", "192.168.1.20"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://[::1]:9000/hook", "::1"),
    ],
)
def test_private_and_loopback_targets_are_refused_and_nothing_is_saved(url: str, address: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        webhooks.endpoint_create(url=url, event_types=["customers.CustomerCreated"])
    assert caught.value.code == "webhook_target_refused"
    assert f"({address})" in caught.value.fields["url"][0]
    assert WebhookEndpoint.objects.count() == 0


@override_settings(FEDELE_WEBHOOK_ALLOW_PRIVATE_TARGETS=False)
def test_target_refusal_reasons() -> None:
    assert webhooks.target_refusal("ftp://example.it/x") == "Use an http(s) URL with a host name."
    assert webhooks.target_refusal("http:///nohost") == "Use an http(s) URL with a host name."
    assert webhooks.target_refusal("http://8.8.8.8/hook") is None  # a public address, no lookup needed
    assert webhooks.target_refusal("https://no-such-host.invalid/hook") == (
        "The host no-such-host.invalid cannot be resolved."
    )


@pytest.mark.django_db
def test_delivery_to_a_target_that_became_private_is_refused_without_sending(settings) -> None:  # type: ignore[no-untyped-def]
    from django.utils import timezone

    from fedele.shared.models import WebhookAttempt, WebhookDelivery

    endpoint = webhooks.endpoint_create(url="http://127.0.0.1:9/hook", event_types=["*"])  # allowed in tests
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id="6f1c2d1e-0000-4000-8000-000000000001",
        event_type="customers.CustomerCreated",
        payload={"id": "x"},
        created_at=timezone.now(),
        next_attempt_at=timezone.now(),
    )
    settings.FEDELE_WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    assert webhooks.deliver(delivery.pk) == "retrying"
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None
    assert (
        attempt.error == "Refused: The host 127.0.0.1 resolves to a private or reserved address (127.0.0.1)."
    )

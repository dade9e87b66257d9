"""The gateway port: what billing asks of any payment provider, and the one result shape it gets back.

Adapters (manual, SEPA, Stripe) are registered by name; tests register adapters wired to recorded
responses, production the real ones (see :func:`fedele.billing.gateways.stripe.configured_gateway`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from fedele.shared.errors import ValidationFailed


class ResultStatus(StrEnum):
    SUCCEEDED = "succeeded"
    PENDING = "pending"
    """Accepted, the outcome comes later (a SEPA collection, a card needing authentication)."""
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    invoice_public_id: str
    invoice_number: str
    customer_public_id: str
    amount: Decimal
    currency: str
    idempotency_key: str
    method_external_id: str = ""
    customer_external_id: str = ""


@dataclass(frozen=True, slots=True)
class GatewayResult:
    status: ResultStatus
    external_id: str
    amount: Decimal
    currency: str
    failure_code: str = ""
    failure_reason: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)


class PaymentGateway(Protocol):
    name: str

    def charge(self, request: ChargeRequest) -> GatewayResult:
        """Start (and when possible complete) collecting ``amount`` for an invoice."""
        ...

    def confirm(self, external_id: str) -> GatewayResult:
        """Confirm a charge that was created but not completed."""
        ...

    def refund(
        self, *, payment_external_id: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> GatewayResult: ...


GatewayFactory = Callable[[], PaymentGateway]
_registry: dict[str, GatewayFactory] = {}


def register(name: str, factory: GatewayFactory) -> None:
    _registry[name] = factory


def get(name: str) -> PaymentGateway:
    factory = _registry.get(name)
    if factory is None:
        raise ValidationFailed(
            f"No payment gateway named '{name}' is configured.",
            code="unknown_gateway",
            fields={"gateway": f"Use one of: {', '.join(sorted(_registry)) or 'none configured'}."},
        )
    return factory()


def registered() -> list[str]:
    return sorted(_registry)

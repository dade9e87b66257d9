"""Manual payments (bank transfer, cash, cheque): the clerk records what was received, so a charge
is whatever the clerk says it is and there is nothing to call."""

from __future__ import annotations

from decimal import Decimal

from fedele.billing.gateways.base import ChargeRequest, GatewayResult, ResultStatus, register


class ManualGateway:
    name = "manual"

    def charge(self, request: ChargeRequest) -> GatewayResult:
        # Nobody can be charged automatically: the invoice waits for the customer's transfer.
        return GatewayResult(
            status=ResultStatus.FAILED,
            external_id="",
            amount=request.amount,
            currency=request.currency,
            failure_code="manual_method",
            failure_reason="Manual payment methods cannot be charged automatically.",
        )

    def confirm(self, external_id: str) -> GatewayResult:
        return GatewayResult(ResultStatus.SUCCEEDED, external_id, Decimal(0), "")

    def refund(
        self, *, payment_external_id: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> GatewayResult:
        # The clerk pays the money back by transfer; the refund is recorded as done.
        return GatewayResult(ResultStatus.SUCCEEDED, f"manual-refund:{idempotency_key}", amount, currency)


def install() -> None:
    register("manual", ManualGateway)
    register("bank", ManualGateway)

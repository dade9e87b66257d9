"""Payment gateways behind one port (:mod:`fedele.billing.gateways.base`), registered by name."""

from fedele.billing.gateways.base import ChargeRequest, GatewayResult, PaymentGateway, get, register

__all__ = ["ChargeRequest", "GatewayResult", "PaymentGateway", "get", "register"]

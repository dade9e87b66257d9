"""Billing tables, one file per area; Django finds them all through this package."""

from fedele.billing.models.catalog import Coupon, Metric, Plan, PlanCharge, PlanVersion, Product
from fedele.billing.models.orders import Order, OrderLine, ProvisioningStep, Quote, QuoteLine
from fedele.billing.models.invoicing import BillingRun, Invoice, InvoiceLine, InvoiceTaxSummary, OneOffCharge
from fedele.billing.models.subscriptions import (
    BillingAccount,
    CreditEntry,
    Entitlement,
    Subscription,
    SubscriptionAddOn,
    SubscriptionChange,
)
from fedele.billing.models.usage import UsageEvent
from fedele.billing.models.payments import BankStatementImport, BankStatementLine, GatewayEvent, Payment, PaymentAllocation, PaymentMethod, Refund, SepaBatch, SepaMandate  # noqa: E501
from fedele.billing.models.dunning import DunningAction, DunningCase, DunningPolicy

__all__ = [
    "BankStatementImport",
    "BankStatementLine",
    "DunningAction",
    "DunningCase",
    "DunningPolicy",
    "GatewayEvent",
    "Payment",
    "PaymentAllocation",
    "PaymentMethod",
    "Refund",
    "SepaBatch",
    "SepaMandate",
    "BillingAccount",
    "BillingRun",
    "Coupon",
    "CreditEntry",
    "Entitlement",
    "Invoice",
    "InvoiceLine",
    "InvoiceTaxSummary",
    "Metric",
    "OneOffCharge",
    "Order",
    "OrderLine",
    "Plan",
    "PlanCharge",
    "PlanVersion",
    "Product",
    "ProvisioningStep",
    "Quote",
    "QuoteLine",
    "Subscription",
    "SubscriptionAddOn",
    "SubscriptionChange",
    "UsageEvent",
]

"""Billing tables, one file per area; Django finds them all through this package."""

from fedele.billing.models.catalog import Coupon, Metric, Plan, PlanCharge, PlanVersion, Product
from fedele.billing.models.dunning import DunningAction, DunningCase, DunningPolicy
from fedele.billing.models.invoicing import BillingRun, Invoice, InvoiceLine, InvoiceTaxSummary, OneOffCharge
from fedele.billing.models.orders import Order, OrderLine, ProvisioningStep, Quote, QuoteLine
from fedele.billing.models.payments import (
    BankStatementImport,
    BankStatementLine,
    GatewayEvent,
    Payment,
    PaymentAllocation,
    PaymentMethod,
    Refund,
    SepaBatch,
    SepaMandate,
)
from fedele.billing.models.subscriptions import (
    BillingAccount,
    CreditEntry,
    Entitlement,
    Subscription,
    SubscriptionAddOn,
    SubscriptionChange,
)
from fedele.billing.models.usage import UsageEvent

__all__ = [
    "BankStatementImport",
    "BankStatementLine",
    "BillingAccount",
    "BillingRun",
    "Coupon",
    "CreditEntry",
    "DunningAction",
    "DunningCase",
    "DunningPolicy",
    "Entitlement",
    "GatewayEvent",
    "Invoice",
    "InvoiceLine",
    "InvoiceTaxSummary",
    "Metric",
    "OneOffCharge",
    "Order",
    "OrderLine",
    "Payment",
    "PaymentAllocation",
    "PaymentMethod",
    "Plan",
    "PlanCharge",
    "PlanVersion",
    "Product",
    "ProvisioningStep",
    "Quote",
    "QuoteLine",
    "Refund",
    "SepaBatch",
    "SepaMandate",
    "Subscription",
    "SubscriptionAddOn",
    "SubscriptionChange",
    "UsageEvent",
]

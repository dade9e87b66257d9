"""Billing tables, one file per area; Django finds them all through this package."""

from fedele.billing.models.catalog import Coupon, Metric, Plan, PlanCharge, PlanVersion, Product
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

__all__ = [
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
    "Plan",
    "PlanCharge",
    "PlanVersion",
    "Product",
    "Subscription",
    "SubscriptionAddOn",
    "SubscriptionChange",
    "UsageEvent",
]

"""Billing: catalog price models, proration, and (later) subscriptions, usage and invoicing."""

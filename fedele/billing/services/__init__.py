"""Billing writes, one file per area (catalog, subscriptions, invoicing, billing_run, usage, orders,
provisioning, payments, dunning, settlement). Import the function from its area module."""

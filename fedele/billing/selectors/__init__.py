"""Billing reads, one file per area."""

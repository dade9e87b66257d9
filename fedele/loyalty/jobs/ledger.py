"""Celery entry points of the loyalty ledger area. Each is idempotent."""

from __future__ import annotations

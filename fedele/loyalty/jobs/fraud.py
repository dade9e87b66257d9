"""Celery entry points of the loyalty fraud area. Each is idempotent."""

from __future__ import annotations

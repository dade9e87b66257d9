"""Celery entry points of the loyalty programmes area. Each is idempotent."""

from __future__ import annotations

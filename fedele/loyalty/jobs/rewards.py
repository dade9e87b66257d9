"""Celery entry points of the loyalty rewards area. Each is idempotent."""

from __future__ import annotations

"""Celery entry points of the loyalty partners area. Each is idempotent."""

from __future__ import annotations

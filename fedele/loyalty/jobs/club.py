"""Celery entry points of the loyalty club area. Each is idempotent."""

from __future__ import annotations

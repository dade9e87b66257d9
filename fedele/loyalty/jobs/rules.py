"""Celery entry points of the loyalty rules area. Each is idempotent."""

from __future__ import annotations

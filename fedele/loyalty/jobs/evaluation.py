"""Celery entry points of the loyalty evaluation area. Each is idempotent."""

from __future__ import annotations

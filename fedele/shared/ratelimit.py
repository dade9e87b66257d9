"""Fixed-window rate limits in the cache (Redis in production, shared by every web node)."""

from __future__ import annotations

import time

from django.core.cache import cache

from fedele.shared.errors import RateLimited


def hit(bucket: str, *, limit: int, window_seconds: int = 60) -> None:
    """Count one call in the current window; raise RateLimited when the limit is passed."""
    window = int(time.time() // window_seconds)
    key = f"rl:{bucket}:{window}"
    added = cache.add(key, 1, timeout=window_seconds + 5)
    count = 1 if added else _incr(key, window_seconds)
    if count > limit:
        retry_after = window_seconds - int(time.time() % window_seconds)
        raise RateLimited(
            f"Too many requests: the limit is {limit} per {window_seconds} seconds.",
            retry_after_seconds=max(retry_after, 1),
        )


def _incr(key: str, window_seconds: int) -> int:
    try:
        return int(cache.incr(key))
    except ValueError:
        cache.add(key, 1, timeout=window_seconds + 5)
        return 1

"""Helpers for the project's own tests (imported by tests only)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from django.db import connections


def in_threads(work: Callable[[int], None], count: int) -> list[BaseException]:
    """Run ``work(index)`` in ``count`` threads released together by a barrier (a real race on
    PostgreSQL); each thread closes its own database connections. Returns what the threads raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def tools_required() -> bool:
    """Whether a test whose tool (Chromium, sipp) is missing must fail rather than skip: set
    ``FEDELE_REQUIRE_TOOLS`` (CI does, in ``.ci/run``; ``make test`` installs the tools)."""
    return os.environ.get("FEDELE_REQUIRE_TOOLS", "").lower() in ("1", "true", "yes")

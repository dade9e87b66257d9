"""Pushes to the contact center's desktops from synchronous code without an event loop per push.

``async_to_sync`` called from a thread that works for no event loop (a Celery worker, the
``cc_router`` command, a benchmark) starts a thread and a new event loop for every call, and
channels-redis opens its connections again in each new loop: about 1 ms of CPU per offer, the
largest share of a routing decision after its SQL. Such threads hand the push to one long-lived
loop per process instead and wait until it is sent, so pushes keep the order they were made in and
the layer's connections are reused. A thread that works for an event loop (an ASGI request's
``sync_to_async`` worker) still sends through that loop, which owns the in-memory layer's queues
in embedded mode.

Same contract as ``fedele.shared.realtime``: ``notify_group`` sends after the transaction commits
(nothing when it rolls back); a failed push is logged, never raised.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

# A push normally takes well under a millisecond; a stuck layer must not stall the router for long.
SEND_TIMEOUT_SECONDS = 5.0


class _PushLoop:
    """One event loop on a daemon thread, started on first use in each process (not inherited
    across a fork: Celery's prefork workers start their own)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="cc-realtime-push", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()


_push_loop: _PushLoop | None = None
_push_loop_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _push_loop
    current = _push_loop
    if current is None or current.pid != os.getpid():
        with _push_loop_lock:
            if _push_loop is None or _push_loop.pid != os.getpid():
                _push_loop = _PushLoop()
            current = _push_loop
    return current.loop


def _serves_an_event_loop() -> bool:
    """Whether this thread runs for an event loop (inside ``sync_to_async`` of this process, or an
    event loop's own thread), where ``async_to_sync`` reuses that loop as it should."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return True
    if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
        return False
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    return loop is not None and loop.is_running()


def send_now(group: str, message_type: str, data: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": message_type, "data": data}
    try:
        if _serves_an_event_loop():
            async_to_sync(layer.group_send)(group, message)
        else:
            asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _background_loop()).result(
                SEND_TIMEOUT_SECONDS
            )
    except Exception:
        # A push is a courtesy; the desktop shows the same data on its next poll.
        logger.exception("Realtime push to %s failed", group)


def notify_group(group: str, message_type: str, data: dict[str, Any]) -> None:
    transaction.on_commit(lambda: send_now(group, message_type, data))

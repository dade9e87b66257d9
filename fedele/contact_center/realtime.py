"""Pushes to the contact center's desktops from synchronous code without an event loop per push.

``async_to_sync`` called from a thread that works for no event loop (a Celery worker, the
``cc_router`` command, a benchmark) starts a thread and a new event loop for every call, and
channels-redis opens its connections again in each new loop: about 1 ms of CPU per offer, the
largest share of a routing decision after its SQL. Such threads hand their pushes to one
long-lived loop per process instead, which sends them one at a time in the order they were handed
over and reuses the layer's connections. ``send_now`` waits until its push is sent; the router
does not (``wait=False``): each offer is handed over as its decision commits and goes out while
the router decides the next, and ``flush`` at the end of the run waits for the lot.

A thread that works for an event loop (an ASGI request's ``sync_to_async`` worker) still sends
through that loop, which owns the in-memory layer's queues in embedded mode.

Same contract as ``fedele.shared.realtime``: ``notify_group`` sends after the transaction commits
(nothing when it rolls back); a failed push is logged, never raised.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import Future
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

# A push normally takes well under a millisecond; a stuck layer must not stall the router for long.
SEND_TIMEOUT_SECONDS = 5.0


class _PushLoop:
    """One event loop on a daemon thread, started on first use in each process (not inherited
    across a fork: Celery's prefork workers start their own). One sender coroutine sends the
    pushes one at a time, in the order they were handed over."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="cc-realtime-push", daemon=True)
        self.thread.start()
        self.ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.pending: asyncio.Queue[tuple[str, dict[str, Any] | None, Future[None]]] = asyncio.Queue()
        self.loop.create_task(self._sender())
        self.loop.call_soon(self.ready.set)
        self.loop.run_forever()

    async def _sender(self) -> None:
        while True:
            group, message, done = await self.pending.get()
            try:
                layer = get_channel_layer()
                if message is not None and layer is not None:
                    await layer.group_send(group, message)
            except Exception:
                # A push is a courtesy; the desktop shows the same data on its next poll.
                logger.exception("Realtime push to %s failed", group)
            done.set_result(None)

    def submit(self, group: str, message: dict[str, Any] | None) -> Future[None]:
        """Queue a push (None: a marker, done when everything queued before it is sent)."""
        done: Future[None] = Future()
        self.loop.call_soon_threadsafe(self.pending.put_nowait, (group, message, done))
        return done


_push_loop: _PushLoop | None = None
_push_loop_lock = threading.Lock()


def _background() -> _PushLoop:
    global _push_loop
    current = _push_loop
    if current is None or current.pid != os.getpid():
        with _push_loop_lock:
            if _push_loop is None or _push_loop.pid != os.getpid():
                _push_loop = _PushLoop()
            current = _push_loop
    return current


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


def send_now(group: str, message_type: str, data: dict[str, Any], *, wait: bool = True) -> None:
    """Push now. ``wait=False`` (threads without an event loop): hand the push over and return at
    once; it goes out in order with every other push of this module, and ``flush`` waits for it."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": message_type, "data": data}
    try:
        if _serves_an_event_loop():
            async_to_sync(layer.group_send)(group, message)
            return
        done = _background().submit(group, message)
        if wait:
            done.result(SEND_TIMEOUT_SECONDS)
    except Exception:
        logger.exception("Realtime push to %s failed", group)


def flush() -> None:
    """Wait until every push handed over without waiting has been sent (or failed, logged)."""
    if _push_loop is None or _push_loop.pid != os.getpid():
        return
    try:
        _push_loop.submit("", None).result(SEND_TIMEOUT_SECONDS)
    except Exception:
        logger.exception("Realtime pushes could not be flushed")


def notify_group(group: str, message_type: str, data: dict[str, Any], *, wait: bool = True) -> None:
    """Push after the current transaction commits (nothing if it rolls back)."""
    transaction.on_commit(lambda: send_now(group, message_type, data, wait=wait))

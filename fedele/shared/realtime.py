"""Realtime: push a message to a Channels group, only after the current transaction commits."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def group_for_user(user_id: int) -> str:
    return f"user.{user_id}"


def send_now(group: str, message_type: str, data: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": message_type, "data": data})
    except Exception:
        # A push is a courtesy; the page shows the same data on its next load.
        logger.exception("Realtime push to %s failed", group)


def notify_group(group: str, message_type: str, data: dict[str, Any]) -> None:
    transaction.on_commit(lambda: send_now(group, message_type, data))

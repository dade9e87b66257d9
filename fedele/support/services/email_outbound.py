"""Outbound e-mail of replies and notifications (owned by the e-mail area)."""

from __future__ import annotations


def deliver_reply(message_pk: int) -> None:
    """Send a public reply to the requester (and CC watchers) with threading headers. Called after
    commit by the ticket services; idempotent (a message already sent is not sent again)."""

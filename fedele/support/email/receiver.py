"""The built-in mail receiver: an aiosmtpd LMTP server (SMTP with ``smtp=True``) in front of
``process_inbound``.

The usual set-up is Postfix (or any MTA) delivering the support addresses over LMTP to
``manage.py support_mail_server``. LMTP answers once per recipient after DATA, so each support
address gets its own verdict; over SMTP one answer covers every recipient (a temporary failure wins,
since redelivery is safe: the Message-ID dedupes what was already stored).

- RCPT for an address that is not an active mailbox (plus-addressing understood) → ``550 5.1.1``;
- DATA larger than FEDELE_SUPPORT_MAX_EMAIL_BYTES → ``552`` from the server itself, before parsing
  (and at MAIL FROM when the client announces SIZE);
- otherwise the verdict of ``process_inbound``: 250, 552 (attachment over the mailbox limit), 554, 451.

The Django ORM is synchronous, so database work runs in a small thread pool, never in the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.db import close_old_connections

from fedele.support.email.threading import find_mailbox
from fedele.support.services.email_inbound import InboundResult, max_email_bytes, process_inbound

logger = logging.getLogger(__name__)

T = TypeVar("T")

TOO_MUCH_DATA = "552 5.3.4 Message too big for this system"
UNKNOWN_RECIPIENT = "550 5.1.1 No such support address here"
TEMPORARY_FAILURE = "451 4.3.0 Temporary failure, please try again later"


def _with_fresh_connection(function: Callable[[], T]) -> T:
    close_old_connections()
    try:
        return function()
    finally:
        close_old_connections()


class SupportHandler:
    """aiosmtpd handler: checks recipients against mailboxes and hands each message to support."""

    def __init__(self, *, lmtp: bool, workers: int = 2) -> None:
        self.lmtp = lmtp
        self.via = "lmtp" if lmtp else "smtp"
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="support-mail")

    async def _run(self, function: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, _with_fresh_connection, function)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        try:
            mailbox = await self._run(lambda: find_mailbox([address]))
        except Exception:
            logger.exception("Mailbox lookup failed for %s", address)
            return TEMPORARY_FAILURE
        if mailbox is None:
            return UNKNOWN_RECIPIENT
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
    ) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # pragma: no cover - decode_data is off
            raw = raw.encode("utf-8", "surrogateescape")
        raw = with_return_path(raw, envelope.mail_from or "")
        results: list[str] = []
        for recipient in envelope.rcpt_tos:
            try:
                result = await self._run(functools.partial(self._deliver, raw, recipient))
                line = result.smtp_reply()
            except Exception:
                logger.exception("Delivery to %s failed", recipient)
                line = TEMPORARY_FAILURE
            results.append(line)
        if self.lmtp:
            return "\r\n".join(results)
        return _one_reply(results)

    def _deliver(self, raw: bytes, recipient: str) -> InboundResult:
        return process_inbound(raw, recipients=[recipient], via=self.via)

    def close(self) -> None:
        self.executor.shutdown(wait=True)


def _one_reply(lines: list[str]) -> str:
    """SMTP has one answer for all recipients: any temporary failure, else any refusal, else OK."""
    for prefix in ("4", "5"):
        for line in lines:
            if line.startswith(prefix):
                return line
    return lines[0] if lines else "250 2.0.0 OK"


def with_return_path(raw: bytes, mail_from: str) -> bytes:
    """Add ``Return-Path: <envelope sender>`` as the delivering agent does, unless already there
    (an empty envelope sender, ``<>``, marks a bounce)."""
    head = raw[:8192].split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].lower()
    if head.startswith(b"return-path:") or b"\nreturn-path:" in head:
        return raw
    address = mail_from.strip().strip("<>")
    return b"Return-Path: <" + address.encode("utf-8", "replace") + b">\r\n" + raw


class _CountingMixin:
    """Replies once per recipient to a DATA refused by the server itself (LMTP needs one per RCPT)."""

    _recipients_in_data = 1

    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 (aiosmtpd's command name)
        envelope = getattr(self, "envelope", None)
        self._recipients_in_data = max(1, len(envelope.rcpt_tos) if envelope is not None else 1)
        await super().smtp_DATA(arg)  # type: ignore[misc]

    async def push(self, status: Any) -> None:
        text = status.decode("ascii", "replace") if isinstance(status, bytes) else str(status)
        if text.startswith("552 Error: Too much mail data"):
            for _ in range(self._recipients_in_data if self._is_lmtp else 1):
                await super().push(TOO_MUCH_DATA)  # type: ignore[misc]
            return
        if text.startswith("552 Error: message size exceeds"):
            await super().push(TOO_MUCH_DATA)  # type: ignore[misc]
            return
        await super().push(status)  # type: ignore[misc]

    @property
    def _is_lmtp(self) -> bool:
        return isinstance(self, LMTP)


class SupportLMTP(_CountingMixin, LMTP):
    pass


class SupportSMTP(_CountingMixin, SMTP):
    pass


class SupportController(Controller):
    """Runs the server in its own thread with its own event loop (aiosmtpd's Controller)."""

    def __init__(
        self,
        *,
        hostname: str = "127.0.0.1",
        port: int = 2525,
        smtp: bool = False,
        data_size_limit: int | None = None,
        server_hostname: str | None = None,
    ) -> None:
        self.support_handler = SupportHandler(lmtp=not smtp)
        self.smtp = smtp
        self.size_limit = data_size_limit if data_size_limit is not None else max_email_bytes()
        super().__init__(
            self.support_handler,
            hostname=hostname,
            port=port,
            server_hostname=server_hostname,
            ready_timeout=10.0,
        )

    def factory(self) -> SMTP:
        server_class = SupportSMTP if self.smtp else SupportLMTP
        options = {**self.SMTP_kwargs, "data_size_limit": self.size_limit, "decode_data": False}
        options.setdefault("ident", "fedele support")
        return server_class(self.handler, **options)

    def stop(self, no_assert: bool = False) -> None:
        super().stop(no_assert=no_assert)
        self.support_handler.close()


__all__ = ["InboundResult", "SupportController", "SupportHandler", "with_return_path"]

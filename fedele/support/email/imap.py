"""Fetching support mail from an IMAP mailbox (for providers where no LMTP delivery is possible).

``poll_mailbox`` logs in (the password comes from the environment variable the mailbox names),
selects the folder, checks UIDVALIDITY (a changed value means the server renumbered the folder: start
again from UID 0, the Message-ID dedupe keeps old messages from being imported twice), fetches every
UID above ``imap_last_uid`` with ``BODY.PEEK[]``, hands each message to ``process_inbound``, marks it
``\\Seen`` and stores the new ``imap_last_uid`` after each message. A crash half-way therefore
re-reads at most one message, which the dedupe turns into a duplicate. A temporary failure on one
message stops the poll there (it is retried next minute); errors are kept in ``imap_last_error``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
from dataclasses import dataclass, field

from fedele.shared import clock
from fedele.support.models import Mailbox

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 30
BATCH = 50


@dataclass(slots=True)
class PollResult:
    mailbox: str
    fetched: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    error: str = ""
    uidvalidity_reset: bool = False

    @property
    def ok(self) -> bool:
        return not self.error


class ImapNotConfigured(Exception):
    pass


def _client(mailbox: Mailbox) -> object:
    from imapclient import IMAPClient

    if not mailbox.imap_host or not mailbox.imap_username:
        raise ImapNotConfigured("IMAP host and user name are required.")
    password = os.environ.get(mailbox.imap_password_env or "", "") if mailbox.imap_password_env else ""
    if not password:
        raise ImapNotConfigured(
            f"The environment variable {mailbox.imap_password_env or '(not set)'} holds no password."
        )
    context = ssl.create_default_context() if mailbox.imap_ssl else None
    client = IMAPClient(
        mailbox.imap_host,
        port=mailbox.imap_port,
        ssl=mailbox.imap_ssl,
        ssl_context=context,
        timeout=TIMEOUT_SECONDS,
    )
    try:
        client.login(mailbox.imap_username, password)
    except Exception:
        _logout(client)
        raise
    return client


def _logout(client: object) -> None:
    with contextlib.suppress(Exception):  # the connection may already be gone
        client.logout()  # type: ignore[attr-defined]


def check_connection(mailbox: Mailbox) -> tuple[bool, str]:
    """Log in and select the folder; (True, "N messages") or (False, the reason)."""
    try:
        client = _client(mailbox)
    except Exception as error:
        return False, _describe(error)
    try:
        info = client.select_folder(mailbox.imap_folder, readonly=True)  # type: ignore[attr-defined]
        return True, f"{int(info.get(b'EXISTS', 0))} messages in {mailbox.imap_folder}"
    except Exception as error:
        return False, _describe(error)
    finally:
        _logout(client)


def _describe(error: BaseException) -> str:
    text = str(error) or error.__class__.__name__
    if isinstance(error, bytes):  # pragma: no cover - imaplib errors carry text
        text = error.decode("utf-8", "replace")
    return f"{error.__class__.__name__}: {text}"[:500]


def poll_mailbox(mailbox: Mailbox) -> PollResult:
    """Fetch and process every new message of one IMAP mailbox (see the module docstring)."""
    from fedele.support.services.email_inbound import process_inbound

    result = PollResult(mailbox=mailbox.address)
    try:
        client = _client(mailbox)
    except Exception as error:
        result.error = _describe(error)
        _save_state(mailbox, error=result.error)
        return result
    try:
        info = client.select_folder(mailbox.imap_folder)  # type: ignore[attr-defined]
        uidvalidity = int(info.get(b"UIDVALIDITY", 0))
        last_uid = mailbox.imap_last_uid
        if mailbox.imap_uidvalidity is not None and mailbox.imap_uidvalidity != uidvalidity:
            logger.warning("UIDVALIDITY of %s changed: reading the folder again", mailbox.address)
            last_uid = 0
            result.uidvalidity_reset = True
        Mailbox.objects.filter(pk=mailbox.pk).update(imap_uidvalidity=uidvalidity, imap_last_uid=last_uid)
        mailbox.imap_uidvalidity, mailbox.imap_last_uid = uidvalidity, last_uid
        uids = sorted(
            int(uid)
            for uid in client.search(["UID", f"{last_uid + 1}:*"])  # type: ignore[attr-defined]
            if int(uid) > last_uid  # "N:*" always matches the highest UID, even below N
        )
        for start in range(0, len(uids), BATCH):
            chunk = uids[start : start + BATCH]
            fetched = client.fetch(chunk, ["BODY.PEEK[]", "RFC822.SIZE"])  # type: ignore[attr-defined]
            for uid in chunk:
                data = fetched.get(uid) or {}
                raw = data.get(b"BODY[]") or b""
                outcome = process_inbound(raw, recipients=[mailbox.address], via="imap")
                if outcome.reply_code // 100 == 4:
                    raise RuntimeError(f"UID {uid}: {outcome.detail}")
                client.add_flags([uid], [b"\\Seen"])  # type: ignore[attr-defined]
                Mailbox.objects.filter(pk=mailbox.pk).update(imap_last_uid=uid)
                mailbox.imap_last_uid = uid
                result.fetched += 1
                result.outcomes[outcome.outcome] = result.outcomes.get(outcome.outcome, 0) + 1
    except Exception as error:
        logger.exception("IMAP poll of %s failed", mailbox.address)
        result.error = _describe(error)
    finally:
        _logout(client)
    _save_state(mailbox, error=result.error)
    return result


def _save_state(mailbox: Mailbox, *, error: str) -> None:
    now = clock.now()
    Mailbox.objects.filter(pk=mailbox.pk).update(imap_last_polled_at=now, imap_last_error=error[:2000])
    mailbox.imap_last_polled_at, mailbox.imap_last_error = now, error


def imap_mailboxes() -> list[Mailbox]:
    return list(Mailbox.objects.filter(active=True).exclude(imap_host="").order_by("pk"))


def poll_all() -> dict[str, int]:
    """Every active IMAP mailbox once (the scheduler job). Returns messages fetched per address."""
    totals: dict[str, int] = {}
    for mailbox in imap_mailboxes():
        totals[mailbox.address] = poll_mailbox(mailbox).fetched
    return totals


__all__ = ["PollResult", "check_connection", "imap_mailboxes", "poll_all", "poll_mailbox"]

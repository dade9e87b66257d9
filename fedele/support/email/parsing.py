"""Turning a raw RFC 822 message into what support needs: addresses, threading ids, body, files.

The stored body is the new text only: quoted replies and the "On ... wrote:" block are stripped with
``mailparser_reply`` (Italian and English markers). The full original text stays available on
``ParsedEmail.full_text`` for callers that want it, but support stores only the stripped body and the
sanitised HTML part; the original message is not attached to the ticket.

Automatic mail (out-of-office, bounces, mailing lists) is recognised from its headers
(RFC 3834 Auto-Submitted, Precedence, the Microsoft and other vendor headers, null Return-Path,
MAILER-DAEMON senders, multipart/report) so that support never answers a robot.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr

from fedele.support.attachments import IncomingFile

# Charsets tried, in order, when a part's declared charset is missing, unknown or wrong.
FALLBACK_CHARSETS = ("utf-8", "windows-1252", "latin-1")

REPLY_PREFIX = re.compile(r"^\s*((re|r|aw|sv|fw|fwd|i|inoltra|rif)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
MESSAGE_ID = re.compile(r"<[^<>\s]+>")

AUTO_PRECEDENCE = {"bulk", "junk", "list", "auto_reply", "auto-reply"}
BOUNCE_SENDERS = ("mailer-daemon@", "postmaster@")


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    """One inbound message, decoded. Addresses are lower-cased; message ids keep their angle brackets."""

    message_id: str
    sender_email: str
    sender_name: str
    reply_to: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    delivered_to: tuple[str, ...]
    subject: str
    in_reply_to: str
    references: tuple[str, ...]
    body_text: str  # the new text only (quoted reply and "On ... wrote:" stripped)
    full_text: str  # the whole text part, as received
    body_html: str  # sanitised HTML part ("" when the message has none)
    attachments: tuple[IncomingFile, ...]
    size: int
    automatic: str = ""  # "" | "auto_reply" | "bounce"
    automatic_reason: str = ""
    fedele_ticket: str = ""  # our X-Fedele-Ticket header, present on mail we sent
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def requester_email(self) -> str:
        """Who a reply should go to: Reply-To when the message names one, else the sender."""
        return self.reply_to or self.sender_email

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """The ids this message answers, nearest first (In-Reply-To, then References newest first)."""
        ids: list[str] = []
        for value in (self.in_reply_to, *reversed(self.references)):
            if value and value not in ids:
                ids.append(value)
        return tuple(ids)


def parse(raw: bytes, *, headers_only: bool = False) -> ParsedEmail:
    """Parse ``raw``; never raises on malformed input (missing headers become empty values).

    ``headers_only`` skips the body (no text, no files): for messages refused for their size."""
    message = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw, headersonly=headers_only)
    assert isinstance(message, EmailMessage)
    sender_name, sender_email = _first_address(message, "From")
    _, reply_to = _first_address(message, "Reply-To")
    text_part, html_part, files = ("", "", []) if headers_only else _walk(message)
    full_text = text_part
    html = ""
    if html_part:
        from fedele.support.html import html_to_text, sanitise_html

        html = sanitise_html(html_part)
        if not full_text.strip():
            full_text = html_to_text(html_part)
    message_id = _first_id(header(message, "Message-ID"))
    if not message_id:
        # No Message-ID: a digest of the bytes still lets a redelivery of the same bytes be recognised.
        message_id = f"<sha256.{hashlib.sha256(raw).hexdigest()[:40]}@missing-message-id.invalid>"
    automatic, reason = detect_automatic(message, sender_email)
    return ParsedEmail(
        message_id=message_id,
        sender_email=sender_email,
        sender_name=sender_name,
        reply_to=reply_to if reply_to != sender_email else "",
        to=tuple(_addresses(message, "To")),
        cc=tuple(_addresses(message, "Cc")),
        delivered_to=tuple(_addresses(message, "Delivered-To") + _addresses(message, "X-Original-To")),
        subject=" ".join(header(message, "Subject").split())[:250],
        in_reply_to=_first_id(header(message, "In-Reply-To")),
        references=tuple(MESSAGE_ID.findall(header(message, "References"))),
        body_text=strip_quoted(full_text),
        full_text=full_text.strip(),
        body_html=html,
        attachments=tuple(files),
        size=len(raw),
        automatic=automatic,
        automatic_reason=reason,
        fedele_ticket=header(message, "X-Fedele-Ticket").strip(),
        headers={
            name: header(message, name)
            for name in ("Auto-Submitted", "Precedence", "Return-Path", "List-Id", "Date")
            if message.get(name) is not None
        },
    )


def header(message: Message, name: str) -> str:
    """One header as text; a header the parser cannot decode becomes its raw text, never an error."""
    try:
        value = message.get(name)
    except Exception:  # a malformed header may fail to parse; treat it as absent
        return ""
    if value is None:
        return ""
    try:
        return str(value)
    except Exception:
        return ""


def _addresses(message: Message, name: str) -> list[str]:
    values: list[str] = []
    for value in _all_headers(message, name):
        for _, address in getaddresses([value]):
            address = address.strip().lower()
            if "@" in address and address not in values:
                values.append(address)
    return values


def _all_headers(message: Message, name: str) -> list[str]:
    try:
        return [str(value) for value in message.get_all(name) or []]
    except Exception:
        return []


def _first_address(message: Message, name: str) -> tuple[str, str]:
    display, address = parseaddr(header(message, name))
    address = address.strip().lower()
    if "@" not in address:
        return display.strip(), ""
    return " ".join(display.split())[:200], address


def _first_id(value: str) -> str:
    found = MESSAGE_ID.search(value)
    if found:
        return found.group(0)[:255]
    value = value.strip()
    return f"<{value}>"[:255] if value and "@" in value and " " not in value else ""


def decode_text(part: Message) -> str:
    """A text part's content, trying the declared charset, then UTF-8, windows-1252 and latin-1."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    declared = part.get_content_charset()
    charsets = ([declared] if declared and declared not in ("us-ascii", "ascii") else []) + list(
        FALLBACK_CHARSETS
    )
    for charset in charsets:
        try:
            return payload.decode(charset).replace("\r\n", "\n")
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1").replace("\r\n", "\n")  # pragma: no cover - never reached


def _walk(message: Message) -> tuple[str, str, list[IncomingFile]]:
    """The first text/plain body, the first text/html body and every other part as a file."""
    text = ""
    html = ""
    files: list[IncomingFile] = []
    found_text = found_html = False
    pending: list[Message] = [message]
    while pending:
        part = pending.pop(0)
        content_type = part.get_content_type()
        if content_type == "message/rfc822" and part is not message:
            inner = part.get_payload()
            first = inner[0] if isinstance(inner, list) and inner else None
            data = first.as_bytes() if isinstance(first, Message) else b""
            files.append(IncomingFile(filename=_filename(part, len(files), ".eml"), content=data))
            continue
        if part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                # Reports: keep the human-readable part only, the rest is machine data.
                pending = [child for child in children if isinstance(child, Message)] + pending
            continue
        disposition = (part.get_content_disposition() or "").lower()
        is_attachment = disposition == "attachment" or bool(part.get_filename())
        if content_type == "text/plain" and not is_attachment and not found_text:
            text, found_text = decode_text(part), True
            continue
        if content_type == "text/html" and not is_attachment and not found_html:
            html, found_html = decode_text(part), True
            continue
        if content_type in ("message/delivery-status", "message/disposition-notification"):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        content_id = header(part, "Content-ID").strip().strip("<>")
        extension = mimetypes.guess_extension(content_type) or ".bin"
        files.append(
            IncomingFile(
                filename=_filename(part, len(files), extension),
                content=data,
                declared_type=content_type,
                content_id=content_id[:255],
            )
        )
    return text, html, files


def _filename(part: Message, index: int, extension: str) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:
        name = ""
    name = " ".join(name.replace("/", "_").replace("\\", "_").split())
    return name[:200] or f"attachment-{index + 1}{extension}"


def strip_quoted(text: str) -> str:
    """The new text of a reply: quoted history and reply headers removed (Italian and English)."""
    text = text.replace("\r\n", "\n").strip()
    if not text:
        return ""
    from mailparser_reply import EmailReplyParser

    try:
        stripped = EmailReplyParser(languages=["it", "en"]).parse_reply(text=text)
    except Exception:  # the parser is heuristic; on any failure keep the whole text
        return text
    stripped = (stripped or "").strip()
    # A message that is only a quote (e.g. a forward with no comment) keeps its text.
    return stripped or text


def clean_subject(subject: str) -> str:
    """A subject without reply/forward prefixes ("Re: R: Fwd: ...")."""
    return REPLY_PREFIX.sub("", subject).strip()


def detect_automatic(message: Message, sender_email: str) -> tuple[str, str]:
    """("auto_reply" | "bounce" | "", reason) for mail that a robot sent."""
    content_type = message.get_content_type()
    return_path = header(message, "Return-Path").strip()
    if content_type == "multipart/report":
        return "bounce", "multipart/report"
    if return_path == "<>":
        return "bounce", "null Return-Path"
    if sender_email.startswith(BOUNCE_SENDERS):
        return "bounce", f"sender {sender_email}"
    auto_submitted = header(message, "Auto-Submitted").strip().lower()
    if auto_submitted and auto_submitted.split(";")[0].strip() != "no":
        return "auto_reply", f"Auto-Submitted: {auto_submitted}"
    precedence = header(message, "Precedence").strip().lower()
    if precedence in AUTO_PRECEDENCE:
        return "auto_reply", f"Precedence: {precedence}"
    suppress = header(message, "X-Auto-Response-Suppress").strip().lower()
    if suppress and any(word in suppress for word in ("all", "oof", "autoreply")):
        return "auto_reply", f"X-Auto-Response-Suppress: {suppress}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autogenerated", "X-AutoReply-From", "X-Mail-Autoreply"):
        if message.get(name) is not None:
            return "auto_reply", name
    return "", ""

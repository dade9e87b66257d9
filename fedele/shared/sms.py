"""Sending SMS, in the style of Django's e-mail backends: ``send_sms(to, body)`` hands the message to the
backend named by ``settings.FEDELE_SMS_BACKEND``.

Backends:

- ``fedele.shared.sms.LocmemBackend``: keeps messages in ``fedele.shared.sms.outbox`` (tests);
- ``fedele.shared.sms.ConsoleBackend``: writes them to standard output (embedded mode, development);
- ``fedele.shared.sms.TwilioBackend``: Twilio's Messages REST API (``POST
  /2010-04-01/Accounts/{sid}/Messages.json``, HTTP basic auth with the account SID and auth token, a form
  body with ``To``, ``From`` and ``Body``). ``FEDELE_TWILIO_BASE_URL`` points it elsewhere (a test server,
  a regional edge, a compatible provider).

Numbers are checked and written in E.164 (``+393331234567``) before anything is sent: a number that is
not one raises ``InvalidPhoneNumber`` (a ``ValidationFailed``, so APIs answer 422) and sends nothing.
``segment_count`` says how many SMS a text costs (160 GSM-7 characters or 70 UCS-2 ones in one SMS;
153 / 67 per part when it is split).

Kernel code: no module imports, so every module (loyalty notices, the contact center) can use it.
"""

from __future__ import annotations

import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import httpx
import phonenumbers
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from fedele.shared.errors import ValidationFailed

__all__ = [
    "BODY_MAX_CHARACTERS",
    "BaseSmsBackend",
    "ConsoleBackend",
    "InvalidPhoneNumber",
    "LocmemBackend",
    "SentSms",
    "SmsMessage",
    "SmsSendFailed",
    "TwilioBackend",
    "can_receive_sms",
    "e164",
    "get_backend",
    "is_gsm7",
    "outbox",
    "segment_count",
    "send_sms",
]

BODY_MAX_CHARACTERS = 1600
"""Twilio refuses longer bodies; so do most providers (10 concatenated parts)."""

# The GSM 03.38 default alphabet (one septet each) and its extension table (escape + septet: two each).
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
_ALPHANUMERIC_SENDER_MAX = 11


class InvalidPhoneNumber(ValidationFailed):
    """The recipient (or sender) is not a phone number that can receive an SMS."""


class SmsSendFailed(Exception):
    """The provider refused the message or could not be reached. ``status`` is the HTTP status (0 when
    there was no answer), ``code`` the provider's error code when it gave one."""

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def e164(number: str, *, default_region: str = "IT", field: str = "to") -> str:
    """Any written form of a phone number -> E.164 (``+393331234567``); a number without an
    international prefix is read in ``default_region``. Raises ``InvalidPhoneNumber`` otherwise."""
    text = (number or "").strip()
    if not text:
        raise InvalidPhoneNumber(_("No phone number."), code="invalid_phone", fields={field: _("Required.")})
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as error:
        raise InvalidPhoneNumber(
            _("'%(number)s' is not a phone number.") % {"number": text},
            code="invalid_phone",
            fields={field: _("Not a phone number.")},
        ) from error
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(
            _("'%(number)s' is not a valid phone number.") % {"number": text},
            code="invalid_phone",
            fields={field: _("Not a valid phone number.")},
        )
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


_SMS_CAPABLE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


def can_receive_sms(number: str, *, default_region: str = "IT") -> bool:
    """Whether the number is a valid mobile number (or one the numbering plan cannot tell from a fixed
    line, as in the USA): landlines, premium and toll-free numbers are not sent SMS."""
    try:
        parsed = phonenumbers.parse((number or "").strip(), default_region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed) and phonenumbers.number_type(parsed) in _SMS_CAPABLE_TYPES


def _sender(value: str) -> str:
    """A sender is an E.164 number or an alphanumeric sender ID (1-11 letters, digits or spaces, with at
    least one letter), as the networks accept."""
    text = (value or "").strip()
    if not text:
        raise ImproperlyConfigured("No SMS sender: set FEDELE_SMS_FROM or pass sender=.")
    if text.startswith("+") or text.isdigit():
        return e164(text, field="from")
    if (
        len(text) <= _ALPHANUMERIC_SENDER_MAX
        and all(char.isascii() and (char.isalnum() or char == " ") for char in text)
        and any(char.isalpha() for char in text)
    ):
        return text
    raise InvalidPhoneNumber(
        _("'%(sender)s' is neither a phone number nor a sender name (up to 11 letters and digits).")
        % {"sender": text},
        code="invalid_sender",
        fields={"from": _("Not a valid sender.")},
    )


def is_gsm7(body: str) -> bool:
    return all(char in _GSM7_BASIC or char in _GSM7_EXTENSION for char in body)


def segment_count(body: str) -> int:
    """How many SMS the text takes: GSM-7 text fits 160 characters in one SMS (extension characters such
    as € count twice), 153 per part when split; any other character makes the whole text UCS-2, 70 in
    one SMS and 67 per part (counted in UTF-16 units: an emoji counts twice). An empty text is 0."""
    if not body:
        return 0
    if is_gsm7(body):
        units = sum(2 if char in _GSM7_EXTENSION else 1 for char in body)
        single, part = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, part = 70, 67
    if units <= single:
        return 1
    return -(-units // part)


@dataclass(frozen=True, slots=True)
class SmsMessage:
    to: str
    body: str
    sender: str

    @property
    def segments(self) -> int:
        return segment_count(self.body)


@dataclass(frozen=True, slots=True)
class SentSms:
    """A message the backend accepted: ``provider_id`` is the provider's own id (Twilio's ``SM...``)."""

    to: str
    body: str
    sender: str
    segments: int
    provider_id: str = ""


def _message(to: str, body: str, sender: str | None) -> SmsMessage:
    text = body or ""
    if not text.strip():
        raise ValidationFailed(
            _("The message is empty."), code="invalid_sms_body", fields={"body": _("Required.")}
        )
    if len(text) > BODY_MAX_CHARACTERS:
        raise ValidationFailed(
            _("The message is longer than %(limit)s characters.") % {"limit": BODY_MAX_CHARACTERS},
            code="invalid_sms_body",
            fields={"body": _("Too long.")},
        )
    chosen = sender if sender is not None else str(getattr(settings, "FEDELE_SMS_FROM", ""))
    return SmsMessage(to=e164(to), body=text, sender=_sender(chosen))


class BaseSmsBackend(ABC):
    """Subclasses implement ``send``; messages reach it already validated (E.164, sender, length)."""

    @abstractmethod
    def send(self, message: SmsMessage) -> SentSms:
        """Send one message; returns what was sent with the provider's id."""

    def send_messages(self, messages: Sequence[SmsMessage]) -> list[SentSms]:
        return [self.send(message) for message in messages]


outbox: list[SentSms] = []
"""What ``LocmemBackend`` sent, oldest first (tests empty it with ``outbox.clear()``)."""
_outbox_lock = threading.Lock()


class LocmemBackend(BaseSmsBackend):
    def send(self, message: SmsMessage) -> SentSms:
        with _outbox_lock:
            sent = SentSms(
                message.to, message.body, message.sender, message.segments, f"locmem-{len(outbox) + 1}"
            )
            outbox.append(sent)
        return sent


class ConsoleBackend(BaseSmsBackend):
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, message: SmsMessage) -> SentSms:
        stream = self.stream or sys.stdout
        stream.write(
            f"SMS from {message.sender} to {message.to} ({message.segments} segment(s)):\n"
            f"{message.body}\n{'-' * 40}\n"
        )
        stream.flush()
        return SentSms(message.to, message.body, message.sender, message.segments)


class TwilioBackend(BaseSmsBackend):
    """Twilio's Programmable Messaging API. The account SID and auth token come from the environment
    (``FEDELE_TWILIO_ACCOUNT_SID``, ``FEDELE_TWILIO_AUTH_TOKEN``) and are never logged."""

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.account_sid = account_sid or str(getattr(settings, "FEDELE_TWILIO_ACCOUNT_SID", ""))
        self.auth_token = auth_token or str(getattr(settings, "FEDELE_TWILIO_AUTH_TOKEN", ""))
        configured_url = str(getattr(settings, "FEDELE_TWILIO_BASE_URL", "https://api.twilio.com"))
        self.base_url = (base_url or configured_url).rstrip("/")
        self.timeout = (
            timeout if timeout is not None else float(getattr(settings, "FEDELE_TWILIO_TIMEOUT_SECONDS", 10))
        )
        self.client = client
        if not self.account_sid or not self.auth_token:
            raise ImproperlyConfigured(
                "The Twilio SMS backend needs FEDELE_TWILIO_ACCOUNT_SID and FEDELE_TWILIO_AUTH_TOKEN."
            )

    @property
    def messages_url(self) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def send(self, message: SmsMessage) -> SentSms:
        form = {"To": message.to, "From": message.sender, "Body": message.body}
        try:
            if self.client is not None:
                response = self.client.post(
                    self.messages_url,
                    data=form,
                    auth=(self.account_sid, self.auth_token),
                    timeout=self.timeout,
                )
            else:
                response = httpx.post(
                    self.messages_url,
                    data=form,
                    auth=(self.account_sid, self.auth_token),
                    timeout=self.timeout,
                )
        except httpx.HTTPError as error:
            raise SmsSendFailed(f"Twilio could not be reached: {error.__class__.__name__}.") from error
        payload = _json(response)
        if response.status_code not in (200, 201):
            detail = str(payload.get("message") or response.reason_phrase or "error")
            code = str(payload.get("code") or "")
            raise SmsSendFailed(
                f"Twilio refused the message (HTTP {response.status_code}"
                f"{', code ' + code if code else ''}): {detail}",
                status=response.status_code,
                code=code,
            )
        return SentSms(
            message.to, message.body, message.sender, message.segments, str(payload.get("sid") or "")
        )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def get_backend(path: str | None = None, **options: Any) -> BaseSmsBackend:
    """An instance of the backend at ``path`` (default ``settings.FEDELE_SMS_BACKEND``)."""
    dotted = path or str(getattr(settings, "FEDELE_SMS_BACKEND", "fedele.shared.sms.ConsoleBackend"))
    backend_class = import_string(dotted)
    if not (isinstance(backend_class, type) and issubclass(backend_class, BaseSmsBackend)):
        raise ImproperlyConfigured(f"{dotted} is not an SMS backend.")
    backend: BaseSmsBackend = backend_class(**options)
    return backend


def send_sms(
    to: str, body: str, *, sender: str | None = None, backend: BaseSmsBackend | None = None
) -> SentSms:
    """Send one SMS. ``to`` in any written form (national numbers are read as Italian); ``sender``
    defaults to ``settings.FEDELE_SMS_FROM``. Raises ``InvalidPhoneNumber`` / ``ValidationFailed`` for
    bad input (nothing sent) and ``SmsSendFailed`` when the provider refuses it."""
    message = _message(to, body, sender)
    return (backend or get_backend()).send(message)

"""fedele.shared.sms: E.164 checks, segment counts, the locmem and console backends, and the Twilio
backend against a real HTTP server on 127.0.0.1 (method, path, basic auth, form body, errors)."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from fedele.shared import sms
from fedele.shared.errors import ValidationFailed

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "secret-token"


@pytest.fixture(autouse=True)
def empty_outbox() -> Iterator[None]:
    sms.outbox.clear()
    yield
    sms.outbox.clear()


# numbers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("333 123 4567", "+393331234567"),
        ("+39 333 1234567", "+393331234567"),
        ("0039 333-123-4567", "+393331234567"),
        ("06 1234 5678", "+390612345678"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_numbers_are_written_in_e164(written: str, expected: str) -> None:
    assert sms.e164(written) == expected


@pytest.mark.parametrize("bad", ["", "   ", "abc", "+39 12", "+999 1234567", "12345678901234567890"])
def test_bad_numbers_are_a_clear_error(bad: str) -> None:
    with pytest.raises(sms.InvalidPhoneNumber) as raised:
        sms.e164(bad)
    assert raised.value.code == "invalid_phone"
    assert list(raised.value.fields) == ["to"]
    assert isinstance(raised.value, ValidationFailed) and raised.value.status_code == 422


def test_a_bad_number_sends_nothing() -> None:
    with pytest.raises(sms.InvalidPhoneNumber) as raised:
        sms.send_sms("not a number", "Ciao")
    assert raised.value.message == "'not a number' is not a phone number."
    assert sms.outbox == []


# segments -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("", 0),
        ("a", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("è" * 160, 1),  # in the GSM-7 default alphabet
        ("€" * 80, 1),  # an extension character counts twice
        ("€" * 81, 2),
        ("ó" * 70, 1),  # not GSM-7: the whole text is UCS-2
        ("ó" * 71, 2),
        ("ó" * 134, 2),
        ("ó" * 135, 3),
        ("a" * 100 + "ó", 2),
        ("😀" * 35, 1),  # two UTF-16 units each
        ("😀" * 36, 2),
    ],
)
def test_segment_count(body: str, segments: int) -> None:
    assert sms.segment_count(body) == segments


# locmem, console, configuration --------------------------------------------------------------------


def test_locmem_backend_keeps_the_messages() -> None:
    sent = sms.send_sms("333 1234567", "I tuoi punti scadono", sender="+39 06 1234 5678")
    assert sent == sms.SentSms("+393331234567", "I tuoi punti scadono", "+390612345678", 1, "locmem-1")
    assert sms.outbox == [sent]


@override_settings(FEDELE_SMS_FROM="FedeleClub")
def test_the_default_sender_and_bad_senders() -> None:
    assert sms.send_sms("+393331234567", "x").sender == "FedeleClub"
    for bad in ("Fedele Club 1", "Club!", "+39 12"):
        with pytest.raises(ValidationFailed):
            sms.send_sms("+393331234567", "x", sender=bad)
    with pytest.raises(ImproperlyConfigured):
        sms.send_sms("+393331234567", "x", sender="")
    assert len(sms.outbox) == 1


def test_empty_and_too_long_bodies_are_refused() -> None:
    for body in ("", "   ", "a" * 1601):
        with pytest.raises(ValidationFailed) as raised:
            sms.send_sms("+393331234567", body)
        assert raised.value.code == "invalid_sms_body"
    assert sms.send_sms("+393331234567", "a" * 1600).segments == 11
    assert len(sms.outbox) == 1


def test_console_backend_writes_the_message() -> None:
    stream = io.StringIO()
    backend = sms.ConsoleBackend(stream=stream)
    sent = sms.send_sms("+393331234567", "Ciao €", sender="Fedele", backend=backend)
    assert sent.provider_id == "" and sent.segments == 1
    assert stream.getvalue() == (
        "SMS from Fedele to +393331234567 (1 segment(s)):\nCiao €\n" + "-" * 40 + "\n"
    )
    assert sms.outbox == []


def test_get_backend_follows_the_setting() -> None:
    assert type(sms.get_backend()) is sms.LocmemBackend
    with override_settings(FEDELE_SMS_BACKEND="fedele.shared.sms.ConsoleBackend"):
        assert type(sms.get_backend()) is sms.ConsoleBackend
    with pytest.raises(ImproperlyConfigured):
        sms.get_backend("fedele.shared.errors.ValidationFailed")
    with pytest.raises(ImportError):
        sms.get_backend("fedele.shared.sms.NoSuchBackend")


# Twilio against a real server -----------------------------------------------------------------------


class TwilioFake:
    """A local HTTP server answering like Twilio's Messages endpoint; records every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.reply_status = 201
        self.reply_body: dict[str, Any] = {"sid": "SM00000000000000000000000000000001", "status": "queued"}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                fake.requests.append(
                    {
                        "method": "POST",
                        "path": self.path,
                        "authorization": self.headers.get("Authorization", ""),
                        "content_type": self.headers.get("Content-Type", ""),
                        "form": parse_qs(raw),
                    }
                )
                payload = json.dumps(fake.reply_body).encode()
                self.send_response(fake.reply_status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                fake.requests.append({"method": "GET", "path": self.path})
                self.send_response(405)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TwilioFake:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def twilio() -> Iterator[TwilioFake]:
    with TwilioFake() as fake:
        yield fake


def test_twilio_backend_posts_the_form_with_basic_auth(twilio: TwilioFake) -> None:
    with override_settings(
        FEDELE_SMS_BACKEND="fedele.shared.sms.TwilioBackend",
        FEDELE_TWILIO_ACCOUNT_SID=SID,
        FEDELE_TWILIO_AUTH_TOKEN=TOKEN,
        FEDELE_TWILIO_BASE_URL=twilio.url + "/",
        FEDELE_SMS_FROM="+39 06 1234 5678",
    ):
        sent = sms.send_sms("333 123 4567", "Hai 120 punti in scadenza il 31 agosto")
    assert sent == sms.SentSms(
        "+393331234567",
        "Hai 120 punti in scadenza il 31 agosto",
        "+390612345678",
        1,
        "SM00000000000000000000000000000001",
    )
    assert len(twilio.requests) == 1
    request = twilio.requests[0]
    assert request["method"] == "POST"
    assert request["path"] == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request["authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request["content_type"] == "application/x-www-form-urlencoded"
    assert request["form"] == {
        "To": ["+393331234567"],
        "From": ["+390612345678"],
        "Body": ["Hai 120 punti in scadenza il 31 agosto"],
    }
    assert sms.outbox == []


def test_twilio_refusal_is_a_clear_error(twilio: TwilioFake) -> None:
    twilio.reply_status = 400
    twilio.reply_body = {
        "code": 21211,
        "message": "The 'To' number +393331234567 is not valid.",
        "status": 400,
    }
    backend = sms.TwilioBackend(account_sid=SID, auth_token=TOKEN, base_url=twilio.url)
    with pytest.raises(sms.SmsSendFailed) as raised:
        sms.send_sms("+393331234567", "Ciao", sender="Fedele", backend=backend)
    assert (raised.value.status, raised.value.code) == (400, "21211")
    assert str(raised.value) == (
        "Twilio refused the message (HTTP 400, code 21211): The 'To' number +393331234567 is not valid."
    )
    assert len(twilio.requests) == 1


def test_twilio_is_not_called_for_a_bad_number(twilio: TwilioFake) -> None:
    backend = sms.TwilioBackend(account_sid=SID, auth_token=TOKEN, base_url=twilio.url)
    with pytest.raises(sms.InvalidPhoneNumber):
        sms.send_sms("+39 12", "Ciao", sender="Fedele", backend=backend)
    assert twilio.requests == []


def test_twilio_unreachable_and_unconfigured() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    backend = sms.TwilioBackend(
        account_sid=SID, auth_token=TOKEN, base_url=f"http://127.0.0.1:{closed_port}", timeout=2
    )
    with pytest.raises(sms.SmsSendFailed) as raised:
        sms.send_sms("+393331234567", "Ciao", sender="Fedele", backend=backend)
    assert raised.value.status == 0 and str(raised.value) == "Twilio could not be reached: ConnectError."
    with (
        override_settings(FEDELE_TWILIO_ACCOUNT_SID="", FEDELE_TWILIO_AUTH_TOKEN=""),
        pytest.raises(ImproperlyConfigured),
    ):
        sms.TwilioBackend()


def test_only_mobile_numbers_can_receive_sms() -> None:
    assert sms.can_receive_sms("333 123 4567") is True
    assert sms.can_receive_sms("+1 415 555 2671") is True  # the USA: fixed line or mobile
    assert sms.can_receive_sms("06 1234 5678") is False  # a Rome landline
    assert sms.can_receive_sms("800 123456") is False  # toll free
    assert sms.can_receive_sms("abc") is False
    assert sms.can_receive_sms("") is False

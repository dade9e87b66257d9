"""Twilio: the request signature check and the call-control adapter (Twilio's REST API over httpx).

Signature (https://www.twilio.com/docs/usage/security#validating-requests): Twilio takes the full URL
it requested (scheme, host, path and query string exactly as configured in the console), appends every
POST parameter sorted by name as ``name`` + ``value`` (a repeated name contributes each of its values in
sorted order), signs that with HMAC-SHA1 keyed by the account's auth token and sends it base64-encoded
in ``X-Twilio-Signature``. Behind a proxy the URL Django sees is not the one Twilio signed, so the
webhook views rebuild it from the configured public base URL (``twilio_public_url``). Like Twilio's own
libraries, the URL is also tried with its default port added or removed, because Twilio signs the URL
as written in the console and some proxies add or drop ``:443``.

Adapter: customer and agent legs meet in a conference named ``cc-<CallSid>`` (the pattern Twilio Flex
uses), which is what makes hold, mute, warm transfer and three-way conference possible: they are
operations on conference participants, addressed by label (``customer``, ``agent``, ``transfer``,
``conference``). Pausing a recording (PCI) uses the call's ``Twilio.CURRENT`` recording.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from xml.sax.saxutils import escape, quoteattr

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils.translation import gettext as _

from fedele.contact_center.telephony.port import TelephonyAdapter
from fedele.shared.errors import ApplicationError

logger = logging.getLogger(__name__)

PROVIDER = "twilio"
API_VERSION = "2010-04-01"
CONFERENCE_PREFIX = "cc-"
# Status callbacks we ask Twilio for on outbound calls (each becomes one normalised event).
STATUS_CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")


class TelephonyProviderError(ApplicationError):
    """The provider could not be reached or refused the request; nothing changed on our side."""

    status_code = 502
    default_code = "telephony_provider_error"


# --------------------------------------------------------------------------------------------- signature


def twilio_signature(url: str, params: Mapping[str, str | Iterable[str]], auth_token: str) -> str:
    """The signature Twilio sends for a POST of ``params`` to ``url`` (base64 HMAC-SHA1). A repeated
    parameter contributes each distinct value once, in sorted order (as Twilio's own validator)."""
    payload = url
    for name in sorted(params):
        value = params[name]
        values = [value] if isinstance(value, str) else sorted(set(value))
        for item in values:
            payload += name + item
    digest = hmac.new(auth_token.encode("utf-8"), payload.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _port_variants(url: str) -> list[str]:
    """``url`` without any port and with its port (the scheme's default when it has none): Twilio
    signs the URL as configured, and proxies add or drop the port."""
    parts = urlsplit(url)
    if not parts.hostname:
        return [url]
    host_part = parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc
    without = urlunsplit(parts._replace(netloc=host_part))
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    variants = [without]
    if port is not None:
        variants.append(urlunsplit(parts._replace(netloc=f"{host_part}:{port}")))
    return variants


def twilio_signature_valid(
    url: str, params: Mapping[str, str | Iterable[str]], signature: str, auth_token: str
) -> bool:
    """Whether ``signature`` (the ``X-Twilio-Signature`` header) is Twilio's for this request.

    ``params`` are the POST form parameters (a QueryDict works: pass ``{k: request.POST.getlist(k)}``
    or a plain dict of single values). Constant-time comparison; an empty token or signature is never
    valid."""
    if not auth_token or not signature:
        return False
    given = signature.strip().encode("utf-8")
    valid = False
    for candidate in _port_variants(url):
        expected = twilio_signature(candidate, params, auth_token).encode("ascii")
        # Compare every variant (no early exit on a match) so timing says nothing about which one.
        valid |= hmac.compare_digest(expected, given)
    return valid


def telephony_setting(name: str, default: str = "") -> str:
    """A telephony setting: from Django settings when the project defines it, else from the
    environment (these are optional and not all listed in the settings module)."""
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, default)
    return str(value or default)


def webhook_base_url() -> str:
    return (
        telephony_setting("FEDELE_TWILIO_WEBHOOK_BASE_URL") or telephony_setting("FEDELE_PUBLIC_URL")
    ).rstrip("/")


def twilio_public_url(request: HttpRequest) -> str:
    """The URL Twilio requested: the configured public base (``FEDELE_TWILIO_WEBHOOK_BASE_URL``, else
    ``FEDELE_PUBLIC_URL``) plus the path and query string Django received. Never the Host header: a
    forged Host must not make a forged signature match."""
    return f"{webhook_base_url()}{request.get_full_path()}"


def request_params(request: HttpRequest) -> dict[str, list[str]]:
    return {name: request.POST.getlist(name) for name in request.POST}


def request_signature_valid(request: HttpRequest, *, auth_token: str | None = None) -> bool:
    """The signature check for a Django request to one of our Twilio webhooks."""
    token = auth_token if auth_token is not None else configured_auth_token()
    signature = request.headers.get("X-Twilio-Signature", "")
    return twilio_signature_valid(twilio_public_url(request), request_params(request), signature, token)


def configured_auth_token() -> str:
    return str(getattr(settings, "FEDELE_TWILIO_AUTH_TOKEN", ""))


# ----------------------------------------------------------------------------------------------- TwiML


def twiml(*verbs: str) -> str:
    """A TwiML document around already-rendered verbs."""
    return '<?xml version="1.0" encoding="UTF-8"?><Response>' + "".join(verbs) + "</Response>"


def say(text: str, *, language: str = "it") -> str:
    return f"<Say language={quoteattr(twiml_language(language))}>{escape(text)}</Say>"


def twiml_language(language: str) -> str:
    return {"it": "it-IT", "en": "en-US"}.get(language, language or "it-IT")


def conference_name(call_ref: str) -> str:
    return f"{CONFERENCE_PREFIX}{call_ref}"


def dial_conference(call_ref: str, *, label: str, end_on_exit: bool) -> str:
    end = "true" if end_on_exit else "false"
    return (
        f'<Dial><Conference participantLabel={quoteattr(label)} endConferenceOnExit="{end}" '
        f'startConferenceOnEnter="true" beep="false">{escape(conference_name(call_ref))}</Conference></Dial>'
    )


# --------------------------------------------------------------------------------------------- adapter


class TwilioAdapter(TelephonyAdapter):
    """Call control through Twilio's REST API. Credentials come from ``FEDELE_TWILIO_ACCOUNT_SID`` /
    ``FEDELE_TWILIO_AUTH_TOKEN`` (never logged); ``FEDELE_TWILIO_BASE_URL`` may point elsewhere."""

    name = PROVIDER

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
        self.auth_token = auth_token or configured_auth_token()
        configured_url = str(getattr(settings, "FEDELE_TWILIO_BASE_URL", "https://api.twilio.com"))
        self.base_url = (base_url or configured_url).rstrip("/")
        self.timeout = (
            timeout if timeout is not None else float(getattr(settings, "FEDELE_TWILIO_TIMEOUT_SECONDS", 10))
        )
        self.client = client

    # ---- REST plumbing

    def _account_url(self, path: str) -> str:
        if not self.account_sid or not self.auth_token:
            raise ImproperlyConfigured(
                "The Twilio adapter needs FEDELE_TWILIO_ACCOUNT_SID and FEDELE_TWILIO_AUTH_TOKEN."
            )
        return f"{self.base_url}/{API_VERSION}/Accounts/{self.account_sid}/{path}"

    def _request(
        self,
        method: str,
        path: str,
        *,
        data: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        url = self._account_url(path)
        try:
            if self.client is not None:
                response = self.client.request(
                    method,
                    url,
                    data=data,
                    params=params,
                    auth=(self.account_sid, self.auth_token),
                    timeout=self.timeout,
                )
            else:
                response = httpx.request(
                    method,
                    url,
                    data=data,
                    params=params,
                    auth=(self.account_sid, self.auth_token),
                    timeout=self.timeout,
                )
        except httpx.HTTPError as error:
            raise TelephonyProviderError(
                _("Twilio could not be reached (%(error)s).") % {"error": error.__class__.__name__}
            ) from error
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        if response.status_code >= 400:
            detail = str(payload.get("message") or response.reason_phrase or "error")
            logger.warning("Twilio refused %s %s: HTTP %s %s", method, path, response.status_code, detail)
            raise TelephonyProviderError(
                _("Twilio refused the request (HTTP %(status)s): %(detail)s")
                % {"status": response.status_code, "detail": detail}
            )
        return payload

    def _conference_sid(self, call_ref: str) -> str:
        payload = self._request(
            "GET",
            "Conferences.json",
            params={"FriendlyName": conference_name(call_ref), "Status": "in-progress"},
        )
        conferences = payload.get("conferences") or []
        if not conferences:
            raise TelephonyProviderError(_("The call is not connected to an agent conference."))
        return str(conferences[0]["sid"])

    def _participant(self, call_ref: str, label: str, data: Mapping[str, str]) -> None:
        conference = self._conference_sid(call_ref)
        self._request("POST", f"Conferences/{conference}/Participants/{label}.json", data=data)

    def _update_call(self, call_ref: str, data: Mapping[str, str]) -> None:
        self._request("POST", f"Calls/{call_ref}.json", data=data)

    def _webhook_url(self, name: str) -> str:
        from django.urls import reverse

        return f"{webhook_base_url()}{reverse(f'contact_center:{name}')}"

    # ---- TelephonyAdapter

    def originate(self, *, to_number: str, from_number: str, context: dict[str, Any]) -> str:
        # The interaction's public id rides on our callback URLs (signed with them), so the first
        # callback finds the interaction even before we learn the CallSid from this response.
        interaction = context.get("interaction") or context.get("interaction_id") or ""
        query = f"?interaction={interaction}" if interaction else ""
        data: dict[str, Any] = {
            "To": to_number,
            "From": from_number or self._caller_id(),
            "Url": self._webhook_url("twilio-outbound") + query,
            "StatusCallback": self._webhook_url("twilio-status") + query,
            "StatusCallbackEvent": list(STATUS_CALLBACK_EVENTS),
            "StatusCallbackMethod": "POST",
        }
        if context.get("machine_detection"):
            data["MachineDetection"] = "Enable"
        if context.get("record"):
            data["Record"] = "true"
            data["RecordingStatusCallback"] = self._webhook_url("twilio-recording")
        payload = self._request("POST", "Calls.json", data=data)
        sid = str(payload.get("sid") or "")
        if not sid:
            raise TelephonyProviderError(_("Twilio accepted the call but returned no call id."))
        return sid

    def hangup(self, call_ref: str) -> None:
        self._update_call(call_ref, {"Status": "completed"})

    def hold(self, call_ref: str, *, on: bool) -> None:
        self._participant(call_ref, "customer", {"Hold": "true" if on else "false"})

    def mute(self, call_ref: str, *, on: bool) -> None:
        self._participant(call_ref, "agent", {"Muted": "true" if on else "false"})

    def transfer(self, call_ref: str, *, target: str, warm: bool) -> None:
        if warm:
            # The target joins the conference; the agent leaves it when the hand-over is done.
            conference = self._conference_sid(call_ref)
            self._request(
                "POST",
                f"Conferences/{conference}/Participants.json",
                data={"From": self._caller_id(), "To": target, "Label": "transfer", "EarlyMedia": "true"},
            )
        else:
            self._update_call(call_ref, {"Twiml": twiml(f"<Dial>{escape(target)}</Dial>")})

    def conference(self, call_ref: str, *, target: str) -> None:
        conference = self._conference_sid(call_ref)
        self._request(
            "POST",
            f"Conferences/{conference}/Participants.json",
            data={"From": self._caller_id(), "To": target, "Label": "conference"},
        )

    def send_dtmf(self, call_ref: str, digits: str) -> None:
        # Play the tones to the customer, then put them back into the agent's conference.
        self._update_call(
            call_ref,
            {
                "Twiml": twiml(
                    f"<Play digits={quoteattr(digits)}></Play>",
                    dial_conference(call_ref, label="customer", end_on_exit=True),
                )
            },
        )

    def recording_pause(self, call_ref: str, *, paused: bool) -> None:
        data = {"Status": "paused", "PauseBehavior": "skip"} if paused else {"Status": "in-progress"}
        self._request("POST", f"Calls/{call_ref}/Recordings/Twilio.CURRENT.json", data=data)

    def connect_agent(self, call_ref: str, *, agent_target: str) -> None:
        """Bridge a waiting caller to the agent: the caller moves into the conference, and the agent's
        phone or Twilio client (``agent_target``) is dialled into it."""
        self._update_call(
            call_ref, {"Twiml": twiml(dial_conference(call_ref, label="customer", end_on_exit=True))}
        )
        self.dial_agent_leg(call_ref, agent_target=agent_target)

    def dial_agent_leg(self, call_ref: str, *, agent_target: str) -> str:
        """Call the agent's phone or client into the call's conference; returns the leg's CallSid."""
        payload = self._request(
            "POST",
            "Calls.json",
            data={
                "To": agent_target,
                "From": self._caller_id(),
                "Twiml": twiml(dial_conference(call_ref, label="agent", end_on_exit=False)),
            },
        )
        return str(payload.get("sid") or "")

    def leave(self, call_ref: str) -> None:
        conference = self._conference_sid(call_ref)
        self._request("DELETE", f"Conferences/{conference}/Participants/agent.json")

    def recording_start(self, call_ref: str) -> None:
        self._request(
            "POST",
            f"Calls/{call_ref}/Recordings.json",
            data={
                "RecordingStatusCallback": self._webhook_url("twilio-recording"),
                "RecordingStatusCallbackEvent": "completed",
                "RecordingChannels": "dual",
            },
        )

    def fetch_media(self, url: str) -> bytes:
        """Download a recording Twilio announced (authenticated; only from Twilio's API host)."""
        allowed = urlsplit(self.base_url).hostname
        if urlsplit(url).hostname != allowed:
            raise TelephonyProviderError(_("The recording URL is not on the provider's host."))
        try:
            if self.client is not None:
                response = self.client.get(
                    url, auth=(self.account_sid, self.auth_token), timeout=self.timeout
                )
            else:
                response = httpx.get(url, auth=(self.account_sid, self.auth_token), timeout=self.timeout)
        except httpx.HTTPError as error:
            raise TelephonyProviderError(
                _("Twilio could not be reached (%(error)s).") % {"error": error.__class__.__name__}
            ) from error
        if response.status_code != 200:
            raise TelephonyProviderError(
                _("Twilio refused the recording download (HTTP %(status)s).")
                % {"status": response.status_code}
            )
        return response.content

    def _caller_id(self) -> str:
        return telephony_setting("FEDELE_TWILIO_CALLER_ID") or telephony_setting("FEDELE_SMS_FROM")

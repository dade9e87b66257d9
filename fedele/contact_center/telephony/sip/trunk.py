"""The SIP trunk (or PBX) fedele places outbound calls through, from the ``FEDELE_SIP_*`` settings,
and the checks that keep whatever goes into our INVITE's headers to plain numbers and names.

| setting | meaning |
|---|---|
| ``FEDELE_SIP_OUTBOUND_PROXY`` | ``host[:port]`` every outbound INVITE is sent to (port 5060 by default) |
| ``FEDELE_SIP_FROM_USER`` | From user when the call has no caller id of its own |
| ``FEDELE_SIP_FROM_DOMAIN`` | domain of the From, To and Request-URI (default: the proxy's host) |
| ``FEDELE_SIP_AUTH_USERNAME`` / ``FEDELE_SIP_AUTH_PASSWORD`` | digest credentials for 401/407 |
| ``FEDELE_SIP_RING_TIMEOUT_SECONDS`` | ringing without an answer before we CANCEL (``no-answer``) |
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from fedele.shared.errors import Conflict, ValidationFailed

DEFAULT_SIP_PORT = 5060
DEFAULT_RING_TIMEOUT_SECONDS = 45.0
# What may be dialled: an E.164 number or digits (an extension, a national number). Nothing else
# reaches the Request-URI, so no header injection and no dialling of arbitrary SIP URIs.
DIALLABLE = re.compile(r"^\+?[0-9]{2,20}$")
USER = re.compile(r"^[A-Za-z0-9+._\-]{1,64}$")
HOST = re.compile(r"^[A-Za-z0-9.\-]{1,253}$")


@dataclass(frozen=True, slots=True)
class Trunk:
    proxy_host: str
    proxy_port: int
    domain: str
    from_user: str
    auth_username: str
    auth_password: str
    ring_timeout_seconds: float


def _setting(name: str, default: str = "") -> str:
    return str(getattr(settings, name, "") or default).strip()


def configured_trunk() -> Trunk:
    """The outbound trunk; ``Conflict`` (``sip_trunk_not_configured``) when there is none or it is
    written wrong, so a call is refused before anything is sent."""
    proxy = _setting("FEDELE_SIP_OUTBOUND_PROXY")
    if not proxy:
        raise Conflict(
            _("Outbound SIP calls need a trunk: set FEDELE_SIP_OUTBOUND_PROXY."),
            code="sip_trunk_not_configured",
        )
    host, _separator, port_text = proxy.rpartition(":") if ":" in proxy else (proxy, "", "")
    try:
        port = int(port_text) if port_text else DEFAULT_SIP_PORT
    except ValueError:
        port = -1
    domain = _setting("FEDELE_SIP_FROM_DOMAIN", host)
    from_user = _setting("FEDELE_SIP_FROM_USER", "fedele")
    if not HOST.match(host) or not 1 <= port <= 65_535 or not HOST.match(domain) or not USER.match(from_user):
        raise Conflict(
            _("The SIP trunk settings are not valid (FEDELE_SIP_OUTBOUND_PROXY, _FROM_DOMAIN, _FROM_USER)."),
            code="sip_trunk_not_configured",
        )
    try:
        ring_timeout = float(
            getattr(settings, "FEDELE_SIP_RING_TIMEOUT_SECONDS", DEFAULT_RING_TIMEOUT_SECONDS)
        )
    except (TypeError, ValueError):
        ring_timeout = DEFAULT_RING_TIMEOUT_SECONDS
    return Trunk(
        proxy_host=host,
        proxy_port=port,
        domain=domain,
        from_user=from_user,
        auth_username=_setting("FEDELE_SIP_AUTH_USERNAME", from_user),
        auth_password=str(getattr(settings, "FEDELE_SIP_AUTH_PASSWORD", "") or ""),
        ring_timeout_seconds=max(1.0, ring_timeout),
    )


def diallable(number: str) -> str:
    """``number`` without spaces, dots or dashes when it is something we may dial; else ValidationFailed."""
    cleaned = re.sub(r"[\s.\-()]", "", number or "")
    if not DIALLABLE.match(cleaned):
        raise ValidationFailed(
            _("%(number)s is not a number that can be dialled.") % {"number": (number or "")[:40]},
            code="invalid_number",
            fields={"to_number": [_("Enter a phone number (digits, optionally starting with +).")]},
        )
    return cleaned


def caller_user(from_number: str, trunk: Trunk) -> str:
    """The From user: the call's caller id when it is a plain number or name, else the trunk's."""
    cleaned = re.sub(r"[\s.\-()]", "", from_number or "")
    return cleaned if cleaned and USER.match(cleaned) else trunk.from_user

"""SIP messages (RFC 3261 §7): parse what arrives on the wire, build what we send.

Only what a user agent answering and handing on calls needs: start line, headers (with the compact
forms), Content-Length framing over UDP, and the header parameters (tag, branch) that identify
transactions and dialogs. Anything we cannot make sense of raises ``SipParseError``; the user agent
answers 400 when it can still read enough of the request to address a response, and drops it otherwise.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

SIP_VERSION = "SIP/2.0"
MAX_MESSAGE_BYTES = 65_535  # one UDP datagram; bigger is garbage on this transport

# RFC 3261 §7.3.3 compact forms → canonical names.
COMPACT_HEADERS = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "r": "Refer-To",
    "o": "Event",
}
CANONICAL_NAMES = {
    name.lower(): name
    for name in (
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Max-Forwards",
        "Content-Type",
        "Content-Length",
        "Allow",
        "Supported",
        "User-Agent",
        "Server",
        "Refer-To",
        "Referred-By",
        "Event",
        "Subscription-State",
        "Record-Route",
        "Route",
        "Accept",
        "WWW-Authenticate",
        "Proxy-Authenticate",
        "Require",
        "Unsupported",
    )
}
# Headers that may carry several comma-separated values we need one by one.
MULTI_VALUE_HEADERS = {"Via", "Record-Route", "Route"}

REASON_PHRASES = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    415: "Unsupported Media Type",
    420: "Bad Extension",
    480: "Temporarily Unavailable",
    482: "Loop Detected",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}

_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_REQUEST_LINE = re.compile(r"^([A-Za-z0-9\-.!%*_+`'~]+) (\S+) SIP/2\.0$")
_STATUS_LINE = re.compile(r"^SIP/2\.0 ([1-6]\d\d) ?(.*)$")
_CSEQ = re.compile(r"^(\d{1,10})\s+([A-Za-z0-9\-.!%*_+`'~]+)$")
_URI_IN_BRACKETS = re.compile(r"<([^>]*)>")
_SIP_URI = re.compile(r"^sips?:(?:(?P<user>[^@;?]+)@)?(?P<host>[^;?:]+)(?::(?P<port>\d+))?", re.IGNORECASE)


class SipParseError(ValueError):
    """The bytes are not a SIP message we can act on."""


def canonical_header_name(name: str) -> str:
    lowered = name.strip().lower()
    if lowered in COMPACT_HEADERS:
        return COMPACT_HEADERS[lowered]
    return CANONICAL_NAMES.get(lowered, "-".join(part.capitalize() for part in lowered.split("-")))


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    # The magic cookie marks an RFC 3261 branch (§8.1.1.7).
    return "z9hG4bK" + secrets.token_hex(8)


def header_parameters(value: str) -> dict[str, str]:
    """``;name=value`` parameters after the address part of From/To/Via/Contact (lower-case names)."""
    address_end = value.rfind(">")
    tail = value[address_end + 1 :] if address_end >= 0 else value
    parameters: dict[str, str] = {}
    for part in tail.split(";")[1:]:
        name, _, parameter_value = part.partition("=")
        if name.strip():
            parameters[name.strip().lower()] = parameter_value.strip().strip('"')
    return parameters


def uri_of(address: str) -> str:
    """The URI of a name-addr (``"Bob" <sip:bob@host>;tag=1``) or addr-spec (``sip:bob@host;tag=1``)."""
    match = _URI_IN_BRACKETS.search(address)
    if match:
        return match.group(1).strip()
    return address.split(";", 1)[0].strip()


@dataclass(frozen=True, slots=True)
class SipUri:
    user: str
    host: str
    port: int | None


def parse_uri(uri: str) -> SipUri:
    match = _SIP_URI.match(uri.strip())
    if not match:
        raise SipParseError(f"not a SIP URI: {uri[:80]!r}")
    port = match.group("port")
    return SipUri(user=match.group("user") or "", host=match.group("host"), port=int(port) if port else None)


def split_comma_values(value: str) -> list[str]:
    """Split a header value on commas that are not inside quotes or angle brackets."""
    values: list[str] = []
    depth_angle = 0
    in_quotes = False
    current: list[str] = []
    for character in value:
        if character == '"':
            in_quotes = not in_quotes
        elif not in_quotes and character == "<":
            depth_angle += 1
        elif not in_quotes and character == ">":
            depth_angle = max(0, depth_angle - 1)
        if character == "," and not in_quotes and depth_angle == 0:
            values.append("".join(current).strip())
            current = []
        else:
            current.append(character)
    if "".join(current).strip():
        values.append("".join(current).strip())
    return values


@dataclass(slots=True)
class SipMessage:
    """A request (``method`` and ``uri`` set) or a response (``status`` set). Headers keep their
    order; a name may repeat (Via, Record-Route)."""

    method: str = ""
    uri: str = ""
    status: int = 0
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return bool(self.method)

    def header(self, name: str, default: str = "") -> str:
        wanted = canonical_header_name(name)
        for header_name, value in self.headers:
            if header_name == wanted:
                return value
        return default

    def header_values(self, name: str) -> list[str]:
        wanted = canonical_header_name(name)
        values: list[str] = []
        for header_name, value in self.headers:
            if header_name == wanted:
                values.extend(split_comma_values(value) if wanted in MULTI_VALUE_HEADERS else [value])
        return values

    def set_header(self, name: str, value: str) -> None:
        wanted = canonical_header_name(name)
        self.headers = [(n, v) for n, v in self.headers if n != wanted]
        self.headers.append((wanted, value))

    def add_header(self, name: str, value: str) -> None:
        self.headers.append((canonical_header_name(name), value))

    @property
    def call_id(self) -> str:
        return self.header("Call-ID")

    @property
    def cseq(self) -> tuple[int, str]:
        match = _CSEQ.match(self.header("CSeq").strip())
        if not match:
            raise SipParseError("bad CSeq")
        return int(match.group(1)), match.group(2).upper()

    @property
    def from_tag(self) -> str:
        return header_parameters(self.header("From")).get("tag", "")

    @property
    def to_tag(self) -> str:
        return header_parameters(self.header("To")).get("tag", "")

    @property
    def top_branch(self) -> str:
        vias = self.header_values("Via")
        return header_parameters(vias[0]).get("branch", "") if vias else ""

    def to_bytes(self) -> bytes:
        start = (
            f"{self.method} {self.uri} {SIP_VERSION}"
            if self.is_request
            else f"{SIP_VERSION} {self.status} {self.reason or REASON_PHRASES.get(self.status, '')}".rstrip()
        )
        lines = [start]
        lines.extend(f"{name}: {value}" for name, value in self.headers if name != "Content-Length")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


def parse_message(data: bytes) -> SipMessage:
    """Parse one datagram. Raises ``SipParseError`` for anything malformed, including a body shorter
    than its Content-Length (RFC 3261 §18.3: a truncated UDP message is discarded)."""
    if not data or len(data) > MAX_MESSAGE_BYTES:
        raise SipParseError("empty or oversized datagram")
    head, separator, body = data.partition(b"\r\n\r\n")
    if not separator:
        head, separator, body = data.partition(b"\n\n")
        if not separator:
            raise SipParseError("no end of headers")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SipParseError("headers are not UTF-8") from error
    raw_lines = text.replace("\r\n", "\n").split("\n")
    # Some stacks send a keep-alive CRLF before the message.
    while raw_lines and not raw_lines[0].strip():
        raw_lines.pop(0)
    if not raw_lines:
        raise SipParseError("no start line")
    message = SipMessage()
    start = raw_lines[0].strip()
    request = _REQUEST_LINE.match(start)
    if request:
        message.method, message.uri = request.group(1).upper(), request.group(2)
    else:
        status = _STATUS_LINE.match(start)
        if not status:
            raise SipParseError(f"bad start line: {start[:80]!r}")
        message.status, message.reason = int(status.group(1)), status.group(2)
    for line in raw_lines[1:]:
        if line[:1] in (" ", "\t") and message.headers:  # folded continuation (§7.3.1)
            name, value = message.headers[-1]
            message.headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.match(name.strip()):
            raise SipParseError(f"bad header line: {line[:80]!r}")
        message.headers.append((canonical_header_name(name), value.strip()))
    length_text = message.header("Content-Length")
    if length_text:
        if not length_text.isdigit():
            raise SipParseError("bad Content-Length")
        length = int(length_text)
        if length > len(body):
            raise SipParseError("body shorter than Content-Length")
        body = body[:length]
    message.body = body
    for required in ("Via", "From", "To", "Call-ID", "CSeq"):
        if not message.header(required):
            raise SipParseError(f"missing {required}")
    if message.is_request and message.cseq[1] != message.method and message.method != "ACK":
        raise SipParseError("CSeq method does not match the request")
    return message


def response_to(request: SipMessage, status: int, *, to_tag: str = "", reason: str = "") -> SipMessage:
    """A response copying Via, From, To (adding our tag), Call-ID and CSeq from the request (§8.2.6)."""
    response = SipMessage(status=status, reason=reason or REASON_PHRASES.get(status, ""))
    for via in request.header_values("Via"):
        response.add_header("Via", via)
    response.add_header("From", request.header("From"))
    to_value = request.header("To")
    if to_tag and "tag" not in header_parameters(to_value):
        to_value = f"{to_value};tag={to_tag}"
    response.add_header("To", to_value)
    response.add_header("Call-ID", request.call_id)
    response.add_header("CSeq", request.header("CSeq"))
    return response


def salvage_response(data: bytes, status: int) -> bytes | None:
    """A best-effort 400 for a request that failed to parse: copy the headers a client needs to match
    it (§8.2.6) if they are readable; ``None`` when even that is impossible (then we stay silent)."""
    try:
        text = data[:MAX_MESSAGE_BYTES].decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        return None
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0]
    lines = [line for line in head.split("\n") if line.strip()]
    if not lines or not _REQUEST_LINE.match(lines[0].strip()) or lines[0].upper().startswith("ACK "):
        return None  # never answer an ACK or a response
    copied: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            continue
        canonical = canonical_header_name(name)
        if canonical in ("Via", "From", "To", "Call-ID", "CSeq"):
            copied.append((canonical, value.strip()))
    names = {name for name, _ in copied}
    if not {"Via", "Call-ID"} <= names:
        return None
    response = SipMessage(status=status, headers=copied)
    return response.to_bytes()

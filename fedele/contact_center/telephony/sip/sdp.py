"""SDP offer/answer (RFC 4566, RFC 3264) for one audio stream: G.711 (PCMU/PCMA) plus RFC 4733
telephone-event, which is all a PBX or SIP trunk needs to talk to an IVR."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from fedele.contact_center.telephony.sip.message import SipParseError

PCMU = "PCMU"
PCMA = "PCMA"
STATIC_PAYLOAD_TYPES = {0: PCMU, 8: PCMA}
SUPPORTED_CODECS = (PCMU, PCMA)  # our preference order when the offer does not decide
TELEPHONE_EVENT = "telephone-event"
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

_RTPMAP = re.compile(r"^(\d{1,3})\s+([A-Za-z0-9\-_.]+)/(\d+)")


class SdpError(SipParseError):
    """The offer has no audio we can use (answered 488) or is not SDP at all (answered 400)."""


@dataclass(frozen=True, slots=True)
class MediaOffer:
    address: str
    port: int
    payload_types: tuple[int, ...]
    rtpmap: dict[int, str] = field(default_factory=dict)  # payload type → encoding name (upper-case)
    direction: str = "sendrecv"

    def telephone_event_type(self) -> int | None:
        for payload_type, name in self.rtpmap.items():
            if name == TELEPHONE_EVENT.upper():
                return payload_type
        return None

    @property
    def on_hold(self) -> bool:
        """RFC 3264 §8.4 hold (sendonly/inactive) or the older RFC 2543 form (c=0.0.0.0)."""
        return self.direction in ("sendonly", "inactive") or self.address == "0.0.0.0"  # noqa: S104 - an address, not a bind


def parse_offer(body: bytes) -> MediaOffer:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SdpError("SDP is not UTF-8") from error
    session_address = ""
    media_address = ""
    port: int | None = None
    payload_types: tuple[int, ...] = ()
    rtpmap: dict[int, str] = {}
    direction = "sendrecv"
    in_audio = False
    seen_audio = False
    for raw_line in text.replace("\r\n", "\n").split("\n"):
        line = raw_line.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            parts = value.split()
            in_audio = bool(parts) and parts[0] == "audio" and not seen_audio
            if in_audio:
                seen_audio = True
                if len(parts) < 4 or not parts[1].split("/")[0].isdigit():
                    raise SdpError("bad m=audio line")
                port = int(parts[1].split("/")[0])
                if not 0 <= port <= 65_535:
                    raise SdpError("bad media port")
                try:
                    payload_types = tuple(int(part) for part in parts[3:])
                except ValueError as error:
                    raise SdpError("bad payload type") from error
        elif kind == "c":
            parts = value.split()
            if len(parts) >= 3:
                address = parts[2].split("/")[0]
                if in_audio:
                    media_address = address
                elif not seen_audio:
                    session_address = address
        elif kind == "a" and (in_audio or not seen_audio):
            name, _, attribute_value = value.partition(":")
            if name == "rtpmap" and in_audio:
                match = _RTPMAP.match(attribute_value)
                if match:
                    rtpmap[int(match.group(1))] = match.group(2).upper()
            elif name in DIRECTIONS:
                direction = name
    if port is None:
        raise SdpError("no audio stream in the offer")
    for payload_type in payload_types:
        if payload_type in STATIC_PAYLOAD_TYPES and payload_type not in rtpmap:
            rtpmap[payload_type] = STATIC_PAYLOAD_TYPES[payload_type]
    address = media_address or session_address
    if not address:
        raise SdpError("no connection address")
    return MediaOffer(
        address=address, port=port, payload_types=payload_types, rtpmap=rtpmap, direction=direction
    )


@dataclass(frozen=True, slots=True)
class Negotiated:
    codec: str
    payload_type: int
    telephone_event_type: int | None


def negotiate(offer: MediaOffer) -> Negotiated:
    """The first G.711 codec in the offerer's order (RFC 3264 §6.1: the answerer should honour the
    offer's preference) and telephone-event when offered. No G.711 → ``SdpError`` (488)."""
    if offer.port == 0:
        raise SdpError("the audio stream is rejected (port 0)")
    for payload_type in offer.payload_types:
        name = offer.rtpmap.get(payload_type, "")
        if name in SUPPORTED_CODECS:
            return Negotiated(
                codec=name, payload_type=payload_type, telephone_event_type=offer.telephone_event_type()
            )
    raise SdpError("no common codec: we speak PCMU and PCMA")


def build_answer(
    *,
    address: str,
    port: int,
    negotiated: Negotiated,
    session_id: int | None = None,
    version: int = 1,
    direction: str = "sendrecv",
) -> bytes:
    session = session_id if session_id is not None else int(time.time())
    payload_types = [str(negotiated.payload_type)]
    lines = [
        "v=0",
        f"o=fedele {session} {version} IN IP4 {address}",
        "s=fedele",
        f"c=IN IP4 {address}",
        "t=0 0",
    ]
    if negotiated.telephone_event_type is not None:
        payload_types.append(str(negotiated.telephone_event_type))
    lines.append(f"m=audio {port} RTP/AVP {' '.join(payload_types)}")
    lines.append(f"a=rtpmap:{negotiated.payload_type} {negotiated.codec}/8000")
    if negotiated.telephone_event_type is not None:
        lines.append(f"a=rtpmap:{negotiated.telephone_event_type} telephone-event/8000")
        lines.append(f"a=fmtp:{negotiated.telephone_event_type} 0-16")
    lines.append("a=ptime:20")
    lines.append(f"a={direction}")
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def build_offer(*, address: str, port: int, session_id: int | None = None) -> bytes:
    """Our offer when the INVITE carried none (a late offer, RFC 3261 §13.2.1): both G.711 laws and
    telephone-event; the caller's answer comes in the ACK."""
    session = session_id if session_id is not None else int(time.time())
    lines = [
        "v=0",
        f"o=fedele {session} 1 IN IP4 {address}",
        "s=fedele",
        f"c=IN IP4 {address}",
        "t=0 0",
        f"m=audio {port} RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")

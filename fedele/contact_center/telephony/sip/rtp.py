"""RTP (RFC 3550) for one G.711 audio stream, with RFC 4733 telephone-events for DTMF.

G.711 is implemented here (ITU-T G.711 μ-law and A-law, the same tables every PBX uses) rather than
through ``audioop``, which is deprecated and gone in Python 3.13. Encoding goes through a 64 Ki-entry
lookup table built once with numpy, so a 20 ms frame costs one array index.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache

import numpy as np

SAMPLE_RATE = 8_000
FRAME_MS = 20
SAMPLES_PER_FRAME = SAMPLE_RATE * FRAME_MS // 1000  # 160 samples = 160 G.711 bytes
BYTES_PER_PCM_FRAME = SAMPLES_PER_FRAME * 2  # 16-bit linear
DTMF_EVENTS = "0123456789*#ABCD"  # RFC 4733 §3.2 event codes 0–15


class RtpError(ValueError):
    """Not an RTP packet we can read."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    def to_bytes(self) -> bytes:
        first = 0x80  # version 2, no padding, no extension, no CSRC
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        return (
            struct.pack(
                "!BBHII", first, second, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc
            )
            + self.payload
        )


def parse_rtp(data: bytes) -> RtpPacket:
    if len(data) < 12:
        raise RtpError("shorter than an RTP header")
    first, second, sequence, timestamp, ssrc = struct.unpack("!BBHII", data[:12])
    if first >> 6 != 2:
        raise RtpError("not RTP version 2")
    offset = 12 + 4 * (first & 0x0F)  # CSRC list
    if first & 0x10:  # header extension: 16-bit profile, 16-bit length in words
        if len(data) < offset + 4:
            raise RtpError("truncated header extension")
        (words,) = struct.unpack("!H", data[offset + 2 : offset + 4])
        offset += 4 + 4 * words
    end = len(data)
    if first & 0x20:  # padding: the last byte says how much
        end -= data[-1]
    if offset > end:
        raise RtpError("truncated packet")
    return RtpPacket(
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=data[offset:end],
        marker=bool(second & 0x80),
    )


# ---- G.711 -------------------------------------------------------------------------------------------

_ULAW_BIAS = 0x84
_ULAW_SEGMENT_ENDS = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)


def _ulaw_encode_sample(sample: int) -> int:
    # The reference g711.c works on 14 bits, shifting before taking the magnitude; doing the same
    # keeps us bit-exact with every other implementation (and with audioop).
    value = sample >> 2
    mask = 0xFF
    if value < 0:
        value, mask = -value, 0x7F
    value = min(value, 8_159) + (_ULAW_BIAS >> 2)
    for segment, segment_end in enumerate(_ULAW_SEGMENT_ENDS):
        if value <= segment_end:
            return ((segment << 4) | ((value >> (segment + 1)) & 0x0F)) ^ mask
    return 0x7F ^ mask


def _ulaw_decode_byte(byte: int) -> int:
    byte = ~byte & 0xFF
    sign = byte & 0x80
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    magnitude = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return -magnitude if sign else magnitude


def _alaw_encode_sample(sample: int) -> int:
    sign = 0x80 if sample >= 0 else 0
    magnitude = min(sample if sample >= 0 else -sample - 1, 32_767) >> 3  # 13-bit
    if magnitude < 32:
        code = magnitude >> 1
    else:
        exponent = magnitude.bit_length() - 5  # 1..7
        mantissa = (magnitude >> exponent) & 0x0F
        code = (exponent << 4) | mantissa
    return (sign | code) ^ 0x55


def _alaw_decode_byte(byte: int) -> int:
    byte ^= 0x55
    sign = byte & 0x80
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    magnitude = (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
    return magnitude if sign else -magnitude


@cache
def _tables(codec: str) -> tuple[np.ndarray, np.ndarray]:
    if codec == "PCMU":
        encode_one, decode_one = _ulaw_encode_sample, _ulaw_decode_byte
    elif codec == "PCMA":
        encode_one, decode_one = _alaw_encode_sample, _alaw_decode_byte
    else:
        raise ValueError(f"unsupported codec {codec!r}")
    # Index by the sample's bit pattern as uint16, so int16 arrays index it after a view.
    encode = np.array(
        [encode_one(value - 65_536 if value >= 32_768 else value) for value in range(65_536)], dtype=np.uint8
    )
    decode = np.array([decode_one(byte) for byte in range(256)], dtype=np.int16)
    return encode, decode


def g711_encode(pcm: bytes, codec: str) -> bytes:
    """16-bit little-endian signed linear → G.711 bytes."""
    encode, _ = _tables(codec)
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").view(np.uint16)
    return bytes(encode[samples].tobytes())


def g711_decode(payload: bytes, codec: str) -> bytes:
    _, decode = _tables(codec)
    return bytes(decode[np.frombuffer(payload, dtype=np.uint8)].astype("<i2").tobytes())


# ---- RFC 4733 telephone-event ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    event: int
    end: bool
    volume: int
    duration: int

    @property
    def digit(self) -> str:
        return DTMF_EVENTS[self.event] if 0 <= self.event < len(DTMF_EVENTS) else ""


def parse_telephone_event(payload: bytes) -> TelephoneEvent:
    if len(payload) < 4:
        raise RtpError("telephone-event payload shorter than 4 bytes")
    event, flags, duration = struct.unpack("!BBH", payload[:4])
    return TelephoneEvent(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)


def telephone_event_payload(digit: str, *, end: bool, duration: int, volume: int = 10) -> bytes:
    event = DTMF_EVENTS.index(digit.upper())
    return struct.pack("!BBH", event, (0x80 if end else 0) | (volume & 0x3F), duration & 0xFFFF)


class DtmfDetector:
    """Turns a stream of telephone-event packets into digits, each exactly once.

    RFC 4733 §2.5.1.4: every packet of one key press carries the same RTP timestamp, the update
    packets repeat while the key is held, and the end packet is sent three times. A digit is reported
    on its first end packet; the redundant ends (and late updates) of the same timestamp are ignored.
    If every end packet of a press is lost, the digit is still reported when the next press starts
    (a new timestamp) or when ``flush`` is called after the stream goes quiet."""

    def __init__(self) -> None:
        self._reported_timestamps: list[int] = []
        self._open: tuple[int, str] | None = None  # (timestamp, digit) of a press not yet reported

    def feed(self, packet: RtpPacket) -> list[str]:
        try:
            event = parse_telephone_event(packet.payload)
        except RtpError:
            return []
        digit = event.digit
        if not digit or packet.timestamp in self._reported_timestamps:
            return []
        digits: list[str] = []
        if self._open is not None and self._open[0] != packet.timestamp:
            digits.append(self._report(*self._open))
        if event.end:
            digits.append(self._report(packet.timestamp, digit))
        else:
            self._open = (packet.timestamp, digit)
        return digits

    def flush(self) -> list[str]:
        return [self._report(*self._open)] if self._open is not None else []

    def _report(self, timestamp: int, digit: str) -> str:
        self._open = None
        self._reported_timestamps.append(timestamp)
        del self._reported_timestamps[:-32]  # enough to absorb any reordering of recent presses
        return digit


def dtmf_packets(
    digit: str, *, payload_type: int, sequence: int, timestamp: int, ssrc: int, duration_ms: int = 100
) -> list[RtpPacket]:
    """The packets for one key press: updates every 20 ms (the first with the marker bit), then the
    end packet three times (RFC 4733 §2.5.1.4)."""
    total = SAMPLE_RATE * duration_ms // 1000
    packets: list[RtpPacket] = []
    elapsed = SAMPLES_PER_FRAME
    while elapsed < total:
        packets.append(
            RtpPacket(
                payload_type=payload_type,
                sequence=sequence + len(packets),
                timestamp=timestamp,
                ssrc=ssrc,
                payload=telephone_event_payload(digit, end=False, duration=elapsed),
                marker=not packets,
            )
        )
        elapsed += SAMPLES_PER_FRAME
    for _ in range(3):
        packets.append(
            RtpPacket(
                payload_type=payload_type,
                sequence=sequence + len(packets),
                timestamp=timestamp,
                ssrc=ssrc,
                payload=telephone_event_payload(digit, end=True, duration=total),
                marker=not packets,
            )
        )
    return packets

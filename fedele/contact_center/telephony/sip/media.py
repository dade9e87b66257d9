"""The RTP side of one call: paced G.711 playback, recording, and RFC 4733 DTMF both ways."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import cast

from fedele.contact_center.telephony.sip.rtp import (
    BYTES_PER_PCM_FRAME,
    FRAME_MS,
    SAMPLE_RATE,
    SAMPLES_PER_FRAME,
    DtmfDetector,
    RtpError,
    RtpPacket,
    dtmf_packets,
    g711_decode,
    g711_encode,
    parse_rtp,
)

logger = logging.getLogger(__name__)

MAX_RECORDING_SECONDS = 600


class RtpSession(asyncio.DatagramProtocol):
    """One RTP stream. Audio is sent in 20 ms frames against the loop clock (absolute deadlines, so a
    busy machine catches up instead of drifting); the RTP timestamp follows wall-clock time across
    pauses, as RFC 3550 §5.1 asks."""

    def __init__(
        self,
        *,
        codec: str,
        payload_type: int,
        telephone_event_type: int | None,
        remote: tuple[str, int],
        on_digit: Callable[[str, str], None],
    ) -> None:
        self.codec = codec
        self.payload_type = payload_type
        self.telephone_event_type = telephone_event_type
        self.remote = remote
        self.on_digit = on_digit
        self.transport: asyncio.DatagramTransport | None = None
        self.ssrc = secrets.randbits(32)
        self.sequence = secrets.randbits(16)
        self._timestamp_base = secrets.randbits(32)
        self._clock_start = 0.0
        self._detector = DtmfDetector()
        self._send_lock = asyncio.Lock()
        self.sending_paused = False  # on hold or muted: keep the clock, send nothing
        self.recording: bytearray | None = None
        self.recording_paused = False
        self.packets_received = 0
        self.bytes_sent = 0

    # ---- asyncio protocol ----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self._clock_start = asyncio.get_running_loop().time()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packet = parse_rtp(data)
        except RtpError:
            return
        self.packets_received += 1
        if self.telephone_event_type is not None and packet.payload_type == self.telephone_event_type:
            for digit in self._detector.feed(packet):
                self.on_digit(digit, "rfc4733")
        elif (
            packet.payload_type == self.payload_type
            and self.recording is not None
            and not self.recording_paused
            and len(self.recording) < MAX_RECORDING_SECONDS * SAMPLE_RATE * 2
        ):
            self.recording.extend(g711_decode(packet.payload, self.codec))

    def error_received(self, exc: Exception) -> None:
        logger.debug("RTP socket error: %s", exc)

    # ---- sending ----

    @property
    def local_port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def _clock_timestamp(self) -> int:
        elapsed = asyncio.get_running_loop().time() - self._clock_start
        return (self._timestamp_base + int(elapsed * SAMPLE_RATE)) & 0xFFFFFFFF

    def _send(self, packet: RtpPacket) -> None:
        if self.transport is None or self.transport.is_closing() or not self.remote[1]:
            return  # no address yet (a late offer's answer has not arrived)
        data = packet.to_bytes()
        self.transport.sendto(data, self.remote)
        self.bytes_sent += len(data)

    async def play(self, pcm: bytes, *, interrupt: asyncio.Event | None = None) -> bool:
        """Send ``pcm`` (8 kHz 16-bit) in real time. Returns False when ``interrupt`` cut it short."""
        loop = asyncio.get_running_loop()
        async with self._send_lock:
            timestamp = self._clock_timestamp()
            deadline = loop.time()
            first = True
            for offset in range(0, len(pcm), BYTES_PER_PCM_FRAME):
                if interrupt is not None and interrupt.is_set():
                    return False
                frame = pcm[offset : offset + BYTES_PER_PCM_FRAME].ljust(BYTES_PER_PCM_FRAME, b"\0")
                if not self.sending_paused:
                    self._send(
                        RtpPacket(
                            payload_type=self.payload_type,
                            sequence=self.sequence,
                            timestamp=timestamp,
                            ssrc=self.ssrc,
                            payload=g711_encode(frame, self.codec),
                            marker=first,
                        )
                    )
                    self.sequence = (self.sequence + 1) & 0xFFFF
                    first = False
                timestamp = (timestamp + SAMPLES_PER_FRAME) & 0xFFFFFFFF
                deadline += FRAME_MS / 1000
                await asyncio.sleep(max(0.0, deadline - loop.time()))
        return not (interrupt is not None and interrupt.is_set())

    async def send_dtmf(self, digits: str, *, duration_ms: int = 100, gap_ms: int = 60) -> None:
        if self.telephone_event_type is None:
            raise ValueError("the other side did not offer telephone-event")
        async with self._send_lock:
            for digit in digits:
                packets = dtmf_packets(
                    digit,
                    payload_type=self.telephone_event_type,
                    sequence=self.sequence,
                    timestamp=self._clock_timestamp(),
                    ssrc=self.ssrc,
                    duration_ms=duration_ms,
                )
                for packet in packets:
                    self._send(packet)
                    await asyncio.sleep(FRAME_MS / 1000)
                self.sequence = (self.sequence + len(packets)) & 0xFFFF
                await asyncio.sleep(gap_ms / 1000)

    def flush_digits(self) -> None:
        for digit in self._detector.flush():
            self.on_digit(digit, "rfc4733")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

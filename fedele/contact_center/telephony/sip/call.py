"""One SIP call (a dialog in which fedele is the UAS of an inbound call, or the UAC of a call it
placed) and the operations the IVR application performs on it: answer, play, collect digits, record,
hold, transfer with REFER, DTMF, hang up. The user agent (``ua.py``) owns the socket and the
transactions; a call asks it to send."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from fedele.contact_center.telephony.sip.media import RtpSession
from fedele.contact_center.telephony.sip.message import SipMessage, new_tag, uri_of
from fedele.contact_center.telephony.sip.sdp import MediaOffer, Negotiated, build_answer, build_offer

if TYPE_CHECKING:
    from fedele.contact_center.telephony.sip.ua import SipUserAgent

logger = logging.getLogger(__name__)

T1 = 0.5  # RFC 3261 timer T1 (round-trip estimate)
T2 = 4.0
TRANSACTION_SECONDS = 64 * T1


class CallEnded(Exception):
    """The call is over (the other side hung up, cancelled, or we did): stop what you were doing."""


class CallState(StrEnum):
    RINGING = "ringing"
    ANSWERED = "answered"  # 200 OK sent
    CONFIRMED = "confirmed"  # ACK received
    ENDED = "ended"


class HangupCause(StrEnum):
    REMOTE_BYE = "remote_bye"
    CANCELLED = "cancelled"
    LOCAL_BYE = "local_bye"
    NO_ACK = "no_ack"
    TRANSFERRED = "transferred"
    SHUTDOWN = "shutdown"
    REJECTED = "rejected"


@dataclass(slots=True)
class SipCall:
    """One call and its media stream. Inbound (``outbound`` False): ``invite`` is the INVITE we
    answered. Outbound: ``invite`` is the INVITE we sent (its From carries our tag), and the dialog's
    remote tag, target and route set come from the callee's 2xx."""

    agent: SipUserAgent
    invite: SipMessage
    source: tuple[str, int]
    offer: MediaOffer | None  # None until the ACK brings the answer to our late offer
    negotiated: Negotiated
    local_tag: str = field(default_factory=new_tag)
    state: CallState = CallState.RINGING
    rtp: RtpSession | None = None
    local_cseq: int = 1
    hangup_cause: HangupCause | None = None
    remote_hold: bool = False
    digits: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    acknowledged: asyncio.Event = field(default_factory=asyncio.Event)
    digit_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    on_digit: Callable[[str, str], None] | None = None
    on_remote_hold: Callable[[bool], None] | None = None
    on_refer_progress: Callable[[int], None] | None = None
    refer_outcome: asyncio.Future[int] | None = None
    started_at: float = field(default_factory=time.time)
    outbound: bool = False
    peer_tag: str = ""  # outbound: the To tag of the callee's 2xx
    peer_contact: str = ""  # outbound: the Contact of the callee's 2xx (our remote target)
    route_set: list[str] = field(default_factory=list)  # outbound: Record-Route of the 2xx, reversed
    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)  # outbound, before answer
    _answer_bytes: bytes = b""

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    @property
    def remote_tag(self) -> str:
        return self.peer_tag if self.outbound else self.invite.from_tag

    @property
    def from_uri(self) -> str:
        return uri_of(self.invite.header("From"))

    @property
    def to_uri(self) -> str:
        return uri_of(self.invite.header("To"))

    @property
    def remote_target(self) -> str:
        if self.outbound:
            return self.peer_contact or self.to_uri
        return uri_of(self.invite.header("Contact")) or self.from_uri

    @property
    def local_uri(self) -> str:
        return self.from_uri if self.outbound else self.to_uri

    @property
    def local_address(self) -> str:
        """Our From header value (with our tag) in the requests we send in this dialog."""
        if self.outbound:
            return self.invite.header("From")
        return f"{self.invite.header('To').split(';tag=')[0]};tag={self.local_tag}"

    @property
    def remote_address(self) -> str:
        """The To header value (with the peer's tag) in the requests we send in this dialog."""
        if self.outbound:
            return f"{self.invite.header('To').split(';tag=')[0]};tag={self.peer_tag}"
        return self.invite.header("From")

    # ---- digits ----

    def digit_received(self, digit: str, method: str) -> None:
        if self.state == CallState.ENDED:
            return
        self.digits.put_nowait(digit)
        self.digit_arrived.set()
        if self.on_digit is not None:
            self.on_digit(digit, method)

    def clear_digits(self) -> None:
        while not self.digits.empty():
            self.digits.get_nowait()
        self.digit_arrived.clear()

    # ---- waiting with the call's end in mind ----

    async def _until_ended(self, awaitable: Awaitable[object], timeout: float | None = None) -> object:
        if self.ended.is_set():
            if asyncio.iscoroutine(awaitable):
                awaitable.close()  # never started: close it so it is not reported as never awaited
            raise CallEnded
        task = asyncio.ensure_future(awaitable)
        ended = asyncio.ensure_future(self.ended.wait())
        try:
            done, _ = await asyncio.wait({task, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        if self.ended.is_set():
            raise CallEnded
        raise TimeoutError

    # ---- operations the handler uses ----

    async def ring(self) -> None:
        self.agent.respond(self.invite, 180, to_tag=self.local_tag, destination=self.source)

    async def reject(self, status: int) -> None:
        """A final error response instead of answering (e.g. 404 for a number with no flow)."""
        if self.state != CallState.RINGING:
            return
        self.agent.respond(self.invite, status, to_tag=self.local_tag, destination=self.source)
        self.finish(HangupCause.REJECTED)

    async def answer(self) -> None:
        """200 OK with our SDP answer; retransmitted (T1, doubling to T2) until the ACK (§13.3.1.4)."""
        if self.state != CallState.RINGING:
            raise CallEnded
        assert self.rtp is not None
        if self.offer is None:
            body = build_offer(address=self.agent.advertised_host, port=self.rtp.local_port)
        else:
            body = build_answer(
                address=self.agent.advertised_host, port=self.rtp.local_port, negotiated=self.negotiated
            )
        response = self.agent.build_response(self.invite, 200, to_tag=self.local_tag, body=body)
        self._answer_bytes = response.to_bytes()
        self.state = CallState.ANSWERED
        self.agent.remember_response(self.invite, self._answer_bytes)
        self.agent.send(self._answer_bytes, self.source)
        interval = T1
        deadline = time.monotonic() + TRANSACTION_SECONDS
        while not self.acknowledged.is_set():
            if time.monotonic() >= deadline:
                logger.warning("SIP call %s: no ACK for our 200 OK, hanging up", self.call_id)
                await self.hangup(cause=HangupCause.NO_ACK)
                raise CallEnded
            try:
                await self._until_ended(self.acknowledged.wait(), timeout=interval)
            except TimeoutError:
                self.agent.send(self._answer_bytes, self.source)
                interval = min(interval * 2, T2)

    async def play(self, pcm: bytes, *, barge_in: bool = False) -> bool:
        """Play audio; with ``barge_in`` a key press stops it (the digit stays queued for collect)."""
        assert self.rtp is not None
        interrupt = self.digit_arrived if barge_in else None
        if barge_in and not self.digits.empty():
            return False
        result = await self._until_ended(self.rtp.play(pcm, interrupt=interrupt))
        return bool(result)

    async def collect(self, *, max_digits: int, finish_on: str, timeout_seconds: float) -> tuple[str, bool]:
        """Digits until ``max_digits``, the finish key or ``timeout_seconds`` without a key press.
        Returns (digits without the finish key, timed_out)."""
        collected = ""
        while max_digits <= 0 or len(collected) < max_digits:
            try:
                digit = await self._until_ended(self.digits.get(), timeout=timeout_seconds)
            except TimeoutError:
                return collected, True
            assert isinstance(digit, str)
            if finish_on and digit in finish_on:
                return collected, False
            collected += digit
        if self.digits.empty():
            self.digit_arrived.clear()
        return collected, False

    async def record(self, *, max_seconds: float, finish_on: str = "#") -> bytes:
        """Record what the caller says until they hang up, press the finish key, or ``max_seconds``."""
        assert self.rtp is not None
        self.clear_digits()
        self.rtp.recording = bytearray()
        deadline = time.monotonic() + max_seconds
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                digit = await self._until_ended(self.digits.get(), timeout=remaining)
                if isinstance(digit, str) and digit in finish_on:
                    break
        except (CallEnded, TimeoutError):
            pass
        recorded = bytes(self.rtp.recording)
        self.rtp.recording = None
        return recorded

    async def hangup(self, *, cause: HangupCause = HangupCause.LOCAL_BYE) -> None:
        if self.state == CallState.ENDED:
            return
        if self.state == CallState.RINGING and self.outbound:
            self.cancel_requested.set()  # the dialling coroutine sends CANCEL and ends the call
            return
        if self.state == CallState.RINGING:
            self.agent.respond(self.invite, 480, to_tag=self.local_tag, destination=self.source)
            self.finish(HangupCause.REJECTED)
            return
        self.finish(cause)
        await self.agent.send_request(self, "BYE")

    async def hold(self, *, on: bool) -> bool:
        """Put the caller on hold (re-INVITE with a=sendonly, RFC 3264 §8.4) or take them off."""
        assert self.rtp is not None
        self.local_cseq += 1
        body = build_answer(
            address=self.agent.advertised_host,
            port=self.rtp.local_port,
            negotiated=self.negotiated,
            version=self.local_cseq,
            direction="sendonly" if on else "sendrecv",
        )
        response = await self.agent.send_request(
            self,
            "INVITE",
            body=body,
            extra_headers=[("Content-Type", "application/sdp")],
            cseq=self.local_cseq,
        )
        return response is not None and 200 <= response.status < 300

    async def transfer(self, target: str, *, timeout_seconds: float = 32.0) -> bool:
        """Blind transfer with REFER (RFC 3515): the PBX calls ``target`` and we leave the call when it
        reports success (NOTIFY with a 2xx sipfrag), or when it accepted the REFER and sends no
        progress at all. Returns True when the call was handed on."""
        loop = asyncio.get_running_loop()
        self.refer_outcome = loop.create_future()
        response = await self.agent.send_request(
            self,
            "REFER",
            extra_headers=[
                ("Refer-To", f"<{target}>"),
                ("Referred-By", f"<{self.local_uri}>"),
            ],
        )
        if response is None or not 200 <= response.status < 300:
            self.refer_outcome = None
            return False
        try:
            status = await self._until_ended(asyncio.shield(self.refer_outcome), timeout=timeout_seconds)
        except TimeoutError:
            status = 200  # accepted without progress reports: the PBX owns the call now
        except CallEnded:
            return True  # the PBX completed the transfer by hanging up our leg
        self.refer_outcome = None
        if isinstance(status, int) and 200 <= status < 300:
            await self.hangup(cause=HangupCause.TRANSFERRED)
            return True
        return False

    async def send_dtmf(self, digits: str) -> None:
        assert self.rtp is not None
        await self._until_ended(self.rtp.send_dtmf(digits))

    def finish(self, cause: HangupCause) -> None:
        if self.state == CallState.ENDED:
            return
        self.state = CallState.ENDED
        self.hangup_cause = cause
        if self.rtp is not None:
            self.rtp.flush_digits()
            self.rtp.close()
        self.ended.set()
        self.agent.forget_call(self)

"""fedele's SIP user agent over UDP (RFC 3261), on asyncio.

It answers calls from a PBX or SIP trunk and hands each one to a call handler (the IVR application)
as a ``SipCall`` with high-level operations: answer, play, collect digits, record, hold, transfer
(REFER), send DTMF, hang up. Transactions are kept as small as RFC 3261 allows for a UA over UDP:
responses are cached per branch so a retransmitted request gets the same answer, a 2xx to INVITE is
retransmitted until the ACK arrives (timer G), our own requests are retransmitted until a final
response (timers A/E) and give up after 64·T1. Nothing a peer sends can crash the server: malformed
datagrams get a 400 when they can still be addressed, and are dropped otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import cast

from fedele.contact_center.telephony.sip.media import RtpSession
from fedele.contact_center.telephony.sip.message import (
    SipMessage,
    SipParseError,
    header_parameters,
    new_branch,
    new_tag,
    parse_message,
    response_to,
    salvage_response,
    uri_of,
)
from fedele.contact_center.telephony.sip.sdp import (
    MediaOffer,
    Negotiated,
    SdpError,
    build_answer,
    build_offer,
    negotiate,
    parse_offer,
)

logger = logging.getLogger(__name__)

T1 = 0.5  # RFC 3261 timer T1 (round-trip estimate)
T2 = 4.0
TRANSACTION_SECONDS = 64 * T1
ALLOWED_METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "NOTIFY")
# Methods we know and deliberately do not serve: 405 (§8.2.1). Anything else is unknown: 501 (§21.5.2).
KNOWN_UNSUPPORTED_METHODS = ("REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE", "REFER", "UPDATE", "PRACK")
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset()
USER_AGENT = "fedele-sip/1"
DTMF_INFO_SIGNALS = {str(i): str(i) for i in range(10)} | {"*": "*", "#": "#", "10": "*", "11": "#"}


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
    """One inbound call (a dialog in which we are the UAS) and its media stream."""

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
    _answer_bytes: bytes = b""

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    @property
    def remote_tag(self) -> str:
        return self.invite.from_tag

    @property
    def from_uri(self) -> str:
        return uri_of(self.invite.header("From"))

    @property
    def to_uri(self) -> str:
        return uri_of(self.invite.header("To"))

    @property
    def remote_target(self) -> str:
        return uri_of(self.invite.header("Contact")) or self.from_uri

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
                ("Referred-By", f"<{self.to_uri}>"),
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


CallHandler = Callable[[SipCall], Awaitable[None]]


@dataclass(slots=True)
class _ClientTransaction:
    future: asyncio.Future[SipMessage]
    provisional: asyncio.Event


class SipUserAgent(asyncio.DatagramProtocol):
    """Listens on ``host:port`` (UDP). ``handler`` runs once per accepted call, in its own task."""

    def __init__(
        self,
        *,
        handler: CallHandler,
        host: str = "127.0.0.1",
        port: int = 5060,
        advertised_host: str = "",
        rtp_ports: tuple[int, int] | None = None,
        allowed_sources: list[str] | None = None,
    ) -> None:
        self.handler = handler
        # Peers allowed to talk to us (the PBX, the trunk's SBC); anyone else gets 403 and no call.
        self.allowed_sources = [
            ipaddress.ip_network(source, strict=False) for source in allowed_sources or []
        ]
        self.host = host
        self.port = port
        self.advertised_host = advertised_host or (host if host not in ("0.0.0.0", "") else "127.0.0.1")  # noqa: S104
        self.rtp_ports = rtp_ports
        self.transport: asyncio.DatagramTransport | None = None
        self.calls: dict[str, SipCall] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._responses: dict[tuple[str, str], tuple[float, bytes]] = {}
        self._pending_invites: dict[str, SipCall] = {}  # INVITE branch → call (for CANCEL)
        self._client: dict[tuple[str, str], _ClientTransaction] = {}
        self.malformed_datagrams = 0
        self.refused_datagrams = 0

    def _allowed(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.allowed_sources)

    # ---- life cycle ----

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, self.port))
        self.transport = transport
        self.port = int(transport.get_extra_info("sockname")[1])
        logger.info("SIP user agent listening on udp:%s:%s", self.host, self.port)

    async def stop(self) -> None:
        for call in list(self.calls.values()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(call.hangup(cause=HangupCause.SHUTDOWN), timeout=2)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.transport is not None:
            self.transport.close()

    @property
    def contact(self) -> str:
        return f"<sip:fedele@{self.advertised_host}:{self.port}>"

    # ---- sending ----

    def send(self, data: bytes, destination: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, destination)

    def build_response(
        self, request: SipMessage, status: int, *, to_tag: str = "", body: bytes = b"", reason: str = ""
    ) -> SipMessage:
        response = response_to(request, status, to_tag=to_tag, reason=reason)
        response.add_header("Server", USER_AGENT)
        if request.method == "INVITE" and 200 <= status < 300:
            response.add_header("Contact", self.contact)
        if (status in (200, 405, 501) and request.method in ("INVITE", "OPTIONS")) or status in (405, 501):
            response.add_header("Allow", ", ".join(ALLOWED_METHODS))
        if body:
            response.add_header("Content-Type", "application/sdp")
            response.body = body
        return response

    def respond(
        self,
        request: SipMessage,
        status: int,
        *,
        destination: tuple[str, int],
        to_tag: str = "",
        body: bytes = b"",
        extra_headers: list[tuple[str, str]] | None = None,
    ) -> None:
        response = self.build_response(request, status, to_tag=to_tag, body=body)
        for name, value in extra_headers or []:
            response.add_header(name, value)
        data = response.to_bytes()
        if status >= 200 or request.method == "INVITE":
            self.remember_response(request, data)
        self.send(data, destination)

    def remember_response(self, request: SipMessage, data: bytes) -> None:
        self._responses[(request.top_branch, request.method)] = (time.monotonic(), data)

    async def send_request(
        self,
        call: SipCall,
        method: str,
        *,
        body: bytes = b"",
        extra_headers: list[tuple[str, str]] | None = None,
        cseq: int | None = None,
    ) -> SipMessage | None:
        """An in-dialog request; retransmitted until a final response. None after 64·T1 of silence."""
        if cseq is None:
            call.local_cseq += 1
            cseq = call.local_cseq
        branch = new_branch()
        request = SipMessage(method=method, uri=call.remote_target)
        request.add_header("Via", f"SIP/2.0/UDP {self.advertised_host}:{self.port};branch={branch};rport")
        request.add_header("Max-Forwards", "70")
        request.add_header("From", f"{self._our_address(call)};tag={call.local_tag}")
        request.add_header("To", call.invite.header("From"))
        request.add_header("Call-ID", call.call_id)
        request.add_header("CSeq", f"{cseq} {method}")
        request.add_header("Contact", self.contact)
        request.add_header("User-Agent", USER_AGENT)
        for name, value in extra_headers or []:
            request.add_header(name, value)
        request.body = body
        data = request.to_bytes()
        loop = asyncio.get_running_loop()
        transaction = _ClientTransaction(future=loop.create_future(), provisional=asyncio.Event())
        key = (branch, method)
        self._client[key] = transaction
        try:
            interval = T1
            deadline = loop.time() + TRANSACTION_SECONDS
            self.send(data, call.source)
            while loop.time() < deadline:
                try:
                    response = await asyncio.wait_for(asyncio.shield(transaction.future), timeout=interval)
                except TimeoutError:
                    if not transaction.provisional.is_set():
                        self.send(data, call.source)
                    interval = interval * 2 if method == "INVITE" else min(interval * 2, T2)
                    continue
                if method == "INVITE" and 200 <= response.status < 300:
                    self._acknowledge(call, response, cseq)
                return response
            logger.warning("SIP %s for call %s timed out", method, call.call_id)
            return None
        finally:
            self._client.pop(key, None)

    def _acknowledge(self, call: SipCall, response: SipMessage, cseq: int) -> None:
        ack = SipMessage(method="ACK", uri=call.remote_target)
        ack.add_header("Via", f"SIP/2.0/UDP {self.advertised_host}:{self.port};branch={new_branch()};rport")
        ack.add_header("Max-Forwards", "70")
        ack.add_header("From", response.header("From"))
        ack.add_header("To", response.header("To"))
        ack.add_header("Call-ID", call.call_id)
        ack.add_header("CSeq", f"{cseq} ACK")
        self.send(ack.to_bytes(), call.source)

    def _our_address(self, call: SipCall) -> str:
        to_value = call.invite.header("To")
        return to_value.split(";tag=")[0]

    def forget_call(self, call: SipCall) -> None:
        self.calls.pop(call.call_id, None)
        self._pending_invites.pop(call.invite.top_branch, None)

    # ---- receiving ----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self._dispatch(data, addr)
        except Exception:  # one bad datagram must never take the server down
            self.malformed_datagrams += 1
            logger.exception("SIP datagram from %s:%s could not be handled", *addr)

    def error_received(self, exc: Exception) -> None:
        logger.debug("SIP socket error: %s", exc)

    def _dispatch(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.strip():
            return  # keep-alive (RFC 5626 CRLF)
        if self.allowed_sources and not self._allowed(addr[0]):
            self.refused_datagrams += 1
            reply = salvage_response(data, 403)
            if reply is not None:
                self.send(reply, addr)
            return
        try:
            message = parse_message(data)
        except SipParseError as error:
            self.malformed_datagrams += 1
            logger.info("malformed SIP datagram from %s:%s: %s", addr[0], addr[1], error)
            reply = salvage_response(data, 400)
            if reply is not None:
                self.send(reply, addr)
            return
        if not message.is_request:
            self._on_response(message)
            return
        self._expire_responses()
        cached = self._responses.get((message.top_branch, message.method))
        if cached is not None and message.method != "ACK":
            self.send(cached[1], addr)  # a retransmission: same answer, no second effect
            return
        unsupported = self._unsupported_extensions(message)
        if unsupported and message.method not in ("ACK", "CANCEL"):
            self.respond(
                message, 420, destination=addr, extra_headers=[("Unsupported", ", ".join(unsupported))]
            )
            return
        handler = getattr(self, f"_on_{message.method.lower()}", None)
        if message.method in ALLOWED_METHODS and handler is not None:
            handler(message, addr)
        elif message.method in KNOWN_UNSUPPORTED_METHODS:
            self.respond(message, 405, destination=addr)
        else:
            self.respond(message, 501, destination=addr)

    def _unsupported_extensions(self, message: SipMessage) -> list[str]:
        required = [
            option.strip()
            for value in message.header_values("Require")
            for option in value.split(",")
            if option.strip()
        ]
        return [option for option in required if option not in SUPPORTED_EXTENSIONS]

    def _expire_responses(self) -> None:
        if len(self._responses) < 256:
            return
        horizon = time.monotonic() - TRANSACTION_SECONDS
        self._responses = {key: value for key, value in self._responses.items() if value[0] >= horizon}

    def _on_response(self, response: SipMessage) -> None:
        try:
            method = response.cseq[1]
        except SipParseError:
            return
        transaction = self._client.get((response.top_branch, method))
        if transaction is None or transaction.future.done():
            return
        if response.status < 200:
            transaction.provisional.set()
        else:
            transaction.future.set_result(response)

    def _dialog_call(self, message: SipMessage) -> SipCall | None:
        call = self.calls.get(message.call_id)
        if call is None:
            return None
        # In requests from the caller, their tag is in From and ours in To.
        if message.from_tag != call.remote_tag or message.to_tag != call.local_tag:
            return None
        return call

    def _on_invite(self, request: SipMessage, addr: tuple[str, int]) -> None:
        if request.to_tag:
            self._on_reinvite(request, addr)
            return
        if request.call_id in self.calls:
            # Same Call-ID, new branch, no To tag: a merged/forked request (§8.2.2.2).
            self.respond(request, 482, destination=addr)
            return
        if request.body and request.header("Content-Type").split(";")[0].strip().lower() != "application/sdp":
            self.respond(request, 415, destination=addr, extra_headers=[("Accept", "application/sdp")])
            return
        offer: MediaOffer | None = None
        try:
            if request.body:
                offer = parse_offer(request.body)
                negotiated = negotiate(offer)
            else:  # late offer: we offer in the 200 OK, the codec is settled by the ACK's answer
                negotiated = Negotiated(codec="PCMU", payload_type=0, telephone_event_type=101)
        except SdpError as error:
            logger.info("SIP INVITE %s refused: %s", request.call_id, error)
            self.respond(request, 488, destination=addr, extra_headers=[("Warning", f'304 fedele "{error}"')])
            return
        self.respond(request, 100, destination=addr)
        call = SipCall(agent=self, invite=request, source=addr, offer=offer, negotiated=negotiated)
        self.calls[request.call_id] = call
        self._pending_invites[request.top_branch] = call
        task = asyncio.get_running_loop().create_task(self._run_call(call))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run_call(self, call: SipCall) -> None:
        try:
            call.rtp = await self._open_media(call)
            if call.state == CallState.ENDED:  # cancelled while we opened the port
                call.rtp.close()
                return
            await self.handler(call)
        except CallEnded:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("SIP call %s failed", call.call_id)
            with contextlib.suppress(Exception):
                if call.state == CallState.RINGING:
                    self.respond(call.invite, 500, to_tag=call.local_tag, destination=call.source)
                    call.finish(HangupCause.REJECTED)
                else:
                    await call.hangup()
        finally:
            if call.state != CallState.ENDED:
                with contextlib.suppress(Exception):
                    await call.hangup()

    async def _open_media(self, call: SipCall) -> RtpSession:
        loop = asyncio.get_running_loop()

        def factory() -> RtpSession:
            return RtpSession(
                codec=call.negotiated.codec,
                payload_type=call.negotiated.payload_type,
                telephone_event_type=call.negotiated.telephone_event_type,
                remote=(call.offer.address, call.offer.port) if call.offer is not None else ("", 0),
                on_digit=call.digit_received,
            )

        if self.rtp_ports is None:
            _, protocol = await loop.create_datagram_endpoint(factory, local_addr=(self.host, 0))
            return protocol
        low, high = self.rtp_ports
        for port in range(low + low % 2, high + 1, 2):  # RTP on even ports (RFC 3550 §11)
            try:
                _, protocol = await loop.create_datagram_endpoint(factory, local_addr=(self.host, port))
            except OSError:
                continue
            return protocol
        raise OSError("no free RTP port in the configured range")

    def _on_reinvite(self, request: SipMessage, addr: tuple[str, int]) -> None:
        call = self._dialog_call(request)
        if call is None:
            self.respond(request, 481, destination=addr)
            return
        assert call.rtp is not None
        try:
            offer = parse_offer(request.body) if request.body else call.offer
            if offer is None:
                raise SdpError("no offer yet")
            negotiated = negotiate(offer) if request.body else call.negotiated
        except SdpError:
            self.respond(request, 488, destination=addr, to_tag=call.local_tag)
            return
        if negotiated.codec != call.negotiated.codec:
            self.respond(request, 488, destination=addr, to_tag=call.local_tag)
            return
        call.offer = offer
        if not offer.on_hold or offer.direction != "sendrecv":  # c=0.0.0.0 hold keeps the old address
            call.rtp.remote = (offer.address, offer.port)
        on_hold = offer.on_hold
        call.rtp.sending_paused = on_hold
        direction = {"sendonly": "recvonly", "inactive": "inactive", "recvonly": "sendonly"}.get(
            offer.direction, "recvonly" if on_hold else "sendrecv"
        )
        call.local_cseq += 0
        body = build_answer(
            address=self.advertised_host,
            port=call.rtp.local_port,
            negotiated=call.negotiated,
            version=int(time.time()) % 100_000,
            direction=direction,
        )
        self.respond(request, 200, destination=addr, to_tag=call.local_tag, body=body)
        if on_hold != call.remote_hold:
            call.remote_hold = on_hold
            if call.on_remote_hold is not None:
                call.on_remote_hold(on_hold)

    def _on_ack(self, request: SipMessage, addr: tuple[str, int]) -> None:
        call = self.calls.get(request.call_id)
        if call is None or request.from_tag != call.remote_tag:
            return  # an ACK to a non-2xx final response, absorbed by the transaction
        if call.state == CallState.ANSWERED:
            call.state = CallState.CONFIRMED
            if call.offer is None and not self._accept_late_answer(call, request):
                call.acknowledged.set()
                task = asyncio.get_running_loop().create_task(call.hangup())
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
                return
        call.acknowledged.set()
        self._pending_invites.pop(call.invite.top_branch, None)

    def _accept_late_answer(self, call: SipCall, ack: SipMessage) -> bool:
        """The caller's answer to our offer, in the ACK. No usable answer: the call cannot have
        media, and RFC 3261 §13.3.1.4 says to end it with a BYE."""
        try:
            answer = parse_offer(ack.body)
            negotiated = negotiate(answer)
        except SdpError as error:
            logger.info("SIP call %s: unusable answer in the ACK: %s", call.call_id, error)
            return False
        call.offer, call.negotiated = answer, negotiated
        if call.rtp is not None:
            call.rtp.codec = negotiated.codec
            call.rtp.payload_type = negotiated.payload_type
            call.rtp.telephone_event_type = negotiated.telephone_event_type
            call.rtp.remote = (answer.address, answer.port)
        return True

    def _on_bye(self, request: SipMessage, addr: tuple[str, int]) -> None:
        call = self._dialog_call(request)
        if call is None:
            self.respond(request, 481, destination=addr)
            return
        self.respond(request, 200, destination=addr, to_tag=call.local_tag)
        call.finish(HangupCause.REMOTE_BYE)

    def _on_cancel(self, request: SipMessage, addr: tuple[str, int]) -> None:
        call = self._pending_invites.get(request.top_branch)
        if call is None or call.call_id != request.call_id:
            self.respond(request, 481, destination=addr)
            return
        self.respond(request, 200, destination=addr, to_tag=call.local_tag)
        if call.state == CallState.RINGING:
            self.respond(call.invite, 487, destination=call.source, to_tag=call.local_tag)
            call.finish(HangupCause.CANCELLED)

    def _on_options(self, request: SipMessage, addr: tuple[str, int]) -> None:
        if request.to_tag and self._dialog_call(request) is None:
            self.respond(request, 481, destination=addr)
            return
        self.respond(request, 200, destination=addr, extra_headers=[("Accept", "application/sdp")])

    def _on_info(self, request: SipMessage, addr: tuple[str, int]) -> None:
        call = self._dialog_call(request)
        if call is None:
            self.respond(request, 481, destination=addr)
            return
        content_type = request.header("Content-Type").split(";")[0].strip().lower()
        digit = ""
        if content_type == "application/dtmf-relay":
            for line in request.body.decode("utf-8", errors="replace").splitlines():
                name, _, value = line.partition("=")
                if name.strip().lower() == "signal":
                    digit = DTMF_INFO_SIGNALS.get(value.strip(), "")
        elif content_type == "application/dtmf":
            digit = DTMF_INFO_SIGNALS.get(request.body.decode("utf-8", errors="replace").strip(), "")
        elif request.body:
            self.respond(request, 415, destination=addr, to_tag=call.local_tag)
            return
        self.respond(request, 200, destination=addr, to_tag=call.local_tag)
        if digit:
            call.digit_received(digit, "sip-info")

    def _on_notify(self, request: SipMessage, addr: tuple[str, int]) -> None:
        call = self._dialog_call(request)
        if call is None:
            self.respond(request, 481, destination=addr)
            return
        self.respond(request, 200, destination=addr, to_tag=call.local_tag)
        if not request.header("Event").lower().startswith("refer"):
            return
        fragment = request.body.decode("utf-8", errors="replace").strip().split("\n", 1)[0].split()
        if len(fragment) >= 2 and fragment[0] == "SIP/2.0" and fragment[1].isdigit():
            status = int(fragment[1])
            if call.on_refer_progress is not None:
                call.on_refer_progress(status)
            outcome = call.refer_outcome
            if status >= 200 and outcome is not None and not outcome.done():
                outcome.set_result(status)
        if header_parameters(";" + request.header("Subscription-State")).get("terminated") is not None:
            return

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
from dataclasses import dataclass
from typing import cast

from fedele.contact_center.telephony.sip.call import (
    T1,
    T2,
    TRANSACTION_SECONDS,
    CallEnded,
    CallState,
    HangupCause,
    SipCall,
)
from fedele.contact_center.telephony.sip.media import RtpSession
from fedele.contact_center.telephony.sip.message import (
    SipMessage,
    SipParseError,
    header_parameters,
    new_branch,
    parse_message,
    response_to,
    salvage_response,
)
from fedele.contact_center.telephony.sip.sdp import (
    MediaOffer,
    Negotiated,
    SdpError,
    build_answer,
    negotiate,
    parse_offer,
)

logger = logging.getLogger(__name__)

ALLOWED_METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "NOTIFY")
# Methods we know and deliberately do not serve: 405 (§8.2.1). Anything else is unknown: 501 (§21.5.2).
KNOWN_UNSUPPORTED_METHODS = ("REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE", "REFER", "UPDATE", "PRACK")
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset()
USER_AGENT = "fedele-sip/1"
DTMF_INFO_SIGNALS = {str(i): str(i) for i in range(10)} | {"*": "*", "#": "#", "10": "*", "11": "#"}


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

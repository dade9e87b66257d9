"""fedele's SIP user agent over UDP (RFC 3261), on asyncio.

It answers calls from a PBX or SIP trunk and hands each one to a call handler (the IVR application)
as a ``SipCall`` with high-level operations: answer, play, collect digits, record, hold, transfer
(REFER), send DTMF, hang up. It also places calls through the configured trunk (``dial``): the
INVITE client transaction with its provisional responses, one digest-authenticated retry after a
401/407, CANCEL when the call is hung up before the answer or rings too long, and the ACK.

Transactions are kept as small as RFC 3261 allows for a UA over UDP:
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
import socket
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
from fedele.contact_center.telephony.sip.digest import DigestError, authorization, best_challenge
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
from fedele.contact_center.telephony.sip.trunk import Trunk

logger = logging.getLogger(__name__)

ALLOWED_METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "NOTIFY")
# Methods we know and deliberately do not serve: 405 (§8.2.1). Anything else is unknown: 501 (§21.5.2).
KNOWN_UNSUPPORTED_METHODS = ("REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE", "REFER", "UPDATE", "PRACK")
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset()
USER_AGENT = "fedele-sip/1"
DTMF_INFO_SIGNALS = {str(i): str(i) for i in range(10)} | {"*": "*", "#": "#", "10": "*", "11": "#"}


CallHandler = Callable[[SipCall], Awaitable[None]]
# Final responses to our INVITE that mean nobody took the call, in Twilio's CallStatus words (the
# event path's vocabulary); any other failure is "failed".
UNANSWERED_STATUSES = {486: "busy", 600: "busy", 603: "busy", 408: "no-answer", 480: "no-answer"}
OUTBOUND_FAILURE_CAUSES = {
    "busy": "busy",
    "no-answer": "no_answer",
    "canceled": "cancelled",
    "failed": "rejected",
}


@dataclass(slots=True)
class _ClientTransaction:
    future: asyncio.Future[SipMessage]
    provisional: asyncio.Event
    on_provisional: Callable[[SipMessage], None] | None = None


@dataclass(frozen=True, slots=True)
class DialOutcome:
    """How an outbound INVITE ended: ``answered`` or why not (``busy``, ``no-answer``, ``canceled``,
    ``failed``), the final SIP status (0 when none came) and a cause for the hang-up event."""

    status: str
    sip_status: int = 0
    cause: str = ""


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
        # Our ACKs by the INVITE's branch: a retransmitted final response gets the same ACK again.
        self._acks: dict[str, tuple[float, bytes, tuple[str, int]]] = {}
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
        for route in call.route_set:
            request.add_header("Route", route)
        request.add_header("From", call.local_address)
        request.add_header("To", call.remote_address)
        request.add_header("Call-ID", call.call_id)
        request.add_header("CSeq", f"{cseq} {method}")
        request.add_header("Contact", self.contact)
        request.add_header("User-Agent", USER_AGENT)
        for name, value in extra_headers or []:
            request.add_header(name, value)
        request.body = body
        response = await self._transact(request, call.source)
        if response is None:
            logger.warning("SIP %s for call %s timed out", method, call.call_id)
        elif method == "INVITE" and 200 <= response.status < 300:
            self._acknowledge(call, response, cseq, branch=branch)
        return response

    async def _transact(self, request: SipMessage, destination: tuple[str, int]) -> SipMessage | None:
        """A client transaction for ``request`` (timers A/E, B/F): its final response, or None after
        64·T1 without one."""
        data = request.to_bytes()
        method = request.method
        loop = asyncio.get_running_loop()
        transaction = _ClientTransaction(future=loop.create_future(), provisional=asyncio.Event())
        key = (request.top_branch, method)
        self._client[key] = transaction
        try:
            interval = T1
            deadline = loop.time() + TRANSACTION_SECONDS
            self.send(data, destination)
            while loop.time() < deadline:
                try:
                    return await asyncio.wait_for(asyncio.shield(transaction.future), timeout=interval)
                except TimeoutError:
                    if not transaction.provisional.is_set():
                        self.send(data, destination)
                    interval = interval * 2 if method == "INVITE" else min(interval * 2, T2)
            return None
        finally:
            self._client.pop(key, None)

    def _acknowledge(self, call: SipCall, response: SipMessage, cseq: int, *, branch: str) -> None:
        """The ACK to a 2xx (§13.2.2.4): a new transaction to the remote target along the route set;
        kept under the INVITE's ``branch`` so a retransmitted 2xx is acknowledged again."""
        ack = SipMessage(method="ACK", uri=call.remote_target)
        ack.add_header("Via", f"SIP/2.0/UDP {self.advertised_host}:{self.port};branch={new_branch()};rport")
        ack.add_header("Max-Forwards", "70")
        for route in call.route_set:
            ack.add_header("Route", route)
        ack.add_header("From", response.header("From"))
        ack.add_header("To", response.header("To"))
        ack.add_header("Call-ID", call.call_id)
        ack.add_header("CSeq", f"{cseq} ACK")
        self._send_ack(branch, ack.to_bytes(), call.source)

    def _send_ack(self, branch: str, data: bytes, destination: tuple[str, int]) -> None:
        now = time.monotonic()
        if len(self._acks) >= 256:
            horizon = now - TRANSACTION_SECONDS
            self._acks = {key: value for key, value in self._acks.items() if value[0] >= horizon}
        self._acks[branch] = (now, data, destination)
        self.send(data, destination)

    def forget_call(self, call: SipCall) -> None:
        self.calls.pop(call.call_id, None)
        self._pending_invites.pop(call.invite.top_branch, None)

    # ---- placing calls (UAC) ----

    def outbound_call(self, *, call_id: str, to_user: str, from_user: str, trunk: Trunk) -> SipCall:
        """A call we are about to place (registered, nothing sent yet; ``dial`` sends the INVITE).
        ``to_user`` and ``from_user`` are checked by ``trunk.diallable`` / ``caller_user``."""
        request_uri = f"sip:{to_user}@{trunk.domain}"
        tag = new_tag()
        invite = SipMessage(method="INVITE", uri=request_uri)
        invite.add_header(
            "Via", f"SIP/2.0/UDP {self.advertised_host}:{self.port};branch={new_branch()};rport"
        )
        invite.add_header("Max-Forwards", "70")
        invite.add_header("From", f"<sip:{from_user}@{trunk.domain}>;tag={tag}")
        invite.add_header("To", f"<{request_uri}>")
        invite.add_header("Call-ID", call_id)
        invite.add_header("CSeq", "1 INVITE")
        invite.add_header("Contact", self.contact)
        invite.add_header("Allow", ", ".join(ALLOWED_METHODS))
        invite.add_header("User-Agent", USER_AGENT)
        invite.add_header("Content-Type", "application/sdp")
        call = SipCall(
            agent=self,
            invite=invite,
            source=(trunk.proxy_host, trunk.proxy_port),
            offer=None,
            negotiated=Negotiated(codec="PCMU", payload_type=0, telephone_event_type=101),
            local_tag=tag,
            outbound=True,
        )
        self.calls[call_id] = call
        return call

    async def dial(
        self, call: SipCall, *, trunk: Trunk, on_provisional: Callable[[SipMessage], None] | None = None
    ) -> DialOutcome:
        """Send the call's INVITE (with our SDP offer) and see it through to the answer or a failure.
        Answered: the call is confirmed (ACK sent) with its media flowing to the answer's address.
        Not answered: the outcome says why; the call is finished, or confirmed when a 2xx came that
        we cannot keep (no usable SDP, or hung up meanwhile): then the caller ends it with a BYE."""
        loop = asyncio.get_running_loop()
        call.rtp = await self._open_media(call)
        call.invite.body = build_offer(address=self.advertised_host, port=call.rtp.local_port)
        try:
            addresses = await loop.getaddrinfo(
                trunk.proxy_host, trunk.proxy_port, family=socket.AF_INET, type=socket.SOCK_DGRAM
            )
        except OSError:
            call.finish(HangupCause.REJECTED)
            return DialOutcome("failed", cause="proxy_unresolvable")
        call.source = (str(addresses[0][4][0]), int(addresses[0][4][1]))
        ring_timer = loop.call_later(trunk.ring_timeout_seconds, call.cancel_requested.set)
        timed_out = False

        def ring_timed_out() -> bool:
            return call.cancel_requested.is_set() and ring_timer.when() <= loop.time()

        try:
            request = call.invite
            authenticated = False
            while True:
                response = await self._invite_transaction(call, request, on_provisional)
                timed_out = ring_timed_out()
                if response is None:
                    call.finish(HangupCause.REJECTED)
                    if call.cancel_requested.is_set():
                        return DialOutcome("no-answer" if timed_out else "canceled", cause="no_response")
                    return DialOutcome("failed", cause="no_response")
                status = response.status
                if 200 <= status < 300:
                    break
                if status in (401, 407) and not authenticated and not call.cancel_requested.is_set():
                    retry = self._authenticated_invite(request, response, trunk)
                    if retry is not None:
                        authenticated = True
                        request = call.invite = retry
                        call.local_cseq = retry.cseq[0]
                        continue
                call.finish(HangupCause.REJECTED)
                if status in (401, 407):
                    return DialOutcome("failed", status, "authentication_failed")
                if call.cancel_requested.is_set() and status == 487:
                    return DialOutcome("no-answer" if timed_out else "canceled", status, "cancelled")
                outcome = UNANSWERED_STATUSES.get(status, "failed")
                return DialOutcome(outcome, status, OUTBOUND_FAILURE_CAUSES[outcome])
        finally:
            ring_timer.cancel()
        return self._answered(call, response, request)

    def _answered(self, call: SipCall, response: SipMessage, request: SipMessage) -> DialOutcome:
        call.peer_tag = response.to_tag
        call.peer_contact = uri_of(response.header("Contact"))
        call.route_set = list(reversed(response.header_values("Record-Route")))
        self._acknowledge(call, response, request.cseq[0], branch=request.top_branch)
        call.state = CallState.CONFIRMED
        call.acknowledged.set()
        try:
            answer = parse_offer(response.body)
            negotiated = negotiate(answer)
            if negotiated.codec not in ("PCMU", "PCMA") or answer.port == 0:
                raise SdpError("no usable audio")
        except SdpError as error:
            logger.info("SIP call %s: unusable answer: %s", call.call_id, error)
            return DialOutcome("failed", response.status, "no_media")  # the caller sends the BYE
        call.offer, call.negotiated = answer, negotiated
        if call.rtp is not None:
            call.rtp.codec = negotiated.codec
            call.rtp.payload_type = negotiated.payload_type
            call.rtp.telephone_event_type = negotiated.telephone_event_type
            call.rtp.remote = (answer.address, answer.port)
        if call.cancel_requested.is_set():  # hung up (or timed out) while the answer was on its way
            return DialOutcome("canceled", response.status, "cancelled")  # the caller sends the BYE
        return DialOutcome("answered", response.status)

    async def _invite_transaction(
        self, call: SipCall, request: SipMessage, on_provisional: Callable[[SipMessage], None] | None
    ) -> SipMessage | None:
        """The INVITE client transaction (§17.1.1): retransmit until a provisional response (timer A),
        give up after 64·T1 without any (timer B), CANCEL once asked to and a provisional response
        came (§9.1), and ACK a non-2xx final response on the same branch. Returns the final response."""
        loop = asyncio.get_running_loop()
        branch = request.top_branch
        transaction = _ClientTransaction(
            future=loop.create_future(), provisional=asyncio.Event(), on_provisional=on_provisional
        )
        key = (branch, "INVITE")
        self._client[key] = transaction
        data = request.to_bytes()
        interval = T1
        next_send = loop.time() + interval
        deadline = loop.time() + TRANSACTION_SECONDS
        cancelling = False
        try:
            self.send(data, call.source)
            while not transaction.future.done():
                now = loop.time()
                if call.cancel_requested.is_set() and transaction.provisional.is_set() and not cancelling:
                    cancelling = True
                    deadline = now + TRANSACTION_SECONDS  # for the 487 that answers our CANCEL
                    task = loop.create_task(self._cancel(request, call.source))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
                if not transaction.provisional.is_set() and now >= next_send:
                    self.send(data, call.source)
                    interval *= 2
                    next_send = now + interval
                if now >= deadline and (cancelling or not transaction.provisional.is_set()):
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(transaction.future), timeout=0.05)
            response = transaction.future.result()
        finally:
            self._client.pop(key, None)
        if response.status >= 300:
            self._send_ack(branch, self._ack_for_failure(request, response), call.source)
        return response

    async def _cancel(self, invite: SipMessage, destination: tuple[str, int]) -> None:
        response = await self._transact(self._cancel_for(invite), destination)
        if response is None:
            logger.warning("SIP CANCEL of call %s got no response", invite.call_id)

    @staticmethod
    def _cancel_for(invite: SipMessage) -> SipMessage:
        """CANCEL of ``invite`` (§9.1): its Request-URI, top Via, From, To, Call-ID, Route, CSeq number."""
        cancel = _same_transaction(invite, "CANCEL", to=invite.header("To"))
        cancel.add_header("User-Agent", USER_AGENT)
        return cancel

    @staticmethod
    def _ack_for_failure(invite: SipMessage, response: SipMessage) -> bytes:
        """The ACK of a non-2xx final response (§17.1.1.3): same branch, the response's To."""
        return _same_transaction(invite, "ACK", to=response.header("To")).to_bytes()

    def _authenticated_invite(
        self, invite: SipMessage, response: SipMessage, trunk: Trunk
    ) -> SipMessage | None:
        """The INVITE again with credentials for the 401/407 challenge (new branch, CSeq + 1);
        None when we have no password or cannot answer the challenge."""
        if not trunk.auth_password:
            return None
        proxy = response.status == 407
        try:
            challenge = best_challenge(
                response.header_values("Proxy-Authenticate" if proxy else "WWW-Authenticate")
            )
        except DigestError as error:
            logger.warning("SIP call %s: cannot answer the challenge: %s", invite.call_id, error)
            return None
        credentials = authorization(
            challenge,
            username=trunk.auth_username,
            password=trunk.auth_password,
            method="INVITE",
            uri=invite.uri,
        )
        retry = SipMessage(method="INVITE", uri=invite.uri, body=invite.body)
        for name, value in invite.headers:
            if name == "Via":
                value = f"SIP/2.0/UDP {self.advertised_host}:{self.port};branch={new_branch()};rport"
            elif name == "CSeq":
                value = f"{invite.cseq[0] + 1} INVITE"
            elif name in ("Authorization", "Proxy-Authorization"):
                continue
            retry.add_header(name, value)
        retry.add_header("Proxy-Authorization" if proxy else "Authorization", credentials)
        return retry

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
            acknowledged = self._acks.get(response.top_branch) if method == "INVITE" else None
            if acknowledged is not None and response.status >= 200:
                self.send(acknowledged[1], acknowledged[2])  # our ACK was lost: the same ACK again
            return
        if response.status < 200:
            transaction.provisional.set()
            if transaction.on_provisional is not None:
                transaction.on_provisional(response)
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


def _same_transaction(invite: SipMessage, method: str, *, to: str) -> SipMessage:
    """A request in the INVITE's own transaction (CANCEL, or the ACK of a failure): its Request-URI, top
    Via (same branch), Route set, From, Call-ID and CSeq number, with ``to`` as the To header."""
    request = SipMessage(method=method, uri=invite.uri)
    request.add_header("Via", invite.header_values("Via")[0])
    request.add_header("Max-Forwards", "70")
    for route in invite.header_values("Route"):
        request.add_header("Route", route)
    request.add_header("From", invite.header("From"))
    request.add_header("To", to)
    request.add_header("Call-ID", invite.call_id)
    request.add_header("CSeq", f"{invite.cseq[0]} {method}")
    return request

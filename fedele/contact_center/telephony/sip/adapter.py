"""The SIP ``TelephonyAdapter``: call control for calls the SIP user agent is holding.

Commands go straight to the user agent when it runs in this process (``cc_sip_server`` embedded, or
tests); otherwise they are published on the channel layer group ``cc.sip.control``, which the
``cc_sip_server`` process listens to (Redis-backed in production).

| port method        | SIP                                                                       |
|--------------------|---------------------------------------------------------------------------|
| ``originate``      | INVITE through the trunk (``FEDELE_SIP_OUTBOUND_PROXY``), digest auth      |
| ``connect_agent``  | blind REFER of the queued caller to the agent's extension on the PBX      |
| ``hangup``         | BYE                                                                       |
| ``hold``           | re-INVITE with ``a=sendonly`` (``a=sendrecv`` to resume), RFC 3264 §8.4  |
| ``mute``           | stop sending our RTP (the caller hears silence)                            |
| ``transfer``       | REFER (cold); a warm transfer is the PBX's job once the agent has the call |
| ``conference``     | not here: the agent's phone does it (NotImplementedError)                 |
| ``send_dtmf``      | RFC 4733 telephone-events on the call's RTP stream                         |
| ``recording_pause``| pauses the voicemail recorder (conversations are recorded by the PBX)     |

Once a call is handed to an agent the PBX carries it: hold, mute, transfer and DTMF are then done on
the agent's phone, and ``hangup`` has nothing left to do on our side.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from typing import Any

from asgiref.sync import async_to_sync
from django.utils.translation import gettext as _

from fedele.contact_center.telephony.port import TelephonyAdapter
from fedele.contact_center.telephony.sip.server import CONTROL_GROUP, SipServer, running_server
from fedele.contact_center.telephony.sip.trunk import configured_trunk, diallable
from fedele.shared.errors import Conflict

COMMAND_TIMEOUT_SECONDS = 40.0


class SipAdapter(TelephonyAdapter):
    name = "sip"

    def originate(self, *, to_number: str, from_number: str, context: dict[str, Any]) -> str:
        """An INVITE to ``to_number`` through the configured trunk; returns its Call-ID at once (the
        call's progress arrives as call events). A number that cannot be dialled or a missing trunk
        is refused here, before anything is sent."""
        trunk = configured_trunk()
        number = diallable(to_number)
        interaction = str(context.get("interaction") or context.get("interaction_id") or "")
        plain: dict[str, Any] = {
            key: value
            for key, value in context.items()
            if key in ("campaign", "dial_attempt", "flow") and isinstance(value, str) and value
        }
        if interaction:
            plain["interaction"] = interaction
        call_ref = f"{secrets.token_hex(12)}@{trunk.domain}"
        server = running_server()
        if server is None:
            self._publish(call_ref, "originate", to_number=number, from_number=from_number, context=plain)
            return call_ref
        self._run(
            server,
            server.originate(call_ref=call_ref, to_number=number, from_number=from_number, context=plain),
        )
        return call_ref

    def connect_agent(self, call_ref: str, *, agent_target: str) -> None:
        server = self._local(call_ref)
        if server is None:
            if running_server() is None:
                self._publish(call_ref, "connect_agent", target=agent_target)
            return  # not live here any more: already handed to the agent (or ended)
        application = server.application

        async def connect() -> bool:
            return application.connect(call_ref, agent_target)

        if not self._run(server, connect()):
            raise Conflict(_("The call is no longer waiting in the queue."), code="call_not_queued")

    def hangup(self, call_ref: str) -> None:
        self._command(call_ref, "hangup", missing_ok=True)

    def hold(self, call_ref: str, *, on: bool) -> None:
        self._command(call_ref, "hold", on=on)

    def mute(self, call_ref: str, *, on: bool) -> None:
        self._command(call_ref, "mute", on=on)

    def transfer(self, call_ref: str, *, target: str, warm: bool) -> None:
        if warm:
            raise NotImplementedError("warm transfers are done on the agent's phone")
        self._command(call_ref, "transfer", target=target)

    def conference(self, call_ref: str, *, target: str) -> None:
        raise NotImplementedError("conferences are done on the agent's phone")

    def send_dtmf(self, call_ref: str, digits: str) -> None:
        self._command(call_ref, "send_dtmf", digits=digits)

    def recording_pause(self, call_ref: str, *, paused: bool) -> None:
        self._command(call_ref, "recording_pause", paused=paused)

    # ---- plumbing ----

    @staticmethod
    def _local(call_ref: str) -> SipServer | None:
        server = running_server()
        if server is None or server.live_call(call_ref) is None:
            return None
        return server

    @staticmethod
    def _run(server: SipServer, coroutine: Any) -> Any:
        if server.loop is not None and _on_loop_thread(server.loop):
            server.submit(coroutine)  # called from the loop itself: do not wait on ourselves
            return True
        return server.run(coroutine, timeout=COMMAND_TIMEOUT_SECONDS)

    def _command(self, call_ref: str, action: str, *, missing_ok: bool = False, **params: Any) -> None:
        server = self._local(call_ref)
        if server is None:
            if running_server() is not None and not missing_ok:
                # Our user agent runs here and does not hold the call: it was handed to an agent's
                # phone (or has ended), so the PBX is the one to act.
                raise Conflict(
                    _("The call is on the agent's phone now: use the phone for this."), code="call_on_phone"
                )
            if running_server() is None:
                self._publish(call_ref, action, **params)
            return
        done = self._run(server, server.control({"action": action, "call_ref": call_ref, **params}))
        if not done and not missing_ok:
            raise Conflict(_("The call has ended."), code="call_ended")

    @staticmethod
    def _publish(call_ref: str, action: str, **params: Any) -> None:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is None:
            raise Conflict(_("The SIP server is not running."), code="sip_server_unavailable")
        async_to_sync(layer.group_send)(
            CONTROL_GROUP, {"type": "sip.control", "action": action, "call_ref": call_ref, **params}
        )


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return threading.current_thread().name == "fedele-sip"


_adapter = SipAdapter()


def sip_adapter() -> SipAdapter:
    return _adapter

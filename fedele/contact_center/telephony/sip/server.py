"""Running the SIP user agent: in the foreground (``manage.py cc_sip_server``) or on a background
thread of the current process (tests, or an embedded single-process run).

The running server registers itself so the SIP ``TelephonyAdapter`` in the same process can reach its
calls directly; a server in another process listens for the same commands on the channel layer group
``cc.sip.control`` (Redis in production).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from fedele.contact_center.telephony.sip.application import DatabaseThread, IvrApplication, prompt_directory
from fedele.contact_center.telephony.sip.audio import PromptLibrary
from fedele.contact_center.telephony.sip.call import SipCall
from fedele.contact_center.telephony.sip.trunk import caller_user, configured_trunk, diallable
from fedele.contact_center.telephony.sip.ua import SipUserAgent

logger = logging.getLogger(__name__)

CONTROL_GROUP = "cc.sip.control"
Result = TypeVar("Result")

_running: list[SipServer] = []
_running_lock = threading.Lock()


def running_server() -> SipServer | None:
    with _running_lock:
        return _running[-1] if _running else None


class SipServer:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 5060,
        advertised_host: str = "",
        rtp_ports: tuple[int, int] | None = None,
        allowed_sources: list[str] | None = None,
        default_flow: str = "",
        answer_after_seconds: float = 0.0,
        prompts_dir: Path | None = None,
        connections_override: dict[str, Any] | None = None,
        listen_for_control: bool = False,
    ) -> None:
        self.database = DatabaseThread(connections_override=connections_override)
        self.application = IvrApplication(
            prompts=PromptLibrary(prompts_dir or prompt_directory()),
            database=self.database,
            default_flow=default_flow,
            answer_after_seconds=answer_after_seconds,
        )
        self.user_agent = SipUserAgent(
            handler=self.application.handle,
            host=host,
            port=port,
            advertised_host=advertised_host,
            rtp_ports=rtp_ports,
            allowed_sources=allowed_sources,
        )
        self.listen_for_control = listen_for_control
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._control_task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return self.user_agent.port

    # ---- foreground ----

    async def serve(self) -> None:
        """Run until ``request_stop``; used by the management command and by ``start_in_thread``."""
        self.loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        await self.user_agent.start()
        with _running_lock:
            _running.append(self)
        if self.listen_for_control:
            self._control_task = self.loop.create_task(self._listen_for_control())
        try:
            await self._stopped.wait()
        finally:
            with _running_lock:
                if self in _running:
                    _running.remove(self)
            if self._control_task is not None:
                self._control_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._control_task
            await self.user_agent.stop()

    def request_stop(self) -> None:
        if self.loop is not None and self._stopped is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._stopped.set)

    # ---- background thread ----

    def start_in_thread(self, *, timeout: float = 10.0) -> None:
        started = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            async def run() -> None:
                serving = asyncio.ensure_future(self.serve())
                while self.user_agent.transport is None and not serving.done():
                    await asyncio.sleep(0.01)
                started.set()
                await serving

            try:
                asyncio.run(run())
            except BaseException as error:  # surfaced to the starting thread
                failure.append(error)
                started.set()

        self._thread = threading.Thread(target=main, name="fedele-sip", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise TimeoutError("the SIP server did not start")
        if failure:
            raise failure[0]

    def stop(self, *, timeout: float = 15.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
        self.database.shutdown()

    def run(self, coroutine: Coroutine[Any, Any, Result], *, timeout: float = 40.0) -> Result:
        """Run a coroutine on the server's loop from another thread and wait for its result."""
        assert self.loop is not None
        future: concurrent.futures.Future[Result] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout)

    def submit(self, coroutine: Coroutine[Any, Any, Result]) -> concurrent.futures.Future[Result]:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def live_call(self, call_ref: str) -> SipCall | None:
        return self.user_agent.calls.get(call_ref)

    # ---- placing calls ----

    async def originate(
        self, *, call_ref: str, to_number: str, from_number: str, context: dict[str, Any]
    ) -> str:
        """Start an outbound call (the INVITE goes out from a task of its own); returns ``call_ref``
        once the call is registered, so a hang-up right after finds it."""
        trunk = configured_trunk()
        call = self.user_agent.outbound_call(
            call_id=call_ref,
            to_user=diallable(to_number),
            from_user=caller_user(from_number, trunk),
            trunk=trunk,
        )
        plain = {
            str(key): str(value) for key, value in context.items() if isinstance(value, (str, int, float))
        }
        task = asyncio.get_running_loop().create_task(
            self.application.handle_outbound(call, trunk=trunk, context=plain)
        )
        self.user_agent.tasks.add(task)
        task.add_done_callback(self.user_agent.tasks.discard)
        return call.call_id

    # ---- commands from other processes ----

    async def _listen_for_control(self) -> None:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is None:
            logger.warning("no channel layer: the SIP server takes call-control commands only in-process")
            return
        channel = await layer.new_channel()
        await layer.group_add(CONTROL_GROUP, channel)
        try:
            while True:
                message = await layer.receive(channel)
                with contextlib.suppress(Exception):
                    await self.control(message)
        finally:
            with contextlib.suppress(Exception):
                await layer.group_discard(CONTROL_GROUP, channel)

    async def control(self, message: dict[str, Any]) -> bool:
        """Perform one call-control command on a call of ours. False when the call is not here."""
        if message.get("action") == "originate":
            await self.originate(
                call_ref=str(message.get("call_ref") or ""),
                to_number=str(message.get("to_number") or ""),
                from_number=str(message.get("from_number") or ""),
                context=dict(message.get("context") or {}),
            )
            return True
        call = self.user_agent.calls.get(str(message.get("call_ref") or ""))
        if call is None:
            return False
        action = message.get("action")
        if action == "hangup":
            await call.hangup()
        elif action == "connect_agent":
            return self.application.connect(call.call_id, str(message.get("target") or ""))
        elif action == "hold":
            await call.hold(on=bool(message.get("on")))
        elif action == "mute":
            if call.rtp is not None:
                call.rtp.sending_paused = bool(message.get("on"))
        elif action == "transfer":
            record = self.application.record_for(call.call_id)
            if record is not None:
                await self.application.transfer_out(record, str(message.get("target") or ""))
        elif action == "send_dtmf":
            await call.send_dtmf(str(message.get("digits") or ""))
        elif action == "recording_pause":
            if call.rtp is not None:
                call.rtp.recording_paused = bool(message.get("paused"))
        else:
            return False
        return True

"""The telephony port: what every adapter (Twilio, SIP, simulator) speaks.

Inbound, an adapter turns its provider's callbacks into ``CallEvent``s with one of the normalised
kinds below (Zammad's CTI events) and hands them to ``telephony.events.call_event_apply``, which
updates the Interaction. Outbound, the desktop and the dialer drive calls through ``TelephonyAdapter``;
``adapter_for(provider)`` picks the adapter a call belongs to.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class CallEventKind(StrEnum):
    NEW = "call.new"
    RINGING = "call.ringing"
    ANSWERED = "call.answered"
    HOLD = "call.hold"
    UNHOLD = "call.unhold"
    TRANSFER = "call.transfer"
    HANGUP = "call.hangup"
    RECORDING_READY = "recording.ready"
    VOICEMAIL_READY = "voicemail.ready"
    DTMF = "call.dtmf"


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One normalised call event. ``event_id`` is the provider's own id for this event (a retry of the
    same callback carries the same id and changes nothing); ``call_ref`` is the provider's call id."""

    kind: CallEventKind
    provider: str
    call_ref: str
    event_id: str
    at: datetime
    direction: str = "inbound"
    from_number: str = ""
    to_number: str = ""
    data: dict[str, Any] = field(default_factory=dict)


class TelephonyAdapter(abc.ABC):
    """Call control for one provider. Every method acts on the provider's call id."""

    name: str

    @abc.abstractmethod
    def originate(self, *, to_number: str, from_number: str, context: dict[str, Any]) -> str:
        """Place an outbound call; returns the provider's call id."""

    @abc.abstractmethod
    def hangup(self, call_ref: str) -> None: ...

    @abc.abstractmethod
    def hold(self, call_ref: str, *, on: bool) -> None: ...

    @abc.abstractmethod
    def mute(self, call_ref: str, *, on: bool) -> None: ...

    @abc.abstractmethod
    def transfer(self, call_ref: str, *, target: str, warm: bool) -> None: ...

    @abc.abstractmethod
    def conference(self, call_ref: str, *, target: str) -> None: ...

    @abc.abstractmethod
    def send_dtmf(self, call_ref: str, digits: str) -> None: ...

    @abc.abstractmethod
    def recording_pause(self, call_ref: str, *, paused: bool) -> None: ...

    # Optional capabilities: an adapter that lacks one says so with NotImplementedError, and the
    # services turn that into a clear error for the agent.

    def connect_agent(self, call_ref: str, *, agent_target: str) -> None:
        """Bridge a caller waiting in queue to the agent's endpoint (extension, number or client)."""
        raise NotImplementedError(f"{self.name} cannot connect agents")

    def leave(self, call_ref: str) -> None:
        """The agent leaves the call (after a warm transfer or a conference); the others stay on."""
        raise NotImplementedError(f"{self.name} cannot let the agent leave a call")

    def recording_start(self, call_ref: str) -> None:
        """Start recording a live call (the queue records its calls); ``recording.ready`` follows."""
        raise NotImplementedError(f"{self.name} cannot start a recording")

    def fetch_media(self, url: str) -> bytes:
        """Download a recording or voicemail the provider announced by URL."""
        raise NotImplementedError(f"{self.name} cannot fetch media")

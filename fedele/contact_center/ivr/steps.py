"""What the IVR engine tells a voice adapter to do, and what the adapter reports back.

The engine (ivr/engine.py) walks a published flow version; each call to it returns the ``IvrStep``s
to perform, in order, until one waits for the caller (``collect``) or hands the call on (``queue``,
``voicemail``, ``transfer``, ``hangup``). Twilio renders the steps to TwiML (ivr/twiml.py); the SIP
adapter performs them itself over RTP. Both then call the engine again with what the caller did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class StepKind(StrEnum):
    SAY = "say"  # text in ``text`` and ``language``; or ``audio`` (a prompt file name) when pre-rendered
    PLAY = "play"
    COLLECT = "collect"  # wait for digits: ``max_digits``, ``finish_on``, ``timeout_seconds``
    QUEUE = "queue"  # hand to the router: ``queue_code``, ``required_skills``, ``priority``
    VOICEMAIL = "voicemail"  # record a message for ``box``
    TRANSFER = "transfer"  # to an external number or SIP URI in ``target``
    HANGUP = "hangup"


@dataclass(frozen=True, slots=True)
class IvrStep:
    kind: StepKind
    text: str = ""
    language: str = "it"
    audio: str = ""
    params: dict[str, Any] = field(default_factory=dict)

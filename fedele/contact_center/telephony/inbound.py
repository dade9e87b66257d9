"""What happens to a new inbound call, whatever the provider: the steps the caller hears.

1. The dialled number has a published IVR flow (the IVR area's number mapping) → the flow's first
   steps (the IVR engine queues the call itself when it reaches a queue node).
2. Else the number is a ``VoiceNumber`` → the call is queued in its queue: the recording consent
   announcement first when the queue records and announces, then ``queue``. A closed queue whose
   workflow says voicemail (or callback) → the queue's voicemail box greeting and ``voicemail``; no
   box → a closed message and hang-up.
3. Else → "this number is not in service" and hang-up (logged: a number points at us but is not set up).

Twilio renders these steps to TwiML (``ivr/twiml.py``); the SIP adapter and the simulator perform them.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from fedele.contact_center.ivr.steps import IvrStep, StepKind
from fedele.contact_center.models import (
    Interaction,
    InteractionState,
    QueueTelephonySettings,
    VoicemailBox,
    VoiceNumber,
)
from fedele.shared.errors import Conflict, NotFound

logger = logging.getLogger(__name__)


def _localised(language: str, text: str) -> str:
    """``text`` (marked with ``gettext_noop`` where it is written, so makemessages extracts it) in
    the caller's language."""
    with translation.override(language):
        return _(text)


def inbound_steps(*, interaction: Interaction, at: datetime | None = None) -> list[IvrStep]:
    """The steps for a new inbound call (see the module docstring); ``at`` is the provider's time."""
    from fedele.contact_center.ivr.engine import ivr_start
    from fedele.contact_center.models import IvrNumber
    from fedele.contact_center.services.interactions import interaction_enqueue

    dialled = interaction.to_address.strip()
    if IvrNumber.objects.filter(number=dialled).exists():
        try:
            return ivr_start(interaction=interaction, number=dialled)
        except (NotFound, Conflict) as error:
            logger.warning("IVR for %s unavailable (%s); falling back to its queue", dialled, error)
    voice_number = VoiceNumber.objects.filter(number=dialled, active=True).select_related("queue").first()
    language = (voice_number.language if voice_number else "") or interaction.language or "it"
    if voice_number is None:
        logger.warning("Call %s to %s: the number is not set up", interaction.number, dialled)
        text = _localised(language, gettext_noop("We are sorry, this number is not in service."))
        return [IvrStep(StepKind.SAY, text=text, language=language), IvrStep(StepKind.HANGUP)]
    queue = voice_number.queue
    steps: list[IvrStep] = []
    voice_settings = QueueTelephonySettings.objects.filter(queue=queue).first()
    if voice_settings is not None and voice_settings.record_calls and voice_settings.announce_recording:
        steps.append(IvrStep(StepKind.SAY, text=voice_settings.announcement(language), language=language))
    if interaction.state in (InteractionState.WRAP_UP, InteractionState.ENDED):
        return [IvrStep(StepKind.HANGUP)]
    already = interaction.state != InteractionState.IVR or (interaction.attributes or {}).get("closed_action")
    # A provider retry of the same call (Twilio retries a slow webhook) is answered the same way
    # without queueing the call a second time.
    queued = (
        interaction if already else interaction_enqueue(interaction=interaction, queue_code=queue.code, at=at)
    )
    closed_action = (queued.attributes or {}).get("closed_action")
    if not closed_action:
        steps.append(IvrStep(StepKind.QUEUE, language=language, params={"queue_code": queue.code}))
        return steps
    box = VoicemailBox.objects.filter(queue=queue, active=True).first()
    if box is not None and closed_action in ("voicemail", "callback"):
        steps.append(IvrStep(StepKind.SAY, text=box.greeting(language), language=language))
        steps.append(
            IvrStep(
                StepKind.VOICEMAIL,
                language=language,
                params={"box": box.code, "max_seconds": box.max_message_seconds},
            )
        )
        return steps
    text = _localised(
        language, gettext_noop("We are closed now. Please call again during our opening hours.")
    )
    steps.extend([IvrStep(StepKind.SAY, text=text, language=language), IvrStep(StepKind.HANGUP)])
    return steps

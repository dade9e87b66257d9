"""Voicemail: boxes per queue or agent, messages, notification and the callback task.

A voice adapter reports a message with a ``voicemail.ready`` call event (``telephony.events``), whose
data names the box (``box``: its code; else the call's queue's box) and carries the audio (``audio``
bytes, or a provider ``url`` fetched after commit), ``recording_ref`` (the provider's id: a retry
changes nothing), ``duration_seconds`` and optionally ``transcription``. Adapters that hold the audio
themselves (SIP) may also call ``voicemail_create`` directly.

Leaving a message:
- stores it (Django storage, like recordings; retention from the queue's ``voicemail_retention_days``).
  A create that fails deletes its audio at once; audio of a create whose OUTER transaction rolls back
  is deleted by the hourly orphan sweep (``audio_storage``: no rollback hook exists in Django);
- makes the call's outcome ``voicemail`` (also when the provider reports the message after the
  hang-up, as Twilio does);
- notifies the box's subscribers (and the agent of an agent box) in the app and by e-mail, after
  commit;
- when the box says so, creates a callback task: an outbound voice interaction to the caller, marked
  ``attributes.kind = "callback"``, queued in the box's queue (an agent box: the agent's first queue,
  with the agent as preferred).
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from fedele.contact_center.models import (
    Channel,
    Direction,
    Interaction,
    InteractionState,
    Outcome,
    Recording,
    VoicemailBox,
    VoicemailMessage,
)
from fedele.contact_center.services.recordings import (
    MAX_RECORDING_BYTES,
    _fetch_after_commit,
    audio_content_type,
    audio_dropped_on_failure,
    retention_until,
)
from fedele.contact_center.telephony.port import CallEvent
from fedele.shared import audit, clock, notifications
from fedele.shared.errors import ValidationFailed

logger = logging.getLogger(__name__)

CALLBACK_KIND = "callback"


def voicemail_box_for(*, interaction: Interaction, box_code: str = "") -> VoicemailBox:
    """The named box, else the call's queue's box; an unknown or inactive box is a clear error."""
    box: VoicemailBox | None
    if box_code:
        box = VoicemailBox.objects.filter(code=box_code, active=True).first()
    elif interaction.queue_id is not None:
        box = VoicemailBox.objects.filter(queue_id=interaction.queue_id, active=True).first()
    else:
        box = None
    if box is None:
        raise ValidationFailed(
            _("No active voicemail box for this call."),
            code="voicemail_box_not_found",
            fields={"box": box_code or _("The call's queue has no box.")},
        )
    return box


def voicemail_announce(*, interaction: Interaction, event: CallEvent) -> VoicemailMessage:
    reference = str(event.data.get("recording_ref") or "")[:120]
    if reference:
        existing = VoicemailMessage.objects.filter(provider=event.provider, provider_ref=reference).first()
        if existing is not None:
            return existing
    audio = event.data.get("audio")
    try:
        duration = max(0, int(str(event.data.get("duration_seconds") or 0)))
    except ValueError:
        duration = 0
    return voicemail_create(
        interaction=interaction,
        box=voicemail_box_for(interaction=interaction, box_code=str(event.data.get("box") or "")),
        provider=event.provider,
        provider_ref=reference,
        audio=audio if isinstance(audio, bytes) else None,
        source_url=str(event.data.get("url") or "")[:500],
        duration_seconds=duration,
        transcription=str(event.data.get("transcription") or ""),
        at=event.at,
    )


def voicemail_create(
    *,
    interaction: Interaction,
    box: VoicemailBox,
    provider: str,
    provider_ref: str = "",
    audio: bytes | None = None,
    source_url: str = "",
    duration_seconds: int = 0,
    transcription: str = "",
    at: datetime | None = None,
) -> VoicemailMessage:
    """Store one message (see the module docstring). Bad input → ValidationFailed, nothing written."""
    if audio is None and not source_url:
        raise ValidationFailed(_("A voicemail needs its audio or its URL."), code="voicemail_without_audio")
    if audio is not None and len(audio) > MAX_RECORDING_BYTES:
        raise ValidationFailed(_("The voicemail is too large."), code="recording_too_large")
    if duration_seconds < 0:
        raise ValidationFailed(_("A duration cannot be negative."), code="invalid_duration")
    if interaction.channel != Channel.VOICE:
        raise ValidationFailed(_("Only a call can leave a voicemail."), code="not_a_call")
    content_type, extension = audio_content_type(audio) if audio is not None else ("", "")
    moment = at or clock.now()
    caller = (
        interaction.from_address if interaction.direction == Direction.INBOUND else interaction.to_address
    )
    message = VoicemailMessage(
        box=box,
        interaction=interaction,
        provider=provider,
        provider_ref=provider_ref,
        caller_number=caller[:40],
        source_url=source_url,
        duration_seconds=duration_seconds,
        transcription=transcription[:10_000],
        created_at=moment,
        retain_until=_voicemail_retention(box, interaction, moment),
    )
    with audio_dropped_on_failure(message), transaction.atomic():
        if audio is not None:
            message.audio.save(f"voicemail.{extension}", ContentFile(audio), save=False)
            message.content_type = content_type
            message.size_bytes = len(audio)
            message.state = Recording.State.STORED
        message.save()
        _mark_call(interaction, at=moment)
        if box.create_callback and caller:
            message.callback_interaction = _callback_create(
                box=box, message=message, caller=caller, at=moment
            )
            message.save(update_fields=["callback_interaction"])
        audit.record(
            action="contact_center.voicemail_received",
            object_type="contact_center.voicemail",
            object_id=str(message.public_id),
            after={"box": box.code, "interaction": interaction.number, "duration_seconds": duration_seconds},
        )
        _notify(box=box, message=message)
        if message.state == Recording.State.PENDING:
            _fetch_after_commit("voicemail", message.pk)
    return message


def _voicemail_retention(box: VoicemailBox, interaction: Interaction, at: datetime) -> datetime | None:
    if box.queue_id is not None and interaction.queue_id != box.queue_id:
        # The box's own queue decides how long its messages are kept.
        probe = Interaction(queue_id=box.queue_id)
        return retention_until(probe, at=at, kind="voicemail")
    return retention_until(interaction, at=at, kind="voicemail")


def _mark_call(interaction: Interaction, *, at: datetime) -> None:
    locked = Interaction.objects.select_for_update().get(pk=interaction.pk)
    locked.attributes = {**(locked.attributes or {}), "voicemail_left": True}
    fields = ["attributes"]
    if locked.state == InteractionState.ENDED and locked.outcome in (Outcome.ABANDONED, Outcome.NO_ANSWER):
        # The provider reported the message after the hang-up: the call did end in a voicemail.
        locked.outcome = Outcome.VOICEMAIL
        fields.append("outcome")
    locked.save(update_fields=fields)
    interaction.attributes = locked.attributes
    interaction.outcome = locked.outcome


def _callback_create(
    *, box: VoicemailBox, message: VoicemailMessage, caller: str, at: datetime
) -> Interaction | None:
    from fedele.contact_center.services.interactions import interaction_create, interaction_enqueue

    original = message.interaction
    queue = (
        box.queue
        if box.queue_id is not None
        else (box.agent.queues.order_by("code").first() if box.agent else None)
    )
    attributes: dict[str, Any] = {
        "kind": CALLBACK_KIND,
        "voicemail": str(message.public_id),
        "original_interaction": original.number,
        # The routing area's name for "this contact is a callback" (the desktop shows it as such).
        "callback_of": original.number,
    }
    if box.agent_id is not None:
        attributes["preferred_agent_id"] = box.agent_id
    callback = interaction_create(
        channel=Channel.VOICE,
        direction=Direction.OUTBOUND,
        from_address=original.to_address,
        to_address=caller,
        subject=_("Call back: voicemail from %(caller)s") % {"caller": caller},
        language=original.language,
        attributes=attributes,
        at=at,
        customer_public_id=original.customer_public_id,
    )
    if queue is None:
        logger.warning("Voicemail box %s has no queue for its callback task", box.code)
        return callback
    return interaction_enqueue(interaction=callback, queue_code=queue.code, at=at)


def _recipients(box: VoicemailBox) -> list[Any]:
    users = list(box.subscribers.filter(is_active=True).order_by("id"))
    if box.agent_id is not None and box.agent is not None:
        agent_user = box.agent.user
        if agent_user.is_active and all(user.pk != agent_user.pk for user in users):
            users.append(agent_user)
    return users


def _notify(*, box: VoicemailBox, message: VoicemailMessage) -> None:
    """Each recipient is told in their own language (not the provider request's), in the app and by
    an e-mail of their own (the others' addresses are not disclosed)."""
    recipients = _recipients(box)
    if not recipients:
        return
    link = reverse("contact_center:voicemail-box", args=[box.public_id])
    base = str(getattr(settings, "FEDELE_PUBLIC_URL", "")).rstrip("/")
    mails: list[tuple[str, str, list[str]]] = []
    for user in recipients:
        with translation.override(str(getattr(user, "language", "") or settings.LANGUAGE_CODE)):
            title = _("New voicemail in %(box)s from %(caller)s") % {
                "box": box.name,
                "caller": message.caller_number or _("unknown caller"),
            }
            body = _("%(seconds)s s, call %(number)s.") % {
                "seconds": message.duration_seconds,
                "number": message.interaction.number,
            }
        notifications.notification_create(recipient_id=user.pk, title=title, body=body, link=link)
        if user.email:
            mails.append((title, f"{title}\n\n{body}\n{base}{link}\n", [user.email]))
    for subject, text, addresses in mails:
        transaction.on_commit(functools.partial(_send_mail, subject, text, addresses))


def _send_mail(subject: str, text: str, addresses: list[str]) -> None:
    try:
        send_mail(subject, text, None, addresses)
    except Exception:
        # The in-app notification is already there; a mail server outage must not lose the message.
        logger.exception("Voicemail notification e-mail failed")


def voicemail_box_save(
    *,
    code: str,
    name: str,
    queue_id: int | None = None,
    agent_id: int | None = None,
    greeting_it: str | None = None,
    greeting_en: str | None = None,
    subscriber_ids: list[int] | None = None,
    create_callback: bool = True,
    max_message_seconds: int = 120,
    active: bool = True,
) -> VoicemailBox:
    """Create or update the box ``code`` (exactly one of queue and agent)."""
    problems: dict[str, str] = {}
    if (queue_id is None) == (agent_id is None):
        problems["queue"] = _("A box belongs to exactly one queue or one agent.")
    if not code or len(code) > 40 or not code.replace("-", "").replace("_", "").isalnum():
        problems["code"] = _("Letters, digits, - and _ only (at most 40).")
    if not name.strip() or len(name) > 120:
        problems["name"] = _("Required, at most 120 characters.")
    if not 5 <= max_message_seconds <= 600:
        problems["max_message_seconds"] = _("Between 5 and 600 seconds.")
    if problems:
        raise ValidationFailed(
            _("The voicemail box is not valid."), code="invalid_voicemail_box", fields=problems
        )
    with transaction.atomic():
        box = VoicemailBox.objects.select_for_update().filter(code=code).first() or VoicemailBox(code=code)
        before = {"name": box.name, "queue": box.queue_id, "agent": box.agent_id, "active": box.active}
        box.name = name.strip()
        box.queue_id = queue_id
        box.agent_id = agent_id
        if greeting_it is not None:
            box.greeting_it = greeting_it[:300]
        if greeting_en is not None:
            box.greeting_en = greeting_en[:300]
        box.create_callback = create_callback
        box.max_message_seconds = max_message_seconds
        box.active = active
        box.save()
        if subscriber_ids is not None:
            box.subscribers.set(subscriber_ids)
        audit.record(
            action="contact_center.voicemail_box_saved",
            object_type="contact_center.voicemail_box",
            object_id=str(box.public_id),
            before=before,
            after={"name": box.name, "queue": box.queue_id, "agent": box.agent_id, "active": box.active},
        )
    return box

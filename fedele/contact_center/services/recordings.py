"""Call recordings: storing them, PCI pauses, audited playback and the retention job.

- A provider announces a recording (``recording.ready``) with a URL: the row is created ``pending`` in
  the call event's transaction and the audio is fetched after commit by a task (no network inside a
  transaction). An adapter that has the audio already (SIP, simulator) passes the bytes and the row is
  ``stored`` at once. The same provider recording id twice changes nothing.
- Audio goes through Django's storage API (``STORAGES["default"]``): local files by default, an
  S3-compatible bucket (django-storages) when ``FEDELE_S3_BUCKET`` is set — nothing here changes.
- ``retain_until`` = creation + the queue's ``recording_retention_days`` (no settings row or an empty
  value = kept forever). ``recordings_purge_expired`` deletes exactly the expired files and rows (and
  expired voicemail the same way) and writes one audit row per deletion. The same hourly job sweeps
  audio files no row references (an outer transaction rolled back after the create): see
  ``audio_storage`` for why a sweep and not a rollback hook.
- Playback reads only the requested byte range from storage (one ranged GET on S3).
- Every playback writes an audit row (``contact_center.recording_played``) in the same transaction
  that authorises it; without ``contact_center.listen_recordings`` nothing is served and nothing is
  written but a refusal.
- PCI pause: the agent pauses the provider's recording (``adapter.recording_pause``) and a
  ``RecordingPause`` interval is kept; the call's end closes an open interval.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models.fields.files import FieldFile
from django.utils.translation import gettext as _

from fedele.contact_center.models import (
    Agent,
    Interaction,
    QueueTelephonySettings,
    Recording,
    RecordingPause,
    VoicemailMessage,
)
from fedele.contact_center.telephony.port import CallEvent
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

logger = logging.getLogger(__name__)

LISTEN_PERMISSION = "contact_center.listen_recordings"
# The largest recording we accept from a provider or an adapter (a 4-hour 8 kHz µ-law WAV is ~115 MB).
MAX_RECORDING_BYTES = 200 * 1024 * 1024


def audio_content_type(content: bytes) -> tuple[str, str]:
    """(content type, file extension) from the audio's first bytes: WAV, MP3 or Ogg; else refused."""
    if content[:4] == b"RIFF" and content[8:12] == b"WAVE":
        return "audio/wav", "wav"
    if content[:3] == b"ID3" or (len(content) > 1 and content[0] == 0xFF and content[1] & 0xE0 == 0xE0):
        return "audio/mpeg", "mp3"
    if content[:4] == b"OggS":
        return "audio/ogg", "ogg"
    raise ValidationFailed(_("The audio is not WAV, MP3 or Ogg."), code="invalid_audio")


def retention_until(interaction: Interaction, *, at: datetime, kind: str) -> datetime | None:
    if interaction.queue_id is None:
        return None
    settings_row = QueueTelephonySettings.objects.filter(queue_id=interaction.queue_id).first()
    if settings_row is None:
        return None
    days = (
        settings_row.recording_retention_days
        if kind == "recording"
        else settings_row.voicemail_retention_days
    )
    return None if days is None else at + timedelta(days=days)


def _int(value: Any) -> int:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return 0
    return max(number, 0)


# ------------------------------------------------------------------------------------------- storing


def recording_announce(*, interaction: Interaction, event: CallEvent) -> Recording:
    """``recording.ready``: data ``recording_ref`` (provider id), and either ``audio`` (bytes) or
    ``url`` (fetched after commit); ``duration_seconds`` optional."""
    reference = str(event.data.get("recording_ref") or "")[:120]
    existing = (
        Recording.objects.filter(provider=event.provider, provider_ref=reference).first()
        if reference
        else None
    )
    if existing is not None:
        return existing
    audio = event.data.get("audio")
    return recording_create(
        interaction=interaction,
        provider=event.provider,
        provider_ref=reference,
        audio=audio if isinstance(audio, bytes) else None,
        source_url=str(event.data.get("url") or "")[:500],
        duration_seconds=_int(event.data.get("duration_seconds")),
        at=event.at,
    )


@contextmanager
def audio_dropped_on_failure(row: Recording | VoicemailMessage) -> Iterator[None]:
    """Storage is not transactional: audio saved inside a block that then fails (a duplicate webhook's
    row refused by its unique constraint, say) is deleted again, so no orphan file stays behind."""
    try:
        yield
    except BaseException:
        name = row.audio.name if row.audio else ""
        if name:
            _delete_file(row.audio.storage, name)
        raise


def recording_create(
    *,
    interaction: Interaction,
    provider: str,
    provider_ref: str = "",
    audio: bytes | None = None,
    source_url: str = "",
    duration_seconds: int = 0,
    at: datetime | None = None,
) -> Recording:
    if audio is None and not source_url:
        raise ValidationFailed(_("A recording needs its audio or its URL."), code="recording_without_audio")
    if duration_seconds < 0:
        raise ValidationFailed(_("A duration cannot be negative."), code="invalid_duration")
    if audio is not None and len(audio) > MAX_RECORDING_BYTES:
        raise ValidationFailed(_("The recording is too large."), code="recording_too_large")
    content_type, extension = audio_content_type(audio) if audio is not None else ("", "")
    moment = at or clock.now()
    recording = Recording(
        interaction=interaction,
        provider=provider,
        provider_ref=provider_ref,
        source_url=source_url,
        duration_seconds=duration_seconds,
        created_at=moment,
        retain_until=retention_until(interaction, at=moment, kind="recording"),
    )
    with audio_dropped_on_failure(recording), transaction.atomic():
        if audio is not None:
            recording.audio.save(f"call.{extension}", ContentFile(audio), save=False)
            recording.content_type = content_type
            recording.size_bytes = len(audio)
            recording.state = Recording.State.STORED
            recording.stored_at = clock.now()
        recording.save()
        audit.record(
            action="contact_center.recording_created",
            object_type="contact_center.recording",
            object_id=str(recording.public_id),
            after={"interaction": interaction.number, "provider": provider, "state": recording.state},
        )
        if recording.state == Recording.State.PENDING:
            _fetch_after_commit("recording", recording.pk)
    return recording


def _fetch_after_commit(kind: str, row_id: int) -> None:
    from fedele.contact_center.telephony import tasks

    transaction.on_commit(lambda: tasks.media_fetch.delay(kind, row_id))


def media_fetch(*, kind: str, row_id: int) -> str:
    """Download a pending recording or voicemail from its provider and store it. Idempotent: a row
    already stored is left alone. A failure is kept on the row (``failed``) and logged."""
    from fedele.contact_center.telephony.registry import adapter_for
    from fedele.contact_center.telephony.twilio import TelephonyProviderError

    model: type[Recording] | type[VoicemailMessage] = Recording if kind == "recording" else VoicemailMessage
    row = model.objects.filter(pk=row_id).first()
    if row is None or row.state == Recording.State.STORED:
        return "skipped"
    try:
        content = adapter_for(row.provider).fetch_media(row.source_url)
        if len(content) > MAX_RECORDING_BYTES:
            raise ValidationFailed(_("The recording is too large."), code="recording_too_large")
        content_type, extension = audio_content_type(content)
    except (TelephonyProviderError, ValidationFailed, NotImplementedError) as error:
        logger.warning("Could not fetch %s %s: %s", kind, row.public_id, error)
        model.objects.filter(pk=row_id, state=Recording.State.PENDING).update(state=Recording.State.FAILED)
        return "failed"
    with transaction.atomic():
        locked = model.objects.select_for_update().get(pk=row_id)
        if locked.state == Recording.State.STORED:
            return "skipped"
        name = "call" if kind == "recording" else "voicemail"
        locked.audio.save(f"{name}.{extension}", ContentFile(content), save=False)
        locked.content_type = content_type
        locked.size_bytes = len(content)
        locked.state = Recording.State.STORED
        if isinstance(locked, Recording):
            locked.stored_at = clock.now()
        locked.save()
    return "stored"


def media_fetch_due(*, now: datetime | None = None, older_than: timedelta = timedelta(minutes=5)) -> int:
    """Fetch again the recordings and voicemail still pending some minutes after they were announced
    (a worker died before its task ran); returns how many were tried."""
    moment = now or clock.now()
    tried = 0
    for kind, model in (("recording", Recording), ("voicemail", VoicemailMessage)):
        due = model.objects.filter(state=Recording.State.PENDING, created_at__lte=moment - older_than)
        for row_id in due.order_by("id").values_list("id", flat=True)[:200]:
            media_fetch(kind=kind, row_id=row_id)
            tried += 1
    return tried


# ------------------------------------------------------------------------------------------- PCI pause


def recording_pause_set(
    *, interaction: Interaction, agent: Agent | None, paused: bool, at: datetime
) -> RecordingPause:
    """Open (``paused``) or close the interaction's pause interval. Pausing twice or resuming when not
    paused is a Conflict and changes nothing."""
    with transaction.atomic():
        open_pause = (
            RecordingPause.objects.select_for_update()
            .filter(interaction=interaction, resumed_at__isnull=True)
            .first()
        )
        if paused:
            if open_pause is not None:
                raise Conflict(_("The recording is already paused."), code="recording_already_paused")
            try:
                with transaction.atomic():
                    pause = RecordingPause.objects.create(interaction=interaction, agent=agent, paused_at=at)
            except IntegrityError as error:
                raise Conflict(
                    _("The recording is already paused."), code="recording_already_paused"
                ) from error
        else:
            if open_pause is None:
                raise Conflict(_("The recording is not paused."), code="recording_not_paused")
            if at < open_pause.paused_at:
                raise ValidationFailed(_("A pause cannot end before it began."), code="invalid_pause")
            open_pause.resumed_at = at
            open_pause.save(update_fields=["resumed_at"])
            pause = open_pause
        audit.record(
            action="contact_center.recording_paused" if paused else "contact_center.recording_resumed",
            object_type="contact_center.interaction",
            object_id=str(interaction.public_id),
            after={"at": at, "agent": agent.pk if agent else None},
        )
    return pause


def recording_pauses_close(*, interaction: Interaction, at: datetime) -> int:
    """The call ended: an open pause ends with it."""
    return RecordingPause.objects.filter(interaction=interaction, resumed_at__isnull=True).update(
        resumed_at=at
    )


# ------------------------------------------------------------------------------------------- playback


@dataclass(frozen=True, slots=True)
class PlaybackFile:
    """An authorised playback: nothing is read from storage until ``open`` asks for a byte range."""

    audio: FieldFile
    size: int
    content_type: str
    name: str

    def open(self, first: int, last: int, *, whole: bool = False) -> IO[bytes]:
        """Bytes ``first``..``last`` only (one ranged GET on S3; see ``audio_storage``)."""
        from fedele.contact_center.services.audio_storage import open_byte_range

        return open_byte_range(self.audio, first, last, whole=whole)


def playback_open(
    *, user: Any, public_id: str, kind: str = "recording", byte_range: str = ""
) -> PlaybackFile:
    """Authorise and audit one playback of a recording or voicemail, then open its audio.

    Refused (PermissionDenied, nothing written but the refusal in the log) without
    ``contact_center.listen_recordings``; an unknown, deleted or not yet stored recording is NotFound."""
    if not user.has_perm(LISTEN_PERMISSION):
        logger.warning("Recording playback refused for user %s (%s %s)", user.pk, kind, public_id)
        raise PermissionDenied(_("You may not play call recordings."))
    model: type[Recording] | type[VoicemailMessage] = Recording if kind == "recording" else VoicemailMessage
    row = model.objects.filter(public_id=public_id, state=Recording.State.STORED).first()
    if row is None or not row.audio:
        raise NotFound(_("This recording does not exist or is not available yet."))
    with transaction.atomic():
        audit.record(
            action=f"contact_center.{kind}_played",
            object_type=f"contact_center.{kind}",
            object_id=str(row.public_id),
            after={"interaction": row.interaction.number, "range": byte_range[:60]},
            actor_id=user.pk,
        )
        if isinstance(row, VoicemailMessage) and row.listened_at is None:
            VoicemailMessage.objects.filter(pk=row.pk, listened_at__isnull=True).update(
                listened_at=clock.now()
            )
    return PlaybackFile(row.audio, row.size_bytes, row.content_type, str(row.audio.name).rsplit("/", 1)[-1])


# ------------------------------------------------------------------------------------------- retention


def recordings_purge_expired(*, now: datetime | None = None, limit: int = 1000) -> dict[str, int]:
    """Delete the recordings and voicemail whose ``retain_until`` has passed: the file first, then the
    row, each audited. A file already missing from storage does not stop the row's deletion."""
    moment = now or clock.now()
    counts = {"recordings": 0, "voicemail": 0}
    for kind, model in (("recordings", Recording), ("voicemail", VoicemailMessage)):
        rows = list(model.objects.filter(retain_until__lte=moment).order_by("retain_until", "id")[:limit])
        for row in rows:
            with transaction.atomic():
                locked = model.objects.select_for_update().filter(pk=row.pk).first()
                if locked is None:
                    continue
                name = locked.audio.name if locked.audio else ""
                audit.record(
                    action="contact_center.recording_expired",
                    object_type=f"contact_center.{'recording' if kind == 'recordings' else 'voicemail'}",
                    object_id=str(locked.public_id),
                    before={"file": name, "retain_until": locked.retain_until},
                )
                locked.delete()
                if name:
                    storage = locked.audio.storage
                    transaction.on_commit(functools.partial(_delete_file, storage, name))
            counts[kind] += 1
    return counts


def _delete_file(storage: Any, name: str) -> bool:
    # Any storage failure (OSError locally; botocore's errors from an S3 bucket) is logged, never raised:
    # the row is already gone, and the next expired rows must still be deleted.
    try:
        storage.delete(name)
    except Exception:
        logger.exception("Could not delete audio %s", name)
        return False
    return True

"""Voice settings of queues (recording, consent announcement, retention) and the numbers that ring
into them. Managers only (``contact_center.manage_contact_center``); every change audited."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from fedele.contact_center.models import Queue, QueueTelephonySettings, VoiceNumber
from fedele.shared import audit
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed
from fedele.shared.sms import InvalidPhoneNumber, e164

MANAGE_PERMISSION = "contact_center.manage_contact_center"
MAX_RETENTION_DAYS = 3650


def require_manager(user: Any) -> None:
    if not user.has_perm(MANAGE_PERMISSION):
        raise PermissionDenied(_("You may not change the contact center's settings."))


def _retention(value: Any, field: str, problems: dict[str, str]) -> int | None:
    if value in (None, ""):
        return None
    try:
        days = int(str(value))
    except ValueError:
        problems[field] = _("A whole number of days.")
        return None
    if not 1 <= days <= MAX_RETENTION_DAYS:
        problems[field] = _("Between 1 and %(max)s days, or empty to keep forever.") % {
            "max": MAX_RETENTION_DAYS
        }
    return days


def queue_voice_settings_save(
    *,
    user: Any,
    queue_code: str,
    record_calls: bool,
    announce_recording: bool,
    announcement_it: str,
    announcement_en: str,
    recording_retention_days: Any = None,
    voicemail_retention_days: Any = None,
) -> QueueTelephonySettings:
    """Create or update a queue's voice settings. Recording without an announcement in a language the
    queue speaks is allowed only with ``announce_recording`` off (the operator's legal choice)."""
    require_manager(user)
    queue = Queue.objects.filter(code=queue_code).first()
    if queue is None:
        raise NotFound(_("Unknown queue."), code="queue_not_found")
    problems: dict[str, str] = {}
    recording_days = _retention(recording_retention_days, "recording_retention_days", problems)
    voicemail_days = _retention(voicemail_retention_days, "voicemail_retention_days", problems)
    for field, text in (("announcement_it", announcement_it), ("announcement_en", announcement_en)):
        if len(text or "") > 300:
            problems[field] = _("At most 300 characters.")
    if record_calls and announce_recording and not (announcement_it or "").strip():
        problems["announcement_it"] = _("Required when recorded calls are announced.")
    if problems:
        raise ValidationFailed(
            _("The voice settings are not valid."), code="invalid_voice_settings", fields=problems
        )
    with transaction.atomic():
        row = QueueTelephonySettings.objects.select_for_update().filter(queue=queue).first()
        before = _settings_values(row) if row else None
        row = row or QueueTelephonySettings(queue=queue)
        row.record_calls = record_calls
        row.announce_recording = announce_recording
        row.announcement_it = (announcement_it or "").strip()
        row.announcement_en = (announcement_en or "").strip()
        row.recording_retention_days = recording_days
        row.voicemail_retention_days = voicemail_days
        row.save()
        audit.record(
            action="contact_center.voice_settings_saved",
            object_type="contact_center.queue",
            object_id=str(queue.public_id),
            before=before,
            after=_settings_values(row),
            actor_id=user.pk,
        )
    return row


def _settings_values(row: QueueTelephonySettings) -> dict[str, Any]:
    return {
        "record_calls": row.record_calls,
        "announce_recording": row.announce_recording,
        "recording_retention_days": row.recording_retention_days,
        "voicemail_retention_days": row.voicemail_retention_days,
    }


def voice_number_save(
    *, user: Any, number: str, queue_code: str, provider: str, language: str
) -> VoiceNumber:
    from fedele.contact_center.telephony.registry import registered_providers

    require_manager(user)
    problems: dict[str, str] = {}
    normalised = ""
    try:
        normalised = e164(number, field="number")
    except InvalidPhoneNumber:
        problems["number"] = _("Not a phone number.")
    queue = Queue.objects.filter(code=queue_code).first()
    if queue is None:
        problems["queue"] = _("Unknown queue.")
    if provider not in registered_providers():
        problems["provider"] = _("Unknown provider.")
    if language not in ("it", "en"):
        problems["language"] = _("Italian or English.")
    if problems or queue is None:
        raise ValidationFailed(_("The number is not valid."), code="invalid_voice_number", fields=problems)
    with transaction.atomic():
        row, created = VoiceNumber.objects.select_for_update().get_or_create(
            number=normalised, defaults={"queue": queue, "provider": provider, "language": language}
        )
        if not created:
            row.queue = queue
            row.provider = provider
            row.language = language
            row.active = True
            row.save()
        audit.record(
            action="contact_center.voice_number_saved",
            object_type="contact_center.voice_number",
            object_id=normalised,
            after={"queue": queue_code, "provider": provider, "language": language},
            actor_id=user.pk,
        )
    return row


def voice_number_delete(*, user: Any, number: str) -> None:
    require_manager(user)
    with transaction.atomic():
        deleted, _rows = VoiceNumber.objects.filter(number=number).delete()
        if not deleted:
            raise NotFound(_("Unknown number."), code="voice_number_not_found")
        audit.record(
            action="contact_center.voice_number_deleted",
            object_type="contact_center.voice_number",
            object_id=number,
            actor_id=user.pk,
        )

"""The telephony area's pages under /contact-center/: Twilio webhooks, recording and voicemail
playback (with HTTP range requests, every playback audited), an interaction's recordings with their
PCI pause intervals, voicemail boxes, and the voice settings of queues."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import URLPattern, URLResolver, path
from django.views.decorators.http import require_GET

from fedele.contact_center.models import (
    Interaction,
    Recording,
    RecordingPause,
    VoicemailBox,
    VoicemailMessage,
)
from fedele.contact_center.services.recordings import LISTEN_PERMISSION, PlaybackFile, playback_open
from fedele.contact_center.web import telephony_settings, telephony_twilio

CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The (first, last) byte of a single ``Range: bytes=a-b`` within ``size``; None = whole file.
    Raises ValueError for a range that cannot be satisfied (→ 416)."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None  # multiple or unknown units: serve the whole file (allowed by RFC 9110)
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        raise ValueError("empty range")
    if not first_text:
        length = int(last_text)
        if length == 0 or size == 0:
            raise ValueError("zero suffix or empty file")
        return max(0, size - length), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if first >= size or last < first:
        raise ValueError("outside the file")
    return first, min(last, size - 1)


def _chunks(stream: IO[bytes], remaining: int) -> Iterator[bytes]:
    try:
        while remaining > 0:
            data = stream.read(min(CHUNK, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data
    finally:
        stream.close()


def _serve(request: HttpRequest, kind: str, public_id: str) -> HttpResponse | StreamingHttpResponse:
    header = request.headers.get("Range", "")
    playback: PlaybackFile = playback_open(
        user=request.user, public_id=public_id, kind=kind, byte_range=header
    )
    size = playback.size
    try:
        byte_range = parse_range(header, size)
    except ValueError:
        refusal = HttpResponse(status=416)
        refusal["Content-Range"] = f"bytes */{size}"
        return refusal
    if byte_range is None:
        first, last, status = 0, size - 1, 200
    else:
        (first, last), status = byte_range, 206
    length = max(0, last - first + 1)
    # Only the bytes asked for are read from storage (one ranged GET on S3), and only when there are any.
    chunks = _chunks(playback.open(first, last, whole=status == 200), length) if length else iter(())
    response = StreamingHttpResponse(chunks, status=status, content_type=playback.content_type)
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = f'inline; filename="{playback.name}"'
    if status == 206:
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    return response


@login_required
@require_GET
def recording_audio(request: HttpRequest, public_id: str) -> HttpResponse | StreamingHttpResponse:
    # The listen permission is not enough: the call must be one the user may see (their own, or
    # every call with ``view_all_interactions``), as in the recordings list. Anyone else's recording
    # is "not found", and nothing is audited as played. (Without the permission the service refuses
    # every id alike with 403.)
    if request.user.has_perm(LISTEN_PERMISSION):
        recording = Recording.objects.filter(public_id=public_id).select_related("interaction").first()
        if recording is not None and not _may_see(request.user, recording.interaction):
            raise Http404
    return _serve(request, "recording", str(public_id))


@login_required
@require_GET
def voicemail_audio(request: HttpRequest, public_id: str) -> HttpResponse | StreamingHttpResponse:
    message = VoicemailMessage.objects.filter(public_id=public_id).select_related("box").first()
    if message is None or not _boxes_for(request.user).filter(pk=message.box_id).exists():
        raise Http404
    return _serve(request, "voicemail", str(public_id))


def _may_see(user: object, interaction: Interaction) -> bool:
    if getattr(user, "has_perm", None) is None:
        return False
    if user.has_perm("contact_center.view_all_interactions"):  # type: ignore[attr-defined]
        return True
    agent = getattr(user, "contact_center_agent", None)
    return agent is not None and interaction.agent_id == agent.pk


@login_required
@require_GET
def interaction_recordings(request: HttpRequest, public_id: str) -> HttpResponse:
    """The recordings of one call with their pause intervals (a partial the interaction view embeds)."""
    interaction = Interaction.objects.filter(public_id=public_id).first()
    if interaction is None or not _may_see(request.user, interaction):
        raise Http404
    recordings = list(Recording.objects.filter(interaction=interaction).order_by("created_at", "id"))
    pauses = list(RecordingPause.objects.filter(interaction=interaction).order_by("paused_at", "id"))
    started = interaction.answered_at
    rows = [
        {
            "pause": pause,
            "offset_seconds": int((pause.paused_at - started).total_seconds()) if started else None,
        }
        for pause in pauses
    ]
    # htmx (the interaction view embeds it) gets the partial; a plain visit the whole page.
    template = "_recordings.html" if getattr(request, "htmx", False) else "interaction_recordings.html"
    return render(
        request,
        f"contact_center/telephony/{template}",
        {
            "interaction": interaction,
            "recordings": recordings,
            "pauses": rows,
            "may_listen": request.user.has_perm(LISTEN_PERMISSION),
        },
    )


def _boxes_for(user: object) -> QuerySet[VoicemailBox]:
    boxes = VoicemailBox.objects.all()
    if user.has_perm("contact_center.view_all_interactions"):  # type: ignore[attr-defined]
        return boxes
    return boxes.filter(Q(subscribers=user) | Q(agent__user=user)).distinct()


@login_required
@require_GET
def voicemail_boxes(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("contact_center.view_interaction"):
        raise DjangoPermissionDenied
    boxes = _boxes_for(request.user).select_related("queue", "agent").order_by("code")
    counts = {
        row["box"]: row["unheard"]
        for row in VoicemailMessage.objects.filter(box__in=boxes, listened_at__isnull=True)
        .values("box")
        .annotate(unheard=Count("id"))
    }
    return render(
        request,
        "contact_center/telephony/voicemail_boxes.html",
        {"boxes": [(box, counts.get(box.pk, 0)) for box in boxes]},
    )


@login_required
@require_GET
def voicemail_box(request: HttpRequest, public_id: str) -> HttpResponse:
    box = _boxes_for(request.user).filter(public_id=public_id).select_related("queue", "agent").first()
    if box is None:
        raise Http404
    messages = (
        VoicemailMessage.objects.filter(box=box)
        .select_related("interaction", "callback_interaction")
        .order_by("-created_at", "-id")[:200]
    )
    return render(
        request,
        "contact_center/telephony/voicemail_box.html",
        {"box": box, "voicemail_messages": messages, "may_listen": request.user.has_perm(LISTEN_PERMISSION)},
    )


urlpatterns: list[URLPattern | URLResolver] = [
    path("telephony/twilio/voice/", telephony_twilio.voice, name="twilio-voice"),
    path("telephony/twilio/gather/", telephony_twilio.gather, name="twilio-gather"),
    path("telephony/twilio/status/", telephony_twilio.status, name="twilio-status"),
    path("telephony/twilio/recording/", telephony_twilio.recording, name="twilio-recording"),
    path("telephony/twilio/voicemail/", telephony_twilio.voicemail, name="twilio-voicemail"),
    path("telephony/twilio/outbound/", telephony_twilio.outbound, name="twilio-outbound"),
    path("telephony/twilio/queue-wait/", telephony_twilio.queue_wait, name="twilio-queue-wait"),
    path("recordings/<uuid:public_id>/audio/", recording_audio, name="recording-audio"),
    path("interactions/<uuid:public_id>/recordings/", interaction_recordings, name="interaction-recordings"),
    path("voicemail/", voicemail_boxes, name="voicemail-boxes"),
    path("voicemail/<uuid:public_id>/", voicemail_box, name="voicemail-box"),
    path("voicemail/messages/<uuid:public_id>/audio/", voicemail_audio, name="voicemail-audio"),
    *telephony_settings.urlpatterns,
]

"""Voice settings page: per-queue recording, consent announcement and retention; voice numbers."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from fedele.contact_center.models import Agent, Queue, QueueTelephonySettings, VoicemailBox, VoiceNumber
from fedele.contact_center.services import voice_settings, voicemail
from fedele.contact_center.telephony.registry import registered_providers
from fedele.shared.errors import ValidationFailed


def _page(
    request: HttpRequest,
    *,
    errors: dict[str, dict[str, list[str]]] | None = None,
    number_errors: dict[str, list[str]] | None = None,
    box_errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    queues = list(Queue.objects.order_by("code"))
    by_queue = {row.queue_id: row for row in QueueTelephonySettings.objects.all()}
    return render(
        request,
        "contact_center/telephony/settings.html",
        {
            "rows": [
                (queue, by_queue.get(queue.pk) or QueueTelephonySettings(queue=queue)) for queue in queues
            ],
            "numbers": VoiceNumber.objects.select_related("queue").order_by("number"),
            "queues": queues,
            "providers": registered_providers(),
            "errors": errors or {},
            "number_errors": number_errors or {},
            "box_errors": box_errors or {},
            "boxes": VoicemailBox.objects.select_related("queue", "agent").order_by("code"),
            "agents": Agent.objects.filter(active=True).order_by("display_name"),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET"])
def voice_settings_page(request: HttpRequest) -> HttpResponse:
    voice_settings.require_manager(request.user)
    return _page(request)


@login_required
@require_POST
def voice_settings_save(request: HttpRequest, code: str) -> HttpResponse:
    data = request.POST
    try:
        voice_settings.queue_voice_settings_save(
            user=request.user,
            queue_code=code,
            record_calls=data.get("record_calls") == "on",
            announce_recording=data.get("announce_recording") == "on",
            announcement_it=data.get("announcement_it", ""),
            announcement_en=data.get("announcement_en", ""),
            recording_retention_days=data.get("recording_retention_days", ""),
            voicemail_retention_days=data.get("voicemail_retention_days", ""),
        )
    except ValidationFailed as error:
        return _page(request, errors={code: error.fields}, status=422)
    messages.success(request, _("Voice settings of %(queue)s saved.") % {"queue": code})
    return redirect("contact_center:voice-settings")


@login_required
@require_POST
def voice_number_save(request: HttpRequest) -> HttpResponse:
    data = request.POST
    try:
        voice_settings.voice_number_save(
            user=request.user,
            number=data.get("number", ""),
            queue_code=data.get("queue", ""),
            provider=data.get("provider", ""),
            language=data.get("language", "it"),
        )
    except ValidationFailed as error:
        return _page(request, number_errors=error.fields, status=422)
    messages.success(request, _("Number saved."))
    return redirect("contact_center:voice-settings")


@login_required
@require_POST
def voice_number_delete(request: HttpRequest, number: str) -> HttpResponse:
    voice_settings.voice_number_delete(user=request.user, number=number)
    messages.success(request, _("Number removed."))
    return redirect("contact_center:voice-settings")


def _optional_id(value: str) -> int | None:
    return int(value) if value.isdigit() else None


@login_required
@require_POST
def voicemail_box_save(request: HttpRequest) -> HttpResponse:
    """Create or update a box (by code): a queue's or an agent's, its greetings and callback rule."""
    voice_settings.require_manager(request.user)
    data = request.POST
    owner = data.get("owner", "")
    kind, _sep, identifier = owner.partition(":")
    try:
        seconds = int(data.get("max_message_seconds", "120") or 0)
    except ValueError:
        seconds = 0
    try:
        voicemail.voicemail_box_save(
            code=data.get("code", "").strip(),
            name=data.get("name", ""),
            queue_id=_optional_id(identifier) if kind == "queue" else None,
            agent_id=_optional_id(identifier) if kind == "agent" else None,
            greeting_it=data.get("greeting_it") or None,
            greeting_en=data.get("greeting_en") or None,
            create_callback=data.get("create_callback") == "on",
            max_message_seconds=seconds,
            active=data.get("active", "on") == "on",
        )
    except ValidationFailed as error:
        return _page(request, box_errors=error.fields, status=422)
    messages.success(request, _("Voicemail box saved."))
    return redirect("contact_center:voice-settings")


urlpatterns: list[URLPattern | URLResolver] = [
    path("settings/voice/", voice_settings_page, name="voice-settings"),
    path("settings/voice/queues/<slug:code>/", voice_settings_save, name="voice-settings-save"),
    path("settings/voice/numbers/", voice_number_save, name="voice-number-save"),
    path("settings/voice/numbers/<str:number>/delete/", voice_number_delete, name="voice-number-delete"),
    path("settings/voice/boxes/", voicemail_box_save, name="voicemail-box-save"),
]

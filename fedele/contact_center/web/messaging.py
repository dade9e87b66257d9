"""The messaging area's pages under /contact-center/:

- the public web chat: ``chat/widget.js`` (the script a site embeds), ``chat/<key>/frame/`` (the chat
  itself, in an iframe only the widget's allowed origins may embed), ``chat/<key>/start/`` (the
  pre-chat form), ``chat/<key>/upload/`` (files, with the visitor's token), ``chat/files/…`` (signed
  downloads);
- provider webhooks: ``webhooks/messaging/<code>/`` (Twilio form posts or signed generic JSON);
- settings: ``settings/messaging/`` (widgets with their embed snippet, channels), ``…/widgets/<key>/``
  and ``…/channels/<code>/`` (create and change), ``…/channels/<code>/active/`` (disable, enable).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, URLResolver, path
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fedele.contact_center.models import InteractionMessage, MessagingChannelKind
from fedele.contact_center.selectors import messaging as selectors
from fedele.contact_center.services import chat as chat_services
from fedele.contact_center.services import sms_social
from fedele.shared import ratelimit
from fedele.shared.errors import (
    ApplicationError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    error_envelope,
)

START_PER_MINUTE_PER_ADDRESS = 20
UPLOADS_PER_MINUTE_PER_SESSION = 10


def _error(error: ApplicationError) -> JsonResponse:
    return JsonResponse(error.envelope(), status=error.status_code)


def _client_address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", ""))


def _same_origin_post(request: HttpRequest, widget: Any) -> None:
    """The pre-chat form and uploads come from the widget's frame (fedele's own origin) or an allowed
    site; anything else is refused before reading the body."""
    origin = request.headers.get("Origin", "")
    if not selectors.origin_allowed(widget, origin):
        raise PermissionDenied(_("This site may not use the chat."), code="chat_origin_refused")


# --- the public chat ------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _static_text(name: str) -> str:
    """A file of static/contact_center/, found the way collectstatic finds it."""
    found = finders.find(f"contact_center/{name}")
    if not isinstance(found, str):
        raise Http404(name)
    return Path(found).read_text(encoding="utf-8")


@require_GET
def widget_script(request: HttpRequest) -> HttpResponse:
    """The loader a site embeds with ``<script src=".../contact-center/chat/widget.js" data-widget=KEY>``.
    Served by a view (not /static/) so its address never changes with a release."""
    text = _static_text("widget.js")
    response = HttpResponse(text, content_type="application/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@require_GET
@xframe_options_exempt
def chat_frame(request: HttpRequest, widget_key: str) -> HttpResponse:
    """The chat panel, loaded in an iframe by widget.js. The browser lets only the widget's allowed
    origins frame it (CSP frame-ancestors); fedele's own pages always may."""
    try:
        widget = selectors.widget_by_key(widget_key)
    except NotFound:
        return HttpResponse(_("This chat is not available."), status=404, content_type="text/plain")
    language = (request.GET.get("lang") or "")[:2]
    if language not in ("it", "en"):
        language = translation.get_language() or "it"
        language = "it" if language.startswith("it") else "en"
    with translation.override(language):
        topics = [
            {"code": str(topic.get("code", "")), "label": chat_services._topic_label(topic, language)}
            for topic in widget.topics or []
            if isinstance(topic, dict)
        ]
        context = {
            "widget": widget,
            "language": language,
            "topics": topics,
            "greeting": (widget.greeting_it if language == "it" else widget.greeting_en)
            or _("Hello! How can we help?"),
            "consent_text": (widget.consent_text_it if language == "it" else widget.consent_text_en)
            or _("I have read the privacy notice and agree to my data being used to answer me."),
            "is_open": chat_services.chat_is_open(widget),
            "texts": _frame_texts(),
            "config": {
                "key": widget.public_key,
                "maxMessageChars": widget.max_message_chars,
                "maxUploadBytes": widget.max_upload_bytes,
                "uploadTypes": list(widget.allowed_upload_types or []),
                "requireEmail": widget.require_email,
            },
        }
        response = render(request, "contact_center/messaging/frame.html", context)
    ancestors = " ".join(["'self'", *selectors.widget_embedding_origins(widget)])
    response["Content-Security-Policy"] = f"frame-ancestors {ancestors}"
    response["Cache-Control"] = "no-store"
    return response


def _frame_texts() -> dict[str, str]:
    """The widget's messages, in the frame's language (rendered as text by the script)."""
    return {
        "connecting": _("Connecting…"),
        "waiting": _("Waiting for an agent…"),
        "connected": _("Connected"),
        "reconnecting": _("Connection lost, reconnecting…"),
        "ended": _("The chat has ended. Thank you!"),
        "endedTranscript": _("The chat has ended. The transcript is on its way to your inbox."),
        "offlineSent": _("Thank you! We received your message (%(ticket)s) and will answer by e-mail."),
        "tooLong": _("The message is too long (at most %(limit)s characters)."),
        "fileTooLarge": _("The file is too large."),
        "failed": _("Something went wrong. Please try again."),
        "you": _("You"),
        "agent": _("Agent"),
        "file": _("File"),
    }


def _json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise ValidationFailed(_("Send the form as JSON."), code="chat_form_invalid") from None
    if not isinstance(body, dict):
        raise ValidationFailed(_("Send the form as JSON."), code="chat_form_invalid")
    return body


@csrf_exempt  # no cookie is used: the visitor's token (or nothing, for a new chat) authorises
@require_POST
def chat_start(request: HttpRequest, widget_key: str) -> JsonResponse:
    try:
        widget = selectors.widget_by_key(widget_key)
        _same_origin_post(request, widget)
        ratelimit.hit(
            f"cc-chat-start:{_client_address(request)}", limit=START_PER_MINUTE_PER_ADDRESS, window_seconds=60
        )
        form = _json_body(request)
        started = chat_services.chat_start(
            widget=widget,
            name=str(form.get("name") or ""),
            email=str(form.get("email") or ""),
            consent=form.get("consent") is True,
            topic=str(form.get("topic") or ""),
            message=str(form.get("message") or ""),
            language=str(form.get("language") or "")[:8],
            origin=str(form.get("page_origin") or request.headers.get("Origin", ""))[:200],
            client_reference=str(form.get("client_reference") or ""),
        )
    except ApplicationError as error:
        return _error(error)
    if started.offline:
        return JsonResponse({"offline": True, "ticket_number": started.ticket_number}, status=201)
    assert started.session is not None
    return JsonResponse(
        {"offline": False, "token": started.token, "session": str(started.session.public_id)}, status=201
    )


@csrf_exempt  # authorised by the visitor's token header, never by a cookie
@require_POST
def chat_upload(request: HttpRequest, widget_key: str) -> JsonResponse:
    try:
        widget = selectors.widget_by_key(widget_key)
        _same_origin_post(request, widget)
        session = chat_services.session_for_token(widget, request.headers.get("X-Chat-Token", ""))
        ratelimit.hit(
            f"cc-chat-upload:{session.public_id}", limit=UPLOADS_PER_MINUTE_PER_SESSION, window_seconds=60
        )
        uploaded = request.FILES.get("file")
        if uploaded is None:
            raise ValidationFailed(
                _("Choose a file."), code="chat_file_missing", fields={"file": _("Required.")}
            )
        # Refused by its declared size before it is read into memory.
        chat_services.check_upload_size(widget, uploaded.size or 0)
        message = chat_services.chat_visitor_upload(
            session=session, filename=uploaded.name or "file", content=uploaded.read()
        )
    except ApplicationError as error:
        return _error(error)
    return JsonResponse(
        {"message": selectors.message_payload(message, author=session.visitor_name)}, status=201
    )


@require_GET
def chat_file(request: HttpRequest, message_public_id: UUID, index: int) -> HttpResponse | FileResponse:
    """One attachment: with a valid signed link (the visitor, the desktop's transcript) or, signed in,
    to the agent holding the conversation or a supervisor."""
    signature = request.GET.get("s", "")
    allowed = bool(signature) and selectors.file_signature_valid(str(message_public_id), index, signature)
    message = (
        InteractionMessage.objects.select_related("interaction__agent")
        .filter(public_id=message_public_id)
        .first()
    )
    if not allowed and request.user.is_authenticated and message is not None:
        # Without a link: the agent holding the conversation, or someone who sees every contact.
        agent = message.interaction.agent
        allowed = request.user.has_perm("contact_center.view_all_interactions") or (
            agent is not None and agent.user_id == request.user.pk
        )
    if not allowed:
        return HttpResponse(_("This link has expired."), status=403, content_type="text/plain")
    attachments = message.attachments if message else []
    if not (0 <= index < len(attachments)):
        return HttpResponse(_("No such file."), status=404, content_type="text/plain")
    item = attachments[index]
    try:
        handle = default_storage.open(str(item["path"]), "rb")
    except (OSError, KeyError):
        return HttpResponse(_("No such file."), status=404, content_type="text/plain")
    response = FileResponse(
        handle,
        as_attachment=not str(item.get("content_type", "")).startswith("image/"),
        filename=str(item.get("name") or "file"),
        content_type=str(item.get("content_type") or "application/octet-stream"),
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# --- provider webhooks ----------------------------------------------------------------------------


@csrf_exempt  # signed by the provider (X-Twilio-Signature or Fedele-Signature), checked below
@require_POST
def messaging_webhook(request: HttpRequest, channel_code: str) -> HttpResponse:
    remote = _client_address(request)
    try:
        channel = selectors.channel_by_code(channel_code)
    except NotFound:
        sms_social.refuse(channel_code, "unknown channel", remote=remote)
        return JsonResponse(error_envelope("not_found", "No such channel."), status=404)
    try:
        if channel.kind == MessagingChannelKind.TWILIO:
            from fedele.contact_center.telephony.twilio import request_params, twilio_public_url

            params = request_params(request)
            if not sms_social.twilio_request_valid(
                channel,
                url=twilio_public_url(request),
                params=params,
                signature=request.headers.get("X-Twilio-Signature", ""),
            ):
                raise sms_social.refuse(channel.code, "bad Twilio signature", remote=remote)
            sms_social.receive(channel, sms_social.parse_twilio(params))
            # An empty TwiML answer: replies (and opt-out confirmations) go out through the API.
            return HttpResponse(
                '<?xml version="1.0" encoding="UTF-8"?><Response></Response>', content_type="application/xml"
            )
        body = request.body
        if not sms_social.generic_request_valid(
            channel, body=body, signature=request.headers.get("Fedele-Signature", "")
        ):
            raise sms_social.refuse(channel.code, "bad HMAC signature", remote=remote)
        results = [sms_social.receive(channel, message) for message in sms_social.parse_generic(body)]
    except ApplicationError as error:
        return _error(error)
    return JsonResponse({"received": len(results), "duplicates": sum(1 for r in results if r.duplicate)})


# --- settings -------------------------------------------------------------------------------------


def _manager(request: HttpRequest) -> None:
    if not request.user.has_perm("contact_center.manage_contact_center"):
        raise PermissionDenied(_("You may not configure the contact center."))


@login_required
@require_GET
def messaging_settings(request: HttpRequest) -> HttpResponse:
    _manager(request)
    context = {
        "widgets": selectors.widget_list(),
        "channels": selectors.channel_list(),
        "public_url": settings.FEDELE_PUBLIC_URL,
    }
    return render(request, "contact_center/messaging/settings.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def widget_edit(request: HttpRequest, widget_key: str | None = None) -> HttpResponse:
    from fedele.contact_center.models import Queue
    from fedele.contact_center.services.chat import widget_save

    _manager(request)
    widget = selectors.widget_by_key(widget_key, active_only=False) if widget_key else None
    errors: dict[str, list[str]] = {}
    form_error = ""
    values: dict[str, str] = {}
    if request.method == "POST":
        values = {name: request.POST.get(name, "") for name in chat_services.WIDGET_FORM_FIELDS}
        values["require_email"] = "on" if request.POST.get("require_email") else ""
        values["offline_when_no_agent"] = "on" if request.POST.get("offline_when_no_agent") else ""
        values["active"] = "on" if request.POST.get("active") else ""
        try:
            widget = widget_save(widget=widget, values=values, actor_id=request.user.pk)
            return redirect("contact_center:messaging_widget_edit", widget.public_key)
        except ValidationFailed as error:
            errors = error.fields
            form_error = "" if errors else error.message
    context = {
        "widget": widget,
        "form_error": form_error,
        "form": values or (chat_services.widget_form_values(widget) if widget else {}),
        "errors": errors,
        "queues": Queue.objects.filter(active=True).order_by("code"),
        "public_url": settings.FEDELE_PUBLIC_URL,
    }
    return render(
        request, "contact_center/messaging/widget_edit.html", context, status=422 if errors else 200
    )


# The form's fields: the service's, less ``active`` (the page's own enable/disable buttons).
CHANNEL_FORM_FIELDS = tuple(name for name in sms_social.CHANNEL_FIELDS if name != "active")

NEW_CHANNEL_FORM = {"kind": "twilio", "network": "sms", "active": "on"}


def _channel_form_values(channel: Any) -> dict[str, str]:
    values = {name: str(getattr(channel, name) or "") for name in CHANNEL_FORM_FIELDS if name != "queue"}
    values["queue"] = channel.queue.code
    values["active"] = "on" if channel.active else ""
    return values


def _field_errors(fields: dict[str, Any]) -> dict[str, list[str]]:
    return {
        name: [str(message)] if isinstance(message, str) else [str(m) for m in message]
        for name, message in fields.items()
    }


@login_required
@require_http_methods(["GET", "POST"])
def channel_edit(request: HttpRequest, channel_code: str | None = None) -> HttpResponse:
    """Create or change an SMS/social channel. The code is fixed once made (the provider is set up
    with the webhook address). Secrets are never typed here: the form names the environment
    variables that hold them and the page only says whether each is set."""
    from fedele.contact_center.models import Queue

    _manager(request)
    channel = selectors.channel_by_code(channel_code, active_only=False) if channel_code else None
    errors: dict[str, list[str]] = {}
    form_error = ""
    values: dict[str, str] = {}
    if request.method == "POST":
        values = {name: request.POST.get(name, "").strip() for name in CHANNEL_FORM_FIELDS}
        if channel is not None:
            values["code"] = channel.code
        values["active"] = "on" if request.POST.get("active") else ""
        try:
            saved = sms_social.channel_save(
                channel=channel, values={**values, "active": bool(values["active"])}, actor_id=request.user.pk
            )
            messages.success(request, _("Channel %(code)s saved.") % {"code": saved.code})
            return redirect("contact_center:messaging_channel_edit", saved.code)
        except ValidationFailed as error:
            errors = _field_errors(error.fields)
            form_error = "" if errors else error.message
    context = {
        "channel": channel,
        "form_error": form_error,
        "form": values
        or (
            _channel_form_values(channel) if channel else {"kind": "twilio", "network": "sms", "active": "on"}
        ),
        "errors": errors,
        "kinds": MessagingChannelKind.choices,
        "queues": Queue.objects.filter(active=True).order_by("code"),
        "secret_set": bool(channel and sms_social.channel_secret(channel)),
        "token_set": bool(
            channel and channel.outbound_token_env and os.environ.get(channel.outbound_token_env)
        ),
        "public_url": settings.FEDELE_PUBLIC_URL,
    }
    return render(
        request,
        "contact_center/messaging/channel_edit.html",
        context,
        status=422 if errors or form_error else 200,
    )


@login_required
@require_POST
def channel_set_active(request: HttpRequest, channel_code: str) -> HttpResponse:
    """Disable (or enable again) a channel: a disabled channel's webhook answers 404 and nothing is
    sent through it; its conversations and send log stay."""
    _manager(request)
    channel = selectors.channel_by_code(channel_code, active_only=False)
    active = request.POST.get("active") == "1"
    try:
        sms_social.channel_save(channel=channel, values={"active": active}, actor_id=request.user.pk)
    except ValidationFailed as error:
        # E.g. its queue was closed since: the channel's page shows what to fix.
        messages.error(request, error.message)
        return redirect("contact_center:messaging_channel_edit", channel.code)
    if active:
        messages.success(request, _("Channel %(code)s enabled.") % {"code": channel.code})
    else:
        messages.success(request, _("Channel %(code)s disabled.") % {"code": channel.code})
    return redirect("contact_center:messaging_settings")


urlpatterns: list[URLPattern | URLResolver] = [
    path("chat/widget.js", widget_script, name="chat_widget_script"),
    path("chat/files/<uuid:message_public_id>/<int:index>/", chat_file, name="chat_file"),
    path("chat/<str:widget_key>/frame/", chat_frame, name="chat_frame"),
    path("chat/<str:widget_key>/start/", chat_start, name="chat_start"),
    path("chat/<str:widget_key>/upload/", chat_upload, name="chat_upload"),
    path("webhooks/messaging/<slug:channel_code>/", messaging_webhook, name="messaging_webhook"),
    path("settings/messaging/", messaging_settings, name="messaging_settings"),
    path("settings/messaging/widgets/new/", widget_edit, name="messaging_widget_new"),
    path("settings/messaging/widgets/<str:widget_key>/", widget_edit, name="messaging_widget_edit"),
    path("settings/messaging/channels/new/", channel_edit, name="messaging_channel_new"),
    path("settings/messaging/channels/<slug:channel_code>/", channel_edit, name="messaging_channel_edit"),
    path(
        "settings/messaging/channels/<slug:channel_code>/active/",
        channel_set_active,
        name="messaging_channel_set_active",
    ),
]

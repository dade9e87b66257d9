"""Twilio's webhooks: voice (a call arrives), IVR keys, status callbacks, recordings, voicemail, and
the TwiML for an outbound call that was answered.

Every request must carry a valid ``X-Twilio-Signature`` for the URL Twilio called (rebuilt from the
configured public base URL, see ``telephony.twilio``); an unsigned, forged or replayed-to-another-URL
request gets **403**, is logged, and changes nothing. Configure in the Twilio console (or through
the API) for each number: voice URL ``/contact-center/telephony/twilio/voice/`` and status callback
``/contact-center/telephony/twilio/status/`` (POST).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from urllib.parse import urlencode

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from fedele.contact_center.ivr.steps import IvrStep, StepKind
from fedele.contact_center.ivr.twiml import render_twiml
from fedele.contact_center.models import Channel, Interaction
from fedele.contact_center.telephony import twilio, twilio_webhooks
from fedele.contact_center.telephony.events import call_event_apply
from fedele.contact_center.telephony.inbound import inbound_steps
from fedele.contact_center.telephony.port import CallEventKind
from fedele.contact_center.telephony.registry import adapter_for
from fedele.shared.errors import ApplicationError

logger = logging.getLogger("fedele.contact_center.telephony.webhooks")

View = Callable[[HttpRequest], HttpResponse]
TWIML = "text/xml; charset=utf-8"


def twilio_webhook(view: View) -> View:
    """POST only, no CSRF (Twilio cannot send a token), and Twilio's signature or 403."""

    @csrf_exempt
    @require_POST
    @functools.wraps(view)
    def checked(request: HttpRequest) -> HttpResponse:
        if not twilio.request_signature_valid(request):
            logger.warning(
                "Refused Twilio webhook %s from %s: %s signature (CallSid %s)",
                request.path,
                request.META.get("REMOTE_ADDR", "?"),
                "invalid" if request.headers.get("X-Twilio-Signature") else "missing",
                request.POST.get("CallSid", "-")[:64],
            )
            return HttpResponse("Forbidden: bad Twilio signature.", status=403, content_type="text/plain")
        try:
            return view(request)
        except twilio_webhooks.UnusableCallback as error:
            logger.warning("Ignored Twilio callback %s: %s", request.path, error)
            return HttpResponse(status=400, content_type="text/plain")

    return checked


def _twiml(body: str) -> HttpResponse:
    return HttpResponse(body, content_type=TWIML)


def _urls(interaction: Interaction, steps: list[IvrStep]) -> dict[str, str]:
    # Absolute on the webhook base the signatures are checked against (it may differ from the
    # public URL when Twilio reaches us through another host name).
    base = twilio.webhook_base_url()
    box = next((str(step.params.get("box", "")) for step in steps if step.kind == StepKind.VOICEMAIL), "")
    record_action = base + reverse("contact_center:twilio-voicemail")
    if box:
        record_action += "?" + urlencode({"box": box})
    # The gather action carries the number of inputs the call's IVR session has taken so far: Twilio
    # gives a <Gather> post no id, and this turn number is what lets the engine recognise a retried
    # post (same URL, same turn) instead of taking the caller's keys a second time.
    from fedele.contact_center.models import IvrSession

    history = (
        IvrSession.objects.filter(interaction=interaction).values_list("digits_history", flat=True).first()
    )
    turn = urlencode({"turn": len(history or [])})
    return {
        "gather_action": base + reverse("contact_center:twilio-gather") + "?" + turn,
        "record_action": record_action,
        "queue_wait_url": base + reverse("contact_center:twilio-queue-wait"),
    }


def _steps_twiml(interaction: Interaction, steps: list[IvrStep]) -> HttpResponse:
    return _twiml(render_twiml(steps, **_urls(interaction, steps)))


def _sorry(language: str = "it") -> HttpResponse:
    # In the call's language (the webhook request itself carries none: Twilio sends no
    # Accept-Language, so the active language is the site's default).
    with translation.override(language):
        text = _("We are sorry, we cannot take your call now. Please try again later.")
    return _twiml(twilio.twiml(twilio.say(text, language=language), "<Hangup/>"))


@twilio_webhook
def voice(request: HttpRequest) -> HttpResponse:
    event = twilio_webhooks.voice_event(request.POST)
    interaction = call_event_apply(event)
    try:
        steps = inbound_steps(interaction=interaction, at=event.at)
    except ApplicationError as error:
        logger.error("Call %s could not be answered: %s", interaction.number, error.message)
        return _sorry(interaction.language or "it")
    return _steps_twiml(interaction, steps)


@twilio_webhook
def gather(request: HttpRequest) -> HttpResponse:
    from fedele.contact_center.ivr.engine import ivr_continue

    event = twilio_webhooks.digits_event(request.POST)
    interaction = call_event_apply(event)
    timed_out = request.GET.get("timeout") == "1" and not event.data.get("digits")
    turn = request.GET.get("turn", "")
    # A retried post of the same turn is answered with the same steps and changes nothing.
    input_ref = f"{twilio.PROVIDER}:{event.call_ref}:{turn}"[:160] if turn.isdigit() else ""
    try:
        steps = ivr_continue(
            interaction=interaction,
            digits=str(event.data.get("digits") or ""),
            timed_out=timed_out,
            input_ref=input_ref,
        )
    except ApplicationError as error:
        logger.warning("IVR input for %s refused: %s", interaction.number, error.message)
        return _sorry(interaction.language or "it")
    return _steps_twiml(interaction, steps)


@twilio_webhook
def status(request: HttpRequest) -> HttpResponse:
    event = twilio_webhooks.status_event(request.POST, interaction=request.GET.get("interaction", "")[:36])
    call_event_apply(event)
    return HttpResponse(status=204)


@twilio_webhook
def recording(request: HttpRequest) -> HttpResponse:
    event = twilio_webhooks.recording_event(request.POST, kind=CallEventKind.RECORDING_READY)
    if event is not None:
        call_event_apply(event)
    return HttpResponse(status=204)


@twilio_webhook
def voicemail(request: HttpRequest) -> HttpResponse:
    """The ``<Record>`` action: the caller left a message (or hung up / pressed # to end it)."""
    event = twilio_webhooks.recording_event(
        request.POST, kind=CallEventKind.VOICEMAIL_READY, box=request.GET.get("box", "")[:40]
    )
    language = "it"
    if event is not None:
        interaction = call_event_apply(event)
        language = interaction.language or "it"
    with translation.override(language):
        thanks = _("Thank you, we will call you back.")
    return _twiml(twilio.twiml(twilio.say(thanks, language=language), "<Hangup/>"))


@twilio_webhook
def outbound(request: HttpRequest) -> HttpResponse:
    """An outbound call we placed was answered: report it, then put the callee in the call's
    conference; a click-to-dial agent is dialled into it too."""
    from fedele.contact_center.models import Agent

    event = twilio_webhooks.status_event(request.POST, interaction=request.GET.get("interaction", "")[:36])
    interaction = call_event_apply(event)
    call_ref = event.call_ref
    agent_id = (interaction.attributes or {}).get("dialling_agent_id") or interaction.agent_id
    agent = Agent.objects.filter(pk=agent_id).first() if agent_id else None
    endpoint = (agent.extension or agent.phone_number) if agent is not None else ""
    dial_agent_leg = getattr(adapter_for(twilio.PROVIDER), "dial_agent_leg", None)
    if (
        endpoint
        and interaction.channel == Channel.VOICE
        and dial_agent_leg is not None
        and _agent_leg_claim(interaction, True)
    ):
        try:
            dial_agent_leg(call_ref, agent_target=endpoint)
        except ApplicationError as error:
            # The customer still waits in the conference; the agent's Answer button retries the bridge
            # (and so may a retry of this webhook).
            _agent_leg_claim(interaction, False)
            logger.error("Could not call agent %s into %s: %s", agent_id, call_ref, error.message)
    return _twiml(twilio.twiml(twilio.dial_conference(call_ref, label="customer", end_on_exit=True)))


def _agent_leg_claim(interaction: Interaction, claim: bool) -> bool:
    """Claim (or give back) the dialling of the agent's leg of an answered outbound call. Twilio
    retries a webhook that timed out; the retry must not ring the agent's phone a second time.
    True when this request holds the claim."""
    with transaction.atomic():
        locked = Interaction.objects.select_for_update().get(pk=interaction.pk)
        attributes = dict(locked.attributes or {})
        if claim and attributes.get("agent_leg_dialled"):
            return False
        attributes["agent_leg_dialled"] = claim
        Interaction.objects.filter(pk=locked.pk).update(attributes=attributes)
    return claim


# A caller waiting in queue hears their place and the estimated wait, then this much silence before
# Twilio asks again (Twilio plays the wait URL's TwiML in a loop).
QUEUE_ANNOUNCEMENT_PAUSE_SECONDS = 30


@twilio_webhook
def queue_wait(request: HttpRequest) -> HttpResponse:
    """``<Enqueue waitUrl>``: the caller's place in our queue (the router's order, not Twilio's) and
    the estimated wait, in the call's language."""
    from fedele.contact_center.ivr.lookups import estimated_wait_seconds, queue_position
    from fedele.contact_center.models import InteractionState
    from fedele.shared import clock

    sid = request.POST.get("CallSid", "")[:120]
    interaction = Interaction.objects.filter(provider=twilio.PROVIDER, provider_ref=sid).first()
    pause = f'<Pause length="{QUEUE_ANNOUNCEMENT_PAUSE_SECONDS}"/>'
    if interaction is None or interaction.state != InteractionState.QUEUED or interaction.queue_id is None:
        return _twiml(twilio.twiml(pause))
    language = interaction.language if interaction.language in ("it", "en") else "it"
    position = queue_position(
        queue_id=interaction.queue_id,
        interaction_id=interaction.pk,
        priority=interaction.priority,
        queued_at=interaction.queued_at or interaction.created_at,
    )
    minutes = max(
        1, -(-estimated_wait_seconds(queue_id=interaction.queue_id, position=position, now=clock.now()) // 60)
    )
    with translation.override(language):
        text = _("You are number %(position)s in line. The estimated wait is %(minutes)s minutes.") % {
            "position": position,
            "minutes": minutes,
        }
    return _twiml(twilio.twiml(twilio.say(text, language=language), pause))

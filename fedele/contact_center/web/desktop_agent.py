"""The agent desktop: state control, offers with countdown, the contacts the agent holds (tabs), and the
work panel of one contact (screen pop, softphone or chat console, wrap-up).

Every panel is a partial the page refreshes on its own event (``cc:state``, ``cc:offers``,
``cc:contacts``, ``cc:chat-<id>``); desktop.js raises those events from websocket pushes, or on a short
poll while the websocket is down (the same page works behind a plain WSGI server).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fedele.accounts.facade import Actor, actor_for
from fedele.contact_center.models import Agent, AgentState, Channel, Interaction, InteractionState
from fedele.contact_center.selectors import desktop as selectors
from fedele.contact_center.web.desktop_common import HANDLE
from fedele.shared import clock
from fedele.shared.errors import ApplicationError, PermissionDenied, ValidationFailed

POLL_SECONDS = 3
CALL_ACTIONS = (
    "answer",
    "hold",
    "unhold",
    "mute",
    "unmute",
    "transfer",
    "conference",
    "dtmf",
    "hangup",
    "leave",
)
CONVERSATION_CHANNELS = (Channel.CHAT, Channel.SMS, Channel.SOCIAL)


def desk(request: HttpRequest) -> tuple[Actor, Agent]:
    """An internal user allowed to handle contacts who has an active agent profile."""
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can(HANDLE)):
        raise PermissionDenied(_("You may not handle contacts."))
    agent = selectors.agent_for_user(actor.user_id)
    if agent is None:
        raise PermissionDenied(
            _("You have no agent profile yet: ask a contact-center administrator to add you."),
            code="no_agent_profile",
        )
    return actor, agent


def _seconds_left(until: datetime | None) -> int:
    if until is None:
        return 0
    return max(0, int((until - clock.now()).total_seconds()))


def state_context(agent: Agent) -> dict[str, Any]:
    from fedele.contact_center.services.presence import break_reasons

    return {
        "agent": agent,
        "break_reasons": break_reasons(),
        "wrap_up_left": _seconds_left(agent.wrap_up_until) if agent.state == AgentState.WRAP_UP else 0,
        "state_seconds": _seconds_left(None)
        if agent.state_since is None
        else int((clock.now() - agent.state_since).total_seconds()),
    }


def offers_context(agent: Agent) -> dict[str, Any]:
    offers = selectors.pending_offers(agent)
    return {
        "offers": [
            {
                "offer": offer,
                "interaction": offer.interaction,
                "caller": selectors.offer_caller(offer.interaction),
                "seconds_left": _seconds_left(offer.expires_at),
            }
            for offer in offers
        ]
    }


def contacts_context(agent: Agent, current: Interaction | None) -> dict[str, Any]:
    return {"contacts": selectors.my_contacts(agent), "current": current}


def work_context(
    request: HttpRequest, actor: Actor, agent: Agent, interaction: Interaction
) -> dict[str, Any]:
    pop = selectors.screen_pop(interaction, language=actor.language)
    conversation = interaction.channel in CONVERSATION_CHANNELS
    mine = interaction.agent_id == agent.pk
    return {
        "interaction": interaction,
        "pop": pop,
        "mine": mine,
        "is_call": interaction.channel == Channel.VOICE,
        "is_conversation": conversation,
        "transcript": selectors.transcript(interaction) if conversation else [],
        "canned": [
            {"shortcut": reply.shortcut, "title": reply.title, "text": reply.text}
            for reply in selectors.canned_replies_for(
                interaction, agent, customer=pop.customer, language=actor.language
            )
        ]
        if conversation and mine
        else [],
        "articles": selectors.kb_suggestions(interaction, language=actor.language) if mine else [],
        "wrap_up_codes": selectors.wrap_up_codes(),
        "can_wrap_up": mine and interaction.state == InteractionState.WRAP_UP,
        "can_write": mine and interaction.state == InteractionState.CONNECTED and conversation,
        "attributes": interaction.attributes or {},
        "wrap_up_left": _seconds_left(agent.wrap_up_until)
        if agent.state == AgentState.WRAP_UP and interaction.state == InteractionState.WRAP_UP
        else 0,
    }


def _current(
    request: HttpRequest, actor: Actor, agent: Agent, contacts: list[Interaction]
) -> Interaction | None:
    wanted = request.GET.get("i", "")
    if wanted:
        return selectors.interaction_for(actor, agent, wanted)
    return contacts[0] if contacts else None


@login_required
@require_GET
def desktop_page(request: HttpRequest) -> HttpResponse:
    actor, agent = desk(request)
    contacts = selectors.my_contacts(agent)
    current = _current(request, actor, agent, contacts)
    context = {
        **state_context(agent),
        **offers_context(agent),
        **contacts_context(agent, current),
        "poll_seconds": POLL_SECONDS,
    }
    if current is not None:
        context.update(work_context(request, actor, agent, current))
    return render(request, "contact_center/desktop/page.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def desktop_state(request: HttpRequest) -> HttpResponse:
    actor, agent = desk(request)
    if request.method == "POST":
        from fedele.contact_center.services.presence import agent_state_set

        agent = agent_state_set(
            agent=agent,
            state=request.POST.get("state", ""),
            reason=request.POST.get("reason", "") if request.POST.get("state") == AgentState.BREAK else "",
            actor_id=actor.user_id,
        )
        _wallboard_changed()
    return render(request, "contact_center/desktop/_state.html", state_context(agent))


@login_required
@require_GET
def desktop_offers(request: HttpRequest) -> HttpResponse:
    _actor, agent = desk(request)
    return render(request, "contact_center/desktop/_offers.html", offers_context(agent))


def _wallboard_changed() -> None:
    from fedele.contact_center.consumers.desktop import WALLBOARD_GROUP
    from fedele.shared.realtime import notify_group

    notify_group(WALLBOARD_GROUP, "cc.wallboard.changed", {})


def _go_to(request: HttpRequest, interaction: Interaction | None) -> HttpResponse:
    url = reverse("contact_center:desktop")
    if interaction is not None:
        url += "?" + urlencode({"i": str(interaction.public_id)})
    if request.htmx:  # type: ignore[attr-defined]
        # A full page load, not an htmx swap: the desktop's script and websocket start over cleanly.
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


@login_required
@require_POST
def offer_accept_view(request: HttpRequest, public_id: str) -> HttpResponse:
    from fedele.contact_center.services.routing import offer_accept, offer_get

    _actor, agent = desk(request)
    offer = offer_get(public_id=str(public_id), agent=agent)
    interaction = offer_accept(offer=offer, agent=agent)
    _wallboard_changed()
    bridgeable = interaction.channel == Channel.VOICE and interaction.provider and interaction.provider_ref
    if bridgeable and (agent.extension or agent.phone_number):
        from fedele.contact_center.services.calls import call_answer

        try:
            call_answer(interaction=interaction, agent=agent)
        except ApplicationError as error:
            # The contact is the agent's either way; the softphone's Answer button retries the bridge.
            messages.warning(request, error.message)
    return _go_to(request, interaction)


@login_required
@require_POST
def offer_reject_view(request: HttpRequest, public_id: str) -> HttpResponse:
    from fedele.contact_center.services.routing import offer_get, offer_reject

    _actor, agent = desk(request)
    offer_reject(offer=offer_get(public_id=str(public_id), agent=agent), agent=agent)
    return render(request, "contact_center/desktop/_offers.html", offers_context(agent))


@login_required
@require_GET
def desktop_contacts(request: HttpRequest) -> HttpResponse:
    actor, agent = desk(request)
    current = selectors.interaction_for(actor, agent, request.GET["i"]) if request.GET.get("i") else None
    return render(request, "contact_center/desktop/_contacts.html", contacts_context(agent, current))


@login_required
@require_GET
def desktop_work(request: HttpRequest, public_id: str) -> HttpResponse:
    actor, agent = desk(request)
    interaction = selectors.interaction_for(actor, agent, str(public_id))
    return render(
        request, "contact_center/desktop/_work.html", work_context(request, actor, agent, interaction)
    )


def _work(request: HttpRequest, actor: Actor, agent: Agent, interaction: Interaction) -> HttpResponse:
    """The work panel after an action; the state and contacts panels refresh too (the action may have
    moved the agent to wrap-up or ended the contact)."""
    interaction.refresh_from_db()
    agent.refresh_from_db()
    response = render(
        request, "contact_center/desktop/_work.html", work_context(request, actor, agent, interaction)
    )
    response["HX-Trigger"] = "cc:state, cc:contacts"
    return response


@login_required
@require_GET
def desktop_transcript(request: HttpRequest, public_id: str) -> HttpResponse:
    actor, agent = desk(request)
    interaction = selectors.interaction_for(actor, agent, str(public_id))
    return render(
        request,
        "contact_center/desktop/_transcript.html",
        {"interaction": interaction, "transcript": selectors.transcript(interaction)},
    )


@login_required
@require_POST
def desktop_message_send(request: HttpRequest, public_id: str) -> HttpResponse:
    from fedele.contact_center.services.messaging import chat_message_send

    actor, agent = desk(request)
    interaction = selectors.interaction_for(actor, agent, str(public_id))
    chat_message_send(interaction=interaction, agent=agent, body=request.POST.get("body", ""))
    return render(
        request,
        "contact_center/desktop/_transcript.html",
        {"interaction": interaction, "transcript": selectors.transcript(interaction)},
    )


@login_required
@require_POST
def desktop_typing(request: HttpRequest, public_id: str) -> HttpResponse:
    from fedele.contact_center.services.messaging import chat_agent_typing

    actor, agent = desk(request)
    interaction = selectors.interaction_for(actor, agent, str(public_id))
    if interaction.channel == Channel.CHAT:
        chat_agent_typing(interaction=interaction, agent=agent, typing=request.POST.get("typing") == "1")
    return HttpResponse(status=204)


def _call_action(action: str, request: HttpRequest, interaction: Interaction, agent: Agent) -> None:
    from fedele.contact_center.services import calls

    target = request.POST.get("target", "")
    if action == "answer":
        calls.call_answer(interaction=interaction, agent=agent)
    elif action in ("hold", "unhold"):
        calls.call_hold(interaction=interaction, agent=agent, on=action == "hold")
    elif action in ("mute", "unmute"):
        calls.call_mute(interaction=interaction, agent=agent, on=action == "mute")
    elif action == "transfer":
        calls.call_transfer(
            interaction=interaction, agent=agent, target=target, warm=request.POST.get("mode") == "warm"
        )
    elif action == "conference":
        calls.call_conference(interaction=interaction, agent=agent, target=target)
    elif action == "dtmf":
        calls.call_send_dtmf(interaction=interaction, agent=agent, digits=request.POST.get("digits", ""))
    elif action == "leave":
        calls.call_leave(interaction=interaction, agent=agent)
    else:
        calls.call_hangup(interaction=interaction, agent=agent)


@login_required
@require_POST
def desktop_call(request: HttpRequest, public_id: str, action: str) -> HttpResponse:
    actor, agent = desk(request)
    if action not in CALL_ACTIONS:
        raise ValidationFailed(_("Unknown call action."), code="unknown_call_action")
    interaction = selectors.interaction_for(actor, agent, str(public_id))
    _call_action(action, request, interaction, agent)
    if action == "dtmf":
        return HttpResponse(status=204)
    if action in ("hangup", "leave") or (action == "transfer" and request.POST.get("mode") != "warm"):
        _wallboard_changed()
    return _work(request, actor, agent, interaction)


@login_required
@require_POST
def desktop_end(request: HttpRequest, public_id: str) -> HttpResponse:
    """The agent closes a chat, SMS or social conversation (calls end with the softphone's hang up)."""
    from fedele.contact_center.models import Outcome
    from fedele.contact_center.services.interactions import interaction_end

    actor, agent = desk(request)
    interaction = selectors.interaction_for(actor, agent, str(public_id))
    if interaction.agent_id != agent.pk:
        raise PermissionDenied(_("This contact is not yours."), code="not_your_interaction")
    if interaction.channel not in CONVERSATION_CHANNELS:
        raise ValidationFailed(_("End a call with the softphone's hang up."), code="not_a_conversation")
    interaction_end(interaction=interaction, outcome=Outcome.HANDLED)
    _wallboard_changed()
    return _work(request, actor, agent, interaction)


@login_required
@require_POST
def desktop_wrap_up(request: HttpRequest, public_id: str) -> HttpResponse:
    """Wrap-up: code and notes, then optionally a ticket (a new one, or an existing one by number or id).
    The ticket is linked first: when it fails, the wrap-up is not completed and the form stays."""
    from fedele.contact_center.services.interactions import (
        interaction_link_ticket,
        interaction_wrap_up_complete,
    )

    actor, agent = desk(request)
    interaction = selectors.interaction_for(actor, agent, str(public_id))
    if interaction.agent_id != agent.pk:
        raise PermissionDenied(_("This contact is not yours."), code="not_your_interaction")
    ticket_mode = request.POST.get("ticket", "")
    if ticket_mode not in ("", "create", "attach"):
        raise ValidationFailed(_("Choose how to link a ticket."), code="invalid_ticket_choice")
    code = request.POST.get("wrap_up_code", "") or None
    if code is None and selectors.wrap_up_codes().exists():
        raise ValidationFailed(
            _("Choose a wrap-up code."), code="wrap_up_code_required", fields={"wrap_up_code": _("Required.")}
        )
    if ticket_mode == "create":
        interaction_link_ticket(interaction=interaction, create=True, actor=actor)
    elif ticket_mode == "attach":
        interaction_link_ticket(
            interaction=interaction,
            create=False,
            ticket_public_id=_ticket_id(request.POST.get("ticket_ref", "")),
            actor=actor,
        )
    interaction.refresh_from_db()
    interaction_wrap_up_complete(
        interaction=interaction, agent=agent, wrap_up_code=code, notes=request.POST.get("notes", "")
    )
    _wallboard_changed()
    messages.success(request, _("Contact %(number)s wrapped up.") % {"number": interaction.number})
    remaining = selectors.my_contacts(agent)
    return _go_to(request, remaining[0] if remaining else None)


def _ticket_id(reference: str) -> str:
    """The ticket to attach: the form offers the customer's open tickets (their public ids)."""
    value = (reference or "").strip()
    if not value:
        raise ValidationFailed(
            _("Enter the ticket to attach."), code="ticket_required", fields={"ticket_ref": _("Required.")}
        )
    return value


@login_required
@require_http_methods(["GET", "POST"])
def desktop_customer(request: HttpRequest, public_id: str) -> HttpResponse:
    """Unknown caller: search customers (GET ?q=) and link one (POST customer=<public id>)."""
    actor, agent = desk(request)
    interaction = selectors.interaction_for(actor, agent, str(public_id))
    if request.method == "POST":
        from fedele.contact_center.services.desktop import interaction_customer_link

        interaction_customer_link(
            interaction=interaction,
            agent=None if actor.can("contact_center.view_all_interactions") else agent,
            customer_public_id=request.POST.get("customer", ""),
            actor_id=actor.user_id,
        )
        return _work(request, actor, agent, interaction)
    if not actor.can("customers.view_customer"):
        raise PermissionDenied(_("You may not search customers."))
    return render(
        request,
        "contact_center/desktop/_customer_hits.html",
        {"interaction": interaction, "hits": selectors.customer_search(request.GET.get("q", ""))},
    )


@login_required
@require_POST
def click_to_dial(request: HttpRequest) -> HttpResponse:
    """Click-to-dial from any phone number in the app: an outbound call through the telephony area."""
    from fedele.contact_center.services.calls import call_originate

    _actor, agent = desk(request)
    try:
        interaction = call_originate(agent=agent, to_number=request.POST.get("number", ""))
    except ApplicationError as error:
        return JsonResponse(error.envelope(), status=error.status_code)
    return JsonResponse(
        {
            "interaction": str(interaction.public_id),
            "number": interaction.number,
            "to": interaction.to_address,
            "message": _("Calling %(number)s…") % {"number": interaction.to_address},
            "desktop_url": reverse("contact_center:desktop")
            + "?"
            + urlencode({"i": str(interaction.public_id)}),
        },
        status=201,
    )


urlpatterns: list[URLPattern | URLResolver] = [
    path("desktop/", desktop_page, name="desktop"),
    path("desktop/state/", desktop_state, name="desktop_state"),
    path("desktop/offers/", desktop_offers, name="desktop_offers"),
    path("desktop/offers/<uuid:public_id>/accept/", offer_accept_view, name="desktop_offer_accept"),
    path("desktop/offers/<uuid:public_id>/reject/", offer_reject_view, name="desktop_offer_reject"),
    path("desktop/contacts/", desktop_contacts, name="desktop_contacts"),
    path("desktop/i/<uuid:public_id>/", desktop_work, name="desktop_work"),
    path("desktop/i/<uuid:public_id>/transcript/", desktop_transcript, name="desktop_transcript"),
    path("desktop/i/<uuid:public_id>/messages/", desktop_message_send, name="desktop_message_send"),
    path("desktop/i/<uuid:public_id>/typing/", desktop_typing, name="desktop_typing"),
    path("desktop/i/<uuid:public_id>/call/<slug:action>/", desktop_call, name="desktop_call"),
    path("desktop/i/<uuid:public_id>/end/", desktop_end, name="desktop_end"),
    path("desktop/i/<uuid:public_id>/wrap-up/", desktop_wrap_up, name="desktop_wrap_up"),
    path("desktop/i/<uuid:public_id>/customer/", desktop_customer, name="desktop_customer"),
    path("dial/", click_to_dial, name="click_to_dial"),
]

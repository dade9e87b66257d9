"""The agent's side of every text conversation (web chat, SMS, social) and the realtime pushes that
join the visitor's widget and the agent desktop.

Groups and message types (the desktop's consumer joins ``cc.agent.<agent_id>``):

- ``cc.agent.<agent_id>`` ← ``cc.chat.message`` {interaction, number, message} for every message of
  the agent's conversations (the customer's and the agent's own, so every open tab shows both),
  ``cc.chat.typing`` {interaction, typing} when the visitor types, ``cc.chat.ended`` {interaction}
  when the visitor leaves;
- ``cc.chat.<session public id>`` (the visitor's widget) ← ``cc.visitor.message``,
  ``cc.visitor.typing``, ``cc.visitor.ended``.

Pushes go out after commit (``fedele.shared.realtime.notify_group``). Chat messages are not audited
one by one: the transcript row is their record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from fedele.contact_center.models import (
    Agent,
    Channel,
    ChatSession,
    ChatSessionState,
    Interaction,
    InteractionMessage,
    InteractionState,
)
from fedele.contact_center.selectors.messaging import message_payload
from fedele.shared import clock
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed
from fedele.shared.realtime import notify_group

# Conversations an agent may still write into: connected, or in wrap-up for a last word.
_WRITABLE_STATES = frozenset({InteractionState.CONNECTED, InteractionState.WRAP_UP})
DEFAULT_MAX_MESSAGE_CHARS = 2000


def agent_group(agent_id: int) -> str:
    return f"cc.agent.{agent_id}"


def visitor_group(session_public_id: object) -> str:
    return f"cc.chat.{session_public_id}"


def push_to_agent(interaction: Interaction, message_type: str, data: dict[str, Any]) -> None:
    """After commit, to the agent who holds the interaction (nobody while it still waits)."""
    if interaction.agent_id is None:
        return
    notify_group(
        agent_group(interaction.agent_id),
        message_type,
        {"interaction": str(interaction.public_id), "number": interaction.number, **data},
    )


def push_to_visitor(session: ChatSession, message_type: str, data: dict[str, Any]) -> None:
    notify_group(visitor_group(session.public_id), message_type, data)


def _clean_body(body: str, *, limit: int) -> str:
    text = (body or "").strip()
    if not text:
        raise ValidationFailed(
            _("Write a message first."), code="chat_message_empty", fields={"body": _("Required.")}
        )
    if len(text) > limit:
        raise ValidationFailed(
            _("The message is longer than %(limit)s characters.") % {"limit": limit},
            code="chat_message_too_long",
            fields={"body": _("At most %(limit)s characters.") % {"limit": limit}},
        )
    return text


def chat_message_send(
    *, interaction: Interaction, agent: Agent, body: str, at: datetime | None = None
) -> InteractionMessage:
    """An agent writes into one of their conversations: a web chat goes to the visitor's widget, an
    SMS or social conversation out through its provider (a service message in an open conversation,
    so no marketing consent is needed; an opted-out sender still gets it, as the law allows).

    Raises PermissionDenied when the interaction is not this agent's, Conflict when it is over,
    ValidationFailed for an empty or too long message; nothing is written then."""
    if interaction.channel not in (Channel.CHAT, Channel.SMS, Channel.SOCIAL):
        raise ValidationFailed(
            _("Only chat, SMS and social conversations take messages."), code="not_a_conversation"
        )
    moment = at or clock.now()
    with transaction.atomic():
        locked = Interaction.objects.select_for_update().get(pk=interaction.pk)
        if locked.agent_id != agent.pk:
            raise PermissionDenied(_("This conversation is not yours."), code="not_your_interaction")
        if locked.state not in _WRITABLE_STATES:
            raise Conflict(_("This conversation is over."), code="conversation_over")
        if locked.channel == Channel.CHAT:
            message = _chat_send(locked, agent, body, moment)
        else:
            from fedele.contact_center.services.sms_social import conversation_reply

            message = conversation_reply(interaction=locked, agent=agent, body=body, at=moment)
        push_to_agent(
            locked, "cc.chat.message", {"message": message_payload(message, author=agent.display_name)}
        )
    interaction.refresh_from_db()
    return message


def _chat_send(interaction: Interaction, agent: Agent, body: str, moment: datetime) -> InteractionMessage:
    session = ChatSession.objects.select_related("widget").filter(interaction=interaction).first()
    limit = session.widget.max_message_chars if session else DEFAULT_MAX_MESSAGE_CHARS
    text = _clean_body(body, limit=limit)
    if session is None or session.state != ChatSessionState.ACTIVE:
        raise Conflict(_("The visitor has left the chat."), code="visitor_left")
    message = InteractionMessage.objects.create(
        interaction=interaction,
        sender=InteractionMessage.Sender.AGENT,
        agent=agent,
        body=text,
        created_at=moment,
    )
    push_to_visitor(
        session, "cc.visitor.message", {"message": message_payload(message, author=agent.display_name)}
    )
    push_to_visitor(session, "cc.visitor.typing", {"typing": False})
    return message


def chat_agent_typing(*, interaction: Interaction, agent: Agent, typing: bool) -> None:
    """The agent started or stopped typing: the visitor's widget shows it. Nothing is stored."""
    if interaction.agent_id != agent.pk or interaction.channel != Channel.CHAT:
        raise PermissionDenied(_("This conversation is not yours."), code="not_your_interaction")
    session = ChatSession.objects.filter(interaction=interaction, state=ChatSessionState.ACTIVE).first()
    if session is None:
        return
    # No transaction to wait for: typing is a courtesy, sent at once.
    from fedele.shared.realtime import send_now

    send_now(visitor_group(session.public_id), "cc.visitor.typing", {"typing": bool(typing)})

"""The visitor's side of the web chat: the pre-chat form (a chat that waits for an agent, or a support
ticket when nobody can answer), messages, typing, file uploads, the end of the chat and its
transcript by e-mail.

The visitor has no account: the session is theirs through a signed token (``visitor_token``) that
names the session and a random nonce kept on it; the widget keeps it and reconnects with it.
"""

from __future__ import annotations

import hmac
import logging
import mimetypes
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import puremagic
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from fedele.contact_center.models import (
    Agent,
    AgentState,
    Channel,
    ChatSession,
    ChatSessionState,
    ChatWidget,
    Direction,
    Interaction,
    InteractionMessage,
    InteractionState,
    Outcome,
    Queue,
)
from fedele.contact_center.selectors.messaging import message_payload, transcript
from fedele.contact_center.services.messaging import push_to_agent, push_to_visitor
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, NotAuthenticated, NotFound, PayloadTooLarge, ValidationFailed

logger = logging.getLogger(__name__)

TOKEN_SALT = "contact_center.chat.visitor"  # noqa: S105 - a signing salt, not a secret
TOKEN_MAX_AGE_SECONDS = 24 * 3600
MAX_NAME_CHARS = 120
UPLOAD_DIRECTORY = "contact_center/chat"
_FILENAME_FORBIDDEN = re.compile(r'[<>:"|?*\\/\x00-\x1f\x7f]')


@dataclass(frozen=True, slots=True)
class ChatStart:
    """What the pre-chat form led to: a live session (with the visitor's token) or, when nobody could
    answer, a support ticket."""

    session: ChatSession | None
    token: str
    offline: bool
    ticket_number: str = ""


# --- tokens ---------------------------------------------------------------------------------------


def visitor_token(session: ChatSession) -> str:
    return signing.dumps({"s": str(session.public_id), "n": session.token_nonce}, salt=TOKEN_SALT)


def session_for_token(widget: ChatWidget, token: str) -> ChatSession:
    """The session the token names, if it is this widget's and the nonce matches. NotAuthenticated
    otherwise (a forged, expired or other widget's token)."""
    refused = NotAuthenticated(_("This chat has expired: start a new one."), code="chat_token_invalid")
    try:
        value = signing.loads(str(token or "")[:500], salt=TOKEN_SALT, max_age=TOKEN_MAX_AGE_SECONDS)
        session_id = uuid.UUID(str(value["s"]))
        nonce = str(value["n"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise refused from None
    session = (
        ChatSession.objects.select_related("widget", "widget__queue", "interaction")
        .filter(public_id=session_id, widget=widget)
        .first()
    )
    if session is None or not hmac.compare_digest(session.token_nonce.encode(), nonce.encode()):
        raise refused
    return session


# --- opening hours --------------------------------------------------------------------------------


def _topic(widget: ChatWidget, code: str) -> dict[str, Any] | None:
    for topic in widget.topics or []:
        if isinstance(topic, dict) and str(topic.get("code", "")) == code:
            return topic
    return None


def _queue_for(widget: ChatWidget, topic: dict[str, Any] | None) -> Queue:
    code = str((topic or {}).get("queue_code") or "")
    if code:
        queue = Queue.objects.filter(code=code, active=True).first()
        if queue is not None:
            return queue
    return widget.queue


def _calendar_open(code: str, at: datetime) -> bool:
    if not code:
        return True
    from fedele.support.facade import calendar_is_open

    try:
        return calendar_is_open(code, at)
    except NotFound:
        # A calendar deleted under the widget: closed (messages become tickets) rather than broken.
        logger.warning("Chat business calendar %s does not exist; the chat is treated as closed", code)
        return False


def chat_is_open(widget: ChatWidget, *, topic_code: str = "", at: datetime | None = None) -> bool:
    """Whether a chat started now would reach someone: the widget is on, the business hours (the
    widget's calendar, else the queue's) are open and, unless the widget says otherwise, an agent of
    the queue is signed in (in any state but offline)."""
    moment = at or clock.now()
    if not widget.active:
        return False
    queue = _queue_for(widget, _topic(widget, topic_code))
    if not _calendar_open(widget.calendar_code or queue.calendar_code, moment):
        return False
    if widget.offline_when_no_agent:
        return Agent.objects.filter(queues=queue, active=True).exclude(state=AgentState.OFFLINE).exists()
    return True


# --- the pre-chat form ----------------------------------------------------------------------------


def _clean_form(
    widget: ChatWidget, *, name: str, email: str, consent: bool, topic: str, message: str, offline: bool
) -> tuple[str, str, str, str]:
    errors: dict[str, str] = {}
    clean_name = " ".join((name or "").split())
    if not clean_name:
        errors["name"] = _("Tell us your name.")
    elif len(clean_name) > MAX_NAME_CHARS:
        errors["name"] = _("At most %(limit)s characters.") % {"limit": MAX_NAME_CHARS}
    clean_email = (email or "").strip().lower()
    if clean_email or widget.require_email or offline:
        try:
            validate_email(clean_email)
        except ValidationError:
            errors["email"] = _("Enter a valid e-mail address.")
    if consent is not True:
        errors["consent"] = _("Please accept the privacy notice to chat with us.")
    clean_topic = (topic or "").strip()
    if widget.topics and _topic(widget, clean_topic) is None:
        errors["topic"] = _("Choose a topic.")
    clean_message = (message or "").strip()
    if len(clean_message) > widget.max_message_chars:
        errors["message"] = _("At most %(limit)s characters.") % {"limit": widget.max_message_chars}
    elif offline and not clean_message:
        errors["message"] = _("Leave us a message and we will answer by e-mail.")
    if errors:
        raise ValidationFailed(_("Please check the form."), code="chat_form_invalid", fields=errors)
    return clean_name, clean_email, clean_topic, clean_message


def chat_start(
    *,
    widget: ChatWidget,
    name: str,
    email: str,
    consent: bool,
    topic: str = "",
    message: str = "",
    language: str = "",
    origin: str = "",
    client_reference: str = "",
    at: datetime | None = None,
) -> ChatStart:
    """The visitor sent the pre-chat form. When the chat is open: a session, an Interaction (channel
    chat, identified by e-mail) queued for the topic's queue and skills, and the first message if
    there is one. When it is closed: a support ticket with the message (idempotent on the form's
    ``client_reference``, so a double submit opens one ticket). ValidationFailed changes nothing."""
    moment = at or clock.now()
    offline = not chat_is_open(widget, topic_code=(topic or "").strip(), at=moment)
    clean_name, clean_email, clean_topic, clean_message = _clean_form(
        widget, name=name, email=email, consent=consent, topic=topic, message=message, offline=offline
    )
    chosen_topic = _topic(widget, clean_topic)
    lang = (language or "")[:8]
    topic_label = _topic_label(chosen_topic, lang)
    if offline:
        return _offline_ticket(
            widget,
            name=clean_name,
            email=clean_email,
            topic_label=topic_label,
            message=clean_message,
            client_reference=client_reference,
        )
    from fedele.contact_center.services.interactions import interaction_create, interaction_enqueue

    queue = _queue_for(widget, chosen_topic)
    skills = {str(code): int(level) for code, level in dict((chosen_topic or {}).get("skills") or {}).items()}
    with transaction.atomic():
        interaction = interaction_create(
            channel=Channel.CHAT,
            direction=Direction.INBOUND,
            from_address=clean_email,
            to_address=widget.public_key,
            subject=topic_label or _("Web chat"),
            language=lang,
            attributes={"widget": widget.public_key, "topic": clean_topic, "visitor_name": clean_name},
            at=moment,
        )
        session = ChatSession.objects.create(
            widget=widget,
            interaction=interaction,
            visitor_name=clean_name,
            visitor_email=clean_email,
            consent=True,
            topic=clean_topic,
            language=lang,
            origin=origin[:200],
            token_nonce=secrets.token_urlsafe(24),
            created_at=moment,
            last_seen_at=moment,
        )
        if clean_message:
            InteractionMessage.objects.create(
                interaction=interaction,
                sender=InteractionMessage.Sender.CUSTOMER,
                body=clean_message,
                created_at=moment,
            )
        audit.record(
            action="contact_center.chat_started",
            object_type="contact_center.chat_session",
            object_id=str(session.public_id),
            after={"widget": widget.public_key, "interaction": interaction.number, "topic": clean_topic},
        )
        interaction_enqueue(
            interaction=interaction, queue_code=queue.code, required_skills=skills or None, at=moment
        )
    return ChatStart(session=session, token=visitor_token(session), offline=False)


def _topic_label(topic: dict[str, Any] | None, language: str) -> str:
    if topic is None:
        return ""
    preferred = "label_it" if language.startswith("it") else "label_en"
    return str(topic.get(preferred) or topic.get("label_en") or topic.get("label_it") or topic.get("code"))


def _offline_ticket(
    widget: ChatWidget, *, name: str, email: str, topic_label: str, message: str, client_reference: str
) -> ChatStart:
    from fedele.support.facade import create_ticket

    reference = re.sub(r"[^A-Za-z0-9_-]", "", client_reference or "")[:64]
    subject = _("Chat message from %(name)s") % {"name": name}
    if topic_label:
        subject = f"{subject} ({topic_label})"
    ticket = create_ticket(
        subject=subject[:200],
        body=message,
        channel="chat",
        requester_email=email,
        requester_name=name,
        external_reference=f"chat:{widget.public_key}:{reference}" if reference else "",
    )
    return ChatStart(session=None, token="", offline=True, ticket_number=ticket.number)


# --- the conversation -----------------------------------------------------------------------------


def _active(session: ChatSession) -> None:
    if session.state != ChatSessionState.ACTIVE:
        raise Conflict(_("This chat has ended."), code="chat_ended")


@dataclass(frozen=True, slots=True)
class StoredVisitorMessage:
    """A visitor's message once stored, with what its pushes need."""

    message: InteractionMessage
    payload: dict[str, Any]
    agent_id: int | None
    resent: bool


def chat_visitor_message_store(
    *, session: ChatSession, body: str, client_id: str = "", at: datetime | None = None
) -> StoredVisitorMessage:
    """Store a visitor's message without pushing it (the websocket consumer pushes it itself, from its
    event loop, as soon as this returns). Same checks as ``chat_visitor_message``."""
    from fedele.contact_center.services.messaging import _clean_body

    _active(session)
    text = _clean_body(body, limit=session.widget.max_message_chars)
    reference = re.sub(r"[^A-Za-z0-9_-]", "", client_id or "")[:100]
    moment = at or clock.now()
    interaction = session.interaction
    if interaction is None:
        raise NotFound(_("This chat has no conversation."), code="chat_without_interaction")
    try:
        with transaction.atomic():
            # The session's state is checked where it is written (one statement, not a read and a
            # write): a chat ended meanwhile, by the agent or in another tab, takes nothing.
            still_active = ChatSession.objects.filter(pk=session.pk, state=ChatSessionState.ACTIVE).update(
                last_seen_at=moment
            )
            if not still_active:
                raise Conflict(_("This chat has ended."), code="chat_ended")
            # A resend after a reconnect hits the (interaction, provider_ref) unique constraint.
            message = InteractionMessage.objects.create(
                interaction=interaction,
                sender=InteractionMessage.Sender.CUSTOMER,
                body=text,
                provider_ref=f"visitor:{reference}" if reference else "",
                created_at=moment,
            )
            agent_id = (
                Interaction.objects.filter(pk=interaction.pk).values_list("agent_id", flat=True).first()
            )
    except IntegrityError:
        existing = (
            InteractionMessage.objects.filter(
                interaction=interaction, provider_ref=f"visitor:{reference}"
            ).first()
            if reference
            else None
        )
        if existing is None:
            raise
        return StoredVisitorMessage(
            existing, message_payload(existing, author=session.visitor_name), None, True
        )
    return StoredVisitorMessage(
        message, message_payload(message, author=session.visitor_name), agent_id, False
    )


def chat_visitor_message(
    *, session: ChatSession, body: str, client_id: str = "", at: datetime | None = None
) -> InteractionMessage:
    """The visitor wrote. Refused (nothing stored, a clear error to the sender) when empty or over the
    widget's size limit. ``client_id`` (the widget's own id of the message) makes a resend after a
    reconnect return the message already stored instead of a second one. The agent holding the chat
    and the visitor's other tabs hear it after commit."""
    with transaction.atomic():
        stored = chat_visitor_message_store(session=session, body=body, client_id=client_id, at=at)
        if not stored.resent:
            interaction = stored.message.interaction
            interaction.agent_id = stored.agent_id
            push_to_agent(interaction, "cc.chat.message", {"message": stored.payload})
            push_to_visitor(session, "cc.visitor.message", {"message": stored.payload})
    return stored.message


def chat_visitor_typing(*, session: ChatSession, typing: bool) -> None:
    """Typing is a courtesy: sent at once to the agent, never stored."""
    from fedele.shared.realtime import send_now

    interaction = session.interaction
    if session.state != ChatSessionState.ACTIVE or interaction is None:
        return
    agent_id = Interaction.objects.filter(pk=interaction.pk).values_list("agent_id", flat=True).first()
    if agent_id is None:
        return
    from fedele.contact_center.services.messaging import agent_group

    send_now(
        agent_group(agent_id),
        "cc.chat.typing",
        {"interaction": str(interaction.public_id), "number": interaction.number, "typing": bool(typing)},
    )


def safe_filename(name: str) -> str:
    normalised = unicodedata.normalize("NFC", name or "")
    base = re.split(r"[\\/]", normalised)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = _FILENAME_FORBIDDEN.sub("_", base).strip().strip(".").strip()
    return base[-100:] or "file"


def sniff_content_type(content: bytes) -> str:
    """What the bytes are, whatever the sender declared: puremagic's best match, else plain text when
    it decodes as UTF-8 without NUL bytes, else unknown."""
    try:
        matches = puremagic.magic_string(content[:65536]) if content else []
    except (puremagic.PureError, ValueError):
        matches = []
    for match in matches:
        if match.mime_type:
            return str(match.mime_type)
    sample = content[:4096]
    if content and b"\x00" not in sample:
        try:
            sample.decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError as error:
            if error.start >= len(sample) - 3:
                return "text/plain"
    return "application/octet-stream"


def check_upload_size(widget: ChatWidget, size: int) -> None:
    if size > widget.max_upload_bytes:
        raise PayloadTooLarge(
            _("The file is larger than the %(limit)s MB allowed.")
            % {"limit": f"{widget.max_upload_bytes / (1024 * 1024):g}"},
            code="chat_file_too_large",
        )


def chat_visitor_upload(
    *, session: ChatSession, filename: str, content: bytes, at: datetime | None = None
) -> InteractionMessage:
    """The visitor sent a file: refused over the widget's size limit (PayloadTooLarge) or when its
    bytes are not one of the widget's allowed types (ValidationFailed); stored through Django storage
    otherwise, as a transcript message with one attachment."""
    _active(session)
    widget = session.widget
    if not content:
        raise ValidationFailed(_("The file is empty."), code="chat_file_empty", fields={"file": _("Empty.")})
    check_upload_size(widget, len(content))
    content_type = sniff_content_type(content)
    allowed = [str(value) for value in widget.allowed_upload_types or []]
    if content_type not in allowed:
        raise ValidationFailed(
            _("This kind of file cannot be sent here."),
            code="chat_file_type_refused",
            fields={"file": _("Allowed: %(types)s.") % {"types": ", ".join(allowed)}},
        )
    interaction = session.interaction
    if interaction is None:
        raise NotFound(_("This chat has no conversation."), code="chat_without_interaction")
    name = safe_filename(filename)
    extension = mimetypes.guess_extension(content_type) or ""
    moment = at or clock.now()
    stored = default_storage.save(
        f"{UPLOAD_DIRECTORY}/{session.public_id}/{uuid.uuid4().hex}{extension}", ContentFile(content)
    )
    try:
        with transaction.atomic():
            # As for text messages: the state is checked where it is written, so a chat ended
            # meanwhile (another tab, the agent) takes no file (and the stored one is deleted below).
            if not ChatSession.objects.filter(pk=session.pk, state=ChatSessionState.ACTIVE).update(
                last_seen_at=moment
            ):
                raise Conflict(_("This chat has ended."), code="chat_ended")
            message = InteractionMessage.objects.create(
                interaction=interaction,
                sender=InteractionMessage.Sender.CUSTOMER,
                attachments=[
                    {"name": name, "content_type": content_type, "size": len(content), "path": stored}
                ],
                created_at=moment,
            )
            interaction.refresh_from_db(fields=["agent", "state"])
            payload = message_payload(message, author=session.visitor_name)
            push_to_agent(interaction, "cc.chat.message", {"message": payload})
            push_to_visitor(session, "cc.visitor.message", {"message": payload})
    except Exception:
        default_storage.delete(stored)
        raise
    return message


def chat_end(*, session: ChatSession, transcript_to: str = "", at: datetime | None = None) -> ChatSession:
    """The visitor closed the chat: the session ends, the interaction ends (handled when an agent had
    it, abandoned when it was still waiting), the agent's desktop hears it, and the transcript goes
    to ``transcript_to`` when asked. The transcript goes only to the address the visitor gave in the
    pre-chat form (any other would make the widget a relay for mail whose content the visitor writes);
    another address is refused and the chat goes on. Ending twice changes nothing the second time."""
    moment = at or clock.now()
    address = (transcript_to or "").strip().lower()
    if address:
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationFailed(
                _("Enter a valid e-mail address."),
                code="chat_transcript_address_invalid",
                fields={"email": _("Enter a valid e-mail address.")},
            ) from None
    with transaction.atomic():
        locked = ChatSession.objects.select_for_update().select_related("widget").get(pk=session.pk)
        if locked.state == ChatSessionState.ENDED:
            return locked
        if address and address != (locked.visitor_email or "").strip().lower():
            raise ValidationFailed(
                _("The transcript can only be sent to the e-mail address given at the start of the chat."),
                code="chat_transcript_address_not_prechat",
                fields={"email": address},
            )
        locked.state = ChatSessionState.ENDED
        locked.ended_at = moment
        if address:
            locked.transcript_sent_to = address
            locked.transcript_sent_at = moment
        locked.save(update_fields=["state", "ended_at", "transcript_sent_to", "transcript_sent_at"])
        interaction = locked.interaction
        if interaction is not None:
            _end_interaction(interaction, moment)
            push_to_agent(interaction, "cc.chat.ended", {})
        push_to_visitor(locked, "cc.visitor.ended", {})
        audit.record(
            action="contact_center.chat_ended",
            object_type="contact_center.chat_session",
            object_id=str(locked.public_id),
            after={"transcript_to": address},
        )
        if address and interaction is not None:
            transaction.on_commit(lambda: _send_transcript(locked, interaction, address))
    return locked


def _end_interaction(interaction: Interaction, moment: datetime) -> None:
    current = Interaction.objects.filter(pk=interaction.pk).values_list("state", "agent_id").first()
    if current is None or current[0] in (InteractionState.WRAP_UP, InteractionState.ENDED):
        return
    from fedele.contact_center.services.interactions import interaction_end

    outcome = Outcome.HANDLED if current[1] is not None else Outcome.ABANDONED
    interaction_end(interaction=Interaction.objects.get(pk=interaction.pk), outcome=outcome, at=moment)


def _send_transcript(session: ChatSession, interaction: Interaction, address: str) -> None:
    language = session.language if session.language in ("it", "en") else "it"
    with translation.override(language):
        # The visitor reads wall-clock times of the deployment's zone (Europe/Rome), not UTC ISO.
        messages = [
            {
                **message,
                "created_at": timezone.localtime(datetime.fromisoformat(message["created_at"])).strftime(
                    "%d/%m/%Y %H:%M"
                ),
            }
            for message in transcript(interaction)
        ]
        context = {"session": session, "messages": messages, "number": interaction.number}
        subject = _("Your chat with us (%(number)s)") % {"number": interaction.number}
        text = render_to_string("contact_center/messaging/transcript_email.txt", context)
    send_mail(subject, text, None, [address])


# --- widget settings ------------------------------------------------------------------------------

WIDGET_FORM_FIELDS = (
    "name",
    "queue",
    "allowed_origins",
    "topics",
    "greeting_it",
    "greeting_en",
    "consent_text_it",
    "consent_text_en",
    "primary_colour",
    "max_message_chars",
    "max_upload_bytes",
    "allowed_upload_types",
    "calendar_code",
)
MAX_MESSAGE_CHARS_LIMIT = 10_000
MAX_UPLOAD_BYTES_LIMIT = 25 * 1024 * 1024
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_MIME = re.compile(r"^[a-z0-9.+-]+/[a-z0-9.+-]+$")


def widget_form_values(widget: ChatWidget) -> dict[str, Any]:
    import json

    return {
        "name": widget.name,
        "queue": widget.queue.code,
        "allowed_origins": "\n".join(widget.allowed_origins or []),
        "topics": json.dumps(widget.topics or [], ensure_ascii=False, indent=2),
        "greeting_it": widget.greeting_it,
        "greeting_en": widget.greeting_en,
        "consent_text_it": widget.consent_text_it,
        "consent_text_en": widget.consent_text_en,
        "primary_colour": widget.primary_colour,
        "max_message_chars": str(widget.max_message_chars),
        "max_upload_bytes": str(widget.max_upload_bytes),
        "allowed_upload_types": ", ".join(widget.allowed_upload_types or []),
        "calendar_code": widget.calendar_code,
        "require_email": "on" if widget.require_email else "",
        "offline_when_no_agent": "on" if widget.offline_when_no_agent else "",
        "active": "on" if widget.active else "",
    }


def _bounded_int(value: Any, *, field: str, low: int, high: int, errors: dict[str, str]) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        errors[field] = _("Enter a whole number.")
        return 0
    if not low <= number <= high:
        errors[field] = _("Between %(low)s and %(high)s.") % {"low": low, "high": high}
    return number


def _clean_topics(text: str, errors: dict[str, str]) -> list[dict[str, Any]]:
    import json

    if not text.strip():
        return []
    try:
        raw = json.loads(text)
    except ValueError:
        errors["topics"] = _("Not valid JSON.")
        return []
    if not isinstance(raw, list):
        errors["topics"] = _("A list of topics.")
        return []
    topics: list[dict[str, Any]] = []
    codes: set[str] = set()
    known_queues = set(Queue.objects.values_list("code", flat=True))
    from fedele.contact_center.models import Skill

    known_skills = set(Skill.objects.values_list("code", flat=True))
    for position, item in enumerate(raw, start=1):
        code = str(item.get("code") or "").strip() if isinstance(item, dict) else ""
        if not code or code in codes or len(code) > 40:
            errors["topics"] = _("Topic %(n)s needs a unique code.") % {"n": position}
            return []
        queue_code = str(item.get("queue_code") or "")
        if queue_code and queue_code not in known_queues:
            errors["topics"] = _("Topic %(n)s: unknown queue %(queue)s.") % {
                "n": position,
                "queue": queue_code,
            }
            return []
        skills = item.get("skills") or {}
        if not isinstance(skills, dict) or any(
            str(skill) not in known_skills or not isinstance(level, int) or not 1 <= level <= 5
            for skill, level in skills.items()
        ):
            errors["topics"] = _("Topic %(n)s: skills are known skill codes with levels 1–5.") % {
                "n": position
            }
            return []
        codes.add(code)
        topics.append(
            {
                "code": code,
                "label_it": str(item.get("label_it") or code)[:80],
                "label_en": str(item.get("label_en") or code)[:80],
                "queue_code": queue_code,
                "skills": {str(skill): int(level) for skill, level in skills.items()},
            }
        )
    return topics


def widget_save(
    *, widget: ChatWidget | None, values: dict[str, Any], actor_id: int | None = None
) -> ChatWidget:
    """Create (``widget`` None) or change a widget from the settings form. ValidationFailed lists
    every bad field; nothing is written then."""
    from fedele.contact_center.selectors.messaging import origin_of

    errors: dict[str, str] = {}
    name = str(values.get("name") or "").strip()
    if not name or len(name) > 120:
        errors["name"] = _("A name of 1 to 120 characters.")
    queue = Queue.objects.filter(code=str(values.get("queue") or ""), active=True).first()
    if queue is None:
        errors["queue"] = _("Choose a queue.")
    origins: list[str] = []
    for line in str(values.get("allowed_origins") or "").replace(",", "\n").splitlines():
        if not line.strip():
            continue
        origin = origin_of(line.strip())
        if not origin or origin.rstrip("/") != line.strip().rstrip("/").lower():
            errors["allowed_origins"] = _("%(value)s is not an origin like https://www.example.it.") % {
                "value": line.strip()[:100]
            }
            break
        origins.append(origin)
    colour = str(values.get("primary_colour") or "#1f6feb").strip()
    if not _COLOUR.match(colour):
        errors["primary_colour"] = _("A colour like #1f6feb.")
    max_chars = _bounded_int(
        values.get("max_message_chars") or 2000,
        field="max_message_chars",
        low=1,
        high=MAX_MESSAGE_CHARS_LIMIT,
        errors=errors,
    )
    max_bytes = _bounded_int(
        values.get("max_upload_bytes") or 5 * 1024 * 1024,
        field="max_upload_bytes",
        low=1024,
        high=MAX_UPLOAD_BYTES_LIMIT,
        errors=errors,
    )
    types = [t.strip().lower() for t in str(values.get("allowed_upload_types") or "").split(",") if t.strip()]
    if any(not _MIME.match(t) for t in types):
        errors["allowed_upload_types"] = _("Content types like image/png, separated by commas.")
    topics = _clean_topics(str(values.get("topics") or ""), errors)
    texts = {
        key: str(values.get(key) or "").strip()
        for key in ("greeting_it", "greeting_en", "consent_text_it", "consent_text_en", "calendar_code")
    }
    for key, limit in (
        ("greeting_it", 300),
        ("greeting_en", 300),
        ("consent_text_it", 500),
        ("consent_text_en", 500),
        ("calendar_code", 40),
    ):
        if len(texts[key]) > limit:
            errors[key] = _("At most %(limit)s characters.") % {"limit": limit}
    if errors:
        raise ValidationFailed(
            _("Please check the widget's settings."), code="chat_widget_invalid", fields=errors
        )
    assert queue is not None
    fields = {
        "name": name,
        "queue": queue,
        "allowed_origins": sorted(set(origins)),
        "topics": topics,
        "primary_colour": colour.lower(),
        "max_message_chars": max_chars,
        "max_upload_bytes": max_bytes,
        "allowed_upload_types": types,
        "require_email": bool(values.get("require_email")),
        "offline_when_no_agent": bool(values.get("offline_when_no_agent")),
        "active": bool(values.get("active")),
        **texts,
    }
    with transaction.atomic():
        if widget is None:
            widget = ChatWidget.objects.create(created_at=clock.now(), **fields)
            before = None
        else:
            widget = ChatWidget.objects.select_for_update().get(pk=widget.pk)
            before = widget_form_values(widget)
            for key, value in fields.items():
                setattr(widget, key, value)
            widget.save()
        audit.record(
            action="contact_center.chat_widget_saved",
            object_type="contact_center.chat_widget",
            object_id=widget.public_key,
            before=before,
            after=widget_form_values(widget),
            actor_id=actor_id,
        )
    return widget


# --- the agent's side ends the chat -----------------------------------------------------------------

INTERACTION_ENDED_HANDLER = "contact_center.chat.interaction_ended"


def on_interaction_ended(envelope: Any) -> None:
    """An agent (or the system) ended a chat interaction: the visitor's session ends too and the
    widget is told. A chat the visitor closed is already ended (nothing happens)."""
    if str(envelope.payload.get("channel") or "") != "chat":
        return
    moment = clock.now()
    with transaction.atomic():
        session = (
            ChatSession.objects.select_for_update()
            .filter(interaction__public_id=str(envelope.payload.get("interaction_id") or ""))
            .first()
        )
        if session is None or session.state == ChatSessionState.ENDED:
            return
        session.state = ChatSessionState.ENDED
        session.ended_at = moment
        session.save(update_fields=["state", "ended_at"])
        push_to_visitor(session, "cc.visitor.ended", {})

"""CSAT and NPS surveys: sending, answering, and the follow-up of unhappy customers.

CSAT: when a ticket is solved (event "support.ticket_solved") one Survey(kind=csat) is created for it
(at most one per ticket, a database constraint) and e-mailed to the requester after commit, in the
ticket's language, with a link carrying a random token (only its SHA-256 is stored). The requester
may also rate the ticket on its portal page; both paths end in the same answer service.

NPS: a campaign (optionally limited to a customer segment) sends one Survey(kind=nps) to every active
customer with an e-mail address and e-mail consent in force.

Answering: once only (a second answer is a Conflict "already_answered"), not after expiry
(ValidationFailed "survey_expired"), score 1–5 for CSAT and 0–10 for NPS. A CSAT score of 2 or less
opens one follow-up complaint ticket (priority high) as a child of the rated ticket.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from fedele.accounts.contracts import Actor
from fedele.shared import audit, clock, events
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fedele.shared.events import EventEnvelope
from fedele.support.events import SurveyCompleted
from fedele.support.models import NpsCampaign, StatusKind, Survey, Ticket, TicketEvent

logger = logging.getLogger(__name__)

SURVEY_VALID_FOR = timedelta(days=14)
CSAT_SCORES = range(1, 6)
NPS_SCORES = range(11)
LOW_CSAT_SCORE = 2
COMMENT_MAX_LENGTH = 4000
CAMPAIGN_NAME_MAX_LENGTH = 120
QUESTION_MAX_LENGTH = 300
SEGMENTS = ("consumer", "small_business", "enterprise", "public_administration")
CSAT_HANDLER_NAME = "support.surveys.csat_on_ticket_solved"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def survey_url(token: str) -> str:
    base = str(getattr(settings, "FEDELE_PUBLIC_URL", "")).rstrip("/")
    return f"{base}{reverse('help:survey', args=[token])}"


@dataclass(frozen=True, slots=True)
class _Mail:
    to: str
    subject: str
    body_text: str
    body_html: str


def _render_mail(survey: Survey, token: str, *, ticket: Ticket | None, question: str = "") -> _Mail:
    context = {
        "survey": survey,
        "ticket": ticket,
        "url": survey_url(token),
        "scores": list(CSAT_SCORES if survey.kind == Survey.Kind.CSAT else NPS_SCORES),
        "score_urls": [
            (score, f"{survey_url(token)}?score={score}")
            for score in (CSAT_SCORES if survey.kind == Survey.Kind.CSAT else NPS_SCORES)
        ],
        "question": question,
        "brand_name": getattr(settings, "FEDELE_BRAND_NAME", "fedele"),
        "valid_days": SURVEY_VALID_FOR.days,
    }
    with translation.override(survey.language or "it"):
        subject = " ".join(render_to_string("support/emails/survey_subject.txt", context).split())
        body_text = render_to_string("support/emails/survey_body.txt", context)
        body_html = render_to_string("support/emails/survey_body.html", context)
    return _Mail(survey.email, subject, body_text, body_html)


def _send(mail: _Mail, ticket_pk: int | None) -> None:
    """After commit: through the e-mail area's sender when the survey is about a ticket (threading,
    Auto-Submitted header), else Django's mail. A failure is logged: the survey stays answerable."""
    try:
        if ticket_pk is not None:
            from fedele.support.services import email_outbound

            sender: Any = getattr(email_outbound, "send_ticket_email", None)
            ticket = Ticket.objects.filter(pk=ticket_pk).first()
            if sender is not None and ticket is not None:
                sender(
                    ticket=ticket,
                    to=[mail.to],
                    subject=mail.subject,
                    body_text=mail.body_text,
                    body_html=mail.body_html,
                    auto_submitted=True,
                )
                return
        message = EmailMultiAlternatives(
            subject=mail.subject, body=mail.body_text, from_email=settings.DEFAULT_FROM_EMAIL, to=[mail.to]
        )
        message.attach_alternative(mail.body_html, "text/html")
        message.extra_headers["Auto-Submitted"] = "auto-generated"
        message.send()
    except Exception:
        logger.exception("Could not send the survey e-mail to %s", mail.to)


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


# CSAT ----------------------------------------------------------------------------------------------


def survey_send_csat(ticket: Ticket | int, *, send_email: bool = True) -> Survey | None:
    """Create the ticket's CSAT survey and e-mail it after commit. Idempotent: a ticket that already
    has one (solved, reopened, solved again) keeps it and nothing is sent twice. Returns None when
    there is nobody to ask (no requester e-mail and no portal requester)."""
    ticket_pk = ticket if isinstance(ticket, int) else ticket.pk
    with transaction.atomic():
        locked = (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("customer")
            .filter(pk=ticket_pk)
            .first()
        )
        if locked is None:
            raise NotFound("Ticket not found.")
        existing = Survey.objects.filter(ticket=locked, kind=Survey.Kind.CSAT).first()
        if existing is not None:
            return existing
        if not locked.requester_email and locked.requester_user_id is None:
            return None
        survey, token = _create_csat(locked)
        if send_email and survey.email:
            mail = _render_mail(survey, token, ticket=locked)
            transaction.on_commit(lambda: _send(mail, ticket_pk))
    return survey


def _create_csat(ticket: Ticket) -> tuple[Survey, str]:
    """Inside the caller's transaction with the ticket locked."""
    now = clock.now()
    token, hashed = _new_token()
    try:
        with transaction.atomic():
            survey = Survey.objects.create(
                kind=Survey.Kind.CSAT,
                ticket=ticket,
                customer_id=ticket.customer_id,
                email=ticket.requester_email,
                language=(ticket.language or "it")[:2],
                token_hash=hashed,
                agent_id=ticket.assignee_id,
                team_id=ticket.team_id,
                category_id=ticket.category_id,
                sent_at=now,
                expires_at=now + SURVEY_VALID_FOR,
            )
    except IntegrityError as error:
        raise Conflict("This ticket already has a satisfaction survey.", code="survey_exists") from error
    audit.record(
        action="survey.sent",
        object_type="survey",
        object_id=str(survey.public_id),
        after={"kind": survey.kind, "ticket": ticket.number, "email": survey.email},
    )
    TicketEvent.objects.create(
        ticket=ticket,
        kind="survey",
        field="csat",
        new_value="sent",
        data={"survey": str(survey.public_id), "email": survey.email},
        created_at=now,
    )
    return survey, token


def on_ticket_solved(envelope: EventEnvelope) -> None:
    """support.ticket_solved → the CSAT survey (runs once per event; the receipt dedupes it)."""
    ticket_public_id = str(envelope.payload.get("ticket_id") or "")
    ticket = (
        Ticket.objects.filter(public_id=ticket_public_id).only("pk").first() if ticket_public_id else None
    )
    if ticket is None:
        return
    survey_send_csat(ticket.pk)


# answering -----------------------------------------------------------------------------------------


def _clean_answer(kind: str, score: Any, comment: str | None) -> tuple[int, str]:
    allowed = CSAT_SCORES if kind == Survey.Kind.CSAT else NPS_SCORES
    if isinstance(score, bool) or not isinstance(score, int):
        try:
            score = int(str(score).strip())
        except (TypeError, ValueError):
            score = None
    if score is None or score not in allowed:
        low, high = allowed[0], allowed[-1]
        raise ValidationFailed(
            f"Choose a score from {low} to {high}.",
            code="invalid_score",
            fields={"score": f"Choose a score from {low} to {high}."},
        )
    text = (comment or "").replace("\x00", "").strip()
    if len(text) > COMMENT_MAX_LENGTH:
        raise ValidationFailed(
            f"The comment is too long (at most {COMMENT_MAX_LENGTH} characters).",
            code="comment_too_long",
            fields={"comment": f"At most {COMMENT_MAX_LENGTH} characters."},
        )
    return int(score), text


def survey_for_token(token: str) -> Survey | None:
    if not token or len(token) > 200:
        return None
    return Survey.objects.select_related("ticket", "campaign").filter(token_hash=token_hash(token)).first()


def survey_respond(*, token: str, score: Any, comment: str = "") -> Survey:
    """Answer a survey from its e-mail link (no login: the token is the proof)."""
    with transaction.atomic():
        survey = (
            Survey.objects.select_for_update().filter(token_hash=token_hash(token or "")).first()
            if token and len(token) <= 200
            else None
        )
        if survey is None:
            raise NotFound("This survey link is not valid.", code="survey_not_found")
        return _answer(survey, score, comment, actor=None)


def survey_rate_ticket(*, actor: Actor, ticket: Ticket | str, score: Any, comment: str = "") -> Survey:
    """The requester rates a solved ticket on its portal page: the ticket's CSAT survey, created now
    if the e-mail one was never sent."""
    from fedele.support.selectors.tickets import ticket_get

    if not actor.is_portal_customer:
        raise PermissionDenied("Only the customer can rate this request.")
    public_id = str(ticket.public_id) if isinstance(ticket, Ticket) else ticket
    visible = ticket_get(actor=actor, public_id=public_id)
    with transaction.atomic():
        locked = Ticket.objects.select_for_update().filter(pk=visible.pk).first()
        if locked is None:
            raise NotFound("Ticket not found.")
        if locked.status_kind not in (StatusKind.SOLVED, StatusKind.CLOSED):
            raise ValidationFailed("You can rate a request once it is solved.", code="ticket_not_solved")
        survey = Survey.objects.filter(ticket=locked, kind=Survey.Kind.CSAT).first()
        if survey is None:
            survey, _token = _create_csat(locked)
        survey = Survey.objects.select_for_update().get(pk=survey.pk)
        return _answer(survey, score, comment, actor=actor, allow_expired=True)


def _answer(
    survey: Survey, score: Any, comment: str, *, actor: Actor | None, allow_expired: bool = False
) -> Survey:
    """Inside the caller's transaction with the survey locked."""
    if survey.responded_at is not None:
        raise Conflict("This survey has already been answered. Thank you!", code="already_answered")
    now = clock.now()
    if not allow_expired and survey.expires_at <= now:
        raise ValidationFailed("This survey has expired.", code="survey_expired")
    value, text = _clean_answer(survey.kind, score, comment)
    survey.score = value
    survey.comment = text
    survey.responded_at = now
    survey.save(update_fields=["score", "comment", "responded_at"])
    ticket = (
        Ticket.objects.filter(pk=survey.ticket_id).select_related("customer").first()
        if survey.ticket_id is not None
        else None
    )
    audit.record(
        action="survey.answered",
        object_type="survey",
        object_id=str(survey.public_id),
        after={"kind": survey.kind, "score": value, "comment": text[:200]},
        actor_id=actor.user_id if actor is not None else None,
    )
    if ticket is not None:
        TicketEvent.objects.create(
            ticket=ticket,
            kind="survey",
            field=survey.kind,
            new_value=str(value),
            data={"survey": str(survey.public_id), "score": value, "comment": text[:500]},
            actor_id=actor.user_id if actor is not None else None,
            actor_name=actor.email if actor is not None else "",
            created_at=now,
        )
    customer_public_id = _customer_public_id(survey, ticket)
    events.publish(
        SurveyCompleted(
            survey_id=str(survey.public_id),
            kind=survey.kind,
            ticket_id=str(ticket.public_id) if ticket is not None else None,
            customer_id=customer_public_id,
            score=value,
            comment=text,
            responded_at=now.isoformat(),
        ),
        aggregate_type="support.survey",
        aggregate_id=str(survey.public_id),
    )
    if survey.kind == Survey.Kind.CSAT and value <= LOW_CSAT_SCORE and ticket is not None:
        _follow_up(survey, ticket)
    return survey


def _customer_public_id(survey: Survey, ticket: Ticket | None) -> str | None:
    if ticket is not None and ticket.customer is not None:
        return str(ticket.customer.public_id)
    if survey.customer_id is not None:
        from fedele.customers.facade import customer_summaries

        summary = customer_summaries([survey.customer_id]).get(survey.customer_id)
        return str(summary.public_id) if summary is not None else None
    return None


def _follow_up(survey: Survey, ticket: Ticket) -> None:
    """One complaint ticket per unhappy answer, as a child of the rated ticket, with the comment."""
    if survey.follow_up_ticket_id is not None:
        return
    from fedele.support.services.tickets import message_add, ticket_create

    language = (ticket.language or "it")[:2]
    with translation.override(language):
        subject = translation.gettext("Low satisfaction (%(score)s/5) on %(number)s: %(subject)s") % {
            "score": survey.score,
            "number": ticket.number,
            "subject": ticket.subject,
        }
        body = translation.gettext(
            "The customer rated %(number)s %(score)s out of 5. Call them back and find out what went wrong."
        ) % {"number": ticket.number, "score": survey.score}
        comment_label = translation.gettext("Customer's comment:")
        no_comment = translation.gettext("The customer left no comment.")
    follow_up = ticket_create(
        actor=None,
        subject=subject[:250],
        body=body,
        channel="internal",
        requester_email=ticket.requester_email,
        requester_name=ticket.requester_name,
        requester_user_id=ticket.requester_user_id,
        customer_public_id=str(ticket.customer.public_id) if ticket.customer is not None else None,
        ticket_type="complaint",
        priority="high",
        team_public_id=None,
        language=language,
    )
    Ticket.objects.filter(pk=follow_up.pk).update(parent=ticket)
    note = f"{comment_label}\n\n{survey.comment}" if survey.comment else no_comment
    message_add(actor=None, ticket=follow_up, kind="note", body=note, send_email=False)
    survey.follow_up_ticket = follow_up
    survey.save(update_fields=["follow_up_ticket"])
    TicketEvent.objects.create(
        ticket=ticket,
        kind="linked",
        field="child",
        new_value=follow_up.number,
        data={"reason": "low_csat", "survey": str(survey.public_id)},
        created_at=clock.now(),
    )


# NPS -----------------------------------------------------------------------------------------------


def _require_manage(actor: Actor) -> None:
    if not actor.can("support.manage_support"):
        raise PermissionDenied("You do not have permission to run NPS campaigns.")


def nps_campaign_create(
    *, actor: Actor, name: str, question_it: str = "", question_en: str = "", segment: str = ""
) -> NpsCampaign:
    _require_manage(actor)
    errors: dict[str, str] = {}
    clean_name = (name or "").strip()
    if not clean_name or len(clean_name) > CAMPAIGN_NAME_MAX_LENGTH:
        errors["name"] = f"Give the campaign a name (1-{CAMPAIGN_NAME_MAX_LENGTH} characters)."
    question_it = (question_it or "").strip() or (
        "Quanto è probabile che consiglieresti %(brand)s a un amico o a un collega?"
    )
    question_en = (question_en or "").strip() or (
        "How likely are you to recommend %(brand)s to a friend or colleague?"
    )
    for key, value in (("question_it", question_it), ("question_en", question_en)):
        if len(value) > QUESTION_MAX_LENGTH:
            errors[key] = f"At most {QUESTION_MAX_LENGTH} characters."
    if segment and segment not in SEGMENTS:
        errors["segment"] = f"Choose one of: {', '.join(SEGMENTS)} (or none for every customer)."
    if errors:
        raise ValidationFailed("Some fields are not valid.", fields=errors)
    with transaction.atomic():
        campaign = NpsCampaign.objects.create(
            name=clean_name,
            question_it=question_it,
            question_en=question_en,
            segment=segment,
            created_by_id=actor.user_id,
            created_at=clock.now(),
        )
        audit.record(
            action="nps_campaign.created",
            object_type="nps_campaign",
            object_id=str(campaign.public_id),
            after={"name": clean_name, "segment": segment},
            actor_id=actor.user_id,
        )
    return campaign


def campaign_question(campaign: NpsCampaign, language: str) -> str:
    text = campaign.question_en if language == "en" else campaign.question_it
    brand = str(getattr(settings, "FEDELE_BRAND_NAME", "fedele"))
    return text.replace("%(brand)s", brand)


def nps_campaign_send(*, actor: Actor, campaign_public_id: str) -> NpsCampaign:
    """Send once: one survey per customer with an e-mail and e-mail consent (a second send is a
    Conflict "already_sent"). E-mails leave after commit."""
    from fedele.support.selectors.surveys import nps_recipients

    _require_manage(actor)
    with transaction.atomic():
        campaign = NpsCampaign.objects.select_for_update().filter(public_id=campaign_public_id).first()
        if campaign is None:
            raise NotFound("Campaign not found.")
        if campaign.sent_at is not None:
            raise Conflict("This campaign has already been sent.", code="already_sent")
        now = clock.now()
        mails: list[_Mail] = []
        for recipient in nps_recipients(segment=campaign.segment):
            token, hashed = _new_token()
            survey = Survey.objects.create(
                kind=Survey.Kind.NPS,
                campaign=campaign,
                customer_id=recipient.customer_id,
                email=recipient.email,
                language=(recipient.language or "it")[:2],
                token_hash=hashed,
                sent_at=now,
                expires_at=now + SURVEY_VALID_FOR,
            )
            mails.append(
                _render_mail(
                    survey, token, ticket=None, question=campaign_question(campaign, survey.language)
                )
            )
        campaign.sent_count = len(mails)
        campaign.sent_at = now
        campaign.save(update_fields=["sent_count", "sent_at"])
        audit.record(
            action="nps_campaign.sent",
            object_type="nps_campaign",
            object_id=str(campaign.public_id),
            after={"sent_count": len(mails)},
            actor_id=actor.user_id,
        )

        def send_all() -> None:
            for mail in mails:
                _send(mail, None)

        transaction.on_commit(send_all)
    return campaign

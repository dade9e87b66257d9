"""The ticket create endpoint's fast path: ``POST /api/v1/support/tickets`` with group commit (ADR 0002).

The plain form of the request (bearer token, a JSON body that validates against ``TicketIn``, no
Idempotency-Key header, no cookies) is answered here; everything else goes to the ninja view in
``api/tickets.py``, whose answers this path reproduces byte for byte (tested). Concurrent requests are
created together by ``tickets_create_many``: one database transaction for a group instead of one per
request, each ticket exactly as ``ticket_create`` makes it.

Per group, in the worker thread: the token is checked once per caller (scope ``write``; a portal
customer or a caller without ``support.work_tickets`` is Django's to answer), every request counts
against the caller's rate limit, and the audit rows carry the caller, its address and the group's
first request id.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.utils import translation

from fedele.accounts.facade import actor_for, authenticate_api_token
from fedele.shared import context, fastpath, ratelimit, versioned_cache
from fedele.shared.errors import RateLimited
from fedele.support.api.tickets import TicketDetailOut, TicketIn, _detail_of, _message_out, _ticket_out
from fedele.support.services.tickets import WORK_PERMISSION, new_ticket_parts
from fedele.support.services.tickets_batch import TicketOutcome, TicketRequest, tickets_create_many

logger = logging.getLogger(__name__)
PATH = "/api/v1/support/tickets"


_Call = fastpath.JsonCall[TicketIn]


async def create_ticket(request: fastpath.FastRequest) -> fastpath.FastResponse | None:
    call = fastpath.json_call(request, TicketIn)
    if call is None:
        return None  # Django answers
    return await _GROUPS.submit(call)


_render = fastpath.render_json
_error = fastpath.render_error


def _process(calls: list[_Call]) -> list[fastpath.FastResponse | None]:
    """One group of calls, by caller and language (one request scope, one context, one translation)."""
    answers: list[fastpath.FastResponse | None] = [None] * len(calls)
    for (authorization, language, client, user_agent), indexes in fastpath.by_caller(calls).items():
        with versioned_cache.scope(), translation.override(language):
            _process_caller(calls, indexes, answers, authorization, client, user_agent, language)
    return answers


def _process_caller(
    calls: list[_Call],
    indexes: list[int],
    answers: list[fastpath.FastResponse | None],
    authorization: str,
    client: str | None,
    user_agent: str,
    language: str,
) -> None:
    found = authenticate_api_token(authorization[7:].strip())
    if found is None or "write" not in found[1]:
        return  # Django answers: 401, or 403 for the missing scope
    user = found[0]
    actor = actor_for(user)
    if actor.is_portal_customer or not actor.can(WORK_PERMISSION):
        return  # Django answers (a portal customer's create, or 403)
    bucket = "api:auth:" + hashlib.sha256(authorization.encode()).hexdigest()[:40]
    admitted: list[int] = []
    for index in indexes:
        try:
            ratelimit.hit(bucket, limit=int(settings.FEDELE_API_RATE_LIMIT_PER_MINUTE))
        except RateLimited as error:
            answers[index] = _error(error, language)
            continue
        admitted.append(index)
    if not admitted:
        return
    saved = context.set_current(
        context.RequestContext(
            actor_id=user.pk,
            actor_label=user.email,
            ip_address=client,
            user_agent=user_agent,
            request_id=calls[admitted[0]].request_id,
        )
    )
    try:
        outcomes = tickets_create_many(
            actor=actor, requests=[_ticket_request(calls[index].payload) for index in admitted]
        )
        for index, outcome in zip(admitted, outcomes, strict=True):
            try:
                answers[index] = _answer(actor, outcome, language)
            except Exception:
                # One answer that cannot be built must not fail the group (the others are created).
                logger.exception("The fast path could not answer a ticket create")
                answers[index] = _answer_failed(outcome)
    finally:
        context.reset(saved)


def _answer_failed(outcome: TicketOutcome) -> fastpath.FastResponse | None:
    """A created ticket whose answer could not be built: a 500 that names it. Declining to Django
    would create it a second time (a request without an external id has nothing to dedupe on)."""
    ticket = outcome.ticket
    if ticket is None:
        return None  # nothing was created: Django answers
    envelope = {
        "error": {
            "code": "internal_error",
            "message": "The ticket was created but its answer could not be built; read it back by its id.",
            "fields": {"id": str(ticket.public_id), "number": ticket.number},
        }
    }
    return _render(500, envelope)


def _ticket_request(payload: TicketIn) -> TicketRequest:
    """The view's arguments to ``ticket_create`` (a plain agent's call: the channel as asked)."""
    return TicketRequest(
        subject=payload.subject,
        body=payload.body,
        body_html=payload.body_html,
        channel=payload.channel,
        requester_email=payload.requester_email,
        requester_name=payload.requester_name,
        customer_public_id=str(payload.customer_id) if payload.customer_id else None,
        ticket_type=payload.ticket_type,
        category=payload.category,
        priority=payload.priority,
        team_public_id=str(payload.team_id) if payload.team_id else None,
        assignee_public_id=str(payload.assignee_id) if payload.assignee_id else None,
        tags=payload.tags,
        custom_fields=payload.custom_fields,
        language=payload.language,
        subject_kind=payload.subject_kind,
        subject_reference=payload.subject_reference,
        external_source="api" if payload.external_id else "",
        external_id=payload.external_id,
    )


def _answer(actor: Any, outcome: TicketOutcome, language: str) -> fastpath.FastResponse | None:
    extra = [("content-language", language)]
    if outcome.error is not None:
        return _error(outcome.error, language)
    ticket = outcome.ticket
    if ticket is None:
        return None  # not created: Django answers
    parts = new_ticket_parts(ticket)
    if parts is None:
        data = _detail_of(actor, ticket)
    else:
        data = {
            **_ticket_out(ticket, parts.tags, parts.customer_public_id),
            "messages": [_message_out(message, attachments=[]) for message in parts.messages],
        }
    return _render(201, TicketDetailOut.model_validate(data).model_dump(), extra)


_GROUPS: fastpath.GroupCommit[_Call, fastpath.FastResponse | None] = fastpath.GroupCommit(
    _process, max_group=200, workers=1, name="support-create-group-commit"
)


def register() -> None:
    fastpath.register("POST", PATH, create_ticket)
